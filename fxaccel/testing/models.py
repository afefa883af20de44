"""Random *vanilla* video models: plain torch, written the ways users write them.

fxaccel must recognise a conv chain, an SE or a residual bottleneck however it is spelt (modules or
functional calls, ``x * sigmoid(x)`` or ``nn.SiLU``, adaptive or fixed pooling). These modules and
the :func:`vanilla_models` strategy give passes that variety to be tested on; nothing here imports
an fxaccel block.

Stability: public (``vanilla_models``, ``VanillaModelSpec``, the ``Vanilla*`` modules,
``vanilla_activation``, ``ACTIVATION_SPELLINGS``, ``SE_SPELLINGS``, ``POOL_SPELLINGS``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from .strategies import randomize_bn, seeds

ACTIVATION_SPELLINGS = (
    "identity", "relu", "relu_inplace", "relu_functional", "silu", "x_sigmoid_x", "sigmoid_x_x",
    "hardswish",
)
SE_SPELLINGS = ("module", "functional", "linear")
POOL_SPELLINGS = ("adaptive", "mean", "fixed")


class _FunctionalReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


class _SwishMul(nn.Module):
    """Swish spelt ``x * sigmoid(x)`` (or, with ``reverse``, ``sigmoid(x) * x``)."""

    def __init__(self, reverse: bool = False):
        super().__init__()
        self.reverse = reverse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reverse:
            return torch.sigmoid(x) * x
        return x * torch.sigmoid(x)


def vanilla_activation(spelling: str) -> nn.Module:
    """A plain module for one of :data:`ACTIVATION_SPELLINGS`.

    >>> vanilla_activation("x_sigmoid_x")(torch.zeros(1)).item()
    0.0
    """
    makers = {
        "identity": nn.Identity, "relu": nn.ReLU, "relu_inplace": lambda: nn.ReLU(inplace=True),
        "relu_functional": _FunctionalReLU, "silu": nn.SiLU, "x_sigmoid_x": _SwishMul,
        "sigmoid_x_x": lambda: _SwishMul(reverse=True), "hardswish": nn.Hardswish,
    }
    if spelling not in makers:
        raise ValueError(f"unknown activation spelling {spelling!r}; known: {', '.join(makers)}")
    return makers[spelling]()


def vanilla_conv_bn_act(in_channels: int, out_channels: int, kernel_size: Sequence[int],
                        stride: Sequence[int] = (1, 1, 1), groups: int = 1, bn: bool = True,
                        act: str = "relu", bias: bool = False) -> nn.Sequential:
    """``nn.Sequential(Conv3d, [BatchNorm3d], [activation])`` with "same"-style padding ``k // 2``."""
    conv = nn.Conv3d(in_channels, out_channels, tuple(kernel_size), tuple(stride),
                     tuple(k // 2 for k in kernel_size), groups=groups, bias=bias)
    layers = [conv]
    if bn:
        layers.append(nn.BatchNorm3d(out_channels))
    if act != "identity":
        layers.append(vanilla_activation(act))
    return nn.Sequential(*layers)


class VanillaSqueezeExciteModule(nn.Module):
    """SE as pytorchvideo / fvcore write it: modules throughout, gate as ``x * block(x)``."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.AdaptiveAvgPool3d(1), nn.Conv3d(channels, squeeze, 1), nn.ReLU(),
            nn.Conv3d(squeeze, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(x)


class VanillaSqueezeExciteFunctional(nn.Module):
    """SE with a functional mean, ReLU and sigmoid around two 1x1x1 convs."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Conv3d(channels, squeeze, 1)
        self.fc2 = nn.Conv3d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3, 4), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class VanillaSqueezeExciteLinear(nn.Module):
    """SE with ``nn.Linear`` layers over the pooled ``(N, C)`` vector."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool3d(x, 1).flatten(1)
        s = torch.sigmoid(self.fc2(self.act(self.fc1(s))))
        return x * s.view(s.shape[0], s.shape[1], 1, 1, 1)


_SE = {"module": VanillaSqueezeExciteModule, "functional": VanillaSqueezeExciteFunctional,
       "linear": VanillaSqueezeExciteLinear}


def vanilla_squeeze_excite(channels: int, squeeze: int, spelling: str = "module") -> nn.Module:
    """An SE in one of :data:`SE_SPELLINGS`."""
    if spelling not in _SE:
        raise ValueError(f"unknown SE spelling {spelling!r}; known: {', '.join(_SE)}")
    return _SE[spelling](channels, squeeze)


class VanillaBottleneck(nn.Module):
    """X3D's residual unit as pytorchvideo writes it (names included).

    ``conv_a`` pointwise + BN + ReLU, ``conv_b`` depthwise ``kT x 3 x 3`` (spatial ``stride``) + BN,
    optional SE, ``act_b``, ``conv_c`` pointwise + BN, a projection ``branch1`` when stride or
    width change, then ReLU after the add.
    """

    def __init__(self, in_channels: int, inner: int, out_channels: int, stride: int = 1,
                 se_channels: int | None = None, se_spelling: str = "module", temporal_kernel: int = 3,
                 act_b: str = "silu"):
        super().__init__()
        kt = temporal_kernel
        self.conv_a = nn.Conv3d(in_channels, inner, 1, bias=False)
        self.norm_a = nn.BatchNorm3d(inner)
        self.act_a = nn.ReLU()
        self.conv_b = nn.Conv3d(inner, inner, (kt, 3, 3), (1, stride, stride), (kt // 2, 1, 1),
                                groups=inner, bias=False)
        self.norm_b = nn.BatchNorm3d(inner)
        self.se = nn.Identity() if se_channels is None else vanilla_squeeze_excite(inner, se_channels, se_spelling)
        self.act_b = vanilla_activation(act_b)
        self.conv_c = nn.Conv3d(inner, out_channels, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(out_channels)
        self.branch1_conv = self.branch1_norm = None
        if stride != 1 or in_channels != out_channels:
            self.branch1_conv = nn.Conv3d(in_channels, out_channels, 1, (1, stride, stride), bias=False)
            self.branch1_norm = nn.BatchNorm3d(out_channels)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act_a(self.norm_a(self.conv_a(x)))
        y = self.act_b(self.se(self.norm_b(self.conv_b(y))))
        y = self.norm_c(self.conv_c(y))
        shortcut = x if self.branch1_conv is None else self.branch1_norm(self.branch1_conv(x))
        return self.act(y + shortcut)


class VanillaHead(nn.Module):
    """Global average pool (adaptive, ``mean``, or a fixed ``AvgPool3d`` over the whole clip),
    flatten, linear classifier."""

    def __init__(self, channels: int, classes: int, pool: str = "adaptive",
                 clip: Sequence[int] | None = None):
        super().__init__()
        if pool not in POOL_SPELLINGS:
            raise ValueError(f"unknown pool spelling {pool!r}; known: {', '.join(POOL_SPELLINGS)}")
        if pool == "fixed" and clip is None:
            raise ValueError("a fixed AvgPool3d head needs clip=(T, H, W) of its input")
        self.pool_spelling = pool
        self.pool = {"adaptive": lambda: nn.AdaptiveAvgPool3d(1), "mean": lambda: None,
                     "fixed": lambda: nn.AvgPool3d(tuple(clip))}[pool]()
        self.proj = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.mean((2, 3, 4), keepdim=True) if self.pool is None else self.pool(x)
        return self.proj(x.flatten(1))


@dataclass(frozen=True)
class VanillaModelSpec:
    """What :func:`vanilla_models` drew, for messages and for rebuilding: ``input_shape`` and one
    tuple per layer (``("conv", cin, cout, kernel, stride, groups, bn, act)``, ``("se", c, s,
    spelling)``, ``("bottleneck", cin, inner, cout, stride, se_channels, se_spelling, kt, act_b)``,
    ``("head", c, classes, pool, clip)``)."""

    input_shape: tuple[int, ...]
    layers: tuple[tuple, ...]
    seed: int


def _conv_out(n: int, k: int, s: int) -> int:
    return (n + 2 * (k // 2) - k) // s + 1


@st.composite
def vanilla_model_specs(draw, kinds: Sequence[str] = ("conv", "se", "bottleneck"), max_layers: int = 3,
                        head: bool | None = None, max_channels: int = 12, max_t: int = 6,
                        max_hw: int = 12, batch_sizes: Sequence[int] = (1, 3)):
    """Specs of small random vanilla models: a conv stem, up to ``max_layers`` more layers of
    ``kinds``, and (randomly, unless ``head`` says) a pool + linear head."""
    t, h, w = draw(st.integers(1, max_t)), draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    cin = draw(st.integers(1, 4))
    shape = (draw(st.sampled_from(tuple(batch_sizes))), cin, t, h, w)
    acts = st.sampled_from(ACTIVATION_SPELLINGS)
    layers, c = [], cin
    for i in range(1 + draw(st.integers(0, max_layers))):
        kind = "conv" if i == 0 else draw(st.sampled_from(tuple(kinds)))
        if kind == "conv":
            kt, k = draw(st.sampled_from((1, 2, 3))), draw(st.sampled_from((1, 3, 5)))
            stride = (draw(st.sampled_from((1, 1, 2))), *(draw(st.sampled_from((1, 1, 2))),) * 2)
            depthwise = i > 0 and draw(st.booleans())
            cout = c if depthwise else draw(st.integers(1, max_channels))
            layers.append(("conv", c, cout, (kt, k, k), stride, c if depthwise else 1,
                           draw(st.booleans()), draw(acts)))
            t, h, w = _conv_out(t, kt, stride[0]), _conv_out(h, k, stride[1]), _conv_out(w, k, stride[2])
            c = cout
        elif kind == "se":
            layers.append(("se", c, draw(st.integers(1, max(1, c))), draw(st.sampled_from(SE_SPELLINGS))))
        elif kind == "bottleneck":
            inner, cout = draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels))
            stride = draw(st.sampled_from((1, 2)))
            se = draw(st.one_of(st.none(), st.integers(1, inner)))
            layers.append(("bottleneck", c, inner, cout, stride, se, draw(st.sampled_from(SE_SPELLINGS)),
                           draw(st.sampled_from((1, 3))), draw(acts)))
            h, w, c = _conv_out(h, 3, stride), _conv_out(w, 3, stride), cout
        else:
            raise ValueError(f"unknown layer kind {kind!r}; known: conv, se, bottleneck")
    if head if head is not None else draw(st.booleans()):
        layers.append(("head", c, draw(st.integers(1, 5)), draw(st.sampled_from(POOL_SPELLINGS)), (t, h, w)))
    return VanillaModelSpec(shape, tuple(layers), draw(seeds))


def build_vanilla_model(spec: VanillaModelSpec) -> tuple[nn.Module, torch.Tensor]:
    """The eval-mode model of ``spec`` (weights from ``spec.seed``, BN randomised) and an input.

    The global RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        layers = [_build_layer(layer) for layer in spec.layers]
    model = nn.Sequential(*layers)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    for i, bn in enumerate(bns):
        randomize_bn(bn, spec.seed + 1 + i)
    x = torch.randn(spec.input_shape, generator=torch.Generator().manual_seed(spec.seed))
    return model.eval(), x


def _build_layer(layer: tuple) -> nn.Module:
    kind, *args = layer
    if kind == "conv":
        cin, cout, kernel, stride, groups, bn, act = args
        return vanilla_conv_bn_act(cin, cout, kernel, stride, groups, bn, act, bias=not bn)
    if kind == "se":
        return vanilla_squeeze_excite(*args)
    if kind == "bottleneck":
        cin, inner, cout, stride, se, se_spelling, kt, act_b = args
        return VanillaBottleneck(cin, inner, cout, stride, se, se_spelling, kt, act_b)
    c, classes, pool, clip = args
    return VanillaHead(c, classes, pool, clip)


def vanilla_models(**kwargs) -> st.SearchStrategy[tuple[nn.Module, torch.Tensor]]:
    """Hypothesis strategy: ``(model, example_input)``, a small random vanilla video model in eval
    mode with randomised BN statistics and affine parameters. Keyword arguments go to
    :func:`vanilla_model_specs` (``kinds``, ``max_layers``, ``head``, size limits).

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=3, deadline=None)
    ... @given(vanilla_models())
    ... def check(case):
    ...     model, x = case
    ...     assert torch.isfinite(model(x)).all()
    >>> check()
    """
    return vanilla_model_specs(**kwargs).map(build_vanilla_model)
