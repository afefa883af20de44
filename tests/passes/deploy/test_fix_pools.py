"""fix_pools: adaptive pools with one window size become fixed pools (a global 3-D average its
block's form); on targets without 3-D pooling, 3-D pools fold; refusals have reasons, pools
without a folded form are a DeployError naming the layer."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.blocks.layout import TimeFolded
from fxaccel.deploying import DeployError
from fxaccel.passes.deploy.fix_pools import FixAdaptivePool, FoldPool3d
from fxaccel.testing import assert_equivalent
from fxaccel.testing.ops import ops_not_on_mobile, record_aten_ops

X = torch.randn(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("pool, x, fixed", [
    (nn.AdaptiveAvgPool2d((2, 4)), X[:, :, 0], nn.AvgPool2d),
    (nn.AdaptiveMaxPool3d((2, None, 4)), X, nn.MaxPool3d),
    (lambda x: F.adaptive_avg_pool1d(x, 4), X[:, :, 0, 0], nn.AvgPool1d),
])
def test_an_adaptive_pool_with_one_window_size_is_fixed(pool, x, fixed, traced, apply, calls, call, context):
    model = nn.Sequential(pool) if isinstance(pool, nn.Module) else call(pool)
    gm = traced(model, x)
    rec = apply(FixAdaptivePool(), gm, context("x86", x))
    assert rec.matched == rec.rewritten == 1 and calls(gm) == [fixed]
    assert_equivalent(gm, model, x)


@pytest.mark.parametrize("target", ["x86", "mobile_cpu"])
def test_a_global_3d_average_becomes_the_block_form(target, traced, apply, calls, context):
    model = nn.Sequential(nn.AdaptiveAvgPool3d(1))
    gm = traced(model, X)
    assert apply(FixAdaptivePool(), gm, context(target, X)).rewritten == 1
    assert nn.AdaptiveAvgPool3d not in calls(gm)
    assert (calls(gm)[0] is TimeFolded) == (target == "mobile_cpu")
    assert_equivalent(gm, model, X)


@pytest.mark.parametrize("shapes, reason", [
    (True, "output size (3, 3) does not divide input size (8, 8): adaptive windows differ in size, kept as is"),
    (False, "no propagated input shape"),
])
def test_each_refusal_has_its_reason(shapes, reason, traced, apply, calls, context):
    gm = traced(nn.Sequential(nn.AdaptiveAvgPool2d(3)), X[:, :, 0], shapes=shapes)
    rec = apply(FixAdaptivePool(), gm, context("x86", X))
    assert rec.rewritten == 0 and [s.reason for s in rec.skipped] == [reason]
    assert calls(gm) == [nn.AdaptiveAvgPool2d]


@pytest.mark.parametrize("pool", [nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)), nn.AvgPool3d(2),
                                  lambda x: F.avg_pool3d(x, (2, 1, 1))])
def test_3d_pools_fold_on_mobile(pool, traced, apply, calls, call, context):
    model = nn.Sequential(pool) if isinstance(pool, nn.Module) else call(pool)
    gm = traced(model, X)
    ctx = context("mobile_cpu", X)
    assert apply(FoldPool3d(), gm, ctx).rewritten == 1 and calls(gm) == [TimeFolded]
    assert ops_not_on_mobile(record_aten_ops(gm, X)) == []
    assert [row["form"] for row in ctx.report.layers] == ["FoldedPool3d"]
    assert_equivalent(gm, model, X)


def test_a_pool_without_a_folded_form_is_an_error_naming_it(traced, apply, context):
    gm = traced(nn.Sequential(nn.MaxPool3d(2, ceil_mode=True)), X)
    with pytest.raises(DeployError, match=r"layer '0' \(max pool 3d\) for 'mobile_cpu': ceil_mode=True"):
        apply(FoldPool3d(), gm, context("mobile_cpu", X))
