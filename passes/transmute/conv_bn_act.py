"""Conv3d (+ BatchNorm3d) (+ activation) -> ``Conv3dBnAct``.

One pattern, ``[act]([bn](conv(x)))``; the matcher tries the largest first. BN joins the block only
when that is exact and keeps the model trainable as before: the conv's output has exactly one user,
BN is an ``nn.BatchNorm3d`` with running statistics, its width matches, and the BN module is called
nowhere else. The activation joins when it is the only user of the BN (or conv) output. A conv
module called at several places (shared weights) is left alone: making it a block at one site would
silently untie the weights. A refused larger match is reported and the smaller one is tried.
"""
from torch import nn

from fxaccel.blocks.act import make_activation
from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.pipeline import register_pass
from fxaccel.rules import Any, Fn, Mod, Opt, Rule, call_sites

from ._common import ACTIVATIONS, swap_in

_CONV = Mod(nn.Conv3d, Any("x"), name="conv")
_BN = Mod(nn.modules.batchnorm._BatchNorm, _CONV, name="bn")


class ConvBnAct(Rule):
    name = "conv_bn_act"
    pattern = Opt(Fn(tuple(ACTIVATIONS), Opt(_BN), name="act"))

    def check(self, m):
        conv = m.module("conv")
        if type(conv) is not nn.Conv3d:
            return f"{type(conv).__name__} subclasses Conv3d (its forward may differ)"
        sites = call_sites(m.gm, m["conv"].target)
        if sites > 1:
            return f"conv module is called at {sites} places (shared weights); left alone"
        if "bn" in m:
            if len(m["conv"].users) > 1:
                return f"conv output has {len(m['conv'].users)} users: BN not fused"
            reason = self._bn_reason(m, m.module("bn"), conv)
            if reason:
                return f"BN {m['bn'].target} kept outside: {reason}"
        return m.leak()

    @staticmethod
    def _bn_reason(m, bn, conv):
        if type(bn) is not nn.BatchNorm3d:
            return f"{type(bn).__name__} is not BatchNorm3d"
        if not bn.track_running_stats or bn.running_mean is None:
            return "BN has no running stats (track_running_stats=False)"
        if bn.num_features != conv.out_channels:
            return "BN width differs from the conv's"
        if call_sites(m.gm, m["bn"].target) > 1:
            return "BN module is called at several places"
        return None

    def rewrite(self, m):
        act = make_activation(ACTIVATIONS[m["act"].target]) if "act" in m else None
        block = Conv3dBnAct.from_modules(m.module("conv"), m.module("bn"), act)
        swap_in(m.gm, list(m.nodes), m.root, m["conv"].target, block, (m["x"],))

    def describe(self, m):
        return f"{m['conv'].target}"


register_pass(ConvBnAct(), stage="transmute")
