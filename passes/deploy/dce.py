"""Dead code elimination (nodes whose value nobody reads and that have no side effect) and unused
submodules. In-place ops are kept even when their result is unused (FX would drop ``y.mul_(2)``)."""
from __future__ import annotations

from torch import fx

from fxaccel.pipeline import register_pass

from fxaccel.dce import eliminate_dead_code


def dce(gm: fx.GraphModule, ctx) -> None:
    before = len(gm.graph.nodes)
    eliminate_dead_code(gm)
    gm.delete_all_unused_submodules()
    gm.recompile()
    ctx.record.rewritten += before - len(gm.graph.nodes)


register_pass(dce, stage="deploy", name="dce", after="collapse_views")
