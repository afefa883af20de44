"""Squeeze-excite in its common spellings -> ``SqueezeExcite3d``.

After canonicalisation an SE reads ``x * sigmoid(expand(act(reduce(pool(x)))))`` (either operand
order), where ``pool`` is ``F.adaptive_avg_pool3d(x, 1)`` and ``reduce``/``expand`` are 1x1x1
Conv3d modules, or ``nn.Linear`` modules over a flattened ``(N, C)`` view whose gate is viewed back
to ``(N, C, 1, 1, 1)``. Both ``x`` must be the very same value. Every intermediate value must have
this SE as its only user (else the block would hide a value someone else reads).
"""
import operator

import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.blocks.attention import SqueezeExcite3d
from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Fn, Method, Mod, Rule, Var, call_sites, module_of, record_provenance

from ._common import ACTIVATIONS, act_block, activation_of, block_path, swap_in

_POOL = Fn(F.adaptive_avg_pool3d, Var("x"), name="pool", where=lambda n, gm: n.args[1:] == (1,))


def _core(layer, inner):
    return Fn(torch.sigmoid, Mod(layer, Fn(tuple(ACTIVATIONS), Mod(layer, inner, name="reduce"), name="act"),
                                 name="expand"), name="sig")


def _flat(p):
    return Alt(Fn(torch.flatten, p, name="flat"), Fn(torch.reshape, p, name="flat"),
               Method(("flatten", "view", "reshape", "squeeze"), p, name="flat"))


def _unflat(p):
    return Alt(Method(("view", "reshape"), p, name="unflat"), Fn(torch.reshape, p, name="unflat"),
               Fn(operator.getitem, p, name="unflat"))


_CONV_SE = _core(nn.Conv3d, _POOL)
_LINEAR_SE = _unflat(_core(nn.Linear, _flat(_POOL)))


def _shape(node):
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


class SqueezeExcite(Rule):
    name = "squeeze_excite"
    pattern = Alt(
        Fn(operator.mul, Var("x"), _CONV_SE), Fn(operator.mul, _CONV_SE, Var("x")),
        Fn(operator.mul, Var("x"), _LINEAR_SE), Fn(operator.mul, _LINEAR_SE, Var("x")),
    )

    def check(self, m, gm):
        inner = [m[k] for k in ("pool", "flat", "reduce", "act", "expand", "sig", "unflat") if k in m.env]
        for node in inner:
            if len(node.users) != 1:
                return f"{node.name} has {len(node.users)} users (the SE would hide a value read elsewhere)"
        for key in ("reduce", "expand"):
            sites = call_sites(gm, m[key].target)
            if sites > 1:
                return f"{key} module {m[key].target} is called at {sites} places (shared weights)"
        if not activation_of(m["act"]):
            return "SE activation called with extra arguments"
        x_shape = _shape(m["x"])
        if x_shape is None or len(x_shape) != 5:
            return "input shape unknown or not 5-D (run transmute with example inputs)"
        n, c = x_shape[:2]
        if "flat" in m.env and (_shape(m["flat"]) != (n, c) or _shape(m["unflat"]) != (n, c, 1, 1, 1)):
            return f"flatten/view shapes {_shape(m['flat'])} / {_shape(m['unflat'])} are not (N, C) / (N, C, 1, 1, 1)"
        reduce, expand = module_of(gm, m["reduce"]), module_of(gm, m["expand"])
        if type(reduce) is not type(expand) or type(reduce) not in (nn.Conv3d, nn.Linear):
            return "reduce/expand are subclasses of Conv3d/Linear"
        act = act_block(activation_of(m["act"]))
        try:
            if isinstance(reduce, nn.Linear):
                block = SqueezeExcite3d.from_linear(reduce, act, expand)
            else:
                block = SqueezeExcite3d.from_modules(reduce, act, expand)
        except (TypeError, ValueError) as err:
            return str(err)
        m.env["block"] = block
        return None

    def rewrite(self, m, gm):
        block = m["block"]
        if isinstance(module_of(gm, m["reduce"]), nn.Linear):
            record_provenance(gm, block.reduce, module_of(gm, m["reduce"]))
            record_provenance(gm, block.expand, module_of(gm, m["expand"]))
        consumed = [m[k] for k in ("pool", "flat", "reduce", "act", "expand", "sig", "unflat") if k in m.env]
        path = block_path(gm, consumed + [m.root], "squeeze_excite")
        swap_in(gm, consumed + [m.root], m.root, path, block, (m["x"],))

    def describe(self, m):
        return f"{m.root.name} (SE on {m['x'].name})"


register_pass(SqueezeExcite(), stage="transmute", before="conv_bn_act")
