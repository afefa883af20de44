"""Classifier heads: global average pool -> ``GlobalAvgPool3d``; ``nn.Linear`` -> ``Linear``.

Runs after ``squeeze_excite`` so the pools and linears inside SE modules are taken by that rule.
The flatten / permute / dropout between pool and linear stay as they are (they are cheap, and
deploy collapses reshapes).
"""
import torch.nn.functional as F
from torch import nn

from fxaccel.blocks.pool import GlobalAvgPool3d, Linear
from fxaccel.pipeline import register_pass
from fxaccel.rules import Any, Fn, Mod, Rule, call_sites, unique_name, module_of

from ._common import swap_in


def _rank(node):
    meta = node.meta.get("tensor_meta") if hasattr(node, "meta") else None
    return len(meta.shape) if meta is not None and hasattr(meta, "shape") else None


class GlobalPool(Rule):
    name = "global_pool"
    pattern = Fn(F.adaptive_avg_pool3d, Any("x"), where=lambda n, gm: n.args[1:] == (1,) and not n.kwargs)

    def check(self, m, gm):
        rank = _rank(m["x"])
        return None if rank in (None, 5) else f"input is {rank}-D, not 5-D"

    def rewrite(self, m, gm):
        swap_in(gm, [m.root], m.root, unique_name(gm, "global_pool"), GlobalAvgPool3d(), (m["x"],))


class LinearHead(Rule):
    name = "linear"
    pattern = Mod(nn.Linear, Any("x"))

    def check(self, m, gm):
        if type(module_of(gm, m.root)) is not nn.Linear:
            return f"{type(module_of(gm, m.root)).__name__} subclasses Linear"
        sites = call_sites(gm, m.root.target)
        if sites > 1:
            return f"linear module is called at {sites} places (shared weights)"
        if len(m.root.args) != 1 or m.root.kwargs:
            return "linear called with extra arguments"
        return None

    def rewrite(self, m, gm):
        node = m.root
        swap_in(gm, [node], node, node.target, Linear.from_module(module_of(gm, node)), (m["x"],))

    def describe(self, m):
        return m.root.target


register_pass(GlobalPool(), stage="transmute", after="squeeze_excite")
register_pass(LinearHead(), stage="transmute", after="squeeze_excite")
