"""How every writer checks the artifact it wrote: its outputs against the model's, one rule for all.

fp32 artifacts must match within ``rtol`` of each output's largest magnitude; quantized ones must
reach ``sqnr_floor`` dB (int8 rounding is not a bug, but how much of it is acceptable is the
caller's call). A mismatch raises :class:`~fxaccel.errors.ExportMismatch` naming the artifact.
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import ExportMismatch
from ..inputs import output_leaves
from ..numerics import assert_equivalent, relative_error, sqnr_db


def flatten_outputs(out: Any) -> list[torch.Tensor]:
    """The tensors of a model's output in pytree order (:func:`fxaccel.inputs.output_leaves`): how a
    writer compares a program's flat outputs with the eager model's."""
    return [t for _, t in output_leaves(out)]


def _float(t: torch.Tensor) -> torch.Tensor:
    return t.dequantize() if t.is_quantized else t


def compare_outputs(expected: Any, got: Any, inputs: tuple, *, rtol: float, sqnr_floor: float | None,
                    what: str) -> dict[str, Any]:
    """``{"metric": "rel_err" | "sqnr_db", "value": worst, "bound": ...}``, or raise ExportMismatch."""
    exp = [_float(t) for t in flatten_outputs(expected)]
    act = [_float(t) for t in flatten_outputs(got)]
    if not exp:
        raise ExportMismatch(f"the model's output holds no tensor: {what} has nothing to compare")
    if len(exp) != len(act):
        raise ExportMismatch(f"{what} gives {len(act)} outputs, the model {len(exp)}")
    if sqnr_floor is not None:
        worst = min(sqnr_db(e, a) for e, a in zip(exp, act))
        if not worst >= sqnr_floor:
            raise ExportMismatch(f"{what}'s SQNR {worst:.1f} dB is below the floor {sqnr_floor:.1f} dB "
                                 "(compared with the reference on the example inputs)")
        return {"metric": "sqnr_db", "value": worst, "bound": sqnr_floor}
    try:
        assert_equivalent(lambda *_: act, lambda *_: exp, inputs, rtol=rtol)
    except AssertionError as exc:
        raise ExportMismatch(f"{what} does not match the model: {exc}") from exc
    return {"metric": "rel_err", "value": max(relative_error(a, e) for a, e in zip(act, exp)), "bound": rtol}
