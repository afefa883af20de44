"""Public testing helpers: equivalence assertions, an aten-op recorder and hypothesis strategies.

Users test their own rewrite passes with these, exactly as fxaccel tests its built-ins. The
strategies need ``hypothesis`` (the ``test`` extra); they are imported on first use, so
``import fxaccel`` works without it.

Stability: public.
"""
import importlib

from ..aten_ops import record_aten_ops  # core (deploy counts ops too), public here for tests
from ..numerics import assert_equivalent, relative_error, sqnr_db  # core (stages check outputs)

_LAZY = {
    "ACTIVATIONS": "strategies", "Conv3dConfig": "strategies", "activations": "strategies",
    "conv3d_configs": "strategies", "randomize_bn": "strategies", "seeds": "strategies",
    "build_vanilla_model": "models", "vanilla_model_specs": "models", "vanilla_models": "models",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["assert_equivalent", "record_aten_ops", "relative_error", "sqnr_db", *sorted(_LAZY)]
