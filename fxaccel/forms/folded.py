"""Folded-layout deploy forms of a Conv3d (+ folded BN) (+ activation), for targets without a
3-D convolution (``mobile_cpu``): each works on frames folded into the batch, ``(N*T, C, H, W)``
(:mod:`fxaccel.blocks.layout`), and runs only 4-D ops.

* ``kT == 1`` (pointwise, spatial ``1 x k x k``): :class:`FramewiseConv2d`, one conv2d over all
  frames (a temporal stride keeps every s-th frame first).
* ``kT > 1``, form ``"taps"`` (default): :class:`TemporalTaps`. With ``W_k`` the weight of
  temporal tap ``k`` and ``z_k = conv2d(frames, W_k)`` computed for all frames in one call,
  ``y[t] = sum_k z_k[t*s + k*d - p]`` (zero where that frame is padding). So ``kT`` conv2d calls,
  independent of ``T`` (the reference makes ``T*kT`` calls on ``select``-ed frames), plus
  slices and adds along the folded batch viewed as ``(N, T, C*H*W)``, which stay cheap.
* ``kT x 1 x 1``, form ``"time_as_height"``: :class:`TimeAsHeight`, one conv2d with a
  ``(kT, 1)`` kernel over the ``(N, C, T, H*W)`` view: a single call, but a transpose in and
  out of the folded layout.

``"taps"`` is the default because it never leaves the folded layout: DESIGN.md's profile of the
reference shows layout churn (reshapes, transposes), not arithmetic, dominating mobile run time,
and ``"time_as_height"`` pays two transposes per block. Which is faster on a device is for a
measurement to decide (``deploy(..., tune=True)``).

Non-zero padding modes become an explicit ``F.pad`` (spatially) or a gather of frames by slices
(temporally: reflect / replicate / circular padding copies frames, so tap outputs are gathered from
the frames the padding would copy). A temporal tap that would only ever see padding frames is
dropped (its contribution is exactly zero), so short clips make fewer than ``kT`` calls.

Stability: public for ``isinstance`` checks; built only through the registry (:data:`fxaccel.forms.MOBILE_CPU`).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from .common import ConvLayer, Pad, frames_conv2d, new_conv, padding_per_side, spatial_pad
from .guards import checked_folded

torch.fx.wrap("checked_folded")  # one call node under symbolic tracing (see fxaccel.forms.guards)


def _frames(z: torch.Tensor, t: int, f: int, start: int, count: int, step: int) -> torch.Tensor:
    """Frames ``start, start+step, ...`` (``count`` of them) of ``z``, shaped ``(N, t, f)``.

    ``t`` and ``f`` are passed as constants (not read from ``z.shape``) so that the Python
    branches below stay static under ``torch.fx.symbolic_trace``.

    Written with step-1 slices only: XNNPACK's slice has no step, so ``z[:, a:b:step]`` would stay
    outside the delegate. Group the frames in rows of ``step`` (zero-padding the last row when the
    clip ends inside it) and keep the first of each row.
    """
    if count == 1 or step == 1:
        return z if (start, count) == (0, t) else z[:, start:start + count]
    stop = start + count * step
    g = z[:, start:min(stop, t)] if (start, stop) != (0, t) else z
    if stop > t:
        g = F.pad(g, (0, 0, 0, stop - t))
    return g.reshape(-1, count, step, f)[:, :, 0:1].reshape(-1, count, f)



class FramewiseConv2d(nn.Module):
    """Folded-layout form of a ``kT == 1`` conv: the same conv2d on every frame.

    A temporal stride keeps every ``t_stride``-th frame of each clip before the conv (viewing the
    folded batch as ``(N, T, C*H*W)``), so no work is spent on dropped frames.
    """

    def __init__(self, t: int, chw: Sequence[int], t_stride: int, pad: Pad | None,
                 conv: nn.Conv2d, act: nn.Module):
        super().__init__()
        self.t, self.chw, self.t_stride = int(t), tuple(int(s) for s in chw), int(t_stride)
        self.pad = pad
        self.conv = conv
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked_folded("FramewiseConv2d", x, self.t, self.chw)
        if self.t_stride != 1:
            c, h, w = self.chw
            t_out = len(range(0, self.t, self.t_stride))
            x = _frames(x.reshape(-1, self.t, c * h * w), self.t, c * h * w, 0, t_out, self.t_stride)
            x = x.reshape(-1, c, h, w)
        if self.pad is not None:
            x = self.pad(x)
        return self.act(self.conv(x))

    def extra_repr(self) -> str:
        return f"t={self.t}, chw={self.chw}, t_stride={self.t_stride}"


class TemporalTaps(nn.Module):
    """Folded-layout form of a ``kT > 1`` conv: one conv2d per temporal tap, shifted and summed.

    ``taps[i]`` holds tap ``k``'s weight as a constant parameter (XNNPACK refuses a weight sliced
    inside ``forward``) and is applied to all ``N*T`` frames at once. ``plans[i] = (lo, runs, hi)``
    says which of its output frames feed output frames ``0..T_out-1``: ``lo`` / ``hi`` zero frames
    (zero temporal padding) around slices ``(start, stop, step)`` of the ``(N, T, O*H'*W')`` view.
    The conv bias sits in a tap that sees no zero padding, else it is added once at the end.
    """

    def __init__(self, t: int, chw: Sequence[int], out_chw: Sequence[int], pad: Pad | None,
                 taps: Sequence[nn.Conv2d], plans: Sequence[tuple], bias: torch.Tensor | None,
                 act: nn.Module):
        super().__init__()
        self.t, self.chw, self.out_chw = int(t), tuple(chw), tuple(out_chw)
        self.pad = pad
        self.taps = nn.ModuleList(taps)
        self.plans = [(int(lo), tuple(tuple(r) for r in runs), int(hi)) for lo, runs, hi in plans]
        self.bias = None if bias is None else nn.Parameter(bias.reshape(-1, 1, 1))
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked_folded("TemporalTaps", x, self.t, self.chw)
        if self.pad is not None:
            x = self.pad(x)
        o, h, w = self.out_chw
        acc = None
        for conv, (lo, runs, hi) in zip(self.taps, self.plans):
            z = conv(x).reshape(-1, self.t, o * h * w)
            parts = [_frames(z, self.t, o * h * w, a, len(range(a, b, s)), s) for a, b, s in runs]
            g = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
            if lo or hi:
                g = F.pad(g, (0, 0, lo, hi))
            acc = g if acc is None else acc + g
        y = acc.reshape(-1, o, h, w)
        if self.bias is not None:
            y = y + self.bias
        return self.act(y)

    def extra_repr(self) -> str:
        return f"t={self.t}, chw={self.chw}, out_chw={self.out_chw}, plans={self.plans}"


class TimeAsHeight(nn.Module):
    """Folded-layout form of a ``kT x 1 x 1`` conv: one conv2d, ``(kT, 1)`` kernel, on ``(N, C, T, H*W)``."""

    def __init__(self, t: int, chw: Sequence[int], out_c: int, pad: Pad | None, conv: nn.Conv2d,
                 act: nn.Module):
        super().__init__()
        self.t, self.chw, self.out_c = int(t), tuple(chw), int(out_c)
        self.pad = pad
        self.conv = conv
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked_folded("TimeAsHeight", x, self.t, self.chw)
        c, h, w = self.chw
        x = x.reshape(-1, self.t, c, h * w).transpose(1, 2)
        if self.pad is not None:
            x = self.pad(x)
        x = self.act(self.conv(x))
        return x.transpose(1, 2).reshape(-1, self.out_c, h, w)

    def extra_repr(self) -> str:
        return f"t={self.t}, chw={self.chw}"


# --------------------------------------------------------------------------- builders
def frames2d(layer: ConvLayer) -> FramewiseConv2d:
    c, shape = layer.conv, layer.in_shape
    return FramewiseConv2d(shape[2], (shape[1], *shape[3:]), c.stride[0], spatial_pad(c)[0], frames_conv2d(layer),
                           layer.act)


def taps(layer: ConvLayer) -> TemporalTaps:
    c, shape, out = layer.conv, layer.in_shape, layer.out_shape
    t, t_out = shape[2], out[2]
    (t_lo, _), mode = padding_per_side(c)[0], c.padding_mode
    plans = {k: _tap_plan(k * c.dilation[0] - t_lo, t, t_out, c.stride[0], mode) for k in range(c.kernel_size[0])}
    live = [k for k, plan in plans.items() if plan is not None] or [0]
    if plans[live[0]] is None:  # every tap sees only padding: the output is the bias alone
        plans[live[0]] = (t_out, ((0, 0, 1),), 0)
    bias = layer.bias
    bias_tap = next((k for k in live if plans[k][0] == plans[k][2] == 0), None) if bias is not None else None
    pad, padding = spatial_pad(c)
    convs = [new_conv(nn.Conv2d, layer.weight[:, :, k], bias if k == bias_tap else None, c.kernel_size[1:],
                      c.stride[1:], padding, c.dilation[1:], c.groups) for k in live]
    extra_bias = bias if bias is not None and bias_tap is None else None
    return TemporalTaps(t, (shape[1], *shape[3:]), (out[1], *out[3:]), pad, convs, [plans[k] for k in live],
                        extra_bias, layer.act)


def time_as_height(layer: ConvLayer) -> TimeAsHeight:
    c, shape = layer.conv, layer.in_shape
    (lo, hi), mode = padding_per_side(c)[0], c.padding_mode
    inline = mode == "zeros" and lo == hi
    pad = None if inline else Pad((0, 0, lo, hi), mode)
    conv = new_conv(nn.Conv2d, layer.weight[..., 0], layer.bias, (c.kernel_size[0], 1), (c.stride[0], 1),
                    (lo, 0) if inline else 0, (c.dilation[0], 1), c.groups)
    return TimeAsHeight(shape[2], (shape[1], *shape[3:]), c.out_channels, pad, conv, layer.act)


def _source_frame(t: int, n: int, mode: str) -> int | None:
    """Which real frame padded frame ``t`` (``0 <= t < n`` are real) copies; ``None``: a zero frame."""
    if 0 <= t < n:
        return t
    if mode == "zeros":
        return None
    if mode == "reflect":
        return -t if t < 0 else 2 * (n - 1) - t
    if mode == "replicate":
        return min(max(t, 0), n - 1)
    if mode == "circular":
        return t % n
    raise ValueError(f"unsupported padding_mode {mode!r}")


def _tap_plan(offset: int, t: int, t_out: int, stride: int, mode: str):
    """How tap outputs feed output frames: output ``o`` reads frame ``o*stride + offset``.

    Returns ``(lo, runs, hi)`` (``lo`` / ``hi`` zero frames around slices ``(start, stop, step)``
    of the real frames) or ``None`` when the tap reads only zero padding.
    """
    src = [_source_frame(o * stride + offset, t, mode) for o in range(t_out)]
    lo = next((i for i, s in enumerate(src) if s is not None), t_out)
    if lo == t_out:
        return None
    hi = next(i for i, s in enumerate(reversed(src)) if s is not None)
    mid = src[lo:t_out - hi]
    runs, start, prev = [], mid[0], mid[0]
    for s in mid[1:]:
        if s - prev != stride:
            runs.append((start, prev + 1, stride))
            start = s
        prev = s
    runs.append((start, prev + 1, stride))
    return lo, tuple(runs), hi
