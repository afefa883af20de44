"""Remove dropout and identity: in eval semantics (which deploy always has) both return their input.

Matches ``nn.Dropout*`` / ``nn.AlphaDropout`` / ``nn.Identity`` modules (exact types: a subclass
may compute something else) and ``F.dropout*`` calls (whatever their ``p`` / ``training``
arguments); each node's users read its input instead.
"""
from __future__ import annotations

from torch import fx, nn

from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Any, Fn, Match, Mod, Rule, module_of

from ._common import DROPOUT_FNS, DROPOUT_MODULES

_MODULES = (*DROPOUT_MODULES, nn.Identity)


def _on_a_tensor(node: fx.Node, gm: fx.GraphModule) -> bool:
    return isinstance(node.args[0], fx.Node)


def _exact_type(node: fx.Node, gm: fx.GraphModule) -> bool:
    return type(module_of(gm, node)) in _MODULES and _on_a_tensor(node, gm)


class DropDropout(Rule):
    name = "drop_dropout"
    pattern = Alt(Mod(_MODULES, Any("x"), extra=True, where=_exact_type),
                  Fn(DROPOUT_FNS, Any("x"), extra=True, where=_on_a_tensor))

    def rewrite(self, m: Match) -> None:
        m.root.replace_all_uses_with(m["x"])
        m.gm.graph.erase_node(m.root)


register_pass(DropDropout(), stage="deploy", name="drop_dropout")
