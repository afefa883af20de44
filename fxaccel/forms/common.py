"""What every conv deploy form is built from: the layer (:class:`ConvLayer`), padding, fresh
constant convs, and the shape predicates that say which forms apply to a conv.

Stability: public for form writers (names below); the forms themselves are in
:mod:`fxaccel.forms.folded` and :mod:`fxaccel.forms.x86`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Pads = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class ConvLayer:
    """A ``Conv3d`` (+ BN) (+ activation) to build a deploy form of, for one input shape.

    ``conv`` gives the hyper-parameters; ``weight`` / ``bias`` are detached copies with BN
    folded in (the form owns them); ``act`` is a fresh plain activation module.
    """

    conv: nn.Conv3d
    weight: torch.Tensor
    bias: torch.Tensor | None
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    act: nn.Module


class Pad(nn.Module):
    """An explicit ``F.pad`` (what ``padding_mode != 'zeros'`` or asymmetric padding needs)."""

    def __init__(self, pads: Sequence[int], mode: str):
        super().__init__()
        self.pads = tuple(int(p) for p in pads)
        self.mode = "constant" if mode == "zeros" else mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads, mode=self.mode)

    def extra_repr(self) -> str:
        return f"pads={self.pads}, mode={self.mode!r}"


def padding_per_side(conv: nn.Conv3d) -> Pads:
    """Per-dimension ``(before, after)`` padding of ``conv`` (T, H, W), resolving ``'same'``/``'valid'``.

    >>> padding_per_side(nn.Conv3d(1, 1, (2, 3, 1), padding="same"))
    ((0, 1), (1, 1), (0, 0))
    """
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return ((0, 0), (0, 0), (0, 0))
        # 'same', as torch computes it: the extra element of an odd total goes after.
        return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                     for k, d in zip(conv.kernel_size, conv.dilation))
    return tuple((p, p) for p in conv.padding)


def torch_pad_order(pads: Pads) -> tuple[int, ...]:
    """``F.pad`` order: last dimension first."""
    return tuple(p for lo_hi in reversed(pads) for p in lo_hi)


def spatial_pad(conv: nn.Conv3d) -> tuple[Pad | None, tuple[int, int]]:
    """Spatial padding of ``conv`` as conv2d padding when it can be, else as an explicit pad."""
    (hl, hr), (wl, wr) = padding_per_side(conv)[1:]
    if conv.padding_mode == "zeros" and hl == hr and wl == wr:
        return None, (hl, wl)
    if hl == hr == wl == wr == 0:
        return None, (0, 0)
    return Pad((wl, wr, hl, hr), conv.padding_mode), (0, 0)


def new_conv(cls, weight, bias, kernel_size, stride, padding, dilation, groups) -> nn.Module:
    """A conv module holding ``weight`` / ``bias`` as its own constant parameters."""
    conv = torch.nn.utils.skip_init(
        cls, weight.shape[1] * groups, weight.shape[0], tuple(kernel_size), tuple(stride), padding,
        tuple(dilation), groups, bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv


def frames_conv2d(layer: ConvLayer) -> nn.Module:
    """The conv2d every frame of a ``1 x kh x kw`` conv runs (spatial padding inline when it can be)."""
    c = layer.conv
    _, padding = spatial_pad(c)
    return new_conv(nn.Conv2d, layer.weight[:, :, 0], layer.bias, c.kernel_size[1:], c.stride[1:], padding,
                    c.dilation[1:], c.groups)


def in_place(act: nn.Module) -> nn.Module:
    """``act`` set to compute in place, where it is a ``torch.nn`` activation that can.

    For x86 deploy forms, which apply it to a fresh conv/linear/add output that nothing else reads:
    writing a new buffer costs a pass over memory. Any other module is returned unchanged.
    """
    if type(act).__module__ == "torch.nn.modules.activation" and hasattr(act, "inplace"):
        act.inplace = True
    return act


# --------------------------------------------------------------------------- which forms apply
def is_framewise(conv: nn.Conv3d) -> bool:
    """A ``1 x kh x kw`` conv that never mixes frames (no temporal padding): a conv2d per frame."""
    return conv.kernel_size[0] == 1 and padding_per_side(conv)[0] == (0, 0)


def is_pointwise(conv: nn.Conv3d) -> bool:
    """A 1x1x1 conv without padding or groups: a per-position matrix product over channels."""
    return (tuple(conv.kernel_size) == (1, 1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and padding_per_side(conv) == ((0, 0),) * 3)


def is_temporal_only(conv: nn.Conv3d) -> bool:
    """A ``kT x 1 x 1`` conv that leaves space alone (spatial stride 1, no spatial padding)."""
    return (conv.kernel_size[1:] == (1, 1) and conv.stride[1:] == (1, 1)
            and padding_per_side(conv)[1:] == ((0, 0), (0, 0)))


def is_temporal_depthwise(conv: nn.Conv3d) -> bool:
    """A per-channel ``kT x 1 x 1`` conv (one filter per channel) that leaves space alone."""
    return conv.groups == conv.in_channels == conv.out_channels and is_temporal_only(conv)
