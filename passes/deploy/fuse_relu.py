"""Conv / Linear followed by ReLU -> one fused module (``torch.ao.nn.intrinsic.ConvReLU3d`` & co.).

Only when the ReLU is the conv's single user (the raw output is needed otherwise). The fused
modules are what quantization and oneDNN graph fusion look for; the ReLU runs in place on the
fresh conv output (exact: nothing else reads it), saving a pass over memory.
"""
from __future__ import annotations

import copy

from torch import nn
from torch.ao.nn import intrinsic as nni

from fxaccel.patterns import relu_of
from fxaccel.pipeline import register_pass
from fxaccel.rules import Any, Match, Mod, Rule, module_of

from ._common import swap_module_call

_FUSED = {nn.Conv1d: nni.ConvReLU1d, nn.Conv2d: nni.ConvReLU2d, nn.Conv3d: nni.ConvReLU3d, nn.Linear: nni.LinearReLU}
_LAYER = Mod(tuple(_FUSED), Any("x"), name="layer", where=lambda n, gm: type(module_of(gm, n)) in _FUSED)


class FuseRelu(Rule):
    name = "fuse_relu"
    pattern = relu_of(_LAYER)

    def check(self, m: Match) -> str | None:
        return m.leak()

    def rewrite(self, m: Match) -> None:
        layer = copy.deepcopy(m.module("layer"))
        swap_module_call(m.gm, m["relu"], _FUSED[type(layer)](layer, nn.ReLU(inplace=True)),
                         f"{m['layer'].target}_relu", (m["x"],), also_erase=(m["layer"],))

    def describe(self, m: Match) -> str:
        return str(m["layer"].target)


register_pass(FuseRelu(), stage="deploy", name="fuse_relu", after="lower_convs")
