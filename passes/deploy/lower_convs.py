"""Vanilla Conv3d layers left outside efficient blocks -> folded-layout forms (targets without conv3d).

Transmute leaves some convs alone on purpose (a conv called at several places, a conv whose BN has
two users...). On ``mobile_cpu`` every one of them must still become 2-D convs: each call site is
wrapped as a ``Conv3dBnAct`` around a *copy* of the conv (BN already folded by ``fold_bn`` where
safe; a single-user ReLU after it joins) and lowered with the block's own deploy forms, so all
Conv3d configurations the block handles (stride, dilation, groups, padding modes) are covered.
A functional ``F.conv3d`` whose weight (and bias) are constants of the model (``get_attr``) is
lowered the same way. A Conv3d subclass cannot be lowered (its forward may compute something
else): a clear error.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import fx, nn

from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.deploying import DeployError
from fxaccel.pipeline import register_pass

from ._common import install, is_relu, shape_of, single_user
from .lower_blocks import deploy_block


_CONV3D_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")


def _functional_conv(gm: fx.GraphModule, node: fx.Node) -> nn.Conv3d | None:
    """An ``nn.Conv3d`` equal to a functional conv3d call on constant weights, else ``None``."""
    if node.op != "call_function" or node.target not in (F.conv3d, torch.conv3d):
        return None
    a = dict(zip(_CONV3D_ARGS, node.args))
    a.update(node.kwargs)
    w, b = a.get("weight"), a.get("bias")
    if not (isinstance(w, fx.Node) and w.op == "get_attr") or not (
            b is None or (isinstance(b, fx.Node) and b.op == "get_attr")):
        return None
    weight = _attr(gm, w.target)
    groups = int(a.get("groups", 1))
    conv = nn.Conv3d(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]), a.get("stride", 1),
                     a.get("padding", 0), a.get("dilation", 1), groups, bias=b is not None)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if b is not None:
            conv.bias.copy_(_attr(gm, b.target))
    return conv.eval()


def _attr(gm: fx.GraphModule, path: str) -> torch.Tensor:
    owner, _, name = path.rpartition(".")
    return getattr(gm.get_submodule(owner) if owner else gm, name).detach()


def lower_convs(gm: fx.GraphModule, ctx) -> None:
    if ctx.target.conv3d:
        return
    for node in list(gm.graph.nodes):
        functional = _functional_conv(gm, node)
        if functional is not None:
            hint = node.name
            node.args, node.kwargs = (node.args[0] if node.args else node.kwargs["input"],), {}
            node.op, node.target = "call_module", install(gm, functional, hint)
        if node.op != "call_module":
            continue
        conv = gm.get_submodule(node.target)
        if not isinstance(conv, nn.Conv3d):
            continue
        ctx.record.matched += 1
        if type(conv) is not nn.Conv3d:
            raise DeployError(f"cannot deploy layer {node.target!r} for {ctx.target.name!r}: it is a "
                              f"{type(conv).__name__} (a Conv3d subclass whose forward may differ) and the "
                              "target has no 5-D convolution; use a plain nn.Conv3d or deploy for x86")
        shape = shape_of(node.args[0]) if node.args else None
        if shape is None or len(node.args) != 1 or node.kwargs:
            raise DeployError(f"cannot deploy layer {node.target!r} for {ctx.target.name!r}: "
                              + ("no propagated input shape" if shape is None else "called with extra arguments"))
        relu = single_user(node)
        relu = relu if relu is not None and is_relu(relu, gm) else None
        block = Conv3dBnAct.from_modules(copy.deepcopy(conv), None, nn.ReLU() if relu is not None else None)
        block.eval()
        deployed, row = deploy_block(block, shape, ctx, str(node.target))
        row["block"] = "Conv3d" + ("+ReLU" if relu is not None else "")
        ctx.report.layers.append(row)
        name = install(gm, deployed, f"{node.target}_deploy")
        last = relu or node
        with gm.graph.inserting_after(last):
            new = gm.graph.call_module(name, tuple(node.args))
        new.meta.update(last.meta)
        last.replace_all_uses_with(new)
        if relu is not None:
            gm.graph.erase_node(relu)
        gm.graph.erase_node(node)
        ctx.record.rewritten += 1
    gm.delete_all_unused_submodules()
    gm.recompile()


register_pass(lower_convs, stage="deploy", name="lower_convs", after="lower_blocks")
