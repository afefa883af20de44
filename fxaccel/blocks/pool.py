"""Head blocks: global average pooling over a clip, and the classifier's linear layer.

XNNPACK has no 5-D mean or pool, so on ``mobile_cpu`` the global pool is where time is unfolded:
the folded ``(N*T, C, H, W)`` feature map is averaged spatially per frame (a 4-D mean), then the
``T`` frame vectors of each clip are averaged on the small pooled tensor.

Stability: public (``GlobalAvgPool3d``, ``Linear``).
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from ..targets import Target, get_target
from .base import EfficientBlock
from .layout import TimeFolded, checked

# layout.checked is one call node under symbolic tracing; fx.wrap applies per calling module.
torch.fx.wrap("checked")




class GlobalAvgPool3d(EfficientBlock):
    """Mean over ``(T, H, W)`` keeping dims: ``(N, C, T, H, W) -> (N, C, 1, 1, 1)``.

    Same as ``nn.AdaptiveAvgPool3d(1)`` and ``x.mean((2, 3, 4), keepdim=True)``.

    >>> import torch
    >>> from fxaccel.blocks.pool import GlobalAvgPool3d
    >>> from fxaccel.targets import get_target
    >>> x = torch.randn(2, 6, 4, 7, 7)
    >>> pool = GlobalAvgPool3d()
    >>> fast = pool.deploy(x.shape, get_target("mobile_cpu"))
    >>> fast(x).shape
    torch.Size([2, 6, 1, 1, 1])
    >>> torch.allclose(fast(x), pool(x), atol=1e-6)
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3, 4), keepdim=True)

    def deploy(self, input_shape: Sequence[int], target: Target) -> nn.Module:
        """x86: :class:`_GlobalAvgPoolFlat`; mobile_cpu: ``TimeFolded`` around
        :class:`_GlobalAvgPoolFolded` (folded output of a ``T=1`` tensor, ``(N, C, 1, 1)``)."""
        target = get_target(target)
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 5:
            raise ValueError(f"GlobalAvgPool3d.deploy: expected an input shape (N, C, T, H, W), got {shape}")
        if target.conv3d:
            return _GlobalAvgPoolFlat(shape)
        return TimeFolded(_GlobalAvgPoolFolded(shape), shape, t_out=1)


class _GlobalAvgPoolFlat(nn.Module):
    """``(N, C, T*H*W).mean(-1)``: one contiguous reduction, no 5-D mean."""

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked("GlobalAvgPool3d (x86 deploy form)", x, self.shape)
        return x.flatten(2).mean(-1).reshape(-1, self.shape[1], 1, 1, 1)


class _GlobalAvgPoolFolded(nn.Module):
    """Folded ``(N*T, C, H, W) -> (N, C, 1, 1)``: a 4-D spatial mean, then the mean of each clip's
    ``T`` frame vectors on the pooled ``(N, T, C)`` tensor (rows are clip-major).

    Spelt as one mean, ``reshape(N, T, C, H*W).permute(0, 2, 1, 3).mean((-1, -2), keepdim=True)``:
    XNNPACK delegates only 4-D means over the two innermost dims with ``keepdim=True``, so a
    per-clip frame mean ``(N, T, C).mean(1)`` would run outside the delegate on ExecuTorch's
    portable kernel. The permute moves the head's small feature map once (e.g. 432x4x5x5)."""

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        _, c, t, h, w = shape
        self.c, self.t, self.hw = int(c), int(t), int(h) * int(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.t == 1:
            return x.mean((2, 3), keepdim=True)
        x = x.reshape(-1, self.t, self.c, self.hw).permute(0, 2, 1, 3)
        return x.mean((-1, -2), keepdim=True)

    def extra_repr(self) -> str:
        return f"t={self.t}, channels={self.c}"


class Linear(EfficientBlock):
    """The classifier head's ``nn.Linear`` (submodule ``linear``) as a block, so heads are
    transmuted and reported like the rest of the network; its deploy form is the linear itself.

    >>> import torch
    >>> from fxaccel.blocks.pool import Linear
    >>> from fxaccel.targets import get_target
    >>> head = Linear.from_module(torch.nn.Linear(6, 3))
    >>> fast = head.deploy((2, 6), get_target("mobile_cpu"))
    >>> torch.equal(fast(torch.ones(2, 6)), head(torch.ones(2, 6)))
    True
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)

    @classmethod
    def from_module(cls, linear: nn.Linear) -> "Linear":
        """Wrap ``linear`` itself (not a copy), so its parameters keep training."""
        block = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        block.linear = linear
        return block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def deploy(self, input_shape: Sequence[int], target: Target) -> nn.Module:
        get_target(target)
        shape = tuple(int(s) for s in input_shape)
        if not shape or shape[-1] != self.linear.in_features:
            raise ValueError(
                f"Linear.deploy: expected an input shape (..., {self.linear.in_features}), got {shape}"
            )
        return copy.deepcopy(self.linear)
