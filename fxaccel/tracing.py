"""Symbolic tracing with a leaf policy and an opaque fallback.

Symbolic tracing fails on tensor-dependent control flow and some Python. Instead of giving up on the
whole model, :func:`trace` finds the innermost submodule whose ``forward`` failed, keeps it as an
opaque leaf, traces the rest, and then traces that leaf's own children where they trace (so convs
inside an untraceable block are still rewritten). Every opaque part is recorded with the error.

A module whose own ``forward`` reads ``self.training`` (torchvision's ``StochasticDepth``) is kept
as an opaque leaf too: a trace would freeze the mode it was traced in, and a transmuted model must
still train like the original.

A graph can also trace and still not run: torchvision's Swin3D passes a list literal to a wrapped
function that mutates it, and FX froze that list into the graph. Given example inputs, the traced
graph is run once (recording shapes on the way); a call that fails inside a traced-through submodule
makes that submodule an opaque leaf as well, and the trace is redone.

Stability: public (``trace``).
"""
from __future__ import annotations

import copy
import inspect
from typing import Iterable

import torch
from torch import fx, nn
from torch.fx.node import map_aggregate
from torch.fx.passes.shape_prop import _extract_tensor_metadata

from .blocks.base import EfficientBlock
from .inputs import bad_inputs, eval_mode
from .report import Opaque


class FailureTracer(fx.Tracer):
    """A tracer that keeps the qualified names in ``leaves`` as leaves and, when tracing fails,
    remembers in ``failed`` the innermost module being traced: what the fallbacks of transmute,
    quantize and the lower stage make a leaf before they trace again."""

    def __init__(self, leaves: set[str]):
        super().__init__()
        self.leaves = leaves
        self.failed: str | None = None

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname in self.leaves or super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed is None:
                self.failed = self.path_of_module(m)
            raise


class _LeafTracer(FailureTracer):
    """Efficient blocks, user-named modules and known-opaque paths stay leaves; a module whose own
    forward reads ``self.training`` fails the trace (it must run as written)."""

    def __init__(self, leaf_types: tuple, leaf_paths: set[str]):
        super().__init__(leaf_paths)
        self.leaf_types = leaf_types

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (EfficientBlock, *self.leaf_types)) or super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        if _reads_training(m) and not self.is_leaf_module(m, self.path_of_module(m)):
            self.failed = self.failed or self.path_of_module(m)
            raise _ModeDependent(_MODE_DEPENDENT.format(type(m).__name__))
        return super().call_module(m, forward, args, kwargs)


class _ModeDependent(Exception):
    pass


_MODE_DEPENDENT = ("{}.forward reads self.training: a trace would fix it in the mode it was traced in, "
                   "so it runs as written")


def _reads_training(m: nn.Module) -> bool:
    """Whether ``m``'s own forward reads ``training`` (torchvision's ``StochasticDepth``, a
    ``training=self.training`` argument): tracing would bake one mode in, and the result must
    train like the original."""
    code = getattr(type(m).forward, "__code__", None)
    return code is not None and "training" in code.co_names


def _wrap_whole(root: nn.Module) -> fx.GraphModule:
    """A GraphModule whose one node calls the untraceable ``root`` (kept as submodule ``inner``)."""
    holder = nn.Module()
    holder.inner = root
    graph = fx.Graph()
    params = inspect.signature(root.forward).parameters.values()
    args = [graph.placeholder(p.name) for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    graph.output(graph.call_module("inner", tuple(args)))
    return fx.GraphModule(holder, graph, "Opaque" + type(root).__name__)


def _short(err: BaseException) -> str:
    if isinstance(err, _ModeDependent):
        return str(err)
    text = f"{type(err).__name__}: {err}".strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def _trace_once(root: nn.Module, leaf_types: tuple, leaf_paths: set[str], opaque: list[Opaque], prefix: str):
    """Trace ``root``, turning failing submodules into leaves until it traces."""
    if _reads_training(root) and not isinstance(root, (fx.GraphModule, EfficientBlock)):
        opaque.append(Opaque(prefix.rstrip("."), _MODE_DEPENDENT.format(type(root).__name__)))
        return _wrap_whole(root)
    while True:
        tracer = _LeafTracer(leaf_types, leaf_paths)
        try:
            graph = tracer.trace(root)
            name = type(root).__name__
            return fx.GraphModule(tracer.root, graph, name)
        except Exception as err:  # any tracing failure: find who failed
            path = tracer.failed
            if not path or path in leaf_paths:
                # the root's own forward is untraceable: wrap it whole
                opaque.append(Opaque(prefix.rstrip("."), _short(err)))
                return _wrap_whole(root)
            opaque.append(Opaque(prefix + path, _short(err)))
            leaf_paths = leaf_paths | {path}


def _trace_inside(module: nn.Module, leaf_types: tuple, opaque: list[Opaque], prefix: str) -> None:
    """Replace the children of an opaque ``module`` by their traced GraphModules where possible."""
    for name, child in list(module.named_children()):
        if isinstance(child, (EfficientBlock, fx.GraphModule)) or not list(child.parameters()):
            continue
        if _LeafTracer(leaf_types, set()).is_leaf_module(child, name):  # Conv3d, BN, ...: nothing inside
            continue
        traced = _trace_tree(child, leaf_types, set(), opaque, f"{prefix}{name}.")
        setattr(module, name, traced)


def _trace_tree(root, leaf_types, leaf_paths, opaque, prefix) -> fx.GraphModule:
    start = len(opaque)
    gm = _trace_once(root, leaf_types, set(leaf_paths), opaque, prefix)
    for rec in opaque[start:]:
        local = rec.path[len(prefix):] if rec.path.startswith(prefix) else rec.path
        target = gm.get_submodule(local) if local else gm.get_submodule("inner")
        _trace_inside(target, leaf_types, opaque, (rec.path + ".") if rec.path else "inner.")
    return gm


def trace(
    model: nn.Module,
    *,
    leaves: Iterable[type | str] = (),
    opaque: list[Opaque] | None = None,
) -> fx.GraphModule:
    """Symbolically trace a **copy** of ``model`` (the model itself is never modified).

    ``leaves``: module types or qualified module names to keep as leaves (never traced into);
    efficient blocks are always leaves. Untraceable submodules become opaque leaves and are
    appended to ``opaque`` (path, tracer error); their traceable children are traced in turn.

    >>> import torch, fxaccel
    >>> gm = fxaccel.trace(torch.nn.Sequential(torch.nn.Conv3d(3, 8, 1), torch.nn.ReLU()))
    >>> [n.op for n in gm.graph.nodes]
    ['placeholder', 'call_module', 'call_module', 'output']
    """
    return trace_inplace(copy.deepcopy(model), leaves=leaves, opaque=opaque)


def trace_inplace(
    model: nn.Module,
    *,
    leaves: Iterable[type | str] = (),
    opaque: list[Opaque] | None = None,
    example_inputs: tuple | None = None,
) -> fx.GraphModule:
    """:func:`trace` without the copy: the result shares ``model``'s submodules and parameters.

    With ``example_inputs``, the result is run on them: shapes are recorded on every node (see
    :func:`propagate_shapes`) and submodules whose traced code fails become opaque leaves.
    """
    if isinstance(model, fx.GraphModule):
        if example_inputs is not None:
            propagate_shapes(model, example_inputs, what=type(model).__name__)
        return model
    leaves = tuple(leaves)
    leaf_types = tuple(x for x in leaves if isinstance(x, type))
    leaf_paths = {x for x in leaves if isinstance(x, str)}
    unknown = [x for x in leaves if not isinstance(x, (type, str))]
    if unknown:
        raise TypeError(f"leaves must be module types or qualified names, got {unknown!r}")
    records: list[Opaque] = [] if opaque is None else opaque
    gm = _trace_tree(model, leaf_types, leaf_paths, records, "")
    if example_inputs is None:
        return gm
    what = type(model).__name__
    while (failure := first_failure(gm, example_inputs)) is not None:
        node, error = failure
        path = traced_through(node)
        if path is None:  # a leaf (or the inputs) failed: the model itself does not run on them
            raise bad_inputs(what, example_inputs, error) from error
        records.append(Opaque(path, "traced graph fails on the example inputs: " + _short(error)))
        if not path:
            return _wrap_whole(model)
        leaf_paths |= {r.path for r in records}
        gm = _trace_once(model, leaf_types, leaf_paths, records, "")
        _trace_inside(model.get_submodule(path), leaf_types, records, path + ".")
    return gm


def traced_through(node: fx.Node) -> str | None:
    """The innermost submodule whose traced code holds ``node`` ("" for the root's own code), or
    None when the node is a leaf module's call (the module itself failed, not the trace)."""
    if node.op in ("call_module", "placeholder", "get_attr", "output"):
        return None
    stack = list((node.meta.get("nn_module_stack") or {}).values())
    return stack[-1][0] if stack else ""


class _NodeFailed(Exception):
    def __init__(self, node: fx.Node, error: BaseException):
        super().__init__(f"{node.format_node()}: {error}")
        self.node, self.error = node, error


class _ShapeRecorder(fx.Interpreter):
    """Runs a graph and records ``tensor_meta`` (as ``ShapeProp`` does), naming the failing node."""

    def run_node(self, n: fx.Node):
        try:
            result = super().run_node(n)
        except _NodeFailed:
            raise
        except Exception as err:
            raise _NodeFailed(n, err) from err
        tensors = []
        meta = map_aggregate(result, lambda o: tensors.append(o) or _extract_tensor_metadata(o)
                             if isinstance(o, torch.Tensor) else o)
        if tensors:
            n.meta["tensor_meta"] = meta
        n.meta["type"] = type(result)
        return result


def first_failure(gm: fx.GraphModule, inputs: tuple) -> tuple[fx.Node, BaseException] | None:
    """Run ``gm`` node by node on ``inputs`` (eval mode, no gradients): the first node that fails
    and its error, or ``None`` when the graph runs (shapes are recorded on the way)."""
    try:
        _record_shapes(gm, inputs)
    except _NodeFailed as failed:
        return failed.node, failed.error
    return None


def propagate_shapes(gm: fx.GraphModule, inputs: tuple, what: str = "the model") -> None:
    """Record ``tensor_meta`` on every node of ``gm`` and of GraphModules nested in opaque leaves.

    Runs in eval mode without gradients, so BN running statistics are never updated. This is the
    first run on the example inputs: a failure is reported with the input shapes.
    """
    failure = first_failure(gm, inputs)
    if failure is not None:
        raise bad_inputs(what, inputs, failure[1]) from failure[1]


def _record_shapes(gm: fx.GraphModule, inputs: tuple) -> None:
    nested = [m for p, m in gm.named_modules() if p and isinstance(m, fx.GraphModule)]
    seen: dict[int, tuple] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.setdefault(id(mod), args)) for m in nested]
    try:
        with torch.no_grad(), eval_mode(gm):
            _ShapeRecorder(gm).run(*(t.clone() for t in inputs))
            for m in nested:
                if id(m) in seen:
                    _ShapeRecorder(m).run(*seen[id(m)])
    finally:
        for h in hooks:
            h.remove()
