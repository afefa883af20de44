"""X3D-style residual bottlenecks -> ``X3dBottleneck``.

After the block rules, a bottleneck reads (either operand order of the add)::

    act_out( conv_c( [act_b]( [se]( conv_b( conv_a(x) ) ) ) ) + (x | shortcut(x)) )

with ``conv_a``/``conv_c``/``shortcut`` pointwise ``Conv3dBnAct`` blocks, ``conv_b`` a depthwise
one, ``se`` a ``SqueezeExcite3d`` and the activations activation blocks; ``act_out`` may be absent.
Every combination is spelled out as its own full pattern (the matcher does not backtrack into
alternatives), and every inner value must have the bottleneck as its only user.
"""
import itertools
import operator

from fxaccel.blocks.act import Activation
from fxaccel.blocks.attention import SqueezeExcite3d
from fxaccel.blocks.bottleneck import X3dBottleneck
from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Fn, Mod, Rule, Var, module_of

from ._common import block_path, swap_in


def _chain(se: bool, act_b: bool):
    node = Mod(Conv3dBnAct, Mod(Conv3dBnAct, Var("x"), name="conv_a"), name="conv_b")
    if se:
        node = Mod(SqueezeExcite3d, node, name="se")
    if act_b:
        node = Mod(Activation, node, name="act_b")
    return Mod(Conv3dBnAct, node, name="conv_c")


def _adds():
    for se, act_b, proj, main_first in itertools.product((True, False), repeat=4):
        main = _chain(se, act_b)
        skip = Mod(Conv3dBnAct, Var("x"), name="shortcut") if proj else Var("x")
        yield Fn(operator.add, main, skip, name="add") if main_first else Fn(operator.add, skip, main, name="add")


def _not_before_activation(node, gm) -> bool:
    user = next(iter(node.users)) if len(node.users) == 1 else None
    return not (user is not None and isinstance(module_of(gm, user), Activation))


_ADDS = list(_adds())
_WITH_ACT = [Mod(Activation, add, name="act_out") for add in _ADDS]
_BARE = [Fn(operator.add, *add.args, name="add", where=_not_before_activation) for add in _ADDS]

_PARTS = ("conv_a", "conv_b", "se", "act_b", "conv_c", "shortcut", "add")


def _pointwise(block: Conv3dBnAct) -> bool:
    c = block.conv
    return c.kernel_size == (1, 1, 1) and c.groups == 1 and c.padding in ((0, 0, 0), "valid")


class Bottleneck(Rule):
    name = "bottleneck"
    pattern = Alt(*_WITH_ACT, *_BARE)

    def check(self, m, gm):
        inner = [m[k] for k in _PARTS if k in m.env and k != "add"] + ([m["add"]] if "act_out" in m.env else [])
        for node in inner:
            if len(node.users) != 1:
                return f"{node.name} has {len(node.users)} users (inside a bottleneck it must have one)"
        mods = {k: module_of(gm, m[k]) for k in _PARTS if k in m.env and k != "add"}
        if not _pointwise(mods["conv_a"]) or not _pointwise(mods["conv_c"]):
            return "conv_a / conv_c are not pointwise"
        b = mods["conv_b"].conv
        if b.groups != b.in_channels or b.in_channels != b.out_channels:
            return "conv_b is not depthwise"
        if "shortcut" in mods and not _pointwise(mods["shortcut"]) and mods["shortcut"].conv.kernel_size != (1, 1, 1):
            return "shortcut is not a 1x1x1 projection"
        try:
            m.env["block"] = X3dBottleneck(
                mods["conv_a"], mods["conv_b"], mods.get("se"), mods.get("act_b"), mods["conv_c"],
                mods.get("shortcut"), module_of(gm, m["act_out"]) if "act_out" in m.env else None,
            )
        except (TypeError, ValueError) as err:
            return str(err)
        return None

    def rewrite(self, m, gm):
        consumed = [m[k] for k in _PARTS if k in m.env] + ([m["act_out"]] if "act_out" in m.env else [])
        path = block_path(gm, consumed, "x3d_bottleneck")
        swap_in(gm, consumed, m.root, path, m["block"], (m["x"],))

    def describe(self, m):
        return f"{m.root.name} (residual block on {m['x'].name})"


register_pass(Bottleneck(), stage="transmute", after=("conv_bn_act", "activation", "squeeze_excite"))
