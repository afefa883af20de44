"""x86 deploy forms of a Conv3d (+ folded BN) (+ activation): oneDNN has a fast conv3d, so these
keep the 5-D interface and the network's ``channels_last_3d`` memory format, and only replace a
conv where another spelling is measured faster (``docs/bench_deploy.md``, ``fxaccel/choices.py``).

Each form's builder takes a :class:`~fxaccel.forms.common.ConvLayer`; which form a layer gets is
the target's form registry (:data:`fxaccel.forms.X86`).

Stability: public for ``isinstance`` checks; built only through the registry.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.fx
from torch import nn

from .common import ConvLayer, Pad, frames_conv2d, in_place, new_conv, padding_per_side, spatial_pad, torch_pad_order
from .guards import check_shape, checked

# Leaf functions for torch.fx: one call node (returning x, so dead-code elimination keeps it).
torch.fx.wrap("checked")
torch.fx.wrap("check_shape")


class Conv3dAct(nn.Module):
    """x86 deploy form: shape check, optional explicit pad, Conv3d (BN folded in), activation."""

    def __init__(self, in_shape: Sequence[int], pad: Pad | None, conv: nn.Conv3d, act: nn.Module):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.pad = pad
        self.conv = conv
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked("Conv3dAct", x, self.in_shape)
        if self.pad is not None:
            x = self.pad(x)
        return self.act(self.conv(x))


class PointwiseLinear(nn.Module):
    """x86 deploy form of a ``1 x 1 x 1`` conv (any stride, no padding, ``groups == 1``): a Linear
    over the channels of the ``(N, T, H, W, C)`` view, then the activation, viewed back as 5-D.

    Why: x86 deploy runs the network in ``channels_last_3d``, where that view is free, and
    ``F.linear`` is one GEMM. A 1x1x1 Conv3d at batch 1 falls to PyTorch's slow non-oneDNN
    kernel (im2col copies + GEMM); against a channels-last conv3d (oneDNN) it is faster on 32 of
    the 49 zoo X3D-XS/S/M layers (0.7-5.8x its speed; ``fxaccel/choices.py``). A stride keeps
    every s-th position first (one copy). Exact for any memory format; without channels-last the
    view costs a copy.
    """

    def __init__(self, in_shape: Sequence[int], stride: Sequence[int], linear: nn.Linear, act: nn.Module):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.stride = tuple(int(s) for s in stride)
        self.linear = linear
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked("PointwiseLinear", x, self.in_shape)
        if self.stride != (1, 1, 1):
            st, sh, sw = self.stride
            # one copy, straight into the layout whose (N, T, H, W, C) view the GEMM reads as is
            x = x[:, :, ::st, ::sh, ::sw].contiguous(memory_format=torch.channels_last_3d)
        return self.act(self.linear(x.permute(0, 2, 3, 4, 1))).permute(0, 4, 1, 2, 3)

    def extra_repr(self) -> str:
        return f"in_shape=(N, {', '.join(map(str, self.in_shape[1:]))}), stride={self.stride}"


class FramesConv2d(nn.Module):
    """x86 deploy form of a ``1 x kh x kw`` conv without temporal padding: one conv2d over the
    frames of the ``(N*T, C, H, W)`` view (temporal stride: every s-th frame first).

    Why: for a ``channels_last_3d`` input that view is free and is a channels-last 4-D tensor,
    and oneDNN's conv2d takes it directly, while a batch-1 Conv3d with few channels (an X3D stem:
    3 -> 24, 1x3x3) falls to PyTorch's slow non-oneDNN kernel: 2.7-4.0x faster on the X3D-XS/S/M
    stems (``fxaccel/choices.py``). The output view back is free as well, and stays channels-last
    whatever the input's layout, so one such layer never drops the network out of it.
    """

    def __init__(self, in_shape: Sequence[int], t_stride: int, out_shape: Sequence[int], pad: Pad | None,
                 conv: nn.Conv2d, act: nn.Module):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.out_shape = tuple(int(s) for s in out_shape)
        self.t_stride = int(t_stride)
        self.pad = pad
        self.conv = conv
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked("FramesConv2d", x, self.in_shape)
        _, c, _, h, w = self.in_shape
        _, o, t, ho, wo = self.out_shape
        x = x.permute(0, 2, 3, 4, 1)  # (N, T, H, W, C): the storage order of channels_last_3d
        if self.t_stride != 1:
            x = x[:, ::self.t_stride]
        if c == 1:
            # one channel: a tensor that is both NCHW- and channels-last-contiguous sends torch 2.13's
            # oneDNN conv2d down a path that is wrong for batch > 1 with a width stride (measured:
            # 1x3x3 stride (1, 2) on (4, 1, 4, 3) gives other values, sometimes uninitialised memory);
            # an NCHW-only view takes the right one, and one channel has no layout to keep anyway
            x = x.reshape(-1, 1, h, w)
        else:
            # (N*T, C, H, W) in channels-last 4-D: a view, or one copy that lands in channels-last
            x = x.reshape(-1, h, w, c).permute(0, 3, 1, 2)
        if self.pad is not None:
            x = self.pad(x)
        y = self.act(self.conv(x))
        return y.permute(0, 2, 3, 1).reshape(-1, t, ho, wo, o).permute(0, 4, 1, 2, 3)

    def extra_repr(self) -> str:
        return f"in_shape=(N, {', '.join(map(str, self.in_shape[1:]))}), t_stride={self.t_stride}"


class FrameTaps(nn.Module):
    """x86 deploy form of a depthwise ``kT x 1 x 1`` conv: ``kT`` multiply-adds of whole frame
    slices, ``y = b + sum_k w_k * x[:, :, k*d : ... : s]``, with no convolution call.

    Why: PyTorch runs a batch-1, unstrided conv3d whose kernel is ``1 x 1`` in space on oneDNN
    only with more than one thread; with one it falls to its slow per-group kernel (the X3D-XS
    stem's 5x1x1 conv: 4.3 ms, as taps 1.5 ms; X3D-S: 36 ms vs 4.7 ms), whose output is also in
    another memory format, which breaks ``torch.compile``'s stride checks. Slices along ``T`` of a
    channels_last_3d tensor are contiguous blocks, so each tap is one streaming pass.
    """

    def __init__(self, in_shape: Sequence[int], pad: Pad | None, weight: torch.Tensor, bias: torch.Tensor | None,
                 t_stride: int, t_dilation: int, t_out: int, act: nn.Module):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.pad = pad
        c, kt = weight.shape[0], weight.shape[2]
        # one (1, C, 1, 1, 1) weight per tap, as constants (no slicing in forward)
        self.taps = nn.ParameterList(nn.Parameter(weight[:, 0, k].reshape(1, c, 1, 1, 1).clone())
                                     for k in range(kt))
        self.bias = None if bias is None else nn.Parameter(bias.reshape(1, c, 1, 1, 1).clone())
        self.t_stride, self.t_dilation, self.t_out = int(t_stride), int(t_dilation), int(t_out)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked("FrameTaps", x, self.in_shape)
        if self.pad is not None:  # a circular or reflect pad returns NCDHW: back to the network's layout
            x = self.pad(x).contiguous(memory_format=torch.channels_last_3d)
        s, d, span = self.t_stride, self.t_dilation, self.t_stride * (self.t_out - 1) + 1
        first = x[:, :, 0:span:s]
        y = first * self.taps[0] if self.bias is None else torch.addcmul(self.bias, first, self.taps[0])
        for k in range(1, len(self.taps)):
            y = y.addcmul_(x[:, :, k * d:k * d + span:s], self.taps[k])
        return self.act(y)

    def extra_repr(self) -> str:
        return (f"in_shape=(N, {', '.join(map(str, self.in_shape[1:]))}), kT={len(self.taps)}, "
                f"t_stride={self.t_stride}, t_dilation={self.t_dilation}")


class PointwiseConv2dAct(nn.Module):
    """x86 alternative form of a 1x1x1, stride-1, unpadded conv (+ activation): one 1x1 conv2d
    on the ``(N, C, T*H, W)`` view (free for a contiguous input).

    Why a candidate: on this CPU a pointwise Conv3d can fall to a slow non-oneDNN kernel while
    the 2-D 1x1 conv takes oneDNN's fast path; which one wins is measured (``tune=True``).
    """

    def __init__(self, in_shape: Sequence[int], conv: nn.Conv2d, act: nn.Module):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.conv = conv
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_shape("PointwiseConv2dAct", x, self.in_shape)
        _, c, t, h, w = self.in_shape
        y = self.act(self.conv(x.reshape(-1, c, t * h, w)))
        return y.reshape(-1, self.conv.out_channels, t, h, w)

    def extra_repr(self) -> str:
        return f"in_shape=(N, {', '.join(map(str, self.in_shape[1:]))})"


# --------------------------------------------------------------------------- builders
def conv3d(layer: ConvLayer) -> Conv3dAct:
    """One Conv3d (padding inline when it is symmetric zeros, else an explicit pad)."""
    c, pads = layer.conv, padding_per_side(layer.conv)
    inline = c.padding_mode == "zeros" and all(lo == hi for lo, hi in pads)
    pad = None if inline else Pad(torch_pad_order(pads), c.padding_mode)
    conv = new_conv(nn.Conv3d, layer.weight, layer.bias, c.kernel_size, c.stride,
                    tuple(lo for lo, _ in pads) if inline else 0, c.dilation, c.groups)
    return Conv3dAct(layer.in_shape, pad, conv, in_place(layer.act))


def linear(layer: ConvLayer) -> PointwiseLinear:
    c = layer.conv
    lin = nn.Linear(c.in_channels, c.out_channels, bias=layer.bias is not None)
    with torch.no_grad():
        lin.weight.copy_(layer.weight.reshape(c.out_channels, c.in_channels))
        if layer.bias is not None:
            lin.bias.copy_(layer.bias)
    return PointwiseLinear(layer.in_shape, c.stride, lin, in_place(layer.act))


def frames2d(layer: ConvLayer) -> FramesConv2d:
    c = layer.conv
    return FramesConv2d(layer.in_shape, c.stride[0], layer.out_shape, spatial_pad(c)[0], frames_conv2d(layer),
                        in_place(layer.act))


def taps(layer: ConvLayer) -> FrameTaps:
    c, pads = layer.conv, padding_per_side(layer.conv)
    pad = None if pads[0] == (0, 0) else Pad(torch_pad_order(pads), c.padding_mode)
    return FrameTaps(layer.in_shape, pad, layer.weight, layer.bias, c.stride[0], c.dilation[0], layer.out_shape[2],
                     in_place(layer.act))


def conv2d(layer: ConvLayer) -> PointwiseConv2dAct:
    c = layer.conv
    conv = new_conv(nn.Conv2d, layer.weight.reshape(c.out_channels, -1, 1, 1), layer.bias, (1, 1), (1, 1), 0,
                    (1, 1), c.groups)
    return PointwiseConv2dAct(layer.in_shape, conv, in_place(layer.act))
