"""Helpers shared by the lower passes: where the XNNPACK fixes apply.

ExecuTorch (``.pte``) and LiteRT (``.tflite``) both run the deploy form through XNNPACK, which
delegates the same spellings (4-D tensors, keepdim means), so the fixes apply to both formats.
"""
from __future__ import annotations

from fxaccel.pipeline import When

XNNPACK_FORMATS = ("executorch", "litert")
XNNPACK = When(formats=XNNPACK_FORMATS)
