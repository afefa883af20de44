"""Each efficient block -> its deploy form for the target and its propagated input shape.

Where a conv inside a block has several deploy forms (the target's form registry,
:mod:`fxaccel.forms`), the form comes from the registry's built-in choice or, with ``tune``, from
timing the candidates (:mod:`fxaccel.choices`). Composite blocks
(``X3dBottleneck``) build their parts' default forms themselves; a different choice for a part is
applied by replacing that part in the deploy form, found at the same attribute path (under
``inner`` when the form is ``TimeFolded``): the convention every composite block keeps. A part
that is not found keeps its default and the report says so.

Each lowered layer adds a row to ``report.layers``: the form, the ATen op count of one call before
and after (batch 1), and the candidate timings when tuned.
"""
from __future__ import annotations

from typing import Any as _Any

import torch
from torch import nn

from fxaccel.blocks.base import EfficientBlock
from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.blocks.layout import TimeFolded, fold_time
from fxaccel.choices import builtin_choice, signature
from fxaccel.errors import DeployError
from fxaccel.forms.folded import TemporalTaps
from fxaccel.forms.one_clip import one_clip_form
from fxaccel.pipeline import register_pass
from fxaccel.rules import Any, Match, Mod, Rule, call_sites, shape_of

from ._common import count_aten_ops, example_for, install


def _candidates(block: Conv3dBnAct, shape, target, forms, channels_last: bool, one_clip: bool):
    """form -> (module, inputs) as it runs inside the network (folded layout on targets without
    conv3d, the network's memory format on the others). ``one_clip``: as a one-clip ExecuTorch
    program runs it, i.e. temporal taps summed along the batch dim (the ``one_clip_taps`` lower
    pass), not the batch-free taps, whose transposes would make every tuned "taps" look slow."""
    x = example_for((1, *shape[1:]))
    if not target.conv3d:
        folded = (fold_time(x),)
        return {f.name: (_as_exported(block.deploy(shape, target, form=f.name).inner, one_clip), folded)
                for f in forms}
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return {f.name: (block.deploy(shape, target, form=f.name), (x,)) for f in forms}


def choose_conv_form(block: Conv3dBnAct, shape, ctx) -> tuple[str | None, dict[str, float] | None]:
    """The form for one Conv3dBnAct (``None``: its layer kind offers no choice) and, when tuned,
    the timings. Candidates and the built-in choice are the target's form registry."""
    target = ctx.target
    kind = target.layer_kind(block.conv)
    forms = kind.candidates(block.conv)
    if len(forms) < 2:
        return None, None
    act = getattr(block.act, "name", type(block.act).__name__)
    sig = signature(kind.name, block.conv, shape, act)
    tuner = ctx.options.tuner
    if tuner is None:
        return builtin_choice(target, kind.name, sig), None
    channels_last = ctx.options.channels_last
    if channels_last:
        sig += "|channels_last_3d"
    one_clip = not target.conv3d and tuner.runtime_for(target.name) == "executorch"
    if one_clip:  # timings of another spelling than before: another cache entry
        sig += "|one_clip"
    form, ms, _ = tuner.choose(target.name, sig,
                               lambda: _candidates(block, shape, target, forms, channels_last, one_clip))
    return form, ms


def _as_exported(module: nn.Module, one_clip: bool) -> nn.Module:
    if one_clip and isinstance(module, TemporalTaps):
        return one_clip_form(module) or module  # a temporal stride keeps the batch-free taps
    return module


def _inner_shapes(block: nn.Module, x: torch.Tensor) -> tuple[dict[str, tuple], int]:
    """Input shapes of the Conv3dBnAct parts of ``block`` (by path) and the op count of one call."""
    shapes: dict[str, tuple] = {}

    def hook(path):
        def record(mod, args):  # returns None: a pre-hook's return value would replace the args
            shapes.setdefault(path, tuple(args[0].shape))
        return record

    hooks = [m.register_forward_pre_hook(hook(p)) for p, m in block.named_modules()
             if p and isinstance(m, Conv3dBnAct)]
    try:
        ops = count_aten_ops(block, (x,))
    finally:
        for h in hooks:
            h.remove()
    return shapes, ops


def _replace_part(form: nn.Module, path: str, new: nn.Module, folded: bool, kinds: tuple[type, ...]) -> bool:
    """Put ``new`` at ``path`` in ``form`` (under ``inner`` when folded); ``False`` when no conv
    form (one of ``kinds``) is there."""
    full = f"inner.{path}" if folded else path
    parent_path, _, leaf = full.rpartition(".")
    try:
        parent = form.get_submodule(parent_path) if parent_path else form
        old = getattr(parent, leaf)
    except AttributeError:
        return False
    if not isinstance(old, kinds):
        return False
    setattr(parent, leaf, new.inner if folded else new)
    return True


def _describe(form: nn.Module) -> str:
    inner = form.inner if isinstance(form, TimeFolded) else form
    return type(inner).__name__


def deploy_block(block: EfficientBlock, shape: tuple[int, ...], ctx, path: str) -> tuple[nn.Module, dict[str, _Any]]:
    """The deploy form of ``block`` for input ``shape`` and the report row describing it."""
    target = ctx.target
    x = example_for((1, *shape[1:]))
    count = ctx.options.op_counts
    forms: dict[str, str] = {}
    timings: dict[str, dict[str, float]] = {}
    if isinstance(block, Conv3dBnAct):
        choice, ms = choose_conv_form(block, shape, ctx)
        deployed = block.deploy(shape, target, form=choice)
        if choice is not None:
            forms[""] = choice
        if ms:
            timings[""] = ms
        before = count_aten_ops(block, (x,)) if count else None
    else:
        parts, before = _inner_shapes(block, x) if count or any(
            isinstance(m, Conv3dBnAct) for m in block.modules()) else ({}, None)
        deployed = block.deploy(shape, target)
        folded = isinstance(deployed, TimeFolded)
        for part_path, part_shape in parts.items():
            part = block.get_submodule(part_path)
            choice, ms = choose_conv_form(part, part_shape, ctx)
            if choice is None:
                continue
            if ms:
                timings[part_path] = ms
            if choice == target.layer_kind(part.conv).forms[0].name:
                forms[part_path] = choice  # what the block builds by itself
                continue
            new = part.deploy(part_shape, target, form=choice)
            if _replace_part(deployed, part_path, new, folded, target.form_modules()):
                forms[part_path] = choice
            else:
                ctx.record.skip(f"{path}.{part_path}", f"form {choice!r} chosen but the block's deploy form "
                                "has no matching part at that path; kept the default form")
    row: dict[str, _Any] = {"layer": path, "block": type(block).__name__, "form": _describe(deployed)}
    if forms:
        row["choices"] = forms
    if count:
        row["ops_before"] = before
        row["ops_after"] = count_aten_ops(deployed, (x,))
    if timings:
        row["ms"] = timings
    return deployed, row


class LowerBlock(Rule):
    """An efficient block -> its deploy form for the target and its input shape (``m.ctx``)."""

    name = "lower_blocks"
    pattern = Mod(EfficientBlock, Any("x"), extra=True)

    def check(self, m: Match) -> str | None:
        if shape_of(m["x"]) is None:
            return "no propagated input shape (not reached by the example inputs?); kept in original form"
        return None

    def rewrite(self, m: Match) -> None:
        gm, node, ctx = m.gm, m.root, m.ctx
        block, shape = m.module(), shape_of(m["x"])
        try:
            deployed, row = deploy_block(block, shape, ctx, str(node.target))
        except DeployError:
            raise
        except Exception as err:
            raise DeployError(f"cannot deploy layer {node.target!r} ({type(block).__name__}) for target "
                              f"{ctx.target.name!r} with input {shape}: {err}") from err
        ctx.report.layers.append(row)
        if call_sites(gm, node.target) == 1:
            gm.add_submodule(node.target, deployed)  # same path: the deployed model reads like the user's
        else:  # a block called at several places: each site gets the form for its own input shape
            node.target = install(gm, deployed, f"{node.target}_deploy")

    def describe(self, m: Match) -> str:
        return str(m.root.target)


register_pass(LowerBlock(), stage="deploy", after="fold_bn")
