"""Fuse conv/linear -> BatchNorm -> ReLU chains into one module before eager quantization.

Why: an int8 conv followed by a separate BN and ReLU requantizes twice and quantizes BN's output
range, which wastes precision; a fused module is one int8 kernel with BN folded into its weights
(``W' = W * gamma / sqrt(var + eps)``, torch's ``fuse_conv_bn_eval``) and ReLU clamping its output.
Deploy forms usually have BN folded already; this catches what is still unfused (``x86`` forms,
a ReLU written as a function, models quantized without deploy).

The fused module takes the conv's (linear's) name, so per-layer reports and ``skip=`` keep using
the names of the model's own layers.
"""
from __future__ import annotations

from torch import fx, nn
from torch.ao.quantization.fuse_modules import fuse_known_modules

from fxaccel.pipeline import PassContext, register_pass
from fxaccel.rules import call_sites

from ._common import EAGER, finish, is_relu, set_submodule, sole_user

_CONVS = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d}
_HEADS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm3d)


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def _chain(gm: fx.GraphModule, node: fx.Node) -> list[fx.Node]:
    """``node`` and the BN / ReLU nodes that follow it and can fuse into it."""
    head = _module(gm, node)
    chain = [node]
    nxt = sole_user(node)
    bn_type = _CONVS.get(type(head))
    if bn_type is not None and nxt is not None and type(_module(gm, nxt)) is bn_type:
        if _module(gm, nxt).track_running_stats:
            chain.append(nxt)
            nxt = sole_user(nxt)
    if nxt is not None and is_relu(gm, nxt) and nxt.args[0] is chain[-1]:
        chain.append(nxt)
    return chain


def fuse_modules(gm: fx.GraphModule, ctx: PassContext) -> None:
    """Fuse every conv(-BN)(-ReLU), linear-ReLU and BN-ReLU chain whose inner values have one user."""
    gone: set[fx.Node] = set()
    for node in list(gm.graph.nodes):
        if node in gone or node.op != "call_module" or type(_module(gm, node)) not in _HEADS:
            continue
        chain = _chain(gm, node)
        if len(chain) == 1:
            continue
        ctx.record.matched += 1
        shared = [n.target for n in chain if n.op == "call_module" and call_sites(gm, n.target) > 1]
        if shared:
            ctx.record.skip(node.target, f"module {shared[0]} is called more than once (shared weights)")
            continue
        head = _module(gm, node)
        mods = [_module(gm, n) if n.op == "call_module" else nn.ReLU().train(head.training) for n in chain]
        set_submodule(gm, node.target, fuse_known_modules(mods, is_qat=False)[0])
        chain[-1].replace_all_uses_with(node)
        for n in reversed(chain[1:]):
            gm.graph.erase_node(n)
            gone.add(n)
        ctx.record.rewritten += 1
    finish(gm)


register_pass(fuse_modules, stage="quantize", name="fuse_modules", when=EAGER)
