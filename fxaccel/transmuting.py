"""``transmute``: trace a vanilla model and swap efficient blocks into it (original form)."""
from __future__ import annotations

import copy
import time
from typing import Any, Iterable

import torch
from torch import fx, nn

from .coverage import conv3d_macs, share_inside
from .inputs import as_input_tuple, run, verify_outputs
from .pipeline import PassContext, run_stage
from .provenance import Provenance, mark
from .report import Report, attach
from .rules import prune_submodules
from .targets import get_target
from .tracing import trace_inplace


def _tensor_names(model: nn.Module) -> dict[int, str]:
    return {id(t): name for name, t in model.state_dict(keep_vars=True).items()}


def transmute(
    model: nn.Module,
    example_inputs: Any = None,
    *,
    target: str = "mobile_cpu",
    leaves: Iterable[type | str] = (),
    skip: Iterable[str] = (),
    verify: bool = True,
) -> fx.GraphModule:
    """Return a new GraphModule in which vanilla subgraphs are efficient blocks (original form).

    The blocks compute exactly what the vanilla layers computed, forward and backward, and keep
    their parameters (moved, never re-initialised), so the result trains and loads vanilla
    checkpoints (see the report's ``state_dict_map``). ``model`` is never modified.

    ``example_inputs`` (the model's inputs as you would call it: a tensor, a tuple of positional
    arguments, each a tensor or a list/tuple/dict of them, or a dict of keyword arguments) enables shape-aware rules, the coverage
    figure, and (``verify=True``) a final check that outputs match. ``skip`` names passes not to run.
    ``leaves`` are module types or qualified names never traced into. Untraceable submodules stay
    as opaque leaves (their children are still transmuted) and are listed in the report.

    >>> import torch, fxaccel
    >>> x = fxaccel.zoo.example_input("XS")
    >>> gm = fxaccel.transmute(fxaccel.zoo.x3d("XS"), x)
    >>> fxaccel.report_of(gm).coverage
    1.0
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"transmute takes an nn.Module, got {type(model).__name__}")
    inputs = as_input_tuple(example_inputs, model=model)
    prof = get_target(target)
    start = time.perf_counter()
    work = copy.deepcopy(model)
    before = _tensor_names(work)
    report = Report("transmute", prof.name)
    gm = trace_inplace(work, leaves=leaves, opaque=report.opaque, example_inputs=inputs)
    ctx = PassContext("transmute", prof, inputs, report)
    gm = run_stage("canonicalize", gm, ctx, skip=skip)
    gm = run_stage("transmute", gm, ctx, skip=skip)
    for _, sub in gm.named_modules():
        if isinstance(sub, fx.GraphModule):
            prune_submodules(sub)
            sub.recompile()
    after = _tensor_names(gm)
    converted = {}
    for _, sub in gm.named_modules():
        if isinstance(sub, fx.GraphModule):
            converted.update({i: id(t) for i, t in sub.meta.pop("fxaccel_provenance", {}).items()})
    report.state_dict_map = {
        before[converted.get(i, i)]: name for i, name in after.items() if converted.get(i, i) in before
    }
    if inputs is not None:
        with conv3d_macs(gm) as macs:  # coverage rides on the run that verifies (or a plain one)
            if verify:
                verify_outputs("transmute", model, gm, inputs, report)
            else:
                run(gm, inputs)
        report.coverage = share_inside(macs)
    report.extra["seconds"] = round(time.perf_counter() - start, 3)
    attach(gm, report)
    mark(gm, Provenance("transmute", prof.name))
    return gm


def load_vanilla_state_dict(gm: fx.GraphModule, state_dict: dict[str, torch.Tensor], strict: bool = True):
    """Load a checkpoint of the *vanilla* model into its transmuted form, via the report's mapping.

    >>> import fxaccel
    >>> vanilla = fxaccel.zoo.x3d("XS")
    >>> gm = fxaccel.transmute(vanilla)
    >>> fxaccel.load_vanilla_state_dict(gm, vanilla.state_dict())
    <All keys matched successfully>
    """
    from .report import report_of

    mapping = report_of(gm).state_dict_map
    target = gm.state_dict()
    renamed = {}
    for name, value in state_dict.items():
        new = mapping.get(name)
        if new is None:
            if strict:
                raise KeyError(f"checkpoint key {name!r} has no counterpart in the transmuted model")
            continue
        renamed[new] = value.reshape(target[new].shape) if value.numel() == target[new].numel() else value
    return gm.load_state_dict(renamed, strict=strict)
