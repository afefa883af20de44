"""Public testing helpers: equivalence assertions and hypothesis strategies.

Users test their own rewrite passes with these, exactly as fxaccel tests its built-ins.

Stability: public.
"""
from .assertions import assert_equivalent, relative_error, sqnr_db
from .models import build_vanilla_model, vanilla_model_specs, vanilla_models
from .ops import record_aten_ops
from .strategies import ACTIVATIONS, Conv3dConfig, activations, conv3d_configs, randomize_bn, seeds

__all__ = [
    "ACTIVATIONS", "Conv3dConfig", "activations", "assert_equivalent", "conv3d_configs",
    "build_vanilla_model", "randomize_bn", "record_aten_ops", "relative_error", "seeds", "sqnr_db",
    "vanilla_model_specs", "vanilla_models",
]
