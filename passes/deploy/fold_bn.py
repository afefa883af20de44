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

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from fxaccel.pipeline import register_pass
from fxaccel.rules import Any, Match, Mod, Rule, module_of, shape_of

from ._common import swap_module_call

_PAIRS = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d,
          nn.Linear: nn.BatchNorm1d}
_LAYER = Mod(tuple(_PAIRS), Any("x"), name="layer", where=lambda n, gm: type(module_of(gm, n)) in _PAIRS)


class FoldBn(Rule):
    name = "fold_bn"
    pattern = Mod(nn.modules.batchnorm._BatchNorm, _LAYER, name="bn")

    def check(self, m: Match) -> str | None:
        layer, bn, node = m.module("layer"), m.module("bn"), m["layer"]
        if type(bn) is not _PAIRS[type(layer)]:
            return f"{type(bn).__name__} does not pair with {type(layer).__name__}"
        if len(node.users) != 1:
            return f"{node.target} output has {len(node.users)} users (the unnormalised value is needed)"
        if bn.running_mean is None or bn.running_var is None:
            return "BN has no running stats (track_running_stats=False): not a constant affine map"
        width = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
        if bn.num_features != width:
            return f"BN has {bn.num_features} features, {node.target} gives {width}"
        if isinstance(layer, nn.Linear) and len(shape_of(node) or ()) != 2:
            return "BatchNorm1d after a Linear folds only on 2-D (N, features) inputs"
        return None

    def rewrite(self, m: Match) -> None:
        layer, bn = m.module("layer"), m.module("bn")
        fuse = fuse_linear_bn_eval if isinstance(layer, nn.Linear) else fuse_conv_bn_eval
        fused = fuse(layer.eval(), bn.eval())  # new module; the originals stay untouched
        swap_module_call(m.gm, m["bn"], fused, f"{m['layer'].target}_bn", (m["x"],), also_erase=(m["layer"],))

    def describe(self, m: Match) -> str:
        return f"{m['layer'].target} -> {m['bn'].target}"


register_pass(FoldBn(), stage="deploy", name="fold_bn", after="guard_inputs")
