"""X3D-style residual bottlenecks -> ``X3dBottleneck``.

After the block rules, a bottleneck reads (``+`` in either operand order)::

    [act_out]( conv_c( [act_b]( [se]( conv_b( conv_a(x) ) ) ) ) + (x | shortcut(x)) )

with ``conv_a``/``conv_c``/``shortcut`` pointwise ``Conv3dBnAct`` blocks, ``conv_b`` a depthwise
one, ``se`` a ``SqueezeExcite3d`` and the activations activation blocks. Every inner value must
have the bottleneck as its only user.
"""
import operator

from fxaccel.blocks.act import Activation
from fxaccel.blocks.attention import SqueezeExcite3d
from fxaccel.blocks.bottleneck import X3dBottleneck
from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Fn, Mod, Opt, Rule, Var

from ._common import block_path, swap_in

_BRANCH = Mod(Conv3dBnAct, Mod(Conv3dBnAct, Var("x"), name="conv_a"), name="conv_b")
_MAIN = Mod(Conv3dBnAct, Opt(Mod(Activation, Opt(Mod(SqueezeExcite3d, _BRANCH, name="se")), name="act_b")),
            name="conv_c")
_SKIP = Alt(Mod(Conv3dBnAct, Var("x"), name="shortcut"), Var("x"))

_PARTS = ("conv_a", "conv_b", "se", "act_b", "conv_c", "shortcut", "act_out")


def _pointwise(block: Conv3dBnAct) -> bool:
    c = block.conv
    return c.kernel_size == (1, 1, 1) and c.groups == 1 and c.padding in ((0, 0, 0), "valid")


def _build(m) -> X3dBottleneck:
    mods = {k: m.module(k) for k in _PARTS}
    return X3dBottleneck(mods["conv_a"], mods["conv_b"], mods["se"], mods["act_b"], mods["conv_c"],
                         mods["shortcut"], mods["act_out"])


class Bottleneck(Rule):
    name = "bottleneck"
    pattern = Opt(Mod(Activation, Fn(operator.add, _MAIN, _SKIP, name="add"), name="act_out"))

    def check(self, m):
        leak = m.leak()
        if leak:
            return leak
        if not _pointwise(m.module("conv_a")) or not _pointwise(m.module("conv_c")):
            return "conv_a / conv_c are not pointwise"
        b = m.module("conv_b").conv
        if b.groups != b.in_channels or b.in_channels != b.out_channels:
            return "conv_b is not depthwise"
        if "shortcut" in m and m.module("shortcut").conv.kernel_size != (1, 1, 1):
            return "shortcut is not a 1x1x1 projection"
        try:
            _build(m)
        except (TypeError, ValueError) as err:
            return str(err)
        return None

    def rewrite(self, m):
        path = block_path(m.gm, list(m.nodes), "x3d_bottleneck")
        swap_in(m.gm, list(m.nodes), m.root, path, _build(m), (m["x"],))

    def describe(self, m):
        return f"{m.root.name} (residual block on {m['x'].name})"


register_pass(Bottleneck(), stage="transmute")
