"""``nn.Sigmoid`` / ``F.sigmoid`` / ``x.sigmoid()`` -> ``torch.sigmoid(x)`` (swish and SE match on it)."""
import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Any, Fn, Method, Mod

from ._common import Respell


class CanonicalizeSigmoid(Respell):
    name = "canonicalize_sigmoid"
    canonical = staticmethod(torch.sigmoid)
    pattern = Alt(
        Mod(nn.Sigmoid, Any("x")),
        Fn((F.sigmoid, torch.sigmoid_), Any("x")),
        Method(("sigmoid", "sigmoid_"), Any("x")),
    )


register_pass(CanonicalizeSigmoid(), stage="canonicalize")
