"""``Conv3dBnAct``: every Conv3d (+ BatchNorm3d) (+ activation) a video model contains.

Original form: ``act(bn(conv(x)))`` with the user's own ``nn.Conv3d`` / ``nn.BatchNorm3d``, so it
trains and checkpoints exactly like the vanilla model. Deploy forms (BN folded into the weights with
``torch.nn.utils.fusion.fuse_conv_bn_weights``, activation fused into the same module) come from
the target's form registry (``Target.layers``, :mod:`fxaccel.forms`):

* ``x86`` (oneDNN has a fast conv3d): 5-D forms in :mod:`fxaccel.forms.x86` (one Conv3d, or a
  GEMM / conv2d / multiply-add spelling where one is measured faster).
* ``mobile_cpu`` (no 5-D conv at all): a :class:`~fxaccel.blocks.layout.TimeFolded` whose inner
  module works on frames folded into the batch, ``(N*T, C, H, W)``: the forms of
  :mod:`fxaccel.forms.folded` (one conv2d over all frames, ``kT`` conv2d taps summed, or time
  as the height of one conv2d).

Stability: public (``Conv3dBnAct``, ``padding_per_side``). The deploy modules live in
:mod:`fxaccel.forms`.

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
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..forms.common import ConvLayer, padding_per_side
from ..targets import Target, get_target
from .act import Activation, activation_name, make_activation
from .base import EfficientBlock
from .layout import TimeFolded


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
        among the exact alternatives of the target's registry (``Target.form_names``); ``None``
        is the first form of the conv's layer kind. On ``mobile_cpu``: ``"taps"`` (default) or
        ``"time_as_height"`` (``kT x 1 x 1`` convs with spatial stride 1 and no spatial padding
        only; a conv that never mixes frames is always one conv2d over frames). On ``x86``:
        ``"linear"`` (the default for a pointwise conv), ``"frames2d"`` (the default for another
        ``1 x kh x kw`` conv), ``"taps"`` (a depthwise ``kT x 1 x 1`` conv, never the default),
        ``"conv2d"`` (a stride-1 pointwise conv) or ``"conv3d"`` (also what a form that does not
        apply to this conv gives).
        """
        target = get_target(target)
        chosen = target.form_for(self.conv, form)
        shape = self._deploy_shape(input_shape)
        weight, bias = self._folded_weights()
        out_shape = self._out_shape(shape)
        built = chosen.build(ConvLayer(self.conv, weight, bias, shape, out_shape, self.act.plain()))
        return built if target.conv3d else TimeFolded(built, shape, out_shape[2])

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

