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
from fxaccel.errors import DeployError
from fxaccel.patterns import relu_of
from fxaccel.pipeline import When, register_pass
from fxaccel.rules import Alt, Any, Fn, Match, Mod, Rule, arg, shape_of

from ._common import swap_module_call
from .lower_blocks import deploy_block


_CONV3D_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")


def _conv_args(node: fx.Node) -> dict | None:
    """The arguments of a functional conv3d call whose weight (and bias) are constants of the
    model (``get_attr``), by name; else ``None``."""
    a = dict(zip(_CONV3D_ARGS, node.args))
    a.update(node.kwargs)
    w, b = a.get("weight"), a.get("bias")
    if not (isinstance(w, fx.Node) and w.op == "get_attr") or not (
            b is None or (isinstance(b, fx.Node) and b.op == "get_attr")):
        return None
    return a


def _functional_conv(gm: fx.GraphModule, node: fx.Node) -> nn.Conv3d:
    """An ``nn.Conv3d`` equal to a functional conv3d call on constant weights."""
    a = _conv_args(node)
    weight, b = _attr(gm, a["weight"].target), a.get("bias")
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


def _on_constants(node: fx.Node, gm: fx.GraphModule) -> bool:
    return _conv_args(node) is not None


def _sole_user(node: fx.Node, gm: fx.GraphModule) -> bool:
    return len(node.users) == 1


def _sole_user_on_constants(node: fx.Node, gm: fx.GraphModule) -> bool:
    return _sole_user(node, gm) and _on_constants(node, gm)


def _conv3d(sole_user: bool) -> Alt:
    """A Conv3d module call (any arguments: extra ones are an error, not a miss) or a functional
    conv3d on constant weights, bound to ``conv``; ``sole_user``: its output has one reader."""
    return Alt(Mod(nn.Conv3d, Any("x"), extra=True, where=_sole_user if sole_user else None, name="conv"),
               Fn((F.conv3d, torch.conv3d), extra=True, name="conv",
                  where=_sole_user_on_constants if sole_user else _on_constants))


class LowerConv3d(Rule):
    """A Conv3d (and the ReLU that is its only user) -> the deploy form of a ``Conv3dBnAct``; the form
    comes from the target, the tuner and the stage options (``m.ctx``)."""

    name = "lower_convs"
    pattern = Alt(relu_of(_conv3d(sole_user=True)), _conv3d(sole_user=False))

    def rewrite(self, m: Match) -> None:
        node, relu, target = m["conv"], m.get("relu"), m.ctx.target
        if node.op == "call_module":
            conv, path, x = m.module("conv"), str(node.target), m["x"]
        else:
            conv, path, x = _functional_conv(m.gm, node), node.name, arg(node, 0, "input")
        if type(conv) is not nn.Conv3d:
            raise DeployError(f"cannot deploy layer {path!r} for {target.name!r}: it is a "
                              f"{type(conv).__name__} (a Conv3d subclass whose forward may differ) and the "
                              "target has no 5-D convolution; use a plain nn.Conv3d or deploy for x86")
        shape = shape_of(x)
        if shape is None or (node.op == "call_module" and (len(node.args) != 1 or node.kwargs)):
            raise DeployError(f"cannot deploy layer {path!r} for {target.name!r}: "
                              + ("no propagated input shape" if shape is None else "called with extra arguments"))
        block = Conv3dBnAct.from_modules(copy.deepcopy(conv), None, nn.ReLU() if relu is not None else None)
        block.eval()
        deployed, row = deploy_block(block, shape, m.ctx, path)
        row["block"] = "Conv3d" + ("+ReLU" if relu is not None else "")
        m.ctx.report.layers.append(row)
        swap_module_call(m.gm, m.root, deployed, f"{path}_deploy", (x,), also_erase=(node,) if relu is not None else ())

    def describe(self, m: Match) -> str:
        return str(m["conv"].target) if m["conv"].op == "call_module" else m["conv"].name


register_pass(LowerConv3d(), stage="deploy", name="lower_convs", after="lower_blocks",
              when=When(target={"conv3d": False}))
