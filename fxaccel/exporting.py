"""``export``: write a deployable artifact, load it back, and check it against the eager model."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from .inputs import as_input_tuple, map_tensors
from .options import LowerOptions
from .pipeline import PassContext, run_stage
from .provenance import Provenance, mark, provenance_of
from .report import Report, attach, report_or_none
from .targets import get_target

FORMATS = {".pte": "executorch", ".ptl": "torchscript_lite", ".pt": "torchscript", ".tflite": "litert"}
_ALL = ("executorch", "torchscript_lite", "torchscript", "nnapi", "litert")
INT8_SQNR_FLOOR = 25.0
"""dB an int8 artifact must reach against the int8 eager model it was written from (the same
quantized math, run by other kernels: rounding differs slightly, nothing else), unless that model's
own int8 noise is larger: see :func:`int8_sqnr_floor`."""
INT8_MARGIN_DB = 3.0


def int8_sqnr_floor(model: nn.Module) -> float:
    """The SQNR an artifact of the int8 ``model`` must reach against ``model`` itself.

    :data:`INT8_SQNR_FLOOR`, or ``INT8_MARGIN_DB`` under the model's own output SQNR vs fp32 (from
    its quantize report) when that is lower. Why: kernels that round ties or requantize in another
    order differ from the reference by int8 rounding noise, and a network that amplifies int8
    noise to X dB at its output amplifies those differences alike (measured, random-weight X3D-XS:
    int8 model 14.9 dB vs fp32, its .pte 16.1 dB vs the int8 model and 14.8 dB vs fp32). Asking
    for more than ~X dB would ask for more than int8 gives; a broken artifact (a wrong scale or
    layout) stays far below (< 5 dB).
    """
    made_by = provenance_of(model)
    measured = made_by.output_sqnr_db if made_by is not None else None
    if measured is None:
        return INT8_SQNR_FLOOR
    return min(INT8_SQNR_FLOOR, float(measured) - INT8_MARGIN_DB)


def _format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in _ALL:
            raise ValueError(f"unknown export format {fmt!r}; formats: {', '.join(_ALL)}")
        return fmt
    try:
        return FORMATS[path.suffix]
    except KeyError:
        raise ValueError(
            f"cannot tell the export format of {str(path)!r}: use a .pte (ExecuTorch + XNNPACK), .tflite "
            "(LiteRT), .ptl (TorchScript lite) or .pt (TorchScript) suffix, or pass format= (also 'nnapi')"
        ) from None


def _half(dtype: torch.dtype, fmt: str, int8: bool) -> bool:
    if dtype not in (torch.float32, torch.float16):
        raise ValueError(f"export writes float32 or float16 programs, got dtype={dtype}; for int8 use "
                         "fxaccel.quantize first")
    if dtype == torch.float16 and (fmt != "executorch" or int8):
        raise ValueError(f"dtype=torch.float16 is for fp32 models written as .pte (XNNPACK's fp16 kernels), "
                         f"not for {'an int8 model' if int8 else fmt}")
    return dtype == torch.float16


def _is_int8(model: nn.Module) -> bool:
    made_by = provenance_of(model)
    return made_by is not None and made_by.stage == "quantize"


def lower(model: nn.Module, inputs: tuple, fmt: str, dtype: str = "float32") -> nn.Module:
    """Run the ``lower`` stage (per-format graph fixes for ``fmt``) on a copy of an fp32 deploy-form
    graph; other models come back as they are. What :func:`export` writes: call it yourself to pass
    the result to a writer that returns more than a path (``to_pte``'s delegation report).
    ``dtype="float16"``: fixes for an fp16 program (the graph itself stays fp32: see :func:`export`)."""
    if not isinstance(model, fx.GraphModule) or _is_int8(model):
        return model
    previous, made_by = report_or_none(model), provenance_of(model)
    gm = copy.deepcopy(model)
    target = get_target(made_by.target if made_by is not None and made_by.target else "mobile_cpu")
    report = Report("lower", target.name, previous=previous)
    ctx = PassContext("lower", target, inputs, report, options=LowerOptions(fmt, dtype))
    gm = run_stage("lower", gm, ctx)
    gm.recompile()
    report.extra["format"] = fmt
    report.extra["dtype"] = dtype
    attach(gm, report)
    mark(gm, Provenance("lower", target.name))
    return gm


FP16_SQNR_FLOOR = 25.0
"""dB an fp16 program must reach against the fp32 model on the example inputs. fp16 is a precision
reduction like int8, judged the same way: it rounds weights and every activation to 11 significant
bits (~66 dB per op), and a network amplifies that with depth as it amplifies int8 noise; phones'
fp16 kernels also accumulate in fp16. Measured on x86 (XNNPACK emulates fp16): trained X3D-XS 60 dB,
random-weight X3D-XS at 160x160 34 dB (a relative error of 2.2e-2: too strict a bar as a max-abs
tolerance). The same bar as an int8 artifact against its own int8 model; a wrong cast or layout
gives < 5 dB."""


class HalfPrecision(nn.Module):
    """``module`` in fp16 behind fp32 inputs and outputs, so an fp16 program is a drop-in swap."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = copy.deepcopy(module).half()

    def forward(self, *inputs):
        out = self.module(*map_tensors(lambda x: x.half() if x.is_floating_point() else x, inputs))
        return torch.utils._pytree.tree_map(
            lambda t: t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t, out)


def export(model: nn.Module, example_inputs: Any, path: str | Path, *, format: str | None = None,
           dtype: torch.dtype = torch.float32, **options) -> Path:
    """Write ``model`` as a deployable artifact at ``path`` and return the path.

    The format follows the suffix (``.pte`` ExecuTorch with the XNNPACK delegate, ``.tflite``
    LiteRT (needs ``fxaccel[litert]``), ``.ptl`` TorchScript lite interpreter, ``.pt`` TorchScript)
    unless ``format`` is given (``"nnapi"`` writes a TorchScript file wrapping an Android NNAPI
    model). fp32 deploy-form graphs first go through the ``lower`` stage (per-format graph fixes).
    The artifact is loaded back and run on ``example_inputs``: fp32 must match the eager model
    (relative error < 1e-4), int8 (a model from ``fxaccel.quantize``; ``backend="litert"`` for a
    ``.tflite``) must reach :func:`int8_sqnr_floor` dB against it; otherwise this raises
    ``fxaccel.lowering.ExportMismatch``. ``dtype=torch.float16`` (``.pte`` only) writes an fp16
    program with fp32 inputs and outputs, for ARMv8.2+ phones (XNNPACK's fp16 kernels); it must
    reach :data:`FP16_SQNR_FLOOR` dB against the fp32 model. CPUs without native fp16 arithmetic (most x86)
    run it slower than fp32. ``options`` go to the writer (``bundled_inputs=True`` for TorchScript,
    ``interface=`` for NNAPI, ``sqnr_floor=``, ``rtol=``).

    >>> import torch, fxaccel, tempfile, os
    >>> model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, (1, 3, 3), padding=(0, 1, 1)), torch.nn.ReLU())
    >>> x = torch.randn(1, 3, 2, 8, 8)
    >>> fast = fxaccel.deploy(model, x, target="mobile_cpu")
    >>> path = fxaccel.export(fast, x, os.path.join(tempfile.mkdtemp(), "m.ptl"))
    >>> path.suffix
    '.ptl'
    """
    path = Path(path)
    fmt = _format(path, format)
    inputs = as_input_tuple(example_inputs, required=True, model=model)
    if not isinstance(model, nn.Module):
        raise TypeError(f"export takes an nn.Module, got {type(model).__name__}")
    int8 = _is_int8(model)
    half = _half(dtype, fmt, int8)
    if int8 and fmt != "nnapi":  # NNAPI artifacts cannot run here: conversion is the check
        options.setdefault("sqnr_floor", int8_sqnr_floor(model))
    path.parent.mkdir(parents=True, exist_ok=True)
    lowered = lower(model, inputs, fmt, "float16" if half else "float32")
    if fmt == "executorch":
        from .lowering.executorch import to_pte

        if half:
            options.setdefault("sqnr_floor", FP16_SQNR_FLOOR)
            options.setdefault("reference", model)
            lowered = HalfPrecision(lowered)
        to_pte(lowered, inputs, path, **options)
    elif fmt == "litert":
        from .lowering.litert import to_tflite

        to_tflite(lowered, inputs, path, **options)
    elif fmt == "nnapi":
        from .lowering.nnapi import to_nnapi

        to_nnapi(lowered, inputs, path, **options)
    else:
        from .lowering.torchscript import to_torchscript

        to_torchscript(lowered, inputs, path, lite=fmt == "torchscript_lite", **options)
    return path
