"""Conv3d (+ BatchNorm3d) (+ activation) -> ``Conv3dBnAct``.

BN joins the block only when that is exact and keeps the model trainable as before: the conv's
output has exactly one user, BN is an ``nn.BatchNorm3d`` with running statistics, its width matches,
and the BN module is called nowhere else. The activation joins when it is the only user of the
BN (or conv) output. A conv module called at several places (shared weights) is left alone: making
it a block at one site would silently untie the weights.
"""
from torch import nn

from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.pipeline import register_pass
from fxaccel.rules import Any, Mod, Rule, call_sites, module_of

from ._common import act_block, activation_of, only_user, swap_in


class ConvBnAct(Rule):
    name = "conv_bn_act"
    pattern = Mod(nn.Conv3d, Any("x"))

    def check(self, m, gm):
        node = m.root
        conv = module_of(gm, node)
        if type(conv) is not nn.Conv3d:
            return f"{type(conv).__name__} subclasses Conv3d (its forward may differ)"
        if len(node.args) != 1 or node.kwargs:
            return "conv called with extra arguments"
        sites = call_sites(gm, node.target)
        if sites > 1:
            return f"conv module is called at {sites} places (shared weights); left alone"
        m.env["bn"], m.env["act"] = self._extend(gm, node, conv, m)
        return None

    def _extend(self, gm, node, conv, m):
        """The BN and activation nodes that can join the conv, recording why one cannot."""
        bn_node, act_node = None, None
        nxt = only_user(node)
        bn = module_of(gm, nxt) if nxt is not None else None
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            reason = self._bn_reason(gm, nxt, bn, conv)
            if reason:
                m.notes.append(f"BN {nxt.target} kept outside: {reason}")
            else:
                bn_node = nxt
        elif len(node.users) > 1 and any(isinstance(module_of(gm, u), nn.BatchNorm3d) for u in node.users):
            m.notes.append(f"conv output has {len(node.users)} users: BN not fused")
        tail = bn_node or node
        nxt = only_user(tail)
        if nxt is not None and activation_of(nxt):
            act_node = nxt
        return bn_node, act_node

    @staticmethod
    def _bn_reason(gm, bn_node, bn, conv):
        if type(bn) is not nn.BatchNorm3d:
            return f"{type(bn).__name__} is not BatchNorm3d"
        if not bn.track_running_stats or bn.running_mean is None:
            return "BN has no running stats (track_running_stats=False)"
        if bn.num_features != conv.out_channels:
            return "BN width differs from the conv's"
        if call_sites(gm, bn_node.target) > 1:
            return "BN module is called at several places"
        if len(bn_node.args) != 1 or bn_node.kwargs:
            return "BN called with extra arguments"
        return None

    def rewrite(self, m, gm):
        node, bn_node, act_node = m.root, m["bn"], m["act"]
        conv = module_of(gm, node)
        bn = module_of(gm, bn_node) if bn_node is not None else None
        act = act_block(activation_of(act_node)) if act_node is not None else None
        block = Conv3dBnAct.from_modules(conv, bn, act)
        last = act_node or bn_node or node
        swap_in(gm, [n for n in (node, bn_node, act_node) if n is not None], last, node.target, block, (m["x"],))

    def describe(self, m):
        return f"{m.root.target}"


register_pass(ConvBnAct(), stage="transmute")
