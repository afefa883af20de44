"""Classifier heads: global average pool -> ``GlobalAvgPool3d``; ``nn.Linear`` -> ``Linear``.

The pools and linears inside SE modules are taken by ``squeeze_excite`` first (its root, the gating
multiply, comes later in the graph, so it is tried first). The flatten / permute / dropout between
pool and linear stay as they are (they are cheap, and deploy collapses reshapes).
"""
import torch.nn.functional as F
from torch import nn

from fxaccel.blocks.pool import GlobalAvgPool3d, Linear
from fxaccel.pipeline import register_pass
from fxaccel.rules import Any, Fn, Mod, Rule, call_sites, shape_of, unique_name

from ._common import swap_in


class GlobalPool(Rule):
    name = "global_pool"
    pattern = Fn(F.adaptive_avg_pool3d, Any("x"), 1)

    def check(self, m):
        shape = shape_of(m["x"])
        return None if shape is None or len(shape) == 5 else f"input is {len(shape)}-D, not 5-D"

    def rewrite(self, m):
        swap_in(m.gm, [m.root], m.root, unique_name(m.gm, "global_pool"), GlobalAvgPool3d(), (m["x"],))


class LinearHead(Rule):
    name = "linear"
    pattern = Mod(nn.Linear, Any("x"))

    def check(self, m):
        if type(m.module()) is not nn.Linear:
            return f"{type(m.module()).__name__} subclasses Linear"
        sites = call_sites(m.gm, m.root.target)
        if sites > 1:
            return f"linear module is called at {sites} places (shared weights)"
        return None

    def rewrite(self, m):
        swap_in(m.gm, [m.root], m.root, m.root.target, Linear.from_module(m.module()), (m["x"],))

    def describe(self, m):
        return m.root.target


register_pass(GlobalPool(), stage="transmute")
register_pass(LinearHead(), stage="transmute")
