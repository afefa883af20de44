"""Fold a BatchNorm into the conv / linear it follows: ``W' = W * gamma / sqrt(var + eps)``,
``b' = (b - mean) * gamma / sqrt(var + eps) + beta`` (torch's ``fuse_conv_bn_eval`` /
``fuse_linear_bn_eval`` do the arithmetic).

Safe only when (checked, reason recorded otherwise): the conv/linear output has the BN as its
only user (else the raw output is still needed), the BN has running statistics (else it
normalises with batch statistics, not a constant affine map), module types are exact, and widths
match. A module called at several places (shared weights) is fine here: each call site gets its
own folded copy, so the other call keeps its own BN (deploy forms are constants).
"""
from __future__ import annotations

from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from fxaccel.pipeline import register_pass

from ._common import swap_module_call

_PAIRS = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d,
          nn.Linear: nn.BatchNorm1d}


def _reason(gm: fx.GraphModule, node: fx.Node, bn_node: fx.Node) -> str | None:
    layer, bn = gm.get_submodule(node.target), gm.get_submodule(bn_node.target)
    if type(bn) is not _PAIRS[type(layer)]:
        return f"{type(bn).__name__} does not pair with {type(layer).__name__}"
    if len(node.users) != 1:
        return f"{node.target} output has {len(node.users)} users (the unnormalised value is needed)"
    if bn.running_mean is None or bn.running_var is None:
        return "BN has no running stats (track_running_stats=False): not a constant affine map"
    width = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    if bn.num_features != width:
        return f"BN has {bn.num_features} features, {node.target} gives {width}"
    if len(bn_node.args) != 1 or bn_node.kwargs or len(node.args) != 1 or node.kwargs:
        return "called with extra arguments"
    if isinstance(layer, nn.Linear):
        meta = node.meta.get("tensor_meta")
        if meta is None or len(meta.shape) != 2:
            return "BatchNorm1d after a Linear folds only on 2-D (N, features) inputs"
    return None


def fold_bn(gm: fx.GraphModule, ctx) -> None:
    for bn_node in list(gm.graph.nodes):
        if bn_node.op != "call_module" or not isinstance(gm.get_submodule(bn_node.target),
                                                         nn.modules.batchnorm._BatchNorm):
            continue
        src = bn_node.args[0] if bn_node.args else None
        if not (isinstance(src, fx.Node) and src.op == "call_module"
                and type(gm.get_submodule(src.target)) in _PAIRS):
            continue
        ctx.record.matched += 1
        reason = _reason(gm, src, bn_node)
        if reason:
            ctx.record.skip(f"{src.target} -> {bn_node.target}", reason)
            continue
        layer, bn = gm.get_submodule(src.target), gm.get_submodule(bn_node.target)
        fuse = fuse_linear_bn_eval if isinstance(layer, nn.Linear) else fuse_conv_bn_eval
        fused = fuse(layer.eval(), bn.eval())  # new module; the originals stay untouched
        swap_module_call(gm, bn_node, fused, f"{src.target}_bn", tuple(src.args), also_erase=(src,))
        ctx.record.rewritten += 1
    gm.recompile()


register_pass(fold_bn, stage="deploy", name="fold_bn", after="guard_inputs")
