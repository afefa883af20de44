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
from typing import Any, Iterable

import torch
from torch import fx, nn
from torch.fx.node import map_aggregate
from torch.fx.passes.shape_prop import _extract_tensor_metadata

from .blocks.base import EfficientBlock
from .inputs import bad_inputs, clone_inputs, eval_mode, map_tensors, positional_call, positional_parameters
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
    forward reads ``self.training`` fails the trace (it must run as written).

    Given the example ``call``, an argument that is a list, tuple or dict of tensors (SlowFast's
    pathways) is traced as that container of ``getitem`` proxies of one placeholder, so ``len``,
    iteration and unpacking in ``forward`` see the real structure; the placeholder takes the same
    container when the GraphModule is called.
    """

    def __init__(self, leaf_types: tuple, leaf_paths: set[str], call: tuple | None = None):
        super().__init__(leaf_paths)
        self.leaf_types = leaf_types
        self.call = call

    def create_args_for_root(self, root_fn, is_module, concrete_args=None):
        fn, args = super().create_args_for_root(root_fn, is_module, concrete_args)
        if self.call is not None:
            first = 1 if is_module else 0
            for i, example in enumerate(self.call):
                if isinstance(example, (list, tuple, dict)) and first + i < len(args):
                    args[first + i] = _unpack(args[first + i], example)
        return fn, args

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (EfficientBlock, *self.leaf_types)) or super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        if _reads_training(m) and not self.is_leaf_module(m, self.path_of_module(m)):
            self.failed = self.failed or self.path_of_module(m)
            raise _ModeDependent(_MODE_DEPENDENT.format(type(m).__name__))
        return super().call_module(m, forward, args, kwargs)


def _unpack(proxy, example):
    """``proxy`` as the container ``example`` is, its items ``getitem`` proxies (recursively)."""
    if isinstance(example, dict):
        return {k: _unpack(proxy[k], v) for k, v in example.items()}
    if type(example) in (list, tuple):
        return type(example)(_unpack(proxy[i], v) for i, v in enumerate(example))
    return proxy


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


def _wrap_whole(root: nn.Module, call: tuple | None = None) -> fx.GraphModule:
    """A GraphModule whose one node calls the untraceable ``root`` (kept as submodule ``inner``).

    Its placeholders are ``root.forward``'s positional parameters, up to the last one ``call``
    gives (all of them without a call), each keeping its default: optional arguments stay optional.
    """
    holder = nn.Module()
    holder.inner = root
    graph = fx.Graph()
    params = positional_parameters(root)
    if call is not None:
        params = params[:len(call)]
    args = [graph.placeholder(p.name) if p.default is p.empty else graph.placeholder(p.name, default_value=p.default)
            for p in params]
    graph.output(graph.call_module("inner", tuple(args)))
    return fx.GraphModule(holder, graph, "Opaque" + type(root).__name__)


_ORIGINAL = "fxaccel_original"


class _StandIn:
    """Attribute reads the module cannot answer go to the module it stands for (:meth:`_stands_for`)."""

    def _stands_for(self) -> nn.Module | None:
        return self.__dict__.get("_fxaccel_stands_for")

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            original = self._stands_for()
            if original is None or name.startswith("__"):
                raise
            return getattr(original, name)


class NestedGraph(_StandIn, fx.GraphModule):
    """A GraphModule inside an opaque module: a traced child, or a leaf (a ``Conv3d``) wrapped in a
    one-node graph so that passes rewrite it there.

    The opaque code around it still runs as written, and may read attributes of the module it
    called (transformers' V-JEPA 2 reads ``patch_embeddings.proj.weight.dtype`` on every call). So
    the original module is kept (in ``meta``: copies keep it, no ``state_dict`` lists it), reads this
    graph cannot answer go to it, and after each pass every child that a rewrite replaced answers
    the reads it cannot from the child it replaced (:meth:`answer_for_originals`, called by
    ``pipeline.run_stage``). The original's
    tensors are those transmute moved into blocks: shapes, dtypes and devices hold, while deploy's
    folded values live in the graph.
    """

    def _stands_for(self) -> nn.Module | None:
        return self.__dict__.get("meta", {}).get(fx.graph_module._USER_PRESERVED_ATTRIBUTES_KEY, {}).get(_ORIGINAL)

    @property
    def original(self) -> nn.Module | None:
        return self._stands_for()

    def answer_for_originals(self) -> None:
        original = self.original
        if original is None or not isinstance(original, nn.Module):
            return
        for name, child in self.named_children():
            before = original._modules.get(name)
            if before is not None and child is not before:
                stand_in(child, before)

    @classmethod
    def of(cls, gm: fx.GraphModule, original: nn.Module) -> "NestedGraph":
        nested = cls(gm, gm.graph, type(original).__name__)
        nested.meta.setdefault(fx.graph_module._USER_PRESERVED_ATTRIBUTES_KEY, {})[_ORIGINAL] = original
        return nested


_STAND_IN_CLASSES: dict[type, type] = {}


def stand_in(module: nn.Module, original: nn.Module) -> nn.Module:
    """Let ``module`` (a block, a deploy form) answer the attribute reads it lacks from ``original``
    (the vanilla module it replaced); returns ``module``.

    Its class becomes a subclass of its own with that fallback (same name and behaviour:
    ``isinstance`` holds); ``original`` is kept unregistered (no ``state_dict`` lists it).
    GraphModules are left as they are (:class:`NestedGraph` has its own fallback).
    """
    if isinstance(module, fx.GraphModule) or module is original:
        return module
    cls = type(module)
    if not issubclass(cls, _StandIn):
        if cls not in _STAND_IN_CLASSES:
            _STAND_IN_CLASSES[cls] = type(cls.__name__, (_StandIn, cls), {"__module__": cls.__module__,
                                                                         "__qualname__": cls.__qualname__})
        module.__class__ = _STAND_IN_CLASSES[cls]
    module.__dict__["_fxaccel_stands_for"] = original
    return module


def _wrap_leaf(leaf: nn.Module) -> NestedGraph:
    holder = nn.Module()
    holder.inner = leaf
    graph = fx.Graph()
    graph.output(graph.call_module("inner", (graph.placeholder("input"),)))
    return NestedGraph.of(fx.GraphModule(holder, graph), leaf)


def _concrete_args(root: nn.Module, call: tuple | None) -> dict[str, Any] | None:
    """Arguments the trace fixes to their values: the call's constants (``None``, flags) and the
    parameters it leaves at their defaults, so ``if labels is not None`` traces as the call runs.
    Without a call every parameter with a constant default is fixed to it: a proxy would take
    ``mask is not None`` as true and trace a branch the default never runs (a call with another
    value then fails fx's assertion instead of computing something else)."""
    call = () if call is None else call
    fixed = {}
    params = positional_parameters(root)
    for i, p in enumerate(params):
        value = call[i] if i < len(call) else p.default
        if value is not p.empty and isinstance(value, _SCALARS):
            fixed[p.name] = value
    return fixed or None


_SCALARS = (type(None), bool, int, float, str)


def _restore_names(gm: fx.GraphModule, fixed: dict[str, Any] | None) -> None:
    """Fixed arguments become placeholders named ``<name>_1``: give them back their parameter names,
    so callers that pass them by keyword still can."""
    for node in gm.graph.nodes:
        if node.op == "placeholder" and fixed and node.target.endswith("_1") and node.target[:-2] in fixed:
            node.target = node.target[:-2]
    gm.recompile()


class _Varies:
    """A module called with different constant arguments (or ones a trace cannot fix): not traced."""


VARIES = _Varies()


def record_calls(model: nn.Module, call: tuple, *, modules: Iterable[nn.Module] | None = None,
                 keep_tensors: bool = False) -> dict[int, Any]:
    """How each submodule (or each of ``modules``) is called when ``model`` runs on ``call``:
    ``id(module)`` -> its call as positional arguments (keywords bound; tensors as meta tensors, or
    copies with ``keep_tensors``), or :data:`VARIES` when calls differ in structure or constants.
    What a child's trace fixes its optional arguments from (traced with proxies instead,
    ``if mask is not None`` would take the branch no call takes), and the example inputs of a
    GraphModule nested in an opaque module (``pipeline.run_stage``)."""
    seen: dict[int, Any] = {}
    as_copy = (lambda t: t.detach().clone()) if keep_tensors else (
        lambda t: torch.empty(t.shape, dtype=t.dtype, device="meta"))

    def hook(mod, args, kwargs):
        try:
            got = map_tensors(as_copy, positional_call(mod, args, kwargs))
        except TypeError:
            got = VARIES
        if id(mod) not in seen:
            seen[id(mod)] = got
        elif seen[id(mod)] is not VARIES and (got is VARIES or _call_key(got) != _call_key(seen[id(mod)])):
            seen[id(mod)] = VARIES

    targets = [m for _, m in model.named_modules() if m is not model] if modules is None else list(modules)
    hooks = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in targets]
    try:
        with torch.no_grad(), eval_mode(model):
            model(*clone_inputs(call))
    except Exception:
        pass  # the run that records shapes reports it
    finally:
        for h in hooks:
            h.remove()
    return seen


def _call_key(call: tuple):
    leaves, spec = torch.utils._pytree.tree_flatten(call)
    return spec, tuple(("tensor", x.dtype, x.dim()) if isinstance(x, torch.Tensor) else repr(x) for x in leaves)


def _short(err: BaseException) -> str:
    if isinstance(err, _ModeDependent):
        return str(err)
    text = f"{type(err).__name__}: {err}".strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def _trace_once(root: nn.Module, leaf_types: tuple, leaf_paths: set[str], opaque: list[Opaque], prefix: str,
                call: tuple | None = None) -> tuple[fx.GraphModule | None, list[str]]:
    """Trace ``root``, turning failing submodules into leaves until it traces.

    Returns the GraphModule and the local paths of the opaque leaves in it, or ``(None, [])`` when
    ``root``'s own forward does not trace (recorded as opaque at ``prefix``; the caller keeps it as
    it is and traces its children instead).
    """
    start = len(opaque)
    if _reads_training(root) and not isinstance(root, (fx.GraphModule, EfficientBlock)):
        opaque.append(Opaque(prefix.rstrip("."), _MODE_DEPENDENT.format(type(root).__name__)))
        return None, []
    local: list[str] = []
    while True:
        tracer = _LeafTracer(leaf_types, leaf_paths | set(local), call)
        fixed = _concrete_args(root, call)
        try:
            graph = tracer.trace(root, concrete_args=fixed)
            gm = fx.GraphModule(tracer.root, graph, type(root).__name__)
            _restore_names(gm, fixed)
            return gm, local
        except Exception as err:  # any tracing failure: find who failed
            path = tracer.failed
            if not path or path in leaf_paths or path in local:
                # the root's own forward is untraceable: the leaves found on the way are moot
                del opaque[start:]
                opaque.append(Opaque(prefix.rstrip("."), _short(err)))
                return None, []
            opaque.append(Opaque(prefix + path, _short(err)))
            local.append(path)


_LEAVES_3D = (nn.Conv3d, nn.ConvTranspose3d, nn.BatchNorm3d, nn.InstanceNorm3d, nn.MaxPool3d, nn.AvgPool3d,
              nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d)
"""Leaf modules that a target may not run (5-D ops): inside an opaque module they are wrapped in a
one-node GraphModule, so transmute and deploy rewrite them there too (the opaque code calls
whatever module its attribute holds)."""


def _trace_inside(module: nn.Module, leaf_types: tuple, opaque: list[Opaque], prefix: str,
                  calls: dict[int, Any] | None = None) -> None:
    """Replace the children of an opaque ``module`` by their traced GraphModules where possible;
    a child that does not trace stays as it is, with its own children traced in turn.

    With ``calls`` (:func:`record_calls`) each child is traced for the call it gets (constants and
    defaults fixed, asserted at run time); a child never called itself (a ``ModuleList``) or called
    in different ways is not traced, its children are."""
    for name, child in list(module.named_children()):
        if isinstance(child, (EfficientBlock, fx.GraphModule)):
            continue
        if isinstance(child, (nn.ModuleList, nn.ModuleDict)):  # containers: never called, look inside
            _trace_inside(child, leaf_types, opaque, f"{prefix}{name}.", calls)
            continue
        if _LeafTracer(leaf_types, set()).is_leaf_module(child, name):  # Conv3d, BN, ...: nothing inside
            if isinstance(child, _LEAVES_3D) and not isinstance(child, leaf_types):
                setattr(module, name, _wrap_leaf(child))
            continue
        if not any(isinstance(m, _LEAVES_3D) or list(m.parameters(recurse=False)) for m in child.modules()):
            continue  # nothing to rewrite inside
        call = None if calls is None else calls.get(id(child))
        if calls is not None and call is None:  # not called itself (a ModuleList, or unused): look inside
            _trace_inside(child, leaf_types, opaque, f"{prefix}{name}.", calls)
            continue
        if call is VARIES:
            opaque.append(Opaque(prefix + name, "called with different constant arguments (or keywords a "
                                 "trace cannot fix): kept as it is"))
            _trace_inside(child, leaf_types, opaque, f"{prefix}{name}.", calls)
            continue
        traced = _trace_tree(child, leaf_types, set(), opaque, f"{prefix}{name}.", call, calls)
        if traced is not None:
            setattr(module, name, NestedGraph.of(traced, child))


def _trace_tree(root, leaf_types, leaf_paths, opaque, prefix, call=None, calls=None) -> fx.GraphModule | None:
    """``root`` traced (its opaque leaves' children traced in turn), or ``None`` when ``root``'s own
    forward does not trace: then its children are traced in place and ``root`` stays itself."""
    gm, local = _trace_once(root, leaf_types, set(leaf_paths), opaque, prefix, call)
    if gm is None:
        _trace_inside(root, leaf_types, opaque, prefix, calls)
        return None
    for path in local:
        sub = gm.get_submodule(path)
        call = None if calls is None else calls.get(id(sub))
        if call is None or call is VARIES:
            _trace_inside(sub, leaf_types, opaque, prefix + path + ".", calls)
            continue
        # it failed as a part of root's trace (proxies for its arguments); traced for the call it gets
        # (a list of pathways as a list, constants fixed) it may trace on its own
        opaque[:] = [o for o in opaque if o.path != prefix + path]
        traced = _trace_tree(sub, leaf_types, set(), opaque, prefix + path + ".", call, calls)
        if traced is not None:
            parent, _, name = path.rpartition(".")
            setattr(gm.get_submodule(parent), name, traced)
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
    call = example_inputs
    calls = None if call is None else record_calls(model, call)
    gm = _trace_tree(model, leaf_types, leaf_paths, records, "", call, calls) or _wrap_whole(model, call)
    if example_inputs is None:
        return gm
    what = type(model).__name__
    while (failure := first_failure(gm, example_inputs)) is not None:
        node, error = failure
        path = traced_through(node, error)
        if path is None:  # a leaf (or the inputs) failed: the model itself does not run on them
            raise bad_inputs(what, example_inputs, error) from error
        records.append(Opaque(path, "traced graph fails on the example inputs: " + _short(error)))
        leaf_paths |= {r.path for r in records}
        if not path:
            _trace_inside(model, leaf_types, records, "", calls)
            return _wrap_whole(model, call)
        gm, local = _trace_once(model, leaf_types, leaf_paths, records, "", call)
        if gm is None:  # cannot happen: it traced before with fewer leaves
            return _wrap_whole(model, call)
        _trace_inside(model.get_submodule(path), leaf_types, records, path + ".", calls)
    return gm


def traced_through(node: fx.Node, error: BaseException | None = None) -> str | None:
    """The innermost submodule whose traced code holds ``node`` ("" for the root's own code), or
    None when the node is a leaf module's call (the module itself failed, not the trace).

    A leaf that fails only because it writes into a list the graph built (fx hands it an
    ``immutable_list``: pytorchvideo's SlowFast blocks write their pathways back) is the fault of
    the code that called it, which becomes opaque so the call runs as written."""
    stack = [p for p, _ in (node.meta.get("nn_module_stack") or {}).values()]
    if node.op == "call_module" and _writes_into_frozen(error):
        callers = [p for p in stack if p != node.target]
        return callers[-1] if callers else ""
    if node.op in ("call_module", "placeholder", "get_attr", "output"):
        return None
    return stack[-1] if stack else ""


def _writes_into_frozen(error: BaseException | None) -> bool:
    return isinstance(error, TypeError) and "immutable_" in str(error) and "does not support mutation" in str(error)


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
            _ShapeRecorder(gm).run(*clone_inputs(inputs))
            for m in nested:
                if id(m) in seen:
                    _ShapeRecorder(m).run(*seen[id(m)])
    finally:
        for h in hooks:
            h.remove()
