"""Standalone activations -> activation blocks: swish -> ``Swish``, hardswish -> ``HardSwish``,
relu -> ``ReLU``; never one for the other (canonicalisation keeps hardswish apart from swish).

``conv_bn_act`` is tried first at an activation node (it absorbs an activation that directly
follows a conv/BN). Other activations (GELU, ELU, Mish, ...) have no efficient block: they are
reported as not converted.
"""
import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.blocks.act import make_activation
from fxaccel.pipeline import register_pass
from fxaccel.rules import SOURCE_PATH, Alt, Any, Fn, Mod, Rule, call_sites, unique_name

from ._common import ACTIVATIONS, swap_in


class ActivationBlock(Rule):
    name = "activation"
    pattern = Fn(tuple(ACTIVATIONS), Any("x"))

    def rewrite(self, m):
        gm, name = m.gm, ACTIVATIONS[m.root.target]
        path = m.root.meta.get(SOURCE_PATH) or unique_name(gm, f"{name}_{m.root.name}")
        if path and call_sites(gm, path) > 0:  # a module that is still called elsewhere
            path = unique_name(gm, f"{name}_{m.root.name}")
        swap_in(gm, [m.root], m.root, path, make_activation(name), (m["x"],))


_OTHER = (nn.GELU, nn.ELU, nn.SELU, nn.CELU, nn.Mish, nn.LeakyReLU, nn.PReLU, nn.Tanh, nn.Softplus,
          nn.Hardsigmoid, nn.Hardtanh, nn.ReLU6)
_OTHER_FN = (F.gelu, F.elu, F.selu, F.celu, F.mish, F.leaky_relu, F.prelu, torch.tanh, F.softplus,
             F.hardsigmoid, F.hardtanh, F.relu6)


class UnsupportedActivation(Rule):
    """Matches activations fxaccel has no block for, only to say so in the report."""

    name = "unsupported_activation"
    pattern = Alt(Mod(_OTHER, Any("x")), Fn(_OTHER_FN, Any("x"), extra=True))

    def check(self, m):
        what = m.root.target if m.root.op == "call_module" else getattr(m.root.target, "__name__", m.root.target)
        return f"activation {what} has no efficient block; not converted"


register_pass(ActivationBlock(), stage="transmute", after="conv_bn_act")
register_pass(UnsupportedActivation(), stage="transmute")
