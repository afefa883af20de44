"""``nn.ReLU`` / ``F.relu`` / ``torch.relu`` / ``x.relu()`` (and in-place forms) -> ``torch.relu(x)``."""
import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Any, Fn, Method, Mod

from ._common import Respell


class CanonicalizeRelu(Respell):
    name = "canonicalize_relu"
    canonical = staticmethod(torch.relu)
    pattern = Alt(
        Mod(nn.ReLU, Any("x")),
        Fn((F.relu, torch.relu_), Any("x"), extra=True),
        Fn(torch.relu, Any("x"), extra=True, where=lambda n, gm: len(n.args) != 1 or bool(n.kwargs)),
        Method(("relu", "relu_"), Any("x")),
    )


register_pass(CanonicalizeRelu(), stage="canonicalize")
