"""Quantize stage: eager-mode (qnnpack, x86) graph rewrites run by ``fxaccel.quantize`` before prepare.

Order (declared with ``after=``): ``fuse_modules`` -> ``quantizable_activations`` ->
``float_functional`` -> ``quant_stubs`` -> ``set_qconfig``. The first three are rules and run
together to a fixed point, so the ``x * sigmoid(x)`` a swish becomes is turned into a ``QMul`` too;
``quant_stubs`` and ``set_qconfig`` are graph passes (they decide per value, in graph order).
Every pass declares ``when=When(flows=("eager",))``: the pt2e flow (``xnnpack``) has its own
quantizer and skips them.
"""
from fxaccel.pipeline import register_modules

register_modules(__name__, __path__)
