"""``torch.mul`` / ``x.mul(y)`` -> ``x * y`` and ``torch.add`` / ``x.add(y)`` -> ``x + y``.

Rules then match one spelling. ``alpha`` other than 1 and ``out=`` are left alone (not the same op).
"""
import operator

import torch

from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Any, Fn, Match, Method, Rule, replace_with_function

_KWARGS_OK = {"alpha"}


def _plain(node, gm) -> bool:
    return set(node.kwargs) <= _KWARGS_OK and node.kwargs.get("alpha", 1) == 1 and len(node.args) == 2


class CanonicalizeArith(Rule):
    name = "canonicalize_arith"
    pattern = Alt(
        Fn((torch.mul, torch.add), Any("a"), Any("b"), extra=True, where=_plain),
        Method(("mul", "add"), Any("a"), Any("b"), extra=True, where=_plain),
    )

    def rewrite(self, m: Match) -> None:
        op = operator.mul if "mul" in str(getattr(m.root.target, "__name__", m.root.target)) else operator.add
        replace_with_function(m.gm, m.root, op, (m["a"], m["b"]))


register_pass(CanonicalizeArith(), stage="canonicalize")
