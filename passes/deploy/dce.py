"""Dead code elimination (nodes whose value nobody reads) and unused submodules."""
from __future__ import annotations

from torch import fx

from fxaccel.pipeline import register_pass


def dce(gm: fx.GraphModule, ctx) -> None:
    before = len(gm.graph.nodes)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
    ctx.record.rewritten += before - len(gm.graph.nodes)


register_pass(dce, stage="deploy", name="dce", after="collapse_views")
