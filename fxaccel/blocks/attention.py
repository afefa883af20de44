"""Squeeze-and-excitation as an efficient block.

The vanilla SE (X3D, MobileNetV3, EfficientNet) averages the whole clip to one vector per channel,
runs a two-layer bottleneck on it and rescales the input channels. Its only 5-D op is the global
mean, which XNNPACK cannot run; the two 1x1x1 convs are matrix products in disguise. The deploy
forms therefore keep the math and change only the spelling: a 3-D/4-D mean and two ``nn.Linear``.

Stability: public (``SqueezeExcite3d``).
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from ..targets import Target, get_target
from .act import Activation, make_activation
from .base import EfficientBlock
from .layout import TimeFolded, checked

# layout.checked is one call node under symbolic tracing; fx.wrap applies per calling module.
torch.fx.wrap("checked")




def _resolve_activation(act: nn.Module | str) -> nn.Module:
    if isinstance(act, nn.Module):
        return act
    return make_activation(act)


def _deploy_activation(act: nn.Module) -> nn.Module:
    """The activation for a deploy form: an activation block's plain module, else a copy."""
    return act.plain() if isinstance(act, Activation) else copy.deepcopy(act)


def _linear_from_conv(conv: nn.Conv3d) -> nn.Linear:
    """A 1x1x1 Conv3d on a ``(N, C, 1, 1, 1)`` tensor is ``nn.Linear`` on ``(N, C)``."""
    w = conv.weight.detach()
    lin = nn.Linear(w.shape[1], w.shape[0], bias=conv.bias is not None)
    with torch.no_grad():
        lin.weight.copy_(w.reshape(w.shape[0], w.shape[1]))
        if conv.bias is not None:
            lin.bias.copy_(conv.bias.detach())
    return lin


def _check_pointwise(name: str, conv: nn.Module) -> None:
    ok = (
        isinstance(conv, nn.Conv3d) and conv.kernel_size == (1, 1, 1) and conv.stride == (1, 1, 1)
        and conv.groups == 1 and conv.padding in ((0, 0, 0), "valid", "same")
    )
    if not ok:
        raise ValueError(
            f"SqueezeExcite3d.{name} must be a 1x1x1 Conv3d with stride 1, groups 1 and no padding; "
            f"got {conv!r}"
        )


class SqueezeExcite3d(EfficientBlock):
    """``x * sigmoid(expand(act(reduce(mean_{T,H,W}(x)))))`` with 1x1x1 ``reduce``/``expand`` convs.

    Submodules ``reduce``, ``act``, ``expand`` carry the user's parameters under their usual
    names. Build it directly, from existing conv modules (:meth:`from_modules`) or from a
    Linear-style SE (:meth:`from_linear`).

    >>> import torch
    >>> from torch import nn
    >>> from fxaccel.blocks.attention import SqueezeExcite3d
    >>> from fxaccel.targets import get_target
    >>> se = SqueezeExcite3d(8, 2, act=nn.ReLU()).eval()
    >>> x = torch.randn(2, 8, 4, 5, 5)
    >>> fast = se.deploy(x.shape, get_target("mobile_cpu"))
    >>> torch.allclose(fast(x), se(x), atol=1e-6)
    True
    """

    def __init__(self, channels: int, squeeze_channels: int, act: nn.Module | str = "relu"):
        super().__init__()
        self.reduce = nn.Conv3d(channels, squeeze_channels, 1, bias=True)
        self.act = _resolve_activation(act)
        self.expand = nn.Conv3d(squeeze_channels, channels, 1, bias=True)

    @property
    def channels(self) -> int:
        return self.reduce.in_channels

    @classmethod
    def from_modules(cls, reduce: nn.Conv3d, act: nn.Module, expand: nn.Conv3d) -> "SqueezeExcite3d":
        """Wrap the given 1x1x1 convs and activation (the modules themselves, not copies)."""
        _check_pointwise("reduce", reduce)
        _check_pointwise("expand", expand)
        if expand.in_channels != reduce.out_channels or expand.out_channels != reduce.in_channels:
            raise ValueError(
                f"SqueezeExcite3d: reduce maps {reduce.in_channels}->{reduce.out_channels} channels but "
                f"expand maps {expand.in_channels}->{expand.out_channels}; expected "
                f"{reduce.out_channels}->{reduce.in_channels}"
            )
        se = cls(reduce.in_channels, reduce.out_channels, act)
        se.reduce, se.expand = reduce, expand
        return se

    @classmethod
    def from_linear(cls, fc1: nn.Linear, act: nn.Module, fc2: nn.Linear) -> "SqueezeExcite3d":
        """An SE written with ``nn.Linear`` layers over the pooled ``(N, C)`` vector.

        The weights are copied (exactly) into 1x1x1 convs; the activation module is reused.
        """
        if fc2.in_features != fc1.out_features or fc2.out_features != fc1.in_features:
            raise ValueError(
                f"SqueezeExcite3d.from_linear: fc1 is {fc1.in_features}->{fc1.out_features}, "
                f"fc2 is {fc2.in_features}->{fc2.out_features}; expected fc2 "
                f"{fc1.out_features}->{fc1.in_features}"
            )
        convs = []
        for fc in (fc1, fc2):
            conv = nn.Conv3d(fc.in_features, fc.out_features, 1, bias=True)
            with torch.no_grad():
                conv.weight.copy_(fc.weight.detach().reshape(conv.weight.shape))
                if fc.bias is not None:
                    conv.bias.copy_(fc.bias.detach())
                else:
                    conv.bias.zero_()
            convs.append(conv)
        return cls.from_modules(convs[0], act, convs[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3, 4), keepdim=True)
        s = torch.sigmoid(self.expand(self.act(self.reduce(s))))
        return x * s

    def deploy(self, input_shape: Sequence[int], target: Target) -> nn.Module:
        """x86: :class:`_SqueezeExciteFlat` (5-D in/out); mobile_cpu: a ``TimeFolded`` around
        :class:`_SqueezeExciteFolded`."""
        target = get_target(target)
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 5 or shape[1] != self.channels:
            raise ValueError(
                f"SqueezeExcite3d.deploy: expected an input shape (N, {self.channels}, T, H, W), "
                f"got {shape}"
            )
        reduce, expand = _linear_from_conv(self.reduce), _linear_from_conv(self.expand)
        act = _deploy_activation(self.act)
        if target.conv3d:
            return _SqueezeExciteFlat(reduce, act, expand, shape)
        inner = _SqueezeExciteFolded(reduce, act, expand, shape)
        return TimeFolded(inner, shape, t_out=shape[2])


class _SqueezeExciteFlat(nn.Module):
    """5-D SE with a flattened 3-D mean and ``nn.Linear`` layers (no 5-D mean, no 1x1x1 convs)."""

    def __init__(self, reduce: nn.Linear, act: nn.Module, expand: nn.Linear, shape: Sequence[int]):
        super().__init__()
        self.reduce, self.act, self.expand = reduce, act, expand
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked("SqueezeExcite3d (x86 deploy form)", x, self.shape)
        s = x.flatten(2).mean(-1)
        s = torch.sigmoid(self.expand(self.act(self.reduce(s))))
        return x * s.reshape(-1, self.shape[1], 1, 1, 1)


class _SqueezeExciteFolded(nn.Module):
    """SE on the folded ``(N*T, C, H, W)`` layout, 4-D and 2-D ops only.

    The mean over time folds into the first layer: ``mean_t(W x_t) = [W/T ... W/T] @ concat_t(x_t)``,
    and ``concat_t(x_t)`` is just the spatial mean of the folded tensor viewed as ``(N, T*C)``
    (rows are clip-major). Only the small pooled tensors are reshaped; the large feature map is
    scaled with a plain 4-D broadcast ``(N*T, C, H, W) * (N*T, C, 1, 1)``, so a channels-last
    runtime needs no layout change for it.

    The per-clip scale is needed once per frame; instead of ``repeat`` (which XNNPACK does not
    delegate: it would run on a portable kernel between two delegates) the expand layer is tiled
    along its outputs, ``[W; ...; W]`` (``T`` copies), so it writes the ``(N, T*C)`` scale
    directly: the same products and sums per output, hence bit-identical values.
    """

    def __init__(self, reduce: nn.Linear, act: nn.Module, expand: nn.Linear, shape: Sequence[int]):
        super().__init__()
        _, c, t, _, _ = shape
        self.t, self.c = int(t), int(c)
        tiled = nn.Linear(c * t, reduce.out_features, bias=reduce.bias is not None)
        with torch.no_grad():
            tiled.weight.copy_(reduce.weight.detach().repeat(1, t) / t)
            if reduce.bias is not None:
                tiled.bias.copy_(reduce.bias.detach())
        wide = nn.Linear(expand.in_features, expand.out_features * t, bias=expand.bias is not None)
        with torch.no_grad():
            wide.weight.copy_(expand.weight.detach().repeat(t, 1))
            if expand.bias is not None:
                wide.bias.copy_(expand.bias.detach().repeat(t))
        self.reduce, self.act, self.expand = tiled, act, wide

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True).reshape(-1, self.t * self.c)
        s = torch.sigmoid(self.expand(self.act(self.reduce(s))))
        return x * s.reshape(-1, self.c, 1, 1)

    def extra_repr(self) -> str:
        return f"t={self.t}, channels={self.c}"
