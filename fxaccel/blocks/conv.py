"""``Conv3dBnAct``: every Conv3d (+ BatchNorm3d) (+ activation) a video model contains.

Original form: ``act(bn(conv(x)))`` with the user's own ``nn.Conv3d`` / ``nn.BatchNorm3d``, so it
trains and checkpoints exactly like the vanilla model. Deploy forms (BN folded into the weights with
``torch.nn.utils.fusion.fuse_conv_bn_weights``, activation fused into the same module):

* ``x86`` (oneDNN has a fast conv3d): :class:`Conv3dAct`, one Conv3d, then the activation.
* ``mobile_cpu`` (no 5-D conv at all): a :class:`~fxaccel.blocks.layout.TimeFolded` whose inner
  module works on frames folded into the batch, ``(N*T, C, H, W)``:

  - ``kT == 1`` (pointwise, spatial ``1 x k x k``): :class:`FramewiseConv2d`, one conv2d over all
    frames (a temporal stride keeps every s-th frame first).
  - ``kT > 1``, form ``"taps"`` (default): :class:`TemporalTaps`. With ``W_k`` the weight of
    temporal tap ``k`` and ``z_k = conv2d(frames, W_k)`` computed for all frames in one call,
    ``y[t] = sum_k z_k[t*s + k*d - p]`` (zero where that frame is padding). So ``kT`` conv2d calls,
    independent of ``T`` (the reference makes ``T*kT`` calls on ``select``-ed frames), plus
    slices and adds along the folded batch viewed as ``(N, T, C*H*W)``, which stay cheap.
  - ``kT x 1 x 1``, form ``"time_as_height"``: :class:`TimeAsHeight`, one conv2d with a
    ``(kT, 1)`` kernel over the ``(N, C, T, H*W)`` view: a single call, but a transpose in and
    out of the folded layout.

  ``"taps"`` is the default because it never leaves the folded layout: DESIGN.md's profile of the
  reference shows layout churn (reshapes, transposes), not arithmetic, dominating mobile run time,
  and ``"time_as_height"`` pays two transposes per block. Which is faster on a device is for a
  measurement on an idle machine to decide (``deploy(..., form=...)``, :data:`DEFAULT_TEMPORAL_FORM`).

Non-zero padding modes become an explicit ``F.pad`` (spatially) or a gather of frames by slices
(temporally: reflect / replicate / circular padding copies frames, so tap outputs are gathered from
the frames the padding would copy). A temporal tap that would only ever see padding frames is
dropped (its contribution is exactly zero), so short clips make fewer than ``kT`` calls.

Stability: public (``Conv3dBnAct``, ``DEFAULT_TEMPORAL_FORM``, ``TEMPORAL_FORMS``,
``padding_per_side``); the deploy
modules (``Conv3dAct``, ``FramewiseConv2d``, ``TemporalTaps``, ``TimeAsHeight``) are public for
``isinstance`` checks by later passes, but are built only by :meth:`Conv3dBnAct.deploy`.

>>> import torch
>>> from fxaccel.blocks.conv import Conv3dBnAct
>>> from fxaccel.targets import get_target
>>> block = Conv3dBnAct(4, 8, (3, 3, 3), padding=1).eval()
>>> x = torch.randn(2, 4, 5, 7, 7)
>>> mobile = block.deploy(x.shape, get_target("mobile_cpu"))
>>> bool((mobile(x) - block(x)).abs().max() < 1e-5)
True
>>> len(mobile.inner.taps)  # kT conv2d calls, whatever T is
3
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..targets import Target, get_target
from .act import Activation, activation_name, in_place, make_activation
from .base import EfficientBlock
from .layout import TimeFolded, checked, checked_folded

TEMPORAL_FORMS = ("taps", "time_as_height")
X86_FORMS = ("linear", "frames2d", "taps", "conv3d")
DEFAULT_TEMPORAL_FORM = "taps"

_Pads = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


# --------------------------------------------------------------------------- shape checks
# Leaf functions for torch.fx: the checks run in eager and under torch.export, and appear as one
# call node (returning x, so dead-code elimination keeps them) in a symbolic trace.
torch.fx.wrap("checked")  # layout.checked and checked_folded, wrapped here where they are called
torch.fx.wrap("checked_folded")


# --------------------------------------------------------------------------- deploy modules
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


class _Pad(nn.Module):
    """An explicit ``F.pad`` (what ``padding_mode != 'zeros'`` or asymmetric padding needs)."""

    def __init__(self, pads: Sequence[int], mode: str):
        super().__init__()
        self.pads = tuple(int(p) for p in pads)
        self.mode = "constant" if mode == "zeros" else mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads, mode=self.mode)

    def extra_repr(self) -> str:
        return f"pads={self.pads}, mode={self.mode!r}"


class Conv3dAct(nn.Module):
    """x86 deploy form: shape check, optional explicit pad, Conv3d (BN folded in), activation."""

    def __init__(self, in_shape: Sequence[int], pad: _Pad | None, conv: nn.Conv3d, act: nn.Module):
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

    def __init__(self, in_shape: Sequence[int], t_stride: int, out_shape: Sequence[int], pad: _Pad | None,
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

    def __init__(self, in_shape: Sequence[int], pad: _Pad | None, weight: torch.Tensor, bias: torch.Tensor | None,
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


def is_temporal_depthwise(conv: nn.Conv3d) -> bool:
    """A per-channel ``kT x 1 x 1`` conv (one filter per channel) that leaves space alone."""
    return (conv.kernel_size[1:] == (1, 1) and conv.groups == conv.in_channels == conv.out_channels
            and conv.stride[1:] == (1, 1) and padding_per_side(conv)[1:] == ((0, 0), (0, 0)))


def is_framewise(conv: nn.Conv3d) -> bool:
    """A ``1 x kh x kw`` conv that never mixes frames (no temporal padding): a conv2d per frame."""
    return conv.kernel_size[0] == 1 and padding_per_side(conv)[0] == (0, 0)


def is_pointwise(conv: nn.Conv3d) -> bool:
    """A 1x1x1 conv without padding or groups: a per-position matrix product over channels."""
    return (tuple(conv.kernel_size) == (1, 1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and padding_per_side(conv) == ((0, 0),) * 3)


class FramewiseConv2d(nn.Module):
    """Folded-layout form of a ``kT == 1`` conv: the same conv2d on every frame.

    A temporal stride keeps every ``t_stride``-th frame of each clip before the conv (viewing the
    folded batch as ``(N, T, C*H*W)``), so no work is spent on dropped frames.
    """

    def __init__(self, t: int, chw: Sequence[int], t_stride: int, pad: _Pad | None,
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

    def __init__(self, t: int, chw: Sequence[int], out_chw: Sequence[int], pad: _Pad | None,
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

    def __init__(self, t: int, chw: Sequence[int], out_c: int, pad: _Pad | None, conv: nn.Conv2d,
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


# --------------------------------------------------------------------------- the block
class Conv3dBnAct(EfficientBlock):
    """``act(bn(conv(x)))``: a Conv3d, an optional BatchNorm3d and an activation block.

    Submodules keep the vanilla names and objects: ``conv`` (``nn.Conv3d``), ``bn``
    (``nn.BatchNorm3d`` or ``None``), ``act`` (an :class:`~fxaccel.blocks.act.Activation`).
    ``activation`` is a name accepted by :func:`~fxaccel.blocks.act.make_activation`.

    >>> import torch
    >>> block = Conv3dBnAct(3, 6, (1, 3, 3), padding=(0, 1, 1), activation="swish")
    >>> block(torch.randn(1, 3, 4, 8, 8)).shape
    torch.Size([1, 6, 4, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = False, padding_mode: str = "zeros",
                 norm: bool = True, activation: str | None = "relu", eps: float = 1e-5,
                 momentum: float | None = 0.1):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride, padding, dilation,
                              groups, bias, padding_mode)
        self.register_module("bn", nn.BatchNorm3d(out_channels, eps, momentum) if norm else None)
        self.act = make_activation(activation)

    @classmethod
    def from_modules(cls, conv: nn.Conv3d, bn: nn.BatchNorm3d | None = None,
                     act: nn.Module | None = None) -> "Conv3dBnAct":
        """A block around the given module objects (not copies: the caller's parameters move in).

        ``act`` may be an activation block (kept as is), a plain ``nn.ReLU`` / ``nn.SiLU`` /
        ``nn.Hardswish`` / ``nn.Identity`` (replaced by the parameter-free equivalent block) or
        ``None`` (identity). Mismatched or unsupported modules raise ``TypeError`` / ``ValueError``.

        >>> conv, bn = torch.nn.Conv3d(2, 4, 3), torch.nn.BatchNorm3d(4)
        >>> Conv3dBnAct.from_modules(conv, bn, torch.nn.ReLU()).conv is conv
        True
        """
        if type(conv) is not nn.Conv3d:
            raise TypeError(f"Conv3dBnAct needs an nn.Conv3d, got {type(conv).__name__} "
                            f"(subclasses may compute something else)")
        if bn is not None:
            if type(bn) is not nn.BatchNorm3d:
                raise TypeError(f"Conv3dBnAct needs an nn.BatchNorm3d or None, got {type(bn).__name__}")
            if bn.num_features != conv.out_channels:
                raise ValueError(f"BatchNorm3d has {bn.num_features} features but the conv has "
                                 f"{conv.out_channels} output channels")
        if act is None or isinstance(act, Activation):
            block_act = act if act is not None else make_activation("identity")
        else:
            name = activation_name(act)
            if name is None:
                raise ValueError(f"unsupported activation {type(act).__name__}; supported: nn.ReLU, "
                                 f"nn.SiLU, nn.Hardswish, nn.Identity and fxaccel activation blocks")
            block_act = make_activation(name)
        block = cls.__new__(cls)
        EfficientBlock.__init__(block)
        block.conv = conv
        block.register_module("bn", bn)
        block.act = block_act
        return block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    # ------------------------------------------------------------------ deploy
    def deploy(self, input_shape: Sequence[int], target: str | Target, *,
               form: str | None = None) -> nn.Module:
        """A new module computing this block in eval semantics for inputs of ``input_shape``.

        BN is folded with its running statistics (whatever ``self.training`` is). ``form`` picks
        among exact alternatives: on ``mobile_cpu`` the form of a ``kT > 1`` conv, ``"taps"`` or
        ``"time_as_height"`` (``kT x 1 x 1`` convs with spatial stride 1 and no spatial padding
        only), default :data:`DEFAULT_TEMPORAL_FORM`; on ``x86`` ``"linear"`` (the default for a
        pointwise conv, :class:`PointwiseLinear`), ``"frames2d"`` (the default for another
        ``1 x kh x kw`` conv, :class:`FramesConv2d`), ``"taps"`` (a depthwise ``kT x 1 x 1``
        conv as :class:`FrameTaps`, never the default) or ``"conv3d"`` (:class:`Conv3dAct`, also
        what a form that does not apply to this conv gives).
        """
        target = get_target(target)
        forms = X86_FORMS if target.conv3d else TEMPORAL_FORMS
        if form is not None and form not in forms:
            raise ValueError(f"unknown form {form!r} for target {target.name!r}; known forms: {', '.join(forms)}")
        shape = self._deploy_shape(input_shape)
        weight, bias = self._folded_weights()
        if target.conv3d:
            return self._deploy_conv3d(shape, weight, bias, form)
        form = DEFAULT_TEMPORAL_FORM if form is None else form
        kt = self.conv.kernel_size[0]
        if kt == 1 and padding_per_side(self.conv)[0] == (0, 0):
            inner = self._deploy_framewise(shape, weight, bias)
        elif form == "time_as_height":
            inner = self._deploy_time_as_height(shape, weight, bias)
        else:
            inner = self._deploy_taps(shape, weight, bias)
        return TimeFolded(inner, shape, self._out_shape(shape)[2])

    def _deploy_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 5 or shape[1] != self.conv.in_channels:
            raise ValueError(f"Conv3dBnAct.deploy needs a 5-D input shape (N, {self.conv.in_channels}, "
                             f"T, H, W), got {shape}")
        if any(d < 1 for d in self._out_shape(shape)[2:]):
            raise ValueError(f"input shape {shape} is too small for the conv {self.conv}")
        return shape

    def _out_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        c = self.conv
        dims = [(n + lo + hi - d * (k - 1) - 1) // s + 1
                for n, (lo, hi), k, s, d in zip(shape[2:], padding_per_side(c), c.kernel_size, c.stride, c.dilation)]
        return (shape[0], c.out_channels, *dims)

    def _folded_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Conv weight and bias with BN's eval-mode affine map folded in (detached copies)."""
        conv, bn = self.conv, self.bn
        if bn is None:
            return conv.weight.detach().clone(), None if conv.bias is None else conv.bias.detach().clone()
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError("cannot deploy Conv3dBnAct: its BatchNorm3d has no running statistics "
                             "(track_running_stats=False), so eval-mode BN depends on the batch and "
                             "cannot be folded; train with running stats or keep the block undeployed")
        w, b = fuse_conv_bn_weights(
            conv.weight.detach(), None if conv.bias is None else conv.bias.detach(),
            bn.running_mean, bn.running_var, bn.eps,
            None if bn.weight is None else bn.weight.detach(),
            None if bn.bias is None else bn.bias.detach(),
        )
        return w.detach(), b.detach()

    def _deploy_conv3d(self, shape, weight, bias, form: str | None = None) -> nn.Module:
        c = self.conv
        if form in (None, "linear") and is_pointwise(c):
            linear = nn.Linear(c.in_channels, c.out_channels, bias=bias is not None)
            with torch.no_grad():
                linear.weight.copy_(weight.reshape(c.out_channels, c.in_channels))
                if bias is not None:
                    linear.bias.copy_(bias)
            return PointwiseLinear(shape, c.stride, linear, in_place(self.act.plain()))
        if form in (None, "frames2d") and is_framewise(c) and not is_pointwise(c):
            pad, padding = self._spatial_pad()
            conv = _new_conv(nn.Conv2d, weight[:, :, 0], bias, c.kernel_size[1:], c.stride[1:], padding,
                             c.dilation[1:], c.groups)
            return FramesConv2d(shape, c.stride[0], self._out_shape(shape), pad, conv, in_place(self.act.plain()))
        pads = padding_per_side(c)
        if form == "taps" and is_temporal_depthwise(c):
            pad = None if pads[0] == (0, 0) else _Pad(_torch_pad_order(pads), c.padding_mode)
            return FrameTaps(shape, pad, weight, bias, c.stride[0], c.dilation[0], self._out_shape(shape)[2],
                             in_place(self.act.plain()))
        inline = c.padding_mode == "zeros" and all(lo == hi for lo, hi in pads)
        pad = None if inline else _Pad(_torch_pad_order(pads), c.padding_mode)
        conv = _new_conv(nn.Conv3d, weight, bias, c.kernel_size, c.stride,
                         tuple(lo for lo, _ in pads) if inline else 0, c.dilation, c.groups)
        return Conv3dAct(shape, pad, conv, in_place(self.act.plain()))

    def _spatial_pad(self) -> tuple[_Pad | None, tuple[int, int]]:
        """Spatial padding as conv2d padding when it can be, else as an explicit pad."""
        c = self.conv
        (hl, hr), (wl, wr) = padding_per_side(c)[1:]
        if c.padding_mode == "zeros" and hl == hr and wl == wr:
            return None, (hl, wl)
        if hl == hr == wl == wr == 0:
            return None, (0, 0)
        return _Pad((wl, wr, hl, hr), c.padding_mode), (0, 0)

    def _deploy_framewise(self, shape, weight, bias) -> nn.Module:
        c = self.conv
        pad, padding = self._spatial_pad()
        conv = _new_conv(nn.Conv2d, weight[:, :, 0], bias, c.kernel_size[1:], c.stride[1:], padding,
                         c.dilation[1:], c.groups)
        return FramewiseConv2d(shape[2], (shape[1], *shape[3:]), c.stride[0], pad, conv, self.act.plain())

    def _deploy_taps(self, shape, weight, bias) -> nn.Module:
        c = self.conv
        t, t_out = shape[2], self._out_shape(shape)[2]
        (t_lo, _), mode = padding_per_side(c)[0], c.padding_mode
        plans = {k: _tap_plan(k * c.dilation[0] - t_lo, t, t_out, c.stride[0], mode)
                 for k in range(c.kernel_size[0])}
        live = [k for k, plan in plans.items() if plan is not None] or [0]
        if plans[live[0]] is None:  # every tap sees only padding: the output is the bias alone
            plans[live[0]] = (t_out, ((0, 0, 1),), 0)
        bias_tap = next((k for k in live if plans[k][0] == plans[k][2] == 0), None) if bias is not None else None
        pad, padding = self._spatial_pad()
        taps = [_new_conv(nn.Conv2d, weight[:, :, k], bias if k == bias_tap else None, c.kernel_size[1:],
                          c.stride[1:], padding, c.dilation[1:], c.groups) for k in live]
        extra_bias = bias if bias is not None and bias_tap is None else None
        out = self._out_shape(shape)
        return TemporalTaps(t, (shape[1], *shape[3:]), (out[1], *out[3:]), pad, taps,
                            [plans[k] for k in live], extra_bias, self.act.plain())

    def _deploy_time_as_height(self, shape, weight, bias) -> nn.Module:
        c = self.conv
        pads = padding_per_side(c)
        if c.kernel_size[1:] != (1, 1) or c.stride[1:] != (1, 1) or pads[1:] != ((0, 0), (0, 0)):
            raise ValueError(
                f"form 'time_as_height' needs a kT x 1 x 1 conv with spatial stride 1 and no spatial "
                f"padding (it flattens H*W), got {c}; use form='taps'")
        (lo, hi), mode = pads[0], c.padding_mode
        inline = mode == "zeros" and lo == hi
        pad = None if inline else _Pad((0, 0, lo, hi), mode)
        conv = _new_conv(nn.Conv2d, weight[..., 0], bias, (c.kernel_size[0], 1), (c.stride[0], 1),
                         (lo, 0) if inline else 0, (c.dilation[0], 1), c.groups)
        return TimeAsHeight(shape[2], (shape[1], *shape[3:]), c.out_channels, pad, conv, self.act.plain())


# --------------------------------------------------------------------------- helpers
def padding_per_side(conv: nn.Conv3d) -> _Pads:
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


def _torch_pad_order(pads: _Pads) -> tuple[int, ...]:
    """``F.pad`` order: last dimension first."""
    return tuple(p for lo_hi in reversed(pads) for p in lo_hi)


def _new_conv(cls, weight, bias, kernel_size, stride, padding, dilation, groups) -> nn.Module:
    """A conv module holding ``weight`` / ``bias`` as its own constant parameters."""
    conv = torch.nn.utils.skip_init(
        cls, weight.shape[1] * groups, weight.shape[0], tuple(kernel_size), tuple(stride), padding,
        tuple(dilation), groups, bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv


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
