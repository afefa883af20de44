"""X3D (Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition", CVPR 2020).

A vanilla X3D written in the common module style (a stem, four ``nn.Sequential`` stages of
bottleneck blocks, a projected-pool head), with the hyper-parameters of the paper and of
PyTorchVideo's ``create_x3d``: width factor 2.0, bottleneck factor 2.25, SE (ratio 1/16) on every
other block, swish after the depthwise conv, depth factor 2.2 (XS, S, M) or 5.0 (L). Parameter
counts match the published ones (XS/S/M 3.79M, L 6.15M with 400 classes).

Example::

    >>> import torch
    >>> from fxaccel.zoo.x3d import x3d, example_input
    >>> model = x3d("XS", num_classes=10)
    >>> with torch.no_grad():
    ...     tuple(model(example_input("XS", batch=2)).shape)
    (2, 10)

Stability: public.
"""
from __future__ import annotations

import math
import os
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["SHIPPED_WEIGHTS", "SIZES", "X3D", "X3DSize", "example_input", "round_repeats", "round_width",
           "shipped_weights", "x3d"]


class X3DSize(NamedTuple):
    """The input a size was designed for and its depth factor."""

    frames: int
    crop: int
    depth_factor: float


SIZES: dict[str, X3DSize] = {
    "XS": X3DSize(frames=4, crop=160, depth_factor=2.2),
    "S": X3DSize(frames=13, crop=160, depth_factor=2.2),
    "M": X3DSize(frames=16, crop=224, depth_factor=2.2),
    "L": X3DSize(frames=16, crop=312, depth_factor=5.0),
}

_WIDTH_FACTOR = 2.0
_BOTTLENECK_FACTOR = 2.25
_SE_RATIO = 0.0625
_STEM_BASE_WIDTH = 12
_STAGE_BASE_DEPTHS = (1, 2, 5, 3)
_HEAD_WIDTH = 2048


def round_width(width: float, multiplier: float, divisor: int = 8) -> int:
    """Scale ``width`` and round to a multiple of ``divisor`` (at least ``divisor``), never
    dropping more than 10% below the exact value: the X3D/PyTorchVideo channel rule.

    >>> round_width(12, 2.0), round_width(432, 0.0625)
    (24, 32)
    """
    exact = width * multiplier
    rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * exact:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, multiplier: float) -> int:
    """Blocks in a stage after depth scaling: ``ceil(multiplier * repeats)``.

    >>> [round_repeats(d, 2.2) for d in (1, 2, 5, 3)]
    [3, 5, 11, 7]
    """
    return int(math.ceil(multiplier * repeats))


class Swish(nn.Module):
    """swish(x) = x * sigmoid(x), written out as model code usually does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class SqueezeExcitation(nn.Module):
    """Channel gating: global average pool -> 1x1x1 conv -> ReLU -> 1x1x1 conv -> sigmoid -> scale."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc1 = nn.Conv3d(channels, reduced, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv3d(reduced, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))
        return x * s


class Stem(nn.Module):
    """Spatial 1x3x3 conv (stride 1,2,2) then a depthwise temporal 5x1x1 conv, BN, ReLU."""

    def __init__(self, out_channels: int):
        super().__init__()
        self.conv_xy = nn.Conv3d(3, out_channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1),
                                 bias=False)
        self.conv_t = nn.Conv3d(out_channels, out_channels, (5, 1, 1), padding=(2, 0, 0),
                                groups=out_channels, bias=False)
        self.bn = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv_t(self.conv_xy(x))))


class Bottleneck(nn.Module):
    """X3D residual block: 1x1x1 expand -> depthwise 3x3x3 -> (SE) -> swish -> 1x1x1 project.

    The first block of a stage strides spatially by 2 and has a 1x1x1 projection shortcut.
    """

    def __init__(self, in_channels: int, inner: int, out_channels: int, stride: int, use_se: bool):
        super().__init__()
        self.conv_a = nn.Conv3d(in_channels, inner, 1, bias=False)
        self.bn_a = nn.BatchNorm3d(inner)
        self.relu_a = nn.ReLU(inplace=True)
        self.conv_b = nn.Conv3d(inner, inner, 3, stride=(1, stride, stride), padding=1,
                                groups=inner, bias=False)
        self.bn_b = nn.BatchNorm3d(inner)
        self.se = SqueezeExcitation(inner, round_width(inner, _SE_RATIO)) if use_se else nn.Identity()
        self.swish = Swish()
        self.conv_c = nn.Conv3d(inner, out_channels, 1, bias=False)
        self.bn_c = nn.BatchNorm3d(out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=(1, stride, stride), bias=False),
                nn.BatchNorm3d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu_a(self.bn_a(self.conv_a(x)))
        out = self.swish(self.se(self.bn_b(self.conv_b(out))))
        out = self.bn_c(self.conv_c(out))
        return self.relu(out + identity)


class Head(nn.Module):
    """Projected pool: 1x1x1 conv -> BN -> ReLU -> global average pool -> 1x1x1 conv (no bias) ->
    ReLU -> flatten -> dropout -> linear classifier."""

    def __init__(self, in_channels: int, inner: int, num_classes: int, dropout: float = 0.5):
        super().__init__()
        self.pre_conv = nn.Conv3d(in_channels, inner, 1, bias=False)
        self.pre_bn = nn.BatchNorm3d(inner)
        self.pre_relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.post_conv = nn.Conv3d(inner, _HEAD_WIDTH, 1, bias=False)
        self.post_relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(_HEAD_WIDTH, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.pre_relu(self.pre_bn(self.pre_conv(x))))
        x = self.post_relu(self.post_conv(x))
        return self.fc(self.dropout(torch.flatten(x, 1)))


class X3D(nn.Module):
    """X3D network for clips ``(N, 3, T, H, W)``; returns logits ``(N, num_classes)``."""

    def __init__(self, depth_factor: float = 2.2, num_classes: int = 400):
        super().__init__()
        stem_width = round_width(_STEM_BASE_WIDTH, _WIDTH_FACTOR)  # 24
        self.stem = Stem(stem_width)
        in_channels, base = stem_width, _STEM_BASE_WIDTH
        stages = []
        for i, base_depth in enumerate(_STAGE_BASE_DEPTHS):
            if i > 0:
                base = round_width(base, 2.0)  # 12, 24, 48, 96 before the width factor
            out_channels = round_width(base, _WIDTH_FACTOR)  # 24, 48, 96, 192
            inner = int(_BOTTLENECK_FACTOR * out_channels)  # 54, 108, 216, 432
            blocks = [
                Bottleneck(in_channels if j == 0 else out_channels, inner, out_channels,
                           stride=2 if j == 0 else 1, use_se=j % 2 == 0)
                for j in range(round_repeats(base_depth, depth_factor))
            ]
            stages.append(nn.Sequential(*blocks))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.head = Head(in_channels, inner, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def _size(size: str) -> X3DSize:
    return SIZES[_size_key(size)]


def _size_key(size: str) -> str:
    key = size.upper() if isinstance(size, str) else size
    if key not in SIZES:
        raise ValueError(f"unknown X3D size {size!r}; choose one of {', '.join(SIZES)}")
    return key


SHIPPED_WEIGHTS: dict[tuple[str, str], tuple[str, str]] = {
    ("XS", "synthetic"): ("x3d_xs_synthetic.pt", "1832b3f1449dbd0288b9ed3aa123c4ec92f74f411c510289cb855534763b61f1"),
}
"""Checkpoints that ship inside the package, by ``(size, name)``: file under ``fxaccel/zoo/weights/``
and its sha256. ``synthetic``: trained on :mod:`fxaccel.zoo.synthetic` (10 classes, clips
``(3, 4, 64, 64)``) by ``tools/train_zoo.py``, stored in half precision; docs/int8.md has the
command, the training time and its test top-1."""


def shipped_weights(size: str, name: str):
    """The local path of a shipped checkpoint, after checking its sha256 (a clear error otherwise)."""
    import hashlib
    from pathlib import Path

    key = (_size_key(size), name)
    if key not in SHIPPED_WEIGHTS:
        known = ", ".join(f"x3d({s!r}, weights={n!r})" for s, n in SHIPPED_WEIGHTS)
        raise ValueError(f"no shipped weights {name!r} for X3D-{key[0]}; shipped: {known}. "
                         "Pass a local checkpoint path instead")
    file, digest = SHIPPED_WEIGHTS[key]
    path = Path(__file__).parent / "weights" / file
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from this install of fxaccel; reinstall it "
                                "(the weights are package data)")
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    if found != digest:
        raise ValueError(f"{path} has sha256 {found}, expected {digest}: the file is damaged or was "
                         "replaced; reinstall fxaccel (or retrain with tools/train_zoo.py)")
    return path


def x3d(size: str = "XS", num_classes: int | None = None, weights: str | os.PathLike | None = None,
        seed: int = 0) -> X3D:
    """Build X3D-``size`` ("XS", "S", "M", "L") in eval mode.

    With ``weights=None`` the weights are random (torch's default init, seeded by ``seed``) and BN
    statistics realistic (see ``fxaccel.zoo.realistic_bn``; calibrated on two random clips, at
    most 160x160 to keep M and L quick to build); ``num_classes`` defaults to Kinetics' 400. With
    ``weights="synthetic"`` the shipped checkpoint trained on :mod:`fxaccel.zoo.synthetic` is
    loaded (10 classes; input clips ``(N, 3, 4, 64, 64)``); any other ``weights`` is a local
    state-dict checkpoint, loaded strictly (``weights_only=True``); mismatched keys raise a
    ``ValueError``.
    """
    from fxaccel.zoo import _finish

    spec = _size(size)
    if isinstance(weights, str) and weights in {name for _, name in SHIPPED_WEIGHTS}:
        weights = shipped_weights(size, weights)
        from fxaccel.zoo.synthetic import CLASSES

        num_classes = len(CLASSES) if num_classes is None else num_classes
    num_classes = 400 if num_classes is None else num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = X3D(spec.depth_factor, num_classes)
    crop = min(spec.crop, 160)
    return _finish(model, weights=weights, clip_shape=(2, 3, spec.frames, crop, crop), seed=seed)


def example_input(size: str = "XS", batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A random clip ``(batch, 3, T, crop, crop)`` at the size's design resolution."""
    spec = _size(size)
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, spec.frames, spec.crop, spec.crop, generator=gen)
