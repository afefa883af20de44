"""Respell activations that have no int8 kernel as ones that do.

Measured on torch 2.13 (qnnpack and x86 engines): ``silu`` and ``F.hardswish`` raise on quantized
tensors; ``sigmoid``, ``relu``, ``hardtanh``, ``tanh`` and ``gelu`` run natively, and
``nn.Hardswish`` has an int8 module. So

* ``nn.SiLU`` / ``F.silu`` -> ``x * torch.sigmoid(x)`` (the ``mul`` then becomes a
  ``FloatFunctional`` in ``float_functional``): swish stays int8 instead of a float island;
* ``F.hardswish`` (a function) -> an ``nn.Hardswish`` module, which eager convert swaps for its
  int8 form.

Both rules drop an in-place flag (``inplace=True``); that is exact only when the activation is its
input's only reader, which ``check`` verifies.
"""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Any, Fn, Match, Mod, Rule, RuleSet, arg, inplace_conflict

from ._common import EAGER, add_module_near


def _exactly(cls: type):
    def where(node: fx.Node, gm: fx.GraphModule) -> bool:
        return type(gm.get_submodule(node.target)) is cls
    where.__name__ = f"is_{cls.__name__}"
    return where


def _inplace(m: Match) -> bool:
    mod = m.module()
    return bool(mod.inplace) if mod is not None else bool(arg(m.root, 1, "inplace", False))


class _Respell(Rule):
    """An activation ``pattern`` (binding ``x``) respelled by ``build``; refused when in place on a shared value."""

    def check(self, m: Match) -> str | None:
        return inplace_conflict(m.root, m["x"], _inplace(m))

    def rewrite(self, m: Match) -> None:
        new = self.build(m)
        m.root.replace_all_uses_with(new)
        m.gm.graph.erase_node(m.root)

    def build(self, m: Match) -> fx.Node:
        raise NotImplementedError


class SwishToSigmoidMul(_Respell):
    """``nn.SiLU`` / ``F.silu`` -> ``x * torch.sigmoid(x)``."""

    pattern = Alt(Mod(nn.SiLU, Any("x"), where=_exactly(nn.SiLU)), Fn(F.silu, Any("x"), extra=True))

    def build(self, m: Match) -> fx.Node:
        g, x = m.gm.graph, m["x"]
        with g.inserting_before(m.root):
            sig = g.call_function(torch.sigmoid, (x,))
            mul = g.call_function(operator.mul, (x, sig))
        for new in (sig, mul):
            new.meta.update({k: v for k, v in m.root.meta.items() if k in ("nn_module_stack", "tensor_meta")})
        return mul


class HardswishToModule(_Respell):
    """``F.hardswish`` -> an ``nn.Hardswish`` module (it has an int8 form)."""

    pattern = Fn(F.hardswish, Any("x"), extra=True)

    def build(self, m: Match) -> fx.Node:
        path = add_module_near(m.gm, m.root, nn.Hardswish(), "hardswish")
        with m.gm.graph.inserting_before(m.root):
            new = m.gm.graph.call_module(path, (m["x"],))
        new.meta.update(m.root.meta)
        return new


QUANTIZABLE_ACTIVATIONS = RuleSet([SwishToSigmoidMul(), HardswishToModule()])

register_pass(QUANTIZABLE_ACTIVATIONS, stage="quantize", name="quantizable_activations", after="fuse_modules",
              when=EAGER)
