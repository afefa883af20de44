"""Guard each tensor input with its deployed shape (batch free): another clip length or crop
raises a clear error instead of running forms built for the example shape."""
from __future__ import annotations

from torch import fx

from fxaccel.pipeline import When, register_pass

from ._common import shape_of, wrap_input
from fxaccel.forms.folded_ops import ShapeGuard


def guard_inputs(gm: fx.GraphModule, ctx) -> None:
    for node in list(gm.graph.nodes):
        shape = shape_of(node)
        if node.op != "placeholder" or shape is None or len(shape) < 2:
            continue
        wrap_input(gm, node, ShapeGuard(shape, f"deployed model input {node.name!r}"), f"guard_{node.name}")
        ctx.record.rewritten += 1
    gm.recompile()


register_pass(guard_inputs, stage="deploy", name="guard_inputs", after="drop_dropout", when=When(root=True))
