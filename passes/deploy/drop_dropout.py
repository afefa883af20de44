"""Remove dropout and identity: in eval semantics (which deploy always has) both return their input.

Matches ``nn.Dropout*`` / ``nn.AlphaDropout`` / ``nn.Identity`` modules (exact types: a subclass
may compute something else) and ``F.dropout*`` calls; each node's users read its input instead.
"""
from __future__ import annotations

from torch import fx, nn

from fxaccel.pipeline import register_pass

from ._common import DROPOUT_FNS, DROPOUT_MODULES


def _removable(node: fx.Node, gm: fx.GraphModule) -> bool:
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        return type(mod) in DROPOUT_MODULES or type(mod) is nn.Identity
    return node.op == "call_function" and node.target in DROPOUT_FNS


def drop_dropout(gm: fx.GraphModule, ctx) -> None:
    """Bypass every dropout / identity node (its first argument is the value it returns)."""
    for node in list(gm.graph.nodes):
        if not _removable(node, gm) or not node.args or not isinstance(node.args[0], fx.Node):
            continue
        ctx.record.matched += 1
        node.replace_all_uses_with(node.args[0])
        gm.graph.erase_node(node)
        ctx.record.rewritten += 1
    gm.recompile()


register_pass(drop_dropout, stage="deploy", name="drop_dropout")
