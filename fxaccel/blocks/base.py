"""The efficient-block contract shared by every block family.

Stability: public.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from ..targets import Target


class EfficientBlock(nn.Module):
    """An ``nn.Module`` with two forms.

    *Original form* (the module itself): exactly the vanilla computation, forward and backward,
    trainable, with the vanilla parameter names where possible so checkpoints map 1:1.

    *Deploy form*: ``block.deploy(input_shape, target)`` returns a **new** module, arithmetically
    equivalent for inputs of ``input_shape`` (any batch size), fast on ``target``, quantization
    friendly. It has the same call interface as the block (5-D in, 5-D out for video tensors).
    For targets without conv3d it is a :class:`fxaccel.blocks.layout.TimeFolded` whose ``inner``
    works on the folded ``(N*T, C, H, W)`` layout. ``input_shape`` is the full shape of the
    block's (first) input including a batch dimension, whose size is ignored. The block itself is
    never modified; deploy forms require eval semantics (BN uses running statistics).
    """

    def deploy(self, input_shape: Sequence[int], target: Target) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} has no deploy form")
