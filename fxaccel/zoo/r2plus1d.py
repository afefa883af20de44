"""R(2+1)D (Tran et al., "A Closer Look at Spatiotemporal Convolutions", CVPR 2018).

Every 3x3x3 conv of a 3-D ResNet-18 is factored into a 1x3x3 spatial conv -> BN -> ReLU -> 3x1x1
temporal conv, with the intermediate width chosen so the pair has the parameters of the 3x3x3 conv
it replaces. Strided blocks stride space in the spatial conv and time in the temporal conv, so
rewrites meet strided ``kT x 1 x 1`` convs. Narrow by default (``width=16``); ``width=64`` is the
published R(2+1)D-18.

Example::

    >>> import torch
    >>> from fxaccel.zoo.r2plus1d import r2plus1d_18, example_input
    >>> model = r2plus1d_18(num_classes=5)
    >>> with torch.no_grad():
    ...     tuple(model(example_input()).shape)
    (1, 5)

Stability: public.
"""
from __future__ import annotations

import os

import torch
from torch import nn

__all__ = ["BasicBlock", "Conv2Plus1d", "R2Plus1d", "example_input", "mid_channels", "r2plus1d_18"]


def mid_channels(in_channels: int, out_channels: int, kt: int = 3, k: int = 3) -> int:
    """Width between the spatial and the temporal conv that matches a full ``kt x k x k`` conv's
    parameter count (the paper's M_i).

    >>> mid_channels(64, 64)
    144
    """
    return (kt * k * k * in_channels * out_channels) // (k * k * in_channels + kt * out_channels)


class Conv2Plus1d(nn.Sequential):
    """1x3x3 spatial conv (space stride) -> BN -> ReLU -> 3x1x1 temporal conv (time stride)."""

    def __init__(self, in_channels: int, out_channels: int, mid: int, stride: int = 1):
        super().__init__(
            nn.Conv3d(in_channels, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1),
                      bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out_channels, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0),
                      bias=False),
        )


class BasicBlock(nn.Module):
    """Two (2+1)D convs with BN (ReLU between), residual add, ReLU."""

    def __init__(self, in_channels: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Sequential(
            Conv2Plus1d(in_channels, planes, mid_channels(in_channels, planes), stride),
            nn.BatchNorm3d(planes),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            Conv2Plus1d(planes, planes, mid_channels(planes, planes)),
            nn.BatchNorm3d(planes),
        )
        self.downsample = None
        if stride != 1 or in_channels != planes:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, planes, 1, stride=stride, bias=False), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class R2Plus1d(nn.Module):
    """R(2+1)D-18: (2+1)D stem, four stages of two basic blocks, pooled linear head."""

    def __init__(self, width: int = 64, num_classes: int = 400, layers=(2, 2, 2, 2)):
        super().__init__()
        stem_mid = max(1, round(45 * width / 64))  # 45 at width 64, as in the paper's stem
        self.stem = nn.Sequential(
            nn.Conv3d(3, stem_mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(stem_mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(stem_mid, width, (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )
        stages, in_channels = [], width
        for i, depth in enumerate(layers):
            planes = width * 2 ** i
            stages.append(nn.Sequential(*[
                BasicBlock(in_channels if j == 0 else planes, planes, 2 if (i > 0 and j == 0) else 1)
                for j in range(depth)
            ]))
            in_channels = planes
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.layers(self.stem(x)))
        return self.fc(x.flatten(1))


def r2plus1d_18(num_classes: int = 400, width: int = 16, weights: str | os.PathLike | None = None,
                seed: int = 0) -> R2Plus1d:
    """R(2+1)D-18 in eval mode: random weights from ``seed`` with realistic BN, or a local
    state-dict checkpoint ``weights`` loaded strictly."""
    from fxaccel.zoo import _finish

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = R2Plus1d(width, num_classes)
    return _finish(model, weights=weights, clip_shape=(2, 3, 8, 64, 64), seed=seed)


def example_input(batch: int = 1, frames: int = 8, size: int = 64, seed: int = 0) -> torch.Tensor:
    """A random clip ``(batch, 3, frames, size, size)``; small by default for fast tests."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, frames, size, size, generator=gen)
