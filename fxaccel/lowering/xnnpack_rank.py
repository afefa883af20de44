"""XNNPACK tensors have at most 6 dims: spell higher-rank window shuffles at a lower rank.

Why: Swin's window partition is ``view`` to 8-D -> ``permute`` -> ``reshape`` back to 3-D.
XNNPACK's partitioner takes the 8-D ``view_copy``/``permute_copy`` into a delegate, and the
program then fails to load ("Failed to define tensor ... xnn_status_unsupported_parameter"): its
tensors have at most ``XNN_MAX_TENSOR_DIMS`` = 6 dims. The same data movement has a lower-rank
spelling: size-1 dims carry no order, and input dims that stay neighbours, in order, after the
permute move as one. Swin's partition ``(1, 1, 2, 3, 7, 3, 7, 96)`` with ``(0, 1, 3, 5, 2, 4, 6, 7)``
is ``(2, 3, 7, 3, 672)`` with ``(1, 3, 0, 2, 4)``: 5-D.

The rewrite runs on the edge program (before partitioning) and only where it is exact without
looking further: a ``view_copy`` to rank > 6, then a ``permute_copy``, then (through contiguous
clones) a ``view_copy`` back to rank <= 6, each read only by the next. The elements reach the last
view in the same order, so its result is the same tensor.

What still has more than 6 dims (MViT-v2's decomposed relative positions broadcast 7- and 8-D
tensors) is kept out of the delegates by :func:`partitioner`: ExecuTorch's portable kernels take up
to 16 dims, so the program loads and runs, and the report lists those ops with the reason.

Stability: internal (used by :func:`fxaccel.lowering.executorch.to_pte`).
"""
from __future__ import annotations

import torch
from torch import fx

MAX_DIMS = 6  # XNN_MAX_TENSOR_DIMS


def collapse_permute(shape: tuple[int, ...], perm: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The lowest-rank ``(shape, perm)`` that moves the elements as ``x.view(shape).permute(perm)``.

    >>> collapse_permute((1, 1, 2, 3, 7, 3, 7, 96), (0, 1, 3, 5, 2, 4, 6, 7))
    ((2, 3, 7, 3, 672), (1, 3, 0, 2, 4))
    >>> collapse_permute((4, 5), (0, 1))
    ((20,), (0,))
    """
    kept = [d for d in range(len(shape)) if shape[d] != 1]
    if not kept:
        return (1,), (0,)
    order = [d for d in perm if shape[d] != 1]     # input dims in output order
    groups: list[list[int]] = []                   # runs of input dims that stay neighbours, in order
    for d in order:
        if groups and kept.index(d) == kept.index(groups[-1][-1]) + 1:
            groups[-1].append(d)
        else:
            groups.append([d])
    by_input = sorted(groups, key=lambda g: g[0])
    new_shape = []
    for g in by_input:
        size = 1
        for d in g:
            size *= shape[d]
        new_shape.append(size)
    new_perm = tuple(by_input.index(g) for g in groups)
    return tuple(new_shape), new_perm


def _is(node, op) -> bool:
    return isinstance(node, fx.Node) and node.op == "call_function" and node.target == op


def _plain_clone(node, clone_op) -> bool:
    if not _is(node, clone_op):
        return False
    order = node.kwargs.get("dim_order")
    return order is None or list(order) == list(range(len(node.meta["val"].shape)))


def _rank(node) -> int:
    return len(node.meta["val"].shape)


def lower_high_rank_permutes(gm: fx.GraphModule) -> int:
    """Rewrite each exact ``view -> permute -> view`` chain of rank > 6 in an edge graph module in
    place; returns how many were rewritten (a chain that still needs more than 6 dims stays)."""
    from executorch.exir.dialects._ops import ops as exir_ops

    view, permute = exir_ops.edge.aten.view_copy.default, exir_ops.edge.aten.permute_copy.default
    clone = exir_ops.edge.dim_order_ops._clone_dim_order.default
    done = 0
    for p in list(gm.graph.nodes):
        if not _is(p, permute) or _rank(p) <= MAX_DIMS or not _is(p.args[0], view) or len(p.args[0].users) != 1:
            continue
        v = p.args[0]
        last = p
        while len(last.users) == 1 and _plain_clone(next(iter(last.users)), clone):
            last = next(iter(last.users))
        if len(last.users) != 1:
            continue
        out = next(iter(last.users))
        if not _is(out, view) or _rank(out) > MAX_DIMS:
            continue
        shape, perm = collapse_permute(tuple(int(s) for s in v.meta["val"].shape), tuple(int(d) for d in p.args[1]))
        if len(shape) > MAX_DIMS:
            continue
        src = v.args[0]
        with gm.graph.inserting_before(p):
            nv = gm.graph.call_function(view, (src, list(shape)))
            nv.meta.update(v.meta)
            nv.meta["val"] = src.meta["val"].reshape(shape).contiguous()
            np_ = gm.graph.call_function(permute, (nv, list(perm)))
            np_.meta.update(p.meta)
            np_.meta["val"] = nv.meta["val"].permute(perm).contiguous()
        out.replace_input_with(last, np_)
        done += 1
    if done:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return done


def _pass(gm: fx.GraphModule):
    from executorch.exir.pass_base import PassResult

    return PassResult(gm, lower_high_rank_permutes(gm) > 0)


def high_rank_nodes(gm: fx.GraphModule | None) -> list[fx.Node]:
    """The calls in ``gm`` whose result has more than 6 dims (none when ``gm`` is None)."""
    if gm is None:
        return []
    return [n for n in gm.graph.nodes
            if n.op == "call_function" and isinstance(n.meta.get("val"), torch.Tensor) and _rank(n) > MAX_DIMS]


TRANSFORM_PASSES = [_pass]


def transform_passes(exported) -> list | None:
    """:data:`TRANSFORM_PASSES` for an exported program with a tensor of more than 6 dims, else
    None: the rewrite has nothing to do there, and running it still costs ExecuTorch a program
    copy and re-verification (~0.8 s on X3D-XS)."""
    return TRANSFORM_PASSES if high_rank_nodes(exported.graph_module) else None


TOO_MANY_DIMS = f"more than {MAX_DIMS} dims (XNNPACK's limit): the portable kernel runs it"


def _too_many_dims(node: fx.Node) -> bool:
    vals = [node.meta.get("val")] + [a.meta.get("val") for a in node.all_input_nodes]
    return any(isinstance(v, torch.Tensor) and v.dim() > MAX_DIMS for v in vals)


def partitioner():
    """An ``XnnpackPartitioner`` that leaves out every op reading or making a tensor of more than
    6 dims; ``.kept_out`` maps each such node's name to the reason (for the delegation report).
    Zero pads with int8 outputs run in int8 (:mod:`fxaccel.lowering.xnnpack_int8`); which ops stay
    whole is decided before decomposing (:func:`fxaccel.lowering.lowering_time.decide_up_front`)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    from . import lowering_time
    from .xnnpack_int8 import partitioner_configs

    class _RankLimited(XnnpackPartitioner):
        def __init__(self):
            super().__init__(configs=partitioner_configs())
            self.kept_out: dict[str, str] = {}

        def get_matched_nodes_from_configs(self, ep):
            groups = []
            for group in super().get_matched_nodes_from_configs(ep):
                kept = []
                for n in group:
                    if _too_many_dims(n):
                        self.kept_out[n.name] = TOO_MANY_DIMS
                    else:
                        kept.append(n)
                if kept:
                    groups.append(kept)
            return groups

        def ops_to_not_decompose(self, ep):
            return lowering_time.decide_up_front(super().ops_to_not_decompose(ep), ep.graph_module.graph)

    return _RankLimited()
