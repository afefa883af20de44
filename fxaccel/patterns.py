"""Patterns several rules share: the spellings of one op, written once.

Stability: public (``relu_of``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import fx, nn

from .rules import Alt, Fn, Method, Mod, Pat


def _exact_relu(node: fx.Node, gm: fx.GraphModule) -> bool:
    return type(gm.get_submodule(node.target)) is nn.ReLU


def _one_tensor(node: fx.Node, gm: fx.GraphModule) -> bool:
    return len(node.args) == 1


def relu_of(inner: Pat, name: str = "relu") -> Pat:
    """A ReLU of ``inner``: ``nn.ReLU`` (exact type), ``torch.relu`` / ``F.relu`` or ``x.relu()``,
    bound to ``name``.

    In place counts (``F.relu(y, inplace=True)``, ``nn.ReLU(inplace=True)``): it writes only ``y``,
    and a rule that fuses or lowers the pair also requires ``y`` to have no other reader (its
    check: ``m.leak()``), so the form that computes the ReLU afresh gives the same values.
    """
    return Alt(Mod(nn.ReLU, inner, where=_exact_relu, name=name),
               Fn((torch.relu, F.relu), inner, extra=True, where=_one_tensor, name=name),
               Method("relu", inner, name=name))
