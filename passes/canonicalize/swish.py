"""Every swish spelling -> ``F.silu(x)``; hardswish spellings -> ``F.hardswish(x)``.

Swish spellings: ``nn.SiLU``, ``F.silu``, ``x * sigmoid(x)`` in either operand order (after the
sigmoid/arith canonicalisation, so ``torch.mul(x, x.sigmoid())`` is covered too, and so is any
custom module or ``autograd.Function`` whose traced body is exactly that). ``x * sigmoid(y)`` with
``y`` another value does not match: ``Var`` requires the very same node.
Note: FX traces *through* a custom ``autograd.Function`` (its ``forward`` is inlined); its custom
backward is then replaced by autograd's, which equals it exactly when the backward is correct.
"""
import operator

import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Any, Fn, Mod, Var

from ._common import Respell


class CanonicalizeSwish(Respell):
    name = "canonicalize_swish"
    canonical = staticmethod(F.silu)
    pattern = Alt(
        Mod(nn.SiLU, Any("x")),
        Fn(F.silu, Any("x"), extra=True, where=lambda n, gm: len(n.args) != 1 or bool(n.kwargs)),
        Fn(operator.mul, Var("x"), Fn(torch.sigmoid, Var("x"))),  # * commutes: both orders
    )

    def is_inplace(self, m) -> bool:
        if m.root.op == "call_function" and m.root.target is operator.mul:
            return False
        return super().is_inplace(m)


class CanonicalizeHardswish(Respell):
    name = "canonicalize_hardswish"
    canonical = staticmethod(F.hardswish)
    pattern = Alt(
        Mod(nn.Hardswish, Any("x")),
        Fn(F.hardswish, Any("x"), extra=True, where=lambda n, gm: len(n.args) != 1 or bool(n.kwargs)),
    )


register_pass(CanonicalizeSwish(), stage="canonicalize")
register_pass(CanonicalizeHardswish(), stage="canonicalize")
