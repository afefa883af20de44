"""Respell activations that have no int8 kernel as ones that do.

Measured on torch 2.13 (qnnpack and x86 engines): ``silu`` and ``F.hardswish`` raise on quantized
tensors; ``sigmoid``, ``relu``, ``hardtanh``, ``tanh`` and ``gelu`` run natively, and
``nn.Hardswish`` has an int8 module. So

* ``nn.SiLU`` / ``F.silu`` / ``x.silu()`` -> ``x * torch.sigmoid(x)`` (the ``mul`` then becomes a
  ``FloatFunctional`` in ``float_functional``): swish stays int8 instead of a float island;
* ``F.hardswish`` (a function) -> an ``nn.Hardswish`` module, which eager convert swaps for its
  int8 form.
"""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from fxaccel.pipeline import PassContext, register_pass

from ._common import add_module_near, eager, finish


def _is_silu(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return type(gm.get_submodule(node.target)) is nn.SiLU
    if node.op == "call_function":
        return node.target is F.silu
    return node.op == "call_method" and node.target == "silu"


def _is_hardswish_fn(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target is F.hardswish) or (
        node.op == "call_method" and node.target == "hardswish")


def quantizable_activations(gm: fx.GraphModule, ctx: PassContext) -> None:
    """Swish -> ``x * sigmoid(x)``; functional hardswish -> ``nn.Hardswish``."""
    if not eager(ctx):
        return
    for node in list(gm.graph.nodes):
        if _is_silu(gm, node):
            ctx.record.matched += 1
            x = node.args[0]
            with gm.graph.inserting_before(node):
                sig = gm.graph.call_function(torch.sigmoid, (x,))
                mul = gm.graph.call_function(operator.mul, (x, sig))
            for new in (sig, mul):
                new.meta.update({k: v for k, v in node.meta.items() if k in ("nn_module_stack", "tensor_meta")})
        elif _is_hardswish_fn(node):
            ctx.record.matched += 1
            path = add_module_near(gm, node, nn.Hardswish(), "hardswish")
            with gm.graph.inserting_before(node):
                mul = gm.graph.call_module(path, (node.args[0],))
            mul.meta.update(node.meta)
        else:
            continue
        node.replace_all_uses_with(mul)
        gm.graph.erase_node(node)
        ctx.record.rewritten += 1
    finish(gm)


register_pass(quantizable_activations, stage="quantize", name="quantizable_activations",
              after="fuse_modules")
