"""Shapes of the example inputs on every node, for the rules that read them (``xnnpack_means``).

``inline_forms`` returns a freshly traced graph without ``tensor_meta``, and the lower stage runs on
a copy made for one export whose program has static shapes: so the shapes are propagated here, on
that export's example inputs. Where they do not fit the graph (a nested graph called with other
inputs) every old shape is dropped instead, so no rule reads a stale one: each says "no shapes".
"""
from __future__ import annotations

import torch
from torch import fx
from torch.fx.passes.shape_prop import ShapeProp

from fxaccel.inputs import clone_inputs
from fxaccel.pipeline import register_pass

from ._common import XNNPACK


def propagate_shapes(gm: fx.GraphModule, ctx) -> None:
    inputs = ctx.example_inputs
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    try:
        if inputs is None or len(placeholders) != len(inputs):
            raise ValueError(f"{len(placeholders)} placeholders for the example inputs")
        with torch.no_grad():
            ShapeProp(gm).propagate(*clone_inputs(inputs))
    except Exception as exc:  # a nested graph called with other inputs: no shapes here
        for node in gm.graph.nodes:
            node.meta.pop("tensor_meta", None)
        ctx.record.note(f"no shapes: the example inputs do not run this graph ({type(exc).__name__})")


register_pass(propagate_shapes, stage="lower", name="propagate_shapes", after="inline_forms", when=XNNPACK)
