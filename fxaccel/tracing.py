"""Symbolic tracing with a leaf policy and an opaque fallback.

Symbolic tracing fails on tensor-dependent control flow and some Python. Instead of giving up on the
whole model, :func:`trace` finds the innermost submodule whose ``forward`` failed, keeps it as an
opaque leaf, traces the rest, and then traces that leaf's own children where they trace (so convs
inside an untraceable block are still rewritten). Every opaque part is recorded with the error.

Stability: public (``trace``).
"""
from __future__ import annotations

import copy
import inspect
from typing import Iterable

from torch import fx, nn

from .blocks.base import EfficientBlock
from .report import Opaque


class _LeafTracer(fx.Tracer):
    """Efficient blocks, user-named modules and known-opaque paths stay leaves; on failure,
    remembers the innermost module being traced."""

    def __init__(self, leaf_types: tuple, leaf_paths: set[str]):
        super().__init__()
        self.leaf_types = leaf_types
        self.leaf_paths = leaf_paths
        self.failed_path: str | None = None
        self._stack: list[str] = []

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (EfficientBlock, *self.leaf_types)) or qualname in self.leaf_paths:
            return True
        return super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        path = self.path_of_module(m)
        self._stack.append(path)
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_path is None:
                self.failed_path = path
            raise
        finally:
            self._stack.pop()


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
    text = f"{type(err).__name__}: {err}".strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def _trace_once(root: nn.Module, leaf_types: tuple, leaf_paths: set[str], opaque: list[Opaque], prefix: str):
    """Trace ``root``, turning failing submodules into leaves until it traces."""
    while True:
        tracer = _LeafTracer(leaf_types, leaf_paths)
        try:
            graph = tracer.trace(root)
            name = type(root).__name__
            return fx.GraphModule(tracer.root, graph, name)
        except Exception as err:  # any tracing failure: find who failed
            path = tracer.failed_path
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


def trace_inplace(model: nn.Module, *, leaves: Iterable[type | str] = (), opaque: list[Opaque] | None = None):
    """:func:`trace` without the copy: the result shares ``model``'s submodules and parameters."""
    if isinstance(model, fx.GraphModule):
        return model
    leaves = tuple(leaves)
    leaf_types = tuple(x for x in leaves if isinstance(x, type))
    leaf_paths = {x for x in leaves if isinstance(x, str)}
    unknown = [x for x in leaves if not isinstance(x, (type, str))]
    if unknown:
        raise TypeError(f"leaves must be module types or qualified names, got {unknown!r}")
    records: list[Opaque] = [] if opaque is None else opaque
    return _trace_tree(model, leaf_types, leaf_paths, records, "")
