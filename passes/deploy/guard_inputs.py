"""Guard each tensor input with its deployed shape (batch free): another clip length or crop
raises a clear error instead of running forms built for the example shape."""
from __future__ import annotations

from fxaccel.forms.folded_ops import ShapeGuard
from fxaccel.pipeline import When, register_pass
from fxaccel.rules import Input, Match, Rule, shape_of

from ._common import wrap_input


class GuardInput(Rule):
    name = "guard_inputs"
    pattern = Input("x")

    def check(self, m: Match) -> str | None:
        shape = shape_of(m["x"])
        return None if shape is not None and len(shape) >= 2 else "not a batched tensor input: left unguarded"

    def rewrite(self, m: Match) -> None:
        x = m["x"]
        wrap_input(m.gm, x, ShapeGuard(shape_of(x), f"deployed model input {x.name!r}"), f"guard_{x.name}")


register_pass(GuardInput(), stage="deploy", after="drop_dropout", when=When(root=True))
