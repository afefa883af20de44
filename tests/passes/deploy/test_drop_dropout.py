"""drop_dropout: dropout / identity modules and ``F.dropout*`` calls go (eval semantics); subclasses stay."""
import operator

import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.passes.deploy.drop_dropout import DropDropout
from fxaccel.testing import assert_equivalent

X = torch.randn(2, 3, 4, 5, 5)


class _KeepsScale(nn.Dropout):
    """A subclass may compute something else: never dropped."""

    def forward(self, x):
        return x * 2


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.drop, self.drop3d, self.ident = nn.Conv3d(3, 3, 1), nn.Dropout(0.5), nn.Dropout3d(), nn.Identity()

    def forward(self, x):
        x = self.drop(self.conv(x))
        x = F.dropout(x, p=0.3, training=False)
        return self.ident(self.drop3d(x)) + F.alpha_dropout(x)


def test_every_dropout_and_identity_spelling_goes(traced, apply, calls):
    model = Net().eval()
    gm = traced(model, X)
    rec = apply(DropDropout(), gm)
    assert rec.rewritten == rec.matched == 5 and not rec.skipped
    assert calls(gm) == [nn.Conv3d, operator.add]
    assert_equivalent(gm, model, X)


def test_a_dropout_subclass_stays(traced, apply, calls):
    model = nn.Sequential(nn.Conv3d(3, 3, 1), _KeepsScale()).eval()
    gm = traced(model, X, leaves=(_KeepsScale,))
    rec = apply(DropDropout(), gm)
    assert rec.rewritten == 0 and calls(gm) == [nn.Conv3d, _KeepsScale]
    assert_equivalent(gm, model, X)
