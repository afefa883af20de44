"""Helpers shared by the lower passes: which format a pass is for, node shapes, buffers."""
from __future__ import annotations

from typing import Any

import torch
from torch import fx

from fxaccel.dce import eliminate_dead_code  # noqa: F401  (re-exported for the passes)
from fxaccel.rules import arg, unique_name  # noqa: F401


def for_format(ctx, *formats: str) -> bool:
    """Whether this export writes one of ``formats`` (a lower pass acts only for its own format)."""
    return ctx.options.get("format") in formats


def shape_of(value: Any) -> tuple[int, ...] | None:
    """The propagated shape of a node's value (``ShapeProp``'s ``tensor_meta``), else ``None``."""
    meta = value.meta.get("tensor_meta") if isinstance(value, fx.Node) else None
    shape = getattr(meta, "shape", None)
    return None if shape is None else tuple(int(s) for s in shape)


def refresh_shapes(gm: fx.GraphModule, ctx) -> bool:
    """Shape-propagate ``gm`` on the example inputs when they fit its placeholders."""
    from torch.fx.passes.shape_prop import ShapeProp

    inputs = ctx.example_inputs
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if inputs is None or len(placeholders) != len(inputs):
        return False
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(*(t.clone() for t in inputs))
    except Exception:  # a nested graph called with other inputs: no shapes here
        return False
    return True


def is_call(node: fx.Node, method: str, *functions: Any) -> bool:
    """``node`` calls ``x.<method>(...)`` or one of ``functions``."""
    if node.op == "call_method":
        return node.target == method
    return node.op == "call_function" and any(node.target is f for f in functions)


def constant(gm: fx.GraphModule, anchor: fx.Node, value: float, rank: int, stem: str) -> fx.Node:
    """A ``get_attr`` node of a ``(1,) * rank`` buffer holding ``value`` (before ``anchor``).

    Converters that refuse Python-scalar operands (NNAPI) accept a broadcast tensor constant.
    """
    name = unique_name(gm, stem)
    gm.register_buffer(name, torch.full((1,) * rank, float(value)))
    with gm.graph.inserting_before(anchor):
        return gm.graph.get_attr(name)
