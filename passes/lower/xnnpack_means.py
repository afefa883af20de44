"""Means XNNPACK would leave outside its delegate -> one 4-D ``mean((-1, -2), keepdim=True)``.

XNNPACK (ExecuTorch 1.5.1) delegates a mean only over the two innermost dims of a 4-D tensor with
``keepdim=True`` (it becomes global average pooling). Anything else -- no keepdim, other dims, a
3-D ``(N, T, C).mean(1)`` frame mean, a 5-D mean -- runs on ExecuTorch's slow portable kernel
between two delegates. Any mean is the same numbers as

    x.permute(kept + reduced).reshape(1, K, R, 1).mean((-1, -2), keepdim=True).reshape(out)

with ``K``/``R`` the products of the kept/reduced sizes (the permute only when the reduced dims
are not already the trailing ones; a 4-D mean over ``(2, 3)`` needs neither permute nor the first
reshape). The shapes are those of the example inputs: this graph is a private copy made for one
export, whose program has static shapes anyway (``propagate_shapes`` puts them on the nodes).
"""
from __future__ import annotations

import math

import torch
from torch import fx

from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Any, Fn, Match, Method, Rule, arg, shape_of

from ._common import XNNPACK

_WRITTEN = "fxaccel_xnnpack_mean"  # meta flag of the means this rule writes


def _not_written_here(node: fx.Node, gm: fx.GraphModule) -> bool:
    return not node.meta.get(_WRITTEN)


def _dims(m: Match, rank: int) -> tuple[int, ...]:
    """The reduced dims of the mean, sorted and non-negative (no ``dim``: all of them)."""
    dims = arg(m.root, 1, "dim")
    if dims is None or (isinstance(dims, (tuple, list)) and len(dims) == 0):
        return tuple(range(rank))
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return tuple(sorted({d % rank for d in dims}))


def _keepdim(m: Match) -> bool:
    return bool(arg(m.root, 2, "keepdim", False))


class XnnpackMeans(Rule):
    """Any ``mean`` -> the 4-D ``mean((-1, -2), keepdim=True)`` XNNPACK delegates (see the module doc)."""

    name = "xnnpack_means"
    pattern = Alt(Fn(torch.mean, Any("x"), extra=True, where=_not_written_here),
                  Method("mean", Any("x"), extra=True, where=_not_written_here))

    def check(self, m: Match) -> str | None:
        shape, out = shape_of(m["x"]), shape_of(m.root)
        if shape is None or out is None:
            return "no shapes (graph not shape-propagated on the example inputs)"
        if arg(m.root, 3, "dtype") is not None:
            return "mean with a dtype argument"
        if not shape:
            return "mean of a 0-d tensor"
        if len(shape) == 4 and _dims(m, 4) == (2, 3) and _keepdim(m):
            return "already the 4-D mean over (2, 3) with keepdim=True that XNNPACK delegates"
        return None

    def rewrite(self, m: Match) -> None:
        g, node, x, shape = m.gm.graph, m.root, m["x"], shape_of(m["x"])
        rank, dims = len(shape), _dims(m, len(shape))
        kept = [d for d in range(rank) if d not in dims]
        with g.inserting_before(node):
            if not (rank == 4 and dims == (2, 3)):
                order = kept + list(dims)
                if order != list(range(rank)):
                    x = g.call_method("permute", (x, *order))
                k = math.prod(shape[d] for d in kept)
                r = math.prod(shape[d] for d in dims)
                x = g.call_method("reshape", (x, 1, k, r, 1))
            mean = g.call_method("mean", (x, (-1, -2)), {"keepdim": True})
            mean.meta[_WRITTEN] = True
            y = g.call_method("reshape", (mean, shape_of(node)))  # a tuple: the output may be () (a full mean)
        node.replace_all_uses_with(y)
        g.erase_node(node)


register_pass(XnnpackMeans(), stage="lower", after="propagate_shapes", when=XNNPACK)
