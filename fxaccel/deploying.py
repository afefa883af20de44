"""``deploy``: turn a (transmuted) model into its deploy form for one target and one input shape.

Stability: public (``deploy``, ``DeployError``).
"""
from __future__ import annotations

import copy
import time
from typing import Any, Iterable

import torch
from torch import fx, nn

from .bfloat16 import BF16_SQNR_FLOOR, require_bf16, to_bfloat16
from .errors import DeployError
from .inputs import as_input_tuple, run, verify_outputs
from .provenance import Provenance, mark, provenance_of
from .report import Report, attach
from .targets import get_target

LAYOUTS = ("network", "block")


def _transmuted(model: nn.Module, inputs: tuple, target: str, verify: bool) -> tuple[fx.GraphModule, Report | None]:
    """A private copy of ``model`` in transmuted form, and the transmute report if there is one."""
    from .report import report_of, report_or_none
    from .transmuting import transmute

    made_by = provenance_of(model)
    if isinstance(model, fx.GraphModule) and made_by is not None and made_by.stage == "transmute":
        return copy.deepcopy(model), report_or_none(model)
    gm = transmute(model, inputs, target=target, verify=verify)
    return gm, report_of(gm)


def deploy(
    model: nn.Module,
    example_inputs: Any,
    *,
    target: str = "mobile_cpu",
    tune: bool | Any = False,
    verify: bool = True,
    layout: str = "network",
    skip: Iterable[str] = (),
    op_counts: bool = True,
    channels_last: bool | None = None,
    dtype: torch.dtype = torch.float32,
) -> fx.GraphModule:
    """Return a new GraphModule computing ``model`` (eval semantics) fast on ``target``.

    ``model`` is a vanilla model (it is transmuted first) or the result of
    :func:`fxaccel.transmute`; it is never modified. ``example_inputs`` (as for
    :func:`fxaccel.transmute`: a tensor, a tuple of positional arguments, a dict of keywords) is required: deploy forms are built for one input shape (clip length, crop); the batch
    size stays free, and another clip shape raises a clear error.

    Train mode: deploy always produces the model's *eval* semantics (BN running statistics folded,
    dropout removed), working on an eval copy; the report says so when the model was in train mode.

    ``target``: ``"mobile_cpu"`` (no 5-D convolution or pooling left: time folded into the batch
    once at the entry, unfolded once at the head; a layer that cannot be lowered raises
    :class:`DeployError` naming it) or ``"x86"`` (Conv3d kept, BN folded, ReLU fused).
    ``tune``: ``True`` times candidate forms per layer signature on the target's runtime and keeps
    the fastest (cached in memory and on disk, see :mod:`fxaccel.choices`); a
    :class:`fxaccel.choices.Tuner` uses that tuner; ``False`` reads the built-in choice table.
    ``layout`` (mobile_cpu; a measurement aid): ``"network"`` (default) strips the per-block
    fold/unfold pairs; ``"block"`` leaves every block's ``TimeFolded`` wrapper in place.
    ``verify`` compares the outputs with ``model``'s on the example inputs (relative error 1e-5).
    ``skip`` names deploy passes not to run; ``op_counts`` adds per-layer ATen op counts to the
    report; ``channels_last`` (x86) overrides the built-in choice of channels_last_3d memory format.
    ``dtype=torch.bfloat16`` (x86 only, CPUs with AVX512-BF16 or AMX) gives the form in bf16 behind
    fp32 inputs and outputs (:mod:`fxaccel.bfloat16`); ``verify`` then asks for
    :data:`~fxaccel.bfloat16.BF16_SQNR_FLOOR` dB against ``model`` instead.

    >>> import torch, fxaccel
    >>> model = torch.nn.Sequential(torch.nn.Conv3d(3, 8, 3, padding=1), torch.nn.BatchNorm3d(8),
    ...                             torch.nn.ReLU()).eval()
    >>> x = torch.randn(2, 3, 4, 8, 8)
    >>> fast = fxaccel.deploy(model, x, target="mobile_cpu")
    >>> bool(torch.allclose(fast(x), model(x), atol=1e-5))
    True
    >>> fxaccel.report_of(fast).stage
    'deploy'
    """
    from .choices import Tuner, default_tuner
    from .options import DeployOptions
    from .pipeline import PassContext, run_stage
    from .tracing import propagate_shapes

    if not isinstance(model, nn.Module):
        raise TypeError(f"deploy takes an nn.Module, got {type(model).__name__}")
    inputs = as_input_tuple(example_inputs, required=True, model=model)
    prof = get_target(target)
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"deploy builds float32 or bfloat16 forms, got dtype={dtype}; for int8 use fxaccel.quantize")
    if dtype == torch.bfloat16:
        if prof.name != "x86":
            raise ValueError(f"dtype=torch.bfloat16 is for target='x86' (oneDNN's bf16 kernels), not {prof.name!r}; "
                             "for a phone write an fp16 program: fxaccel.export(..., dtype=torch.float16)")
        require_bf16()
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known layouts: {', '.join(LAYOUTS)}")
    start = time.perf_counter()
    was_training = model.training
    run(model, inputs, what=type(model).__name__)  # a clear error before any rewriting

    gm, previous = _transmuted(model, inputs, prof.name, verify)
    gm.eval()
    report = Report("deploy", prof.name, previous=previous)
    if was_training:
        report.extra["train_mode"] = ("the model was in train mode: deployed its eval semantics "
                                      "(BN running statistics, no dropout) from an eval copy")
    tuner = None
    if isinstance(tune, Tuner):
        tuner = tune
    elif tune:
        tuner = default_tuner()
    if channels_last is None:
        channels_last = prof.memory_format == torch.channels_last_3d
    ctx = PassContext("deploy", prof, inputs, report, root=gm, options=DeployOptions(
        tuner=tuner, layout=layout, op_counts=op_counts, channels_last=channels_last))
    with torch.no_grad():
        propagate_shapes(gm, inputs)
        out = run_stage("deploy", gm, ctx, skip=skip)
    if out is not gm:
        raise RuntimeError("a deploy pass replaced the root module; deploy passes must edit it in place")
    for _, sub in gm.named_modules():
        if isinstance(sub, fx.GraphModule):
            sub.graph.lint()
            sub.recompile()
    gm.eval()
    sqnr_floor = None
    if dtype == torch.bfloat16:
        to_bfloat16(gm, inputs)
        report.extra["dtype"] = "bfloat16"
        sqnr_floor = BF16_SQNR_FLOOR
    if verify:
        verify_outputs("deploy", model, gm, inputs, report, sqnr_floor=sqnr_floor)
    report.extra["seconds"] = round(time.perf_counter() - start, 3)
    attach(gm, report)
    mark(gm, Provenance("deploy", prof.name))
    return gm


__all__ = ["DeployError", "LAYOUTS", "deploy"]
