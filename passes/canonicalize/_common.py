"""Shared helper of the canonicalisation rules: "this spelling means that canonical call"."""
from __future__ import annotations

from fxaccel.rules import SOURCE_PATH, Match, Rule, arg, inplace_conflict, replace_with_function




class Respell(Rule):
    """Rewrite any spelling matched by ``pattern`` (binding ``x``) to ``canonical(x)``.

    Spellings may be in place (``relu_``, ``inplace=True``); dropping that is exact only when the
    op is its input's only user, which ``check`` verifies.
    """

    canonical = None

    def is_inplace(self, m: Match) -> bool:
        node = m.root
        mod = m.module()
        if mod is not None:
            return bool(getattr(mod, "inplace", False))
        name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
        if name.endswith("_") and not name.endswith("__"):
            return True
        return node.op == "call_function" and bool(arg(node, 1, "inplace", False))

    def check(self, m: Match) -> str | None:
        return inplace_conflict(m.root, m["x"], self.is_inplace(m))

    def rewrite(self, m: Match) -> None:
        new = replace_with_function(m.gm, m.root, self.canonical, (m["x"],))
        if m.root.op == "call_module":  # remember where the module lived: a block can live there later
            new.meta[SOURCE_PATH] = m.root.target
