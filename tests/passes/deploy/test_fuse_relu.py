"""fuse_relu: a conv / linear whose only reader is a ReLU (any spelling, in place too) becomes the
fused ``torch.ao.nn.intrinsic`` module; a conv output read elsewhere is a reason."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.nn import intrinsic as nni

from fxaccel.passes.deploy.fuse_relu import FuseRelu
from fxaccel.testing import assert_equivalent

X = torch.randn(2, 3, 6, 6)


class _Net(nn.Module):
    def __init__(self, relu, layer=None):
        super().__init__()
        self.conv, self.relu = layer or nn.Conv2d(3, 4, 3), relu

    def forward(self, x):
        return self.relu(self.conv(x))


@pytest.mark.parametrize("relu", [nn.ReLU(), F.relu, torch.relu, lambda t: t.relu()],
                         ids=["module", "F.relu", "torch.relu", "method"])
def test_every_relu_spelling_fuses(relu, traced, apply, calls):
    model = _Net(relu)
    gm = traced(model, X)
    rec = apply(FuseRelu(), gm)
    assert rec.matched == rec.rewritten == 1
    assert calls(gm) == [nni.ConvReLU2d]
    assert_equivalent(gm, model.eval(), X)


def test_linear_relu_fuses(traced, apply, calls):
    model, x = _Net(nn.ReLU(), nn.Linear(6, 5)), torch.randn(4, 6)
    gm = traced(model, x)
    assert apply(FuseRelu(), gm).rewritten == 1 and calls(gm) == [nni.LinearReLU]
    assert_equivalent(gm, model.eval(), x)


def test_a_conv_output_read_elsewhere_is_a_reason(traced, apply, calls):
    class Both(_Net):
        def forward(self, x):
            y = self.conv(x)
            return self.relu(y) + y

    model = Both(nn.ReLU())
    gm = traced(model, X)
    rec = apply(FuseRelu(), gm)
    assert rec.rewritten == 0 and [s.reason for s in rec.skipped] == [
        "conv has 2 users (a value inside the match is read elsewhere)"]
    assert nn.Conv2d in calls(gm) and nni.ConvReLU2d not in calls(gm)


def test_an_in_place_functional_relu_fuses_too(traced, apply, calls):
    # it writes only the conv's own output, which nothing else reads: the fused form is the same
    model = _Net(lambda t: F.relu(t, inplace=True))
    gm = traced(model, X)
    assert apply(FuseRelu(), gm).rewritten == 1 and calls(gm) == [nni.ConvReLU2d]
    assert_equivalent(gm, model.eval(), X)


def test_an_in_place_relu_on_a_value_read_elsewhere_is_a_reason(traced, apply, calls):
    class Both(_Net):
        def forward(self, x):
            y = self.conv(x)
            return F.relu(y, inplace=True) + y

    gm = traced(Both(None), X)
    rec = apply(FuseRelu(), gm)
    assert rec.rewritten == 0 and "conv has 2 users" in rec.skipped[0].reason
