"""Hypothesis strategies for the things fxaccel rewrites.

Strategies draw hyper-parameters plus an integer seed; tensors are then built with a
``torch.Generator`` (fast, reproducible, and shrinkable), never element by element.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st
from torch import nn

ACTIVATIONS = ("identity", "relu", "swish", "hardswish")

seeds = st.integers(min_value=0, max_value=2**31 - 1)


@dataclass(frozen=True)
class Conv3dConfig:
    """A Conv3d configuration plus an input shape it accepts."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int, int]
    stride: tuple[int, int, int]
    padding: tuple[int, int, int]
    dilation: tuple[int, int, int]
    groups: int
    bias: bool
    padding_mode: str
    input_shape: tuple[int, int, int, int, int]

    def make(self, seed: int = 0) -> nn.Conv3d:
        """Build the Conv3d with weights drawn from ``seed``."""
        conv = nn.Conv3d(
            self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
            self.dilation, self.groups, self.bias, self.padding_mode,
        )
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            fan_in = conv.weight[0].numel()
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) / fan_in**0.5)
            if conv.bias is not None:
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen) * 0.1)
        return conv

    def example_input(self, seed: int = 0) -> torch.Tensor:
        return torch.randn(self.input_shape, generator=torch.Generator().manual_seed(seed + 1))


_KERNEL_KINDS = {
    "pointwise": lambda k, kt: (1, 1, 1),
    "depthwise": lambda k, kt: (kt, k, k),
    "temporal": lambda k, kt: (kt, 1, 1),
    "spatial": lambda k, kt: (1, k, k),
    "dense": lambda k, kt: (kt, k, k),
}


@st.composite
def conv3d_configs(
    draw,
    kinds=tuple(_KERNEL_KINDS),
    max_t: int = 6,
    max_hw: int = 9,
    max_channels: int = 8,
    batch_sizes=(1, 3),
    padding_modes=("zeros", "zeros", "reflect", "replicate", "circular"),
):
    """Conv3d configurations: every kernel kind fxaccel handles, stride, dilation, groups,
    padding (incl. non-zero padding modes), bias, with a valid input shape (T in 1..max_t,
    odd and even spatial sizes, batch 1 and 3)."""
    kind = draw(st.sampled_from(kinds))
    k = draw(st.sampled_from((1, 3, 5)))
    kt = draw(st.sampled_from((1, 2, 3, 5)))
    kernel = _KERNEL_KINDS[kind](k, kt)
    groups_kind = "depthwise" if kind == "depthwise" else draw(st.sampled_from(("one", "one", "grouped")))
    g = draw(st.integers(1, 4))
    if groups_kind == "depthwise":
        cin = draw(st.integers(1, max_channels))
        cout, groups = cin, cin
    elif groups_kind == "grouped":
        groups = g
        cin = groups * draw(st.integers(1, max(1, max_channels // groups)))
        cout = groups * draw(st.integers(1, max(1, max_channels // groups)))
    else:
        groups = 1
        cin, cout = draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels))
    stride = tuple(draw(st.sampled_from((1, 1, 2))) if kk > 1 or draw(st.booleans()) else 1 for kk in kernel)
    dilation = tuple(draw(st.sampled_from((1, 1, 2))) if kk > 1 else 1 for kk in kernel)
    padding = tuple(draw(st.integers(0, (kk - 1) * d // 2 + (kk > 1))) for kk, d in zip(kernel, dilation))
    padding_mode = draw(st.sampled_from(padding_modes)) if any(padding) else "zeros"
    # input must be big enough for the dilated kernel (and for reflect padding: pad < size).
    dims = []
    for kk, d, p, cap in zip(kernel, dilation, padding, (max_t, max_hw, max_hw)):
        lo = max(1, (kk - 1) * d + 1 - 2 * p, p + 1 if padding_mode == "reflect" else 1)
        if lo > cap:
            lo = cap
        dims.append(draw(st.integers(lo, max(lo, cap))))
    for (kk, d, p), size in zip(zip(kernel, dilation, padding), dims):
        if size + 2 * p < (kk - 1) * d + 1 or (padding_mode != "zeros" and p >= size + (padding_mode != "reflect")):
            padding_mode = "zeros"
    for (kk, d, p), size in zip(zip(kernel, dilation, padding), dims):
        if size + 2 * p < (kk - 1) * d + 1:
            return draw(conv3d_configs(kinds, max_t, max_hw, max_channels, batch_sizes, padding_modes))
    n = draw(st.sampled_from(batch_sizes))
    return Conv3dConfig(
        cin, cout, kernel, stride, padding, dilation, groups, draw(st.booleans()), padding_mode,
        (n, cin, *dims),
    )


def randomize_bn(bn: nn.modules.batchnorm._BatchNorm, seed: int) -> nn.modules.batchnorm._BatchNorm:
    """Give ``bn`` realistic random running stats and affine parameters (in place; returns it).

    BN defaults (mean 0, var 1, weight 1, bias 0) make folding bugs invisible.
    """
    gen = torch.Generator().manual_seed(seed)
    c = bn.num_features
    with torch.no_grad():
        if bn.track_running_stats:
            bn.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
            bn.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)
        if bn.affine:
            bn.weight.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)
            bn.bias.copy_(torch.randn(c, generator=gen) * 0.5)
    return bn


activations = st.sampled_from(ACTIVATIONS)
