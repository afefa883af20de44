"""The X3D residual bottleneck as one efficient block.

Lowering each part on its own would leave a fold/unfold pair between every two parts on
``mobile_cpu``; as one block the whole residual unit (both branches and the add) stays in the
folded ``(N*T, C, H, W)`` layout behind a single :class:`~fxaccel.blocks.layout.TimeFolded`.

Stability: public (``X3dBottleneck``).
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from ..forms.common import in_place
from ..targets import Target, get_target
from .act import Activation, make_activation
from .attention import SqueezeExcite3d
from .base import EfficientBlock
from .conv import Conv3dBnAct
from .layout import TimeFolded, checked

# layout.checked is one call node under symbolic tracing; fx.wrap applies per calling module.
torch.fx.wrap("checked")




def _as_activation(act: nn.Module | str | None) -> nn.Module:
    return act if isinstance(act, nn.Module) else make_activation(act)


def _plain(act: nn.Module) -> nn.Module:
    """The activation for a deploy form: an activation block's plain module, else a copy."""
    return act.plain() if isinstance(act, Activation) else copy.deepcopy(act)


def _conv_out_shape(conv: nn.Conv3d, shape: Sequence[int]) -> tuple[int, ...]:
    """Output shape of ``conv`` for an input of ``shape`` (``(N, C, T, H, W)``)."""
    if conv.padding == "same":
        return (shape[0], conv.out_channels, *shape[2:])
    pads = (0, 0, 0) if conv.padding == "valid" else conv.padding
    dims = [(n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, p, k, s, d in zip(shape[2:], pads, conv.kernel_size, conv.stride, conv.dilation)]
    return (shape[0], conv.out_channels, *dims)


class X3dBottleneck(EfficientBlock):
    """``act_out(conv_c(act_b(se(conv_b(conv_a(x))))) + shortcut(x))``, X3D's residual unit.

    ``conv_a``: pointwise :class:`~fxaccel.blocks.conv.Conv3dBnAct` (with its activation);
    ``conv_b``: depthwise ``kT x 3 x 3`` Conv3dBnAct, usually without activation; ``se``: optional
    :class:`~fxaccel.blocks.attention.SqueezeExcite3d`; ``act_b``: activation after SE (swish in
    X3D); ``conv_c``: pointwise Conv3dBnAct without activation; ``shortcut``: ``None`` (identity)
    or a projection Conv3dBnAct; ``act_out``: activation after the residual add (ReLU in X3D).
    Activations may be modules or names for :func:`~fxaccel.blocks.act.make_activation`.

    >>> import torch
    >>> from fxaccel.blocks.bottleneck import X3dBottleneck
    >>> from fxaccel.targets import get_target
    >>> block = X3dBottleneck.build(8, 12, 8).eval()
    >>> x = torch.randn(2, 8, 4, 7, 7)
    >>> fast = block.deploy(x.shape, get_target("mobile_cpu"))
    >>> bool((fast(x) - block(x)).abs().max() < 1e-4)
    True
    """

    def __init__(self, conv_a: Conv3dBnAct, conv_b: Conv3dBnAct, se: SqueezeExcite3d | None,
                 act_b: nn.Module | str | None, conv_c: Conv3dBnAct, shortcut: Conv3dBnAct | None,
                 act_out: nn.Module | str | None):
        super().__init__()
        for name, part in (("conv_a", conv_a), ("conv_b", conv_b), ("conv_c", conv_c), ("shortcut", shortcut)):
            if not (isinstance(part, Conv3dBnAct) or (name == "shortcut" and part is None)):
                raise TypeError(f"X3dBottleneck.{name} must be a Conv3dBnAct"
                                f"{' or None' if name == 'shortcut' else ''}, got {type(part).__name__}; "
                                f"wrap vanilla modules with Conv3dBnAct.from_modules(conv, bn, act)")
        if se is not None and not isinstance(se, SqueezeExcite3d):
            raise TypeError(f"X3dBottleneck.se must be a SqueezeExcite3d or None, got {type(se).__name__}")
        _check_channels(conv_a, conv_b, se, conv_c, shortcut)
        self.conv_a, self.conv_b, self.conv_c = conv_a, conv_b, conv_c
        self.register_module("se", se)
        self.act_b = _as_activation(act_b)
        self.register_module("shortcut", shortcut)
        self.act_out = _as_activation(act_out)

    @classmethod
    def build(cls, in_channels: int, inner_channels: int, out_channels: int, stride: int = 1, *,
              se_ratio: float | None = 0.0625, se_channels: int | None = None, temporal_kernel: int = 3,
              act_a: str = "relu", act_b: str = "swish", act_out: str = "relu") -> "X3dBottleneck":
        """A freshly initialised X3D bottleneck.

        ``stride`` is spatial (X3D never strides time in its blocks); a projection shortcut is made
        when the stride or the width changes. The SE width is ``se_channels`` or
        ``max(1, round(inner_channels * se_ratio))`` (X3D rounds to multiples of 8; pass
        ``se_channels`` to match); ``se_ratio=None`` means no SE.
        """
        kt = temporal_kernel
        conv_a = Conv3dBnAct(in_channels, inner_channels, 1, activation=act_a)
        conv_b = Conv3dBnAct(inner_channels, inner_channels, (kt, 3, 3), stride=(1, stride, stride),
                             padding=(kt // 2, 1, 1), groups=inner_channels, activation=None)
        se = None
        if se_ratio is not None or se_channels is not None:
            width = se_channels if se_channels is not None else max(1, round(inner_channels * se_ratio))
            se = SqueezeExcite3d(inner_channels, width, act="relu")
        conv_c = Conv3dBnAct(inner_channels, out_channels, 1, activation=None)
        shortcut = None
        if stride != 1 or in_channels != out_channels:
            shortcut = Conv3dBnAct(in_channels, out_channels, 1, stride=(1, stride, stride), activation=None)
        return cls(conv_a, conv_b, se, act_b, conv_c, shortcut, act_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_b(self.conv_a(x))
        if self.se is not None:
            y = self.se(y)
        y = self.conv_c(self.act_b(y))
        residual = x if self.shortcut is None else self.shortcut(x)
        return self.act_out(y + residual)

    def deploy(self, input_shape: Sequence[int], target: Target) -> nn.Module:
        """x86: each part's x86 form, chained; mobile_cpu: one ``TimeFolded`` around the parts'
        folded inner forms (no fold/unfold between parts)."""
        target = get_target(target)
        shapes = self._shapes(input_shape)

        def part(block, shape):
            form = block.deploy(shape, target)
            return form if target.conv3d else form.inner

        se = None if self.se is None else part(self.se, shapes["b"])
        shortcut = None if self.shortcut is None else part(self.shortcut, shapes["in"])
        body = _X3dBottleneckDeploy(
            part(self.conv_a, shapes["in"]), part(self.conv_b, shapes["a"]), se, _plain(self.act_b),
            part(self.conv_c, shapes["b"]), shortcut, _plain(self.act_out),
            shapes["in"] if target.conv3d else None,
        )
        return body if target.conv3d else TimeFolded(body, shapes["in"], shapes["out"][2])

    def _shapes(self, input_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
        shape = tuple(int(s) for s in input_shape)
        cin = self.conv_a.conv.in_channels
        if len(shape) != 5 or shape[1] != cin:
            raise ValueError(f"X3dBottleneck.deploy: expected an input shape (N, {cin}, T, H, W), got {shape}")
        a = _conv_out_shape(self.conv_a.conv, shape)
        b = _conv_out_shape(self.conv_b.conv, a)
        out = _conv_out_shape(self.conv_c.conv, b)
        res = shape if self.shortcut is None else _conv_out_shape(self.shortcut.conv, shape)
        if res[1:] != out[1:]:
            raise ValueError(
                f"X3dBottleneck: for input {shape} the residual branch gives (N, {', '.join(map(str, out[1:]))}) "
                f"but the shortcut gives (N, {', '.join(map(str, res[1:]))}); add a projection shortcut "
                f"(a strided 1x1x1 Conv3dBnAct) or remove the stride"
            )
        return {"in": shape, "a": a, "b": b, "out": out}


def _check_channels(conv_a, conv_b, se, conv_c, shortcut) -> None:
    chain = [("conv_a", conv_a.conv.out_channels, "conv_b", conv_b.conv.in_channels),
             ("conv_b", conv_b.conv.out_channels, "conv_c", conv_c.conv.in_channels)]
    if se is not None:
        chain.append(("conv_b", conv_b.conv.out_channels, "se", se.channels))
    res_in = conv_a.conv.in_channels
    if shortcut is not None:
        chain.append(("input (conv_a)", res_in, "shortcut", shortcut.conv.in_channels))
        res_in = shortcut.conv.out_channels
    chain.append(("conv_c", conv_c.conv.out_channels, "the residual", res_in))
    for src, produced, dst, expected in chain:
        if produced != expected:
            raise ValueError(f"X3dBottleneck: {src} gives {produced} channels but {dst} takes {expected}")


class _X3dBottleneckDeploy(nn.Module):
    """The bottleneck's parts in one target's form, chained; the residual add as ``torch.add``.

    ``in_shape`` (x86 only) guards the 5-D input; on mobile_cpu the enclosing ``TimeFolded`` does.
    On x86 (``in_shape`` given) the activations and the residual add work in place: each reads a
    fresh tensor that the parts just made and nothing else holds, so a new buffer per op is a
    wasted pass over memory (X3D-XS: 5% of the model's time). Mobile keeps the plain ops that
    ExecuTorch's partitioner expects.
    """

    def __init__(self, conv_a, conv_b, se, act_b, conv_c, shortcut, act_out, in_shape):
        super().__init__()
        self.conv_a, self.conv_b = conv_a, conv_b
        self.register_module("se", se)
        self.act_b, self.conv_c = act_b, conv_c
        self.register_module("shortcut", shortcut)
        self.act_out = act_out
        self.in_shape = in_shape
        if in_shape is not None:
            in_place(act_b)
            in_place(act_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_shape is not None:
            x = checked("X3dBottleneck (x86 deploy form)", x, self.in_shape)
        y = self.conv_b(self.conv_a(x))
        if self.se is not None:
            y = self.se(y)
        y = self.conv_c(self.act_b(y))
        residual = x if self.shortcut is None else self.shortcut(x)
        if self.in_shape is not None:
            return self.act_out(y.add_(residual))
        return self.act_out(torch.add(y, residual))
