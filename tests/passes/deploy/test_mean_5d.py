"""mean_5d: means of 5-D tensors become 4-D/3-D means (x86: trailing dims as one flat reduction;
mobile: any dims but the batch's, on the folded layout); each refusal has its reason."""
import pytest
import torch

from fxaccel.forms.folded_ops import FoldedInput
from fxaccel.passes.deploy.mean_5d import FlatMean, Mean5d
from fxaccel.testing import assert_equivalent

X = torch.randn(2, 3, 4, 5, 6, generator=torch.Generator().manual_seed(0)) + 0.5


@pytest.mark.parametrize("target, form, mean", [
    ("x86", FlatMean, lambda x: x.mean((3, 4))),
    ("x86", FlatMean, lambda x: torch.mean(x, dim=(-3, -2, -1), keepdim=True)),
    ("mobile_cpu", FoldedInput, lambda x: x.mean(2, keepdim=True)),
    ("mobile_cpu", FoldedInput, lambda x: torch.mean(x, (1, 3))),
])
def test_a_5d_mean_becomes_the_target_form(target, form, mean, traced, apply, calls, call, context):
    model = call(mean)
    gm = traced(model, X)
    rec = apply(Mean5d(), gm, context(target, X))
    assert rec.matched == rec.rewritten == 1
    assert calls(gm) == [form]
    assert_equivalent(gm, model, X)


@pytest.mark.parametrize("target, mean, reason", [
    ("mobile_cpu", lambda x: x.mean((0, 2)), "the mean reduces the batch dimension"),
    ("x86", lambda x: x.mean(2), "mean over dims (2,) is not over trailing dims; kept (x86 runs it)"),
])
def test_each_refusal_has_its_reason(target, mean, reason, traced, apply, calls, call, context):
    gm = traced(call(mean), X)
    rec = apply(Mean5d(), gm, context(target, X))
    assert rec.rewritten == 0 and [s.reason for s in rec.skipped] == [reason]
    assert calls(gm) == ["mean"]


def test_means_of_other_ranks_or_with_dtype_are_not_its_business(traced, apply, calls, call, context):
    model = call(lambda x: x.mean((2, 3)).mean(1, dtype=torch.float64))
    gm = traced(model, X[:, :, 0])
    assert apply(Mean5d(), gm, context("mobile_cpu", X)).matched == 0
    gm = traced(call(lambda x: x.mean(1, dtype=torch.float64)), X)
    assert apply(Mean5d(), gm, context("mobile_cpu", X)).matched == 0 and calls(gm) == ["mean"]
