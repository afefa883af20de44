"""Efficient blocks: vanilla math in original form, a fast deploy form per target.

Stability: public.
"""
from .act import HardSwish, Identity, ReLU, Swish, activation_name, make_activation
from .attention import SqueezeExcite3d
from .base import EfficientBlock
from .bottleneck import X3dBottleneck
from .conv import Conv3dBnAct
from .layout import FoldTime, TimeFolded, UnfoldTime, checked, fold_time, unfold_time
from .pool import GlobalAvgPool3d, Linear

__all__ = [
    "Conv3dBnAct", "EfficientBlock", "FoldTime", "GlobalAvgPool3d", "HardSwish", "Identity", "Linear",
    "ReLU", "SqueezeExcite3d", "Swish", "TimeFolded", "UnfoldTime", "X3dBottleneck", "activation_name",
    "checked", "fold_time", "make_activation", "unfold_time",
]
