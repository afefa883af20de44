"""Fuse conv/linear -> BatchNorm -> ReLU chains into one module before eager quantization.

Why: an int8 conv followed by a separate BN and ReLU requantizes twice and quantizes BN's output
range, which wastes precision; a fused module is one int8 kernel with BN folded into its weights
(``W' = W * gamma / sqrt(var + eps)``, torch's ``fuse_conv_bn_eval``) and ReLU clamping its output.
Deploy forms usually have BN folded already; this catches what is still unfused (``x86`` forms,
a ReLU written as a function, models quantized without deploy).

The fused module takes the conv's (linear's) name, so per-layer reports and ``skip=`` keep using
the names of the model's own layers. The rule is rooted at the chain's last node, so the longest
chain is found first; an inner value read elsewhere ends the chain before it (no reason: the
shorter chain is fused).
"""
from __future__ import annotations

from torch import fx, nn
from torch.ao.quantization.fuse_modules import fuse_known_modules

from fxaccel.patterns import relu_of
from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Any, Match, Mod, Rule, call_sites

from ._common import EAGER, one_user, set_submodule

_BN_OF = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d}
_HEADS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm3d)


def _head(node: fx.Node, gm: fx.GraphModule) -> bool:
    return type(gm.get_submodule(node.target)) in _HEADS and one_user(node, gm)


def _bn_after_conv(node: fx.Node, gm: fx.GraphModule) -> bool:
    """The BN folds into the conv before it: the BN type of the conv's rank, with running stats."""
    bn, conv = gm.get_submodule(node.target), gm.get_submodule(node.args[0].target)
    return type(bn) is _BN_OF.get(type(conv)) and bn.track_running_stats


def _inner_bn_after_conv(node: fx.Node, gm: fx.GraphModule) -> bool:
    return _bn_after_conv(node, gm) and one_user(node, gm)


def _conv_bn(where) -> Mod:
    return Mod(tuple(_BN_OF.values()), Mod(tuple(_BN_OF), Any("x"), name="head", where=_head), name="bn", where=where)


class FuseModules(Rule):
    """conv-BN-ReLU, conv-BN, conv-ReLU, linear-ReLU, BN-ReLU -> torch's fused module, at the head's name."""

    name = "fuse_modules"
    pattern = Alt(relu_of(Alt(_conv_bn(_inner_bn_after_conv), Mod(_HEADS, Any("x"), name="head", where=_head))),
                  _conv_bn(_bn_after_conv))

    def describe(self, m: Match) -> str:
        return m["head"].target

    def check(self, m: Match) -> str | None:
        shared = [n.target for n in (m["head"], m.get("bn")) if n is not None and call_sites(m.gm, n.target) > 1]
        return f"module {shared[0]} is called more than once (shared weights)" if shared else None

    def rewrite(self, m: Match) -> None:
        head, bn = m["head"], m.get("bn")
        chain = [n for n in (head, bn) if n is not None]
        conv = m.gm.get_submodule(head.target)
        mods = [m.gm.get_submodule(n.target) for n in chain]
        if m.root not in chain:  # the ReLU
            mods.append(m.module() or nn.ReLU().train(conv.training))
        set_submodule(m.gm, head.target, fuse_known_modules(mods, is_qat=False)[0])
        m.root.replace_all_uses_with(head)
        for node in m.nodes:  # root first: each node's only reader is gone before it
            if node is not head:
                m.gm.graph.erase_node(node)


register_pass(FuseModules(), stage="quantize", when=EAGER)
