"""Efficient blocks: vanilla math in original form, a fast deploy form per target."""
from .base import EfficientBlock
from .layout import FoldTime, TimeFolded, UnfoldTime, fold_time, unfold_time

__all__ = ["EfficientBlock", "FoldTime", "TimeFolded", "UnfoldTime", "fold_time", "unfold_time"]
