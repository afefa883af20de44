"""Test-only helpers for tiny graphs (import as ``from graph_helpers import Call`` from any test)."""
from torch import nn


class Call(nn.Module):
    """A function (or module) as the one call of a model: symbolic tracing records it as a node
    (a module at the root would be traced into), and stages take modules, not functions."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class Call2(Call):
    """:class:`Call` of a two-input function (FX traces a fixed signature, not ``*args``)."""

    def forward(self, a, b):
        return self.fn(a, b)
