"""The time-folded layout used by ``mobile_cpu`` deploy forms.

XNNPACK and NNAPI have no 3-D convolution, and per-block transposes eat whatever a clever
decomposition saves (see shared/DESIGN.md). So mobile deploy forms work on a 4-D layout in which
every 5-D video tensor ``(N, C, T, H, W)`` is held as ``(N*T, C, H, W)``: frames folded into the
batch, clip-major (frame ``t`` of clip ``n`` is row ``n*T + t``). Pointwise and spatial convs,
BN, activations and elementwise ops are then plain per-frame 4-D ops with no reshapes at all.

A block's ``deploy(..., target=mobile_cpu)`` returns a :class:`TimeFolded` wrapper (5-D in,
5-D out, so it drops in where the block was); its ``inner`` module is the folded-layout form.
The whole-model layout pass strips the wrappers and cancels adjacent unfold -> fold pairs, so time
is folded once at the network's entry and unfolded once at its head.

Stability: public.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..forms.guards import checked


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, T, H, W) -> (N*T, C, H, W)``, clip-major."""
    n, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(n * t, c, h, w)


def unfold_time(x: torch.Tensor, t: int) -> torch.Tensor:
    """``(N*T, C, H, W) -> (N, C, T, H, W)``; the inverse of :func:`fold_time`."""
    nt, c, h, w = x.shape
    return x.reshape(nt // t, t, c, h, w).transpose(1, 2)


torch.fx.wrap("checked")  # FoldTime calls it: one call node under symbolic tracing


class FoldTime(nn.Module):
    """Enter the folded layout: checks the 5-D shape it was built for, then folds time."""

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fold_time(checked("FoldTime", x, self.shape))


class UnfoldTime(nn.Module):
    """Leave the folded layout: ``(N*T, C, H, W) -> (N, C, T, H, W)``."""

    def __init__(self, t: int):
        super().__init__()
        self.t = int(t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unfold_time(x, self.t)

    def extra_repr(self) -> str:
        return f"t={self.t}"


class TimeFolded(nn.Module):
    """A folded-layout module behind a 5-D interface: fold, ``inner``, unfold.

    ``in_shape`` is the 5-D input shape the form was built for (batch free); ``t_out`` the
    clip length of the output (after temporal stride / pooling).
    """

    def __init__(self, inner: nn.Module, in_shape: Sequence[int], t_out: int):
        super().__init__()
        self.fold = FoldTime(in_shape)
        self.inner = inner
        self.unfold = UnfoldTime(t_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unfold(self.inner(self.fold(x)))
