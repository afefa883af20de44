"""What produced a module: the fxaccel stage, its target and, for int8, the measured output SQNR.

The report is a log for people; code that decides what to do with a module (deploy reusing a
transmuted model, export taking the int8 path and choosing its SQNR floor, the CLI's quality gate)
reads this typed entry instead, so a change to the log's wording or keys changes no behaviour.

    >>> import torch, fxaccel
    >>> gm = fxaccel.transmute(torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1)), torch.randn(1, 3, 2, 4, 4))
    >>> fxaccel.provenance_of(gm)
    Provenance(stage='transmute', target='mobile_cpu', backend=None, output_sqnr_db=None)

Stability: public (``Provenance``, ``provenance_of``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

_KEY = "fxaccel_stage"


@dataclass(frozen=True)
class Provenance:
    """The stage that returned a module (``transmute``, ``deploy``, ``quantize``, ``lower``)."""

    stage: str
    target: str | None
    backend: str | None = None  # quantize: the int8 backend
    output_sqnr_db: float | None = None  # quantize: output SQNR vs fp32 on the calibration data


def mark(module: torch.nn.Module, provenance: Provenance) -> None:
    """Record ``provenance`` on ``module`` (in ``module.meta`` for a GraphModule)."""
    if isinstance(module, torch.fx.GraphModule):
        module.meta[_KEY] = provenance
    else:
        object.__setattr__(module, "_" + _KEY, provenance)


def provenance_of(module: torch.nn.Module) -> Provenance | None:
    """The :class:`Provenance` of a module an fxaccel stage returned, else ``None``."""
    meta = getattr(module, "meta", None)
    found = meta.get(_KEY) if isinstance(meta, dict) else None
    return found or getattr(module, "_" + _KEY, None)
