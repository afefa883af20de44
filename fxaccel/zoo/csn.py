"""Channel-separated networks, interaction-reduced (ir-CSN; Tran et al., ICCV 2019).

A ResNet bottleneck whose middle 3x3x3 conv is depthwise (``groups=channels``): channel
interactions happen only in the 1x1x1 convs around it. Depthwise 3x3x3 convs with a time stride
are exactly what mobile runtimes lack, so this is the zoo's hardest conv mix. ``csn_26`` has two
bottlenecks per stage (2 + 4*2*3 = 26 layers). Narrow by default (``width=16``); ``width=64`` is
the published width.

Example::

    >>> import torch
    >>> from fxaccel.zoo.csn import csn_26, example_input
    >>> model = csn_26(num_classes=5)
    >>> with torch.no_grad():
    ...     tuple(model(example_input()).shape)
    (1, 5)

Stability: public.
"""
from __future__ import annotations

import os
from typing import Sequence

import torch
from torch import nn

__all__ = ["CSN", "IrCsnBottleneck", "csn_26", "example_input"]


class IrCsnBottleneck(nn.Module):
    """1x1x1 reduce -> depthwise 3x3x3 (strided) -> 1x1x1 expand (x4), each with BN; residual."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv3d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, 3, stride=stride, padding=1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm3d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            shortcut = self.downsample(x)
        out += shortcut
        return self.relu(out)


class CSN(nn.Module):
    """ir-CSN: 3x7x7 stem + 1x3x3 max pool, four bottleneck stages (stride 2 in time and space
    from stage 2), pooled linear head."""

    def __init__(self, layers: Sequence[int] = (2, 2, 2, 2), width: int = 64, num_classes: int = 400,
                 dropout: float = 0.5):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, width, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.stages = nn.ModuleList()
        in_channels = width
        for i, depth in enumerate(layers):
            planes = width * 2 ** i
            blocks = []
            for j in range(depth):
                blocks.append(IrCsnBottleneck(in_channels, planes, 2 if (i > 0 and j == 0) else 1))
                in_channels = planes * IrCsnBottleneck.expansion
            self.stages.append(nn.Sequential(*blocks))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = self.pool(x).flatten(1)
        return self.fc(self.dropout(x))


def csn_26(num_classes: int = 400, width: int = 16, weights: str | os.PathLike | None = None,
           seed: int = 0) -> CSN:
    """ir-CSN-26 in eval mode: random weights from ``seed`` with realistic BN, or a local
    state-dict checkpoint ``weights`` loaded strictly."""
    from fxaccel.zoo import _finish

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CSN((2, 2, 2, 2), width, num_classes)
    return _finish(model, weights=weights, clip_shape=(2, 3, 8, 64, 64), seed=seed)


def example_input(batch: int = 1, frames: int = 8, size: int = 64, seed: int = 0) -> torch.Tensor:
    """A random clip ``(batch, 3, frames, size, size)``; small by default for fast tests."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, frames, size, size, generator=gen)
