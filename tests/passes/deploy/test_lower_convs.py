"""lower_convs (targets without conv3d): a Conv3d left outside efficient blocks, with the ReLU that
is its only reader, becomes the deploy form of a Conv3dBnAct; functional conv3d on constant
weights too; a Conv3d subclass or a call with extra arguments is a DeployError naming the layer."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.deploying import DeployError
from fxaccel.passes.deploy.lower_convs import LowerConv3d
from fxaccel.testing import assert_equivalent
from fxaccel.testing.ops import ops_not_on_mobile, record_aten_ops

X = torch.randn(2, 3, 4, 6, 6, generator=torch.Generator().manual_seed(0))


def _lower(model, traced, apply, context, **kw):
    gm = traced(model, X, **kw)
    ctx = context("mobile_cpu", X)
    rec = apply(LowerConv3d(), gm, ctx)
    return gm, rec, ctx


@pytest.mark.parametrize("relu", [nn.ReLU(), F.relu, None])
def test_a_conv_and_its_relu_become_one_2d_form(relu, traced, apply, calls, context):
    model = nn.Sequential(nn.Conv3d(3, 5, 3, padding=1), *([] if relu is None else [nn.ReLU()]))
    gm, rec, ctx = _lower(model, traced, apply, context)
    assert rec.matched == rec.rewritten == 1 and len(calls(gm)) == 1
    assert ops_not_on_mobile(record_aten_ops(gm, X)) == []
    assert [row["block"] for row in ctx.report.layers] == ["Conv3d" + ("" if relu is None else "+ReLU")]
    assert_equivalent(gm, model.eval(), X)


def test_a_relu_that_is_not_the_only_reader_stays_outside(traced, apply, calls, context):
    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 5, 1)

        def forward(self, x):
            y = self.conv(x)
            return torch.relu(y) + y

    model = Both()
    gm, rec, ctx = _lower(model, traced, apply, context)
    assert rec.rewritten == 1 and torch.relu in calls(gm) and nn.Conv3d not in calls(gm)
    assert [row["block"] for row in ctx.report.layers] == ["Conv3d"]
    assert_equivalent(gm, model.eval(), X)


def test_a_functional_conv_on_constant_weights_lowers(traced, apply, calls, context):
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight, self.bias = nn.Parameter(torch.randn(4, 3, 3, 1, 1)), nn.Parameter(torch.randn(4))

        def forward(self, x):
            return F.conv3d(x, self.weight, self.bias, padding=(1, 0, 0))

    model = Functional()
    gm, rec, _ = _lower(model, traced, apply, context)
    assert rec.rewritten == 1 and F.conv3d not in calls(gm)
    assert ops_not_on_mobile(record_aten_ops(gm, X)) == []
    assert_equivalent(gm, model.eval(), X)


class _MyConv(nn.Conv3d):
    pass


def test_a_conv3d_subclass_is_an_error_naming_it(traced, apply, context):
    with pytest.raises(DeployError, match=r"layer '0' for 'mobile_cpu': it is a _MyConv"):
        _lower(nn.Sequential(_MyConv(3, 4, 1)), traced, apply, context, leaves=(_MyConv,))
