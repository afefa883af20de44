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
from fxaccel.rules import Alt, Any, Fn, Match, Method, Rule, arg, shape_of

from ._common import swap_module_call
from fxaccel.forms.folded_ops import FoldedInput, FoldedMean


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


def _dims(node: fx.Node) -> tuple[int, ...]:
    dims = arg(node, 1, "dim")
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return tuple(sorted({d % 5 for d in dims}))


def _mean_of_5d(node: fx.Node, gm: fx.GraphModule) -> bool:
    """A mean over given dims of a 5-D tensor, without ``dtype=`` / ``out=``."""
    shape = shape_of(node.args[0])
    return (shape is not None and len(shape) == 5 and arg(node, 1, "dim") is not None
            and arg(node, 3, "dtype") is None and "out" not in node.kwargs)


class Mean5d(Rule):
    """The form depends on the deploy target (``m.ctx.target``)."""

    name = "mean_5d"
    pattern = Alt(Fn(torch.mean, Any("x"), extra=True, where=_mean_of_5d),
                  Method("mean", Any("x"), extra=True, where=_mean_of_5d))

    def check(self, m: Match) -> str | None:
        dims = _dims(m.root)
        if 0 in dims:
            return "the mean reduces the batch dimension"
        if m.ctx.target.conv3d and dims != tuple(range(dims[0], 5)):
            return f"mean over dims {dims} is not over trailing dims; kept (x86 runs it)"
        return None

    def rewrite(self, m: Match) -> None:
        node, dims = m.root, _dims(m.root)
        shape, out = shape_of(m["x"]), shape_of(node)
        if m.ctx.target.conv3d:
            module = FlatMean(shape, dims[0], out)
        else:
            module = FoldedInput(FoldedMean(shape, dims, out), shape)
        swap_module_call(m.gm, node, module, f"{node.name}_mean", (m["x"],))

    def describe(self, m: Match) -> str:
        return m.root.name


register_pass(Mean5d(), stage="deploy", name="mean_5d", after="fix_pools")
