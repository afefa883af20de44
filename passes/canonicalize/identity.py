"""Calls of ``nn.Identity`` modules (placeholders such as a disabled SE) are removed.

Exact by definition, and it lets rules see ``conv_b -> act`` where the model wrote
``conv_b -> Identity() -> act``. Subclasses of ``nn.Identity`` are left alone (they may compute).
"""
from torch import nn

from fxaccel.pipeline import register_pass
from fxaccel.rules import Any, Mod, Rule, module_of


class DropIdentity(Rule):
    name = "drop_identity"
    pattern = Mod(nn.Identity, Any("x"), where=lambda n, gm: type(module_of(gm, n)) is nn.Identity)

    def rewrite(self, m):
        m.root.replace_all_uses_with(m["x"])
        m.gm.graph.erase_node(m.root)


register_pass(DropIdentity(), stage="canonicalize")
