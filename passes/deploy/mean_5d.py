"""5-D means -> 4-D/3-D means.

``x.mean(dims, keepdim)`` / ``torch.mean`` over a 5-D ``(N, C, T, H, W)`` tensor (dims not
including the batch):

* ``x86``: trailing dims ``(d..4)`` become one contiguous reduction over the last dim of the
  ``(N, kept, reduced)`` view;
* ``mobile_cpu``: any subset of ``(1, 2, 3, 4)`` becomes :class:`~._forms.FoldedMean` on the
  folded layout (spatial/channel mean as one 4-D mean, time on a 3-D view).
"""
from __future__ import annotations

import math

import torch
from torch import fx, nn

from fxaccel.pipeline import register_pass
from fxaccel.rules import arg

from ._common import shape_of, swap_module_call
from ._forms import FoldedInput, FoldedMean


class FlatMean(nn.Module):
    """A mean over the trailing dims ``start..4`` as ``x.reshape(N, kept, reduced).mean(-1)``,
    reshaped to the 5-D mean's output shape (batch free)."""

    def __init__(self, in_shape, start: int, out_shape):
        super().__init__()
        self.kept = int(math.prod(in_shape[1:start]))
        self.reduced = int(math.prod(in_shape[start:]))
        self.out_shape = tuple(int(s) for s in out_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, self.kept, self.reduced).mean(-1).reshape((-1,) + self.out_shape[1:])


def _dims(node: fx.Node):
    if not ((node.op == "call_function" and node.target is torch.mean)
            or (node.op == "call_method" and node.target == "mean")):
        return None
    shape = shape_of(node.args[0]) if node.args else None
    dims = arg(node, 1, "dim")
    if shape is None or len(shape) != 5 or dims is None or arg(node, 3, "dtype") is not None or "out" in node.kwargs:
        return None
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return tuple(sorted({d % 5 for d in dims}))


def mean_5d(gm: fx.GraphModule, ctx) -> None:
    for node in list(gm.graph.nodes):
        dims = _dims(node)
        if dims is None:
            continue
        ctx.record.matched += 1
        shape, out = shape_of(node.args[0]), shape_of(node)
        if 0 in dims:
            ctx.record.skip(node.name, "the mean reduces the batch dimension")
            continue
        if not ctx.target.conv3d:
            module = FoldedInput(FoldedMean(shape, dims, out), shape)
        elif dims == tuple(range(dims[0], 5)):
            module = FlatMean(shape, dims[0], out)
        else:
            ctx.record.skip(node.name, f"mean over dims {dims} is not over trailing dims; kept (x86 runs it)")
            continue
        swap_module_call(gm, node, module, f"{node.name}_mean", (node.args[0],))
        ctx.record.rewritten += 1
    gm.recompile()


register_pass(mean_5d, stage="deploy", name="mean_5d", after="fix_pools")
