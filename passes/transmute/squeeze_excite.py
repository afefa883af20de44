"""Squeeze-excite in its common spellings -> ``SqueezeExcite3d``.

After canonicalisation an SE reads ``x * sigmoid(expand(act(reduce(pool(x)))))`` (``*`` in either
operand order), where ``pool`` is ``F.adaptive_avg_pool3d(x, 1)`` and ``reduce``/``expand`` are
1x1x1 Conv3d modules, or ``nn.Linear`` modules over a flattened ``(N, C)`` view whose gate is viewed
back to ``(N, C, 1, 1, 1)``. Both ``x`` must be the very same value. Every intermediate value must
have this SE as its only user (else the block would hide a value someone else reads).
"""
import operator

import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.blocks.act import make_activation
from fxaccel.blocks.attention import SqueezeExcite3d
from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Fn, Method, Mod, Rule, Var, call_sites, record_provenance, shape_of

from ._common import ACTIVATIONS, block_path, swap_in

_POOL = Fn(F.adaptive_avg_pool3d, Var("x"), 1, name="pool")


def _core(layer, inner):
    return Fn(torch.sigmoid, Mod(layer, Fn(tuple(ACTIVATIONS), Mod(layer, inner, name="reduce"), name="act"),
                                 name="expand"), name="sig")


# flatten / view / reshape arguments vary by spelling; ``check`` proves the shapes instead
_FLAT = Alt(Fn((torch.flatten, torch.reshape), _POOL, name="flat", extra=True),
            Method(("flatten", "view", "reshape", "squeeze"), _POOL, name="flat", extra=True))
_GATE = Alt(_core(nn.Conv3d, _POOL),
            Alt(Method(("view", "reshape"), _core(nn.Linear, _FLAT), name="unflat", extra=True),
                Fn((torch.reshape, operator.getitem), _core(nn.Linear, _FLAT), name="unflat", extra=True)))


def _build(m) -> SqueezeExcite3d:
    reduce, expand = m.module("reduce"), m.module("expand")
    act = make_activation(ACTIVATIONS[m["act"].target])
    if isinstance(reduce, nn.Linear):
        return SqueezeExcite3d.from_linear(reduce, act, expand)
    return SqueezeExcite3d.from_modules(reduce, act, expand)


class SqueezeExcite(Rule):
    name = "squeeze_excite"
    pattern = Fn(operator.mul, Var("x"), _GATE)

    def check(self, m):
        leak = m.leak()
        if leak:
            return leak
        for key in ("reduce", "expand"):
            sites = call_sites(m.gm, m[key].target)
            if sites > 1:
                return f"{key} module {m[key].target} is called at {sites} places (shared weights)"
        x_shape = shape_of(m["x"])
        if x_shape is None or len(x_shape) != 5:
            return "input shape unknown or not 5-D (run transmute with example inputs)"
        n, c = x_shape[:2]
        if "flat" in m and (shape_of(m["flat"]) != (n, c) or shape_of(m["unflat"]) != (n, c, 1, 1, 1)):
            return f"flatten/view shapes {shape_of(m['flat'])} / {shape_of(m['unflat'])} are not (N, C) / (N, C, 1, 1, 1)"
        reduce, expand = m.module("reduce"), m.module("expand")
        if type(reduce) is not type(expand) or type(reduce) not in (nn.Conv3d, nn.Linear):
            return "reduce/expand are subclasses of Conv3d/Linear"
        try:
            _build(m)
        except (TypeError, ValueError) as err:
            return str(err)
        return None

    def rewrite(self, m):
        block = _build(m)
        if isinstance(m.module("reduce"), nn.Linear):
            record_provenance(m.gm, block.reduce, m.module("reduce"))
            record_provenance(m.gm, block.expand, m.module("expand"))
        path = block_path(m.gm, list(m.nodes), "squeeze_excite")
        swap_in(m.gm, list(m.nodes), m.root, path, block, (m["x"],))

    def describe(self, m):
        return f"{m.root.name} (SE on {m['x'].name})"


register_pass(SqueezeExcite(), stage="transmute")
