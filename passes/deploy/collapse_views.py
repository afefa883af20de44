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
from fxaccel.rules import Alt, Any, Fn, Match, Method, Rule, RuleSet


def _no_kwargs(node: fx.Node, gm: fx.GraphModule) -> bool:
    return not node.kwargs


def _shape_args(node: fx.Node) -> tuple:
    return node.args[1:] if node.op == "call_method" else (node.args[1],)


def _permute_dims(node: fx.Node) -> tuple[int, ...] | None:
    dims = node.args[1:]
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return tuple(dims) if all(isinstance(d, int) for d in dims) else None


def _int_dims(node: fx.Node, gm: fx.GraphModule) -> bool:
    return not node.kwargs and _permute_dims(node) is not None


def _replace(m: Match, new: fx.Node) -> None:
    """The root's users read ``new``; root and inner (now unused) go."""
    m.root.replace_all_uses_with(new)
    m.gm.graph.erase_node(m.root)
    m.gm.graph.erase_node(m["inner"])


class CollapseReshapes(Rule):
    """``view_like(x, a).reshape(b)`` -> ``x.reshape(b)``."""

    name = "collapse_reshapes"
    _view_like = Alt(Method(("reshape", "view", "flatten"), Any("x"), extra=True, where=_no_kwargs, name="inner"),
                     Fn((torch.reshape, torch.flatten), Any("x"), extra=True, where=_no_kwargs, name="inner"))
    pattern = Alt(Method(("reshape", "view"), _view_like, extra=True, where=_no_kwargs),
                  Fn(torch.reshape, _view_like, Any()))

    def check(self, m: Match) -> str | None:
        return m.leak()

    def rewrite(self, m: Match) -> None:
        with m.gm.graph.inserting_before(m.root):
            new = m.gm.graph.call_method("reshape", (m["x"], *_shape_args(m.root)))
        new.meta.update(m.root.meta)
        _replace(m, new)


class CollapsePermutes(Rule):
    """``x.permute(p).permute(q)`` -> ``x.permute(p[q])``, or ``x`` when that is the identity."""

    name = "collapse_permutes"
    _permute = Alt(Method("permute", Any("x"), extra=True, where=_int_dims, name="inner"),
                   Fn(torch.permute, Any("x"), Any(), where=_int_dims, name="inner"))
    pattern = Alt(Method("permute", _permute, extra=True, where=_int_dims),
                  Fn(torch.permute, _permute, Any(), where=_int_dims))

    def check(self, m: Match) -> str | None:
        p, q = _permute_dims(m["inner"]), _permute_dims(m.root)
        if len(p) != len(q):
            return f"permutes of {len(p)} and {len(q)} dims"
        return m.leak()

    def rewrite(self, m: Match) -> None:
        p, q = _permute_dims(m["inner"]), _permute_dims(m.root)
        dims = tuple(p[i % len(p)] % len(p) for i in q)
        if dims == tuple(range(len(dims))):
            _replace(m, m["x"])
            return
        with m.gm.graph.inserting_before(m.root):
            new = m.gm.graph.call_method("permute", (m["x"], dims))
        new.meta.update(m.root.meta)
        _replace(m, new)


register_pass(RuleSet([CollapseReshapes(), CollapsePermutes()]), stage="deploy", name="collapse_views",
              after="layout")
