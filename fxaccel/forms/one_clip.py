"""One-clip forms: a mobile deploy form specialised to a batch of exactly one clip.

ExecuTorch programs have static shapes and are almost always exported for one clip. With one clip
the time-folded batch ``(N*T, C, H, W)`` *is* the time axis, so :class:`TemporalTaps` can shift
and sum its taps along dim 0 of the 4-D tensor instead of on an ``(N, T, C*H*W)`` view. Why it
matters: XNNPACK runs convolutions in NHWC, and that view cost an NHWC -> NCHW transpose after
every tap and one back (X3D-XS: 147 transposes, 3.4 of 18.7 ms in an ETDump profile). And as a
2-D conv treats frames independently, a tap that reads one run of frames convolves just those
(``conv(x[a:b])``) instead of all of them before slicing.

Used by the ``one_clip_taps`` lower pass (fp32 ``.pte``) and by ``quantize(backend="xnnpack")``
(int8 ``.pte``), both on private copies. Stability: internal.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from ..inputs import clone_inputs
from .folded import TemporalTaps
from .guards import checked_folded


def _checked_one_clip(name: str, x: torch.Tensor, t: int, chw: tuple[int, int, int]) -> torch.Tensor:
    x = checked_folded(name, x, t, chw)
    if x.shape[0] != t:
        raise ValueError(f"{name}: this form was specialised to one clip of {t} frames (batch 1, as "
                         f"exported) but received {x.shape[0] // t} clips; use the deploy form itself "
                         f"for other batch sizes")
    return x


torch.fx.wrap("_checked_one_clip")


def _slices_output(conv: nn.Module, chw: Sequence[int], out_chw: Sequence[int]) -> bool:
    """Whether a tap should convolve every frame and slice its output rather than its input.

    A 2-D conv treats frames independently, so ``conv(x)[a:b] == conv(x[a:b])``; the slice is a
    copy in XNNPACK, so copy the smaller side. Only for depthwise convs, whose extra frames of
    compute cost less than the copy saved: a stride-2 depthwise tap's input is 4x its output
    (ExecuTorch, X3D-S shapes: 12.9 -> 8.3 ms on 54 channels at 80x80, 10.7 -> 5.6 ms on 108
    at 40x40); a full conv's extra frames cost more than that.
    """
    depthwise = isinstance(conv, nn.Conv2d) and conv.groups == conv.in_channels == conv.out_channels
    return depthwise and math.prod(out_chw) < math.prod(chw)


class OneClipTaps(nn.Module):
    """:class:`TemporalTaps` for one clip: same parameters and terms, summed along dim 0."""

    def __init__(self, taps: TemporalTaps):
        super().__init__()
        self.t, self.chw, self.plans = taps.t, taps.chw, taps.plans
        self.pad, self.taps, self.bias, self.act = taps.pad, taps.taps, taps.bias, taps.act
        self.slice_output = tuple(_slices_output(conv, taps.chw, taps.out_chw) for conv in taps.taps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _checked_one_clip("OneClipTaps", x, self.t, self.chw)
        if self.pad is not None:
            x = self.pad(x)
        acc = None
        for conv, (lo, runs, hi), slice_output in zip(self.taps, self.plans, self.slice_output):
            if len(runs) == 1:  # convolve only the frames this tap reads (or slice the smaller output)
                (a, b, _), = runs
                if (a, b) == (0, self.t):
                    g = conv(x)
                else:
                    g = conv(x)[a:b] if slice_output else conv(x[a:b])
            else:  # reflect / circular padding: several runs of one tap's output
                z = conv(x)
                g = torch.cat([z[a:b] for a, b, _ in runs], 0)
            if lo or hi:
                g = F.pad(g, (0, 0, 0, 0, 0, 0, lo, hi))
            acc = g if acc is None else acc + g
        if self.bias is not None:
            acc = acc + self.bias
        return self.act(acc)

    def extra_repr(self) -> str:
        return f"t={self.t}, chw={self.chw}, plans={self.plans}, slice_output={self.slice_output}"


def one_clip_form(taps: TemporalTaps) -> OneClipTaps | None:
    """``taps`` specialised to one clip; ``None`` when a tap skips frames (a temporal stride:
    XNNPACK's slice has no step, and the strided gather needs the 3-D view)."""
    if any(step != 1 and len(range(a, b, step)) > 1 for _, runs, _ in taps.plans for a, b, step in runs):
        return None
    return OneClipTaps(taps)


def specialise_one_clip(model: nn.Module, inputs: Sequence[torch.Tensor]) -> tuple[list[str], dict[str, str]]:
    """Swap, in place, every :class:`TemporalTaps` of ``model`` that ``inputs`` feed one clip.

    Which taps see one clip is read from a forward run on ``inputs`` (hooks, so nested forms count
    too). Returns the swapped module names and ``{name: why not}`` for the others.
    """
    seen: dict[str, bool] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, TemporalTaps):
            def hook(m, args, name=name):
                seen[name] = seen.get(name, True) and args[0].shape[0] == m.t
            hooks.append(mod.register_forward_pre_hook(hook))
    if not hooks:
        return [], {}
    try:
        with torch.no_grad():
            model(*clone_inputs(inputs))
    finally:
        for h in hooks:
            h.remove()
    swapped, skipped = [], {}
    for name, one_clip in seen.items():
        new = one_clip_form(model.get_submodule(name)) if one_clip else None
        if new is None:
            skipped[name] = ("temporal stride (XNNPACK's slice has no step)" if one_clip
                             else "more than one clip per batch")
            continue
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, new)
        swapped.append(name)
    return swapped, skipped
