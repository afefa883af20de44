"""Activation blocks: the elementwise non-linearities that follow convolutions.

They are efficient blocks so that the transmuter can hand a whole ``conv -> bn -> act`` chain to
:class:`fxaccel.blocks.conv.Conv3dBnAct` and so that a stand-alone activation can be lowered like
any other block. Being elementwise, their deploy form is the plain ``torch.nn`` module, which works
on 4-D and 5-D tensors alike; only the 5-D interface on a target without conv3d needs the
:class:`~fxaccel.blocks.layout.TimeFolded` wrapper (per the block contract), so the whole-model
layout pass sees every block in the same folded layout.

Stability: public (``Activation``, ``Swish``, ``HardSwish``, ``ReLU``, ``Identity``,
``make_activation``, ``activation_name``, ``ACTIVATION_NAMES``).

>>> import torch
>>> from fxaccel.blocks.act import make_activation, activation_name
>>> act = make_activation("swish")
>>> x = torch.randn(2, 3, 4, 5, 5)
>>> torch.equal(act(x), x * torch.sigmoid(x))
True
>>> activation_name(torch.nn.SiLU()), activation_name(act), activation_name(torch.nn.GELU())
('swish', 'swish', None)
>>> type(act.deploy(x.shape, "mobile_cpu")).__name__
'TimeFolded'
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..targets import Target, get_target
from .base import EfficientBlock
from .layout import TimeFolded


class Activation(EfficientBlock):
    """Base of the activation blocks: an elementwise function with a plain-module deploy form.

    Subclasses set ``name`` (the string :func:`make_activation` accepts) and implement
    :meth:`plain` (a fresh, parameter-free ``torch.nn`` module computing the same function).
    """

    name: str = ""

    def plain(self) -> nn.Module:
        """A fresh plain ``torch.nn`` module computing this activation (4-D and 5-D safe)."""
        raise NotImplementedError

    def deploy(self, input_shape: Sequence[int], target: str | Target) -> nn.Module:
        """The plain module; behind a :class:`TimeFolded` for 5-D inputs on targets without conv3d.

        The folded layout keeps the batch free, so only ``input_shape[1:]`` matters; a 5-D input of
        another clip shape is refused by the wrapper with a clear error.
        """
        target = get_target(target)
        shape = tuple(int(s) for s in input_shape)
        if len(shape) == 5 and not target.conv3d:
            return TimeFolded(self.plain(), shape, shape[2])
        return self.plain()


class ReLU(Activation):
    """``max(x, 0)``, never in place (the block owns no storage of its caller)."""

    name = "relu"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    def plain(self) -> nn.Module:
        return nn.ReLU()


class Swish(Activation):
    """``x * sigmoid(x)`` (SiLU), written literally so that it traces and exports as two core ops.

    Not a custom ``autograd.Function``: those are opaque to ``torch.fx`` and ``torch.export``.
    The deploy form is ``nn.SiLU``, which ``to_edge`` decomposes back into ``sigmoid`` and ``mul``,
    both of which XNNPACK delegates.
    """

    name = "swish"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)

    def plain(self) -> nn.Module:
        return nn.SiLU()


class HardSwish(Activation):
    """``x * relu6(x + 3) / 6``, the mobile-friendly swish (MobileNetV3)."""

    name = "hardswish"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x)

    def plain(self) -> nn.Module:
        return nn.Hardswish()


class Identity(Activation):
    """No activation: lets ``Conv3dBnAct`` always have an ``act`` submodule."""

    name = "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def plain(self) -> nn.Module:
        return nn.Identity()


_BLOCKS: dict[str, type[Activation]] = {cls.name: cls for cls in (Identity, ReLU, Swish, HardSwish)}

ACTIVATION_NAMES: tuple[str, ...] = tuple(_BLOCKS)

# Plain torch modules we recognise, by exact type (a subclass may override forward).
_PLAIN: dict[type, str] = {nn.Identity: "identity", nn.ReLU: "relu", nn.SiLU: "swish", nn.Hardswish: "hardswish"}


def make_activation(name: str | None) -> Activation:
    """A new activation block by name: ``"identity"``, ``"relu"``, ``"swish"`` or ``"hardswish"``.

    ``None`` means ``"identity"``. An unknown name raises ``ValueError`` listing the known ones.

    >>> make_activation("relu")
    ReLU()
    """
    key = "identity" if name is None else name
    try:
        return _BLOCKS[key]()
    except (KeyError, TypeError):
        known = ", ".join(repr(n) for n in ACTIVATION_NAMES)
        raise ValueError(
            f"unknown activation {name!r}; known activations: {known} (or None for identity)"
        ) from None


def activation_name(module: nn.Module) -> str | None:
    """The name of ``module``'s activation if fxaccel knows it, else ``None``.

    Recognises our blocks and the plain ``nn.Identity``, ``nn.ReLU`` (in place or not; a block
    never needs the in-place form), ``nn.SiLU`` and ``nn.Hardswish``. Subclasses of the plain
    modules are not recognised: they may compute something else.

    >>> import torch
    >>> activation_name(torch.nn.ReLU(inplace=True)), activation_name(torch.nn.Sigmoid())
    ('relu', None)
    """
    if isinstance(module, Activation) and type(module) in _BLOCKS.values():
        return module.name
    return _PLAIN.get(type(module))
