"""Collapse consecutive reshapes and permutes.

``x.reshape(a).reshape(b)`` (any mix of ``view`` / ``reshape`` / ``flatten`` followed by
``view`` / ``reshape``) is ``x.reshape(b)``; ``x.permute(p).permute(q)`` is
``x.permute([p[i] for i in q])``, and nothing at all when that is the identity. Only when the
inner node has no other user (otherwise it is computed anyway). A collapsed ``view`` becomes a
``reshape``: the same values, and it cannot fail on strides the chain avoided.
"""
from __future__ import annotations

import torch
from torch import fx

from fxaccel.pipeline import register_pass

_RESHAPE_METHODS = {"reshape", "view"}


def _is_reshape(n) -> bool:
    return isinstance(n, fx.Node) and (
        (n.op == "call_method" and n.target in _RESHAPE_METHODS) or (n.op == "call_function" and n.target is torch.reshape))


def _is_view_like(n) -> bool:
    return _is_reshape(n) or (isinstance(n, fx.Node) and (
        (n.op == "call_method" and n.target == "flatten") or (n.op == "call_function" and n.target is torch.flatten)))


def _permute_dims(n):
    if not isinstance(n, fx.Node) or n.kwargs:
        return None
    if (n.op == "call_method" and n.target == "permute") or (n.op == "call_function" and n.target is torch.permute):
        dims = n.args[1:]
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return tuple(dims) if all(isinstance(d, int) for d in dims) else None
    return None


def _shape_args(n):
    return n.args[1:] if n.op == "call_method" else (n.args[1],)


def collapse_views(gm: fx.GraphModule, ctx) -> None:
    changed = False
    for node in list(gm.graph.nodes):
        if _is_reshape(node) and not node.kwargs and _is_view_like(node.args[0]) and len(node.args[0].users) == 1 \
                and not node.args[0].kwargs:
            inner = node.args[0]
            with gm.graph.inserting_before(node):
                new = gm.graph.call_method("reshape", (inner.args[0], *_shape_args(node)))
            new.meta.update(node.meta)
            node.replace_all_uses_with(new)
            gm.graph.erase_node(node)
            gm.graph.erase_node(inner)
            ctx.record.rewritten += 1
            changed = True
            continue
        q = _permute_dims(node)
        p = _permute_dims(node.args[0]) if q is not None else None
        if p is not None and len(p) == len(q) and len(node.args[0].users) == 1:
            inner = node.args[0]
            dims = tuple(p[i % len(p)] % len(p) for i in q)
            with gm.graph.inserting_before(node):
                new = inner.args[0] if dims == tuple(range(len(dims))) else \
                    gm.graph.call_method("permute", (inner.args[0], dims))
            if new is not inner.args[0]:
                new.meta.update(node.meta)
            node.replace_all_uses_with(new)
            gm.graph.erase_node(node)
            gm.graph.erase_node(inner)
            ctx.record.rewritten += 1
            changed = True
    if changed:
        gm.recompile()


register_pass(collapse_views, stage="deploy", name="collapse_views", after="layout")
