"""Global average pools over (T, H, W) -> ``F.adaptive_avg_pool3d(x, 1)``.

Spellings: ``nn.AdaptiveAvgPool3d(1)`` / ``(1, 1, 1)``, ``F.adaptive_avg_pool3d(x, 1)``,
``x.mean((2, 3, 4), keepdim=True)`` / ``torch.mean(x, dim=[-3, -2, -1], keepdim=True)``.
Without ``keepdim`` the mean is ``(N, C)``: it becomes the pool followed by ``flatten(1)``.
Negative dims need the rank, read from shape propagation; without it they are left alone.
"""
import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Any, Fn, Method, Mod, Rule, arg, module_of, replace_with_function, shape_of


def _rank(value) -> int | None:
    shape = shape_of(value)
    return None if shape is None else len(shape)


def _is_one(size) -> bool:
    return size == 1 or (isinstance(size, (tuple, list)) and tuple(size) == (1, 1, 1))


def _mean_dims_ok(node, gm) -> bool:
    dims = arg(node, 1, "dim")
    if not isinstance(dims, (tuple, list)) or len(dims) != 3:
        return False
    rank = _rank(node.args[0])
    if any(d < 0 for d in dims):
        if rank is None:
            return False
        dims = [d % rank for d in dims]
    return sorted(dims) == [2, 3, 4] and rank in (None, 5) and arg(node, 3, "dtype") is None \
        and "out" not in node.kwargs


def _pool_not_canonical(node, gm) -> bool:
    size = arg(node, 1, "output_size")
    return _is_one(size) and not (len(node.args) == 2 and size == 1 and not node.kwargs)


class CanonicalizeGlobalMean(Rule):
    name = "canonicalize_global_mean"
    pattern = Alt(
        Mod((nn.AdaptiveAvgPool3d,), Any("x"), where=lambda n, gm: _is_one(module_of(gm, n).output_size)),
        Fn(F.adaptive_avg_pool3d, Any("x"), extra=True, where=_pool_not_canonical),
        Fn(torch.mean, Any("x"), extra=True, where=_mean_dims_ok),
        Method("mean", Any("x"), extra=True, where=_mean_dims_ok),
    )

    def describe(self, m):
        return m.root.name

    def rewrite(self, m):
        gm, node = m.gm, m.root
        keepdim = True
        if node.target in (torch.mean, "mean"):
            keepdim = bool(arg(node, 2, "keepdim", False))
        if keepdim:
            replace_with_function(gm, node, F.adaptive_avg_pool3d, (m["x"], 1))
            return
        with gm.graph.inserting_before(node):
            pool = gm.graph.call_function(F.adaptive_avg_pool3d, (m["x"], 1))
        replace_with_function(gm, node, torch.flatten, (pool, 1))


register_pass(CanonicalizeGlobalMean(), stage="canonicalize")
