"""Deploy-form modules that the deploy passes build for vanilla leftovers (not efficient blocks;
conv forms are the target's registry, :mod:`fxaccel.forms`).

Folded-layout forms follow :mod:`fxaccel.blocks.layout`: a 5-D video tensor ``(N, C, T, H, W)``
is held as ``(N*T, C, H, W)``, clip-major. :class:`FoldedInput` is the counterpart of
``TimeFolded`` for forms whose output is not a folded video (a mean that drops time): it folds
and runs ``inner``; the layout pass strips it the same way.

Stability: internal to the deploy passes (public for ``isinstance`` checks only).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks.layout import FoldTime, unfold_time
from .guards import check_shape

torch.fx.wrap("check_shape")


class ShapeGuard(nn.Module):
    """Refuse an input of another shape than the model was deployed for (batch free).

    Deploy forms are built for one clip shape; a different clip length could otherwise run and
    give wrong numbers. A check per input, nothing per layer.
    """

    def __init__(self, shape: Sequence[int], what: str = "deployed model input"):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.what = what

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(self.what, x, self.shape)
        return x

    def extra_repr(self) -> str:
        return f"shape=(N, {', '.join(map(str, self.shape[1:]))})"


class FoldedInput(nn.Module):
    """Fold time, then ``inner`` (whose output is *not* a folded video, e.g. a time mean)."""

    def __init__(self, inner: nn.Module, in_shape: Sequence[int]):
        super().__init__()
        self.fold = FoldTime(in_shape)
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.fold(x))


class RepeatFrames(nn.Module):
    """``(N, C, h, w) -> (N*T, C, h, w)``: a ``T=1`` folded tensor broadcast over ``t`` frames.

    What a 5-D broadcast ``(N, C, T, H, W) * (N, C, 1, 1, 1)`` becomes in the folded layout.
    """

    def __init__(self, t: int, chw: Sequence[int]):
        super().__init__()
        self.t, self.chw = int(t), tuple(int(s) for s in chw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = self.chw
        return x.reshape(-1, 1, c * h * w).repeat(1, self.t, 1).reshape(-1, c, h, w)

    def extra_repr(self) -> str:
        return f"t={self.t}, chw={self.chw}"


class FoldedMean(nn.Module):
    """A mean of a 5-D tensor over ``dims`` (a subset of C, T, H, W) from the folded layout.

    Spatial and channel dims reduce as one 4-D mean (``keepdim=True``, what XNNPACK delegates);
    time reduces on the ``(N, T, C*H*W)`` view (3-D). The result is reshaped to the 5-D mean's
    output shape ``out_shape`` (batch free), so ``keepdim`` either way is exact.
    """

    def __init__(self, in_shape: Sequence[int], dims: Sequence[int], out_shape: Sequence[int]):
        super().__init__()
        self.t = int(in_shape[2])
        self.dims = tuple(sorted(int(d) for d in dims))
        self.out_shape = tuple(int(s) for s in out_shape)
        self.folded_dims = [d - 1 for d in self.dims if d in (3, 4)] + ([1] if 1 in self.dims else [])
        c, _, h, w = (int(s) for s in in_shape[1:])
        self.kept = (1 if 1 in self.dims else c, 1 if 3 in self.dims else h, 1 if 4 in self.dims else w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.folded_dims:
            x = x.mean(self.folded_dims, keepdim=True)
        c, h, w = self.kept
        if 2 in self.dims:
            x = x.reshape(-1, self.t, c * h * w).mean(1)
        else:
            x = unfold_time(x, self.t)
        return x.reshape((-1,) + self.out_shape[1:])

    def extra_repr(self) -> str:
        return f"t={self.t}, dims={self.dims}"


def _triple(v) -> tuple[int, int, int]:
    return tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v),) * 3


class FoldedPool3d(nn.Module):
    """A 3-D max / average pool on the folded layout: a 2-D pool per frame, then over time.

    With ``y_t`` the 2-D pool of frame ``t`` and ``W_o`` the real frames of output ``o``'s window:
    max: ``max_{t in W_o} y_t``; average: ``sum_{t in W_o} y_t / kT`` when padding counts
    (``count_include_pad``), else the mean over ``W_o``. Both follow from the 3-D pool's definition
    because the spatial window and divisor are the same for every frame. Time reduces on the
    ``(N, T, C*H*W)`` view (3-D ops only).
    """

    def __init__(self, kind: str, in_shape: Sequence[int], out_shape: Sequence[int], kernel, stride,
                 padding, dilation=1, count_include_pad: bool = True):
        super().__init__()
        if kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', got {kind!r}")
        self.kind = kind
        self.kernel, self.stride = _triple(kernel), _triple(stride)
        self.padding, self.dilation = _triple(padding), _triple(dilation)
        self.count_include_pad = bool(count_include_pad)
        self.t = int(in_shape[2])
        self.out_chw = (int(out_shape[1]), int(out_shape[3]), int(out_shape[4]))
        kt, st, pt, dt = self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]
        self.windows = []  # per output frame: (start, stop, step, real frame count)
        for o in range(int(out_shape[2])):
            frames = [o * st - pt + k * dt for k in range(kt)]
            real = [f for f in frames if 0 <= f < self.t]
            self.windows.append((real[0], real[-1] + 1, dt, len(real)))
        self.framewise = kt == 1 and st == 1 and pt == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, p, d = self.kernel[1:], self.stride[1:], self.padding[1:], self.dilation[1:]
        if self.kind == "max":
            y = F.max_pool2d(x, k, s, p, d)
        else:
            y = F.avg_pool2d(x, k, s, p, count_include_pad=self.count_include_pad)
        if self.framewise:
            return y
        c, h, w = self.out_chw
        z = y.reshape(-1, self.t, c * h * w)
        outs = []
        for start, stop, step, count in self.windows:
            if self.kind == "max":
                # frame slice by frame slice with maximum (exact): XNNPACK delegates it, not an amax
                # over a dim (which ran on ExecuTorch's portable kernels, 46 times in S3D)
                acc = z[:, start:start + 1]
                for f in range(start + step, stop, step):
                    acc = torch.maximum(acc, z[:, f:f + 1])
            else:  # one sum: adding frame by frame would round differently from AvgPool3d
                acc = z[:, start:stop:step].sum(1, keepdim=True) / float(
                    self.kernel[0] if self.count_include_pad else count)
            outs.append(acc)
        return torch.cat(outs, 1).reshape(-1, c, h, w)

    def extra_repr(self) -> str:
        return (f"kind={self.kind!r}, kernel={self.kernel}, stride={self.stride}, padding={self.padding}, "
                f"t={self.t}")
