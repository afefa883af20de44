"""3-D ResNets: inflated ResNets for clips (Hara et al. 2018; the "slow pathway" style ResNet-50).

Two spellings people use, so rewrites meet both:

* ``resnet3d_18``: basic blocks of two full 3x3x3 convs, conv1 7x7x7 stride (1,2,2), a spatial
  3x3x3 max pool, and stride 2 in time *and* space from layer 2 on (1x1x1 strided shortcuts).
* ``resnet3d_50``: bottlenecks; conv1 5x7x7, max pool 1x3x3; the first 1x1x1 of a bottleneck
  becomes 3x1x1 in the last two stages, the middle conv is always 1x3x3; spatial strides only.

Channel widths are narrow by default (``width=16``) so the models build and run fast in tests;
``width=64`` gives the published networks.

Example::

    >>> import torch
    >>> from fxaccel.zoo.resnet3d import resnet3d_18, example_input
    >>> model = resnet3d_18(num_classes=5)
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

__all__ = ["BasicBlock", "Bottleneck", "ResNet3d", "example_input", "resnet3d_18", "resnet3d_50"]


class BasicBlock(nn.Module):
    """Two ``kt x 3 x 3`` convs with BN, ReLU between, identity or 1x1x1 projection shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: tuple[int, int, int], kt: int = 3):
        super().__init__()
        pad = (kt // 2, 1, 1)
        self.conv1 = nn.Conv3d(in_channels, planes, (kt, 3, 3), stride=stride, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv3d(planes, planes, (kt, 3, 3), padding=pad, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = _shortcut(in_channels, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """``kt x 1 x 1`` reduce -> 1x3x3 (strided) -> 1x1x1 expand (x4), residual add, ReLU."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: tuple[int, int, int], kt: int = 1):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv3d(in_channels, planes, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), stride=stride, padding=(0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _shortcut(in_channels: int, out_channels: int, stride: tuple[int, int, int]) -> nn.Module | None:
    if in_channels == out_channels and stride == (1, 1, 1):
        return None
    return nn.Sequential(nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False),
                         nn.BatchNorm3d(out_channels))


class ResNet3d(nn.Module):
    """A 3-D ResNet: stem conv + max pool, four stages (``layer1``..``layer4``), pooled linear head.

    ``temporal_kernels[i]`` is the ``kt`` of stage ``i``'s blocks; ``temporal_strides[i]`` its
    time stride (space always strides 2 from stage 2 on).
    """

    def __init__(self, block: type[nn.Module], layers: Sequence[int], *, width: int = 64,
                 num_classes: int = 400, conv1_kt: int = 7, pool_kt: int = 3,
                 temporal_kernels: Sequence[int] = (3, 3, 3, 3),
                 temporal_strides: Sequence[int] = (1, 2, 2, 2), dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv3d(3, width, (conv1_kt, 7, 7), stride=(1, 2, 2),
                               padding=(conv1_kt // 2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((pool_kt, 3, 3), stride=(1, 2, 2), padding=(pool_kt // 2, 1, 1))
        in_channels = width
        for i, depth in enumerate(layers):
            planes = width * 2 ** i
            spatial = 1 if i == 0 else 2
            blocks = []
            for j in range(depth):
                stride = (temporal_strides[i], spatial, spatial) if j == 0 else (1, 1, 1)
                blocks.append(block(in_channels, planes, stride, temporal_kernels[i]))
                in_channels = planes * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


def _build(seed: int, weights, frames: int, size: int, **kwargs) -> ResNet3d:
    from fxaccel.zoo import _finish

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ResNet3d(**kwargs)
    return _finish(model, weights=weights, clip_shape=(2, 3, frames, size, size), seed=seed)


def resnet3d_18(num_classes: int = 400, width: int = 16, weights: str | os.PathLike | None = None,
                seed: int = 0) -> ResNet3d:
    """R3D-18 (basic blocks [2, 2, 2, 2], full 3x3x3 convs, time strided from layer 2), eval mode.

    Random weights seeded by ``seed`` with realistic BN (``fxaccel.zoo.realistic_bn``), or a local
    state-dict checkpoint ``weights`` loaded strictly.
    """
    return _build(seed, weights, 8, 64, block=BasicBlock, layers=(2, 2, 2, 2), width=width,
                  num_classes=num_classes)


def resnet3d_50(num_classes: int = 400, width: int = 16, weights: str | os.PathLike | None = None,
                seed: int = 0) -> ResNet3d:
    """Slow-pathway ResNet-50 (bottlenecks [3, 4, 6, 3], 3x1x1 only in the last two stages), eval."""
    return _build(seed, weights, 8, 64, block=Bottleneck, layers=(3, 4, 6, 3), width=width,
                  num_classes=num_classes, conv1_kt=5, pool_kt=1, temporal_kernels=(1, 1, 3, 3),
                  temporal_strides=(1, 1, 1, 1), dropout=0.5)


def example_input(batch: int = 1, frames: int = 8, size: int = 64, seed: int = 0) -> torch.Tensor:
    """A random clip ``(batch, 3, frames, size, size)``; small by default for fast tests."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, frames, size, size, generator=gen)
