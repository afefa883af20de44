"""Means XNNPACK would leave outside its delegate -> one 4-D ``mean((-1, -2), keepdim=True)``.

XNNPACK (ExecuTorch 1.5.1) delegates a mean only over the two innermost dims of a 4-D tensor with
``keepdim=True`` (it becomes global average pooling). Anything else -- no keepdim, other dims, a
3-D ``(N, T, C).mean(1)`` frame mean, a 5-D mean -- runs on ExecuTorch's slow portable kernel
between two delegates. Any mean is the same numbers as

    x.permute(kept + reduced).reshape(1, K, R, 1).mean((-1, -2), keepdim=True).reshape(out)

with ``K``/``R`` the products of the kept/reduced sizes (the permute only when the reduced dims
are not already the trailing ones; a 4-D mean over ``(2, 3)`` needs neither permute nor the first
reshape). The shapes are those of the example inputs: this graph is a private copy made for one
export, whose program has static shapes anyway.
"""
from __future__ import annotations

import math

import torch
from torch import fx

from fxaccel.pipeline import register_pass

from ._common import arg, eliminate_dead_code, for_format, is_call, refresh_shapes, shape_of


def _delegated(shape: tuple[int, ...], dims: tuple[int, ...], keepdim: bool) -> bool:
    return len(shape) == 4 and dims == (2, 3) and keepdim


def _rewrite(gm: fx.GraphModule, node: fx.Node, shape, dims, out) -> None:
    x = node.args[0]
    rank = len(shape)
    kept = [d for d in range(rank) if d not in dims]
    g = gm.graph
    with g.inserting_before(node):
        if not (rank == 4 and dims == (2, 3)):
            order = kept + list(dims)
            if order != list(range(rank)):
                x = g.call_method("permute", (x, *order))
            k = math.prod(shape[d] for d in kept)
            r = math.prod(shape[d] for d in dims)
            x = g.call_method("reshape", (x, 1, k, r, 1))
        y = g.call_method("mean", (x, (-1, -2)), {"keepdim": True})
        y = g.call_method("reshape", (y, tuple(out)))  # a tuple: out may be () (a full mean)
    node.replace_all_uses_with(y)
    g.erase_node(node)


def xnnpack_means(gm: fx.GraphModule, ctx) -> None:
    if not for_format(ctx, "executorch"):
        return
    means = [n for n in gm.graph.nodes if is_call(n, "mean", torch.mean)]
    if not means:
        return
    have_shapes = refresh_shapes(gm, ctx)
    for node in means:
        ctx.record.matched += 1
        shape, out = shape_of(node.args[0]) if node.args else None, shape_of(node)
        if not have_shapes or shape is None or out is None:
            ctx.record.skip(node.name, "no shapes (graph not shape-propagated on the example inputs)")
            continue
        dims = arg(node, 1, "dim")
        keepdim = bool(arg(node, 2, "keepdim", False))
        if arg(node, 3, "dtype") is not None:
            ctx.record.skip(node.name, "mean with a dtype argument")
            continue
        if not shape:
            ctx.record.skip(node.name, "mean of a 0-d tensor")
            continue
        if dims is None or (isinstance(dims, (tuple, list)) and len(dims) == 0):
            dims = tuple(range(len(shape)))
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        dims = tuple(sorted({d % len(shape) for d in dims}))
        if _delegated(shape, dims, keepdim):
            continue  # already XNNPACK's global average pool
        _rewrite(gm, node, shape, dims, out)
        ctx.record.rewritten += 1
    if ctx.record.rewritten:
        eliminate_dead_code(gm)
        gm.recompile()


register_pass(xnnpack_means, stage="lower", name="xnnpack_means", after="inline_forms")
