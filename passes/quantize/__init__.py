"""Quantize stage: eager-mode (qnnpack, x86) graph rewrites run by ``fxaccel.quantize`` before prepare.

Order: ``fuse_modules`` -> ``quantizable_activations`` -> ``float_functional`` -> ``quant_stubs``
-> ``set_qconfig``. The pt2e flow (``xnnpack``) has its own quantizer and skips these passes.
"""
from . import fuse_modules, quantizable_activations, float_functional, quant_stubs, set_qconfig  # noqa: F401
