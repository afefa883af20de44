"""collapse_views: a reshape of a view-like op is one reshape, a permute of a permute one permute
(or none); an inner value read elsewhere is a reason."""
import pytest
import torch

from fxaccel.passes.deploy.collapse_views import CollapsePermutes, CollapseReshapes
from fxaccel.rules import RuleSet
from fxaccel.testing import assert_equivalent

X = torch.randn(2, 3, 4, 5)
RULES = RuleSet([CollapseReshapes(), CollapsePermutes()])


@pytest.mark.parametrize("fn", [
    lambda x: x.view(6, 20).reshape(2, 60),
    lambda x: x.flatten(1).view(2, 3, 20),
    lambda x: torch.reshape(torch.flatten(x, 2), (6, 4, 5)),
    lambda x: x.reshape(-1).view(6, -1).reshape(2, 3, 20),
])
def test_a_chain_of_reshapes_is_one_reshape(fn, traced, apply, calls, call):
    model = call(fn)
    gm = traced(model, X)
    rec = apply(RULES, gm)
    assert rec.rewritten >= 1 and calls(gm) == ["reshape"]
    assert_equivalent(gm, model, X)


@pytest.mark.parametrize("fn, left", [
    (lambda x: x.permute(0, 2, 3, 1).permute(0, 3, 1, 2), []),
    (lambda x: torch.permute(x.permute(1, 0, 2, 3), (0, 1, 3, 2)), ["permute"]),
    (lambda x: x.permute(3, 2, 1, 0).permute((1, 0, 3, 2)).permute(0, 1, 3, 2), ["permute"]),
])
def test_a_chain_of_permutes_is_one_permute_or_none(fn, left, traced, apply, calls, call):
    model = call(fn)
    gm = traced(model, X)
    rec = apply(RULES, gm)
    assert rec.rewritten >= 1 and calls(gm) == left
    assert_equivalent(gm, model, X)


@pytest.mark.parametrize("fn", [
    lambda x: (lambda v: v.reshape(2, 60) + v.sum())(x.view(6, 20)),
    lambda x: (lambda p: p.permute(0, 3, 1, 2) + p.sum())(x.permute(0, 2, 3, 1)),
])
def test_an_inner_value_read_elsewhere_is_a_reason(fn, traced, apply, call):
    model = call(fn)
    gm = traced(model, X)
    rec = apply(RULES, gm)
    assert rec.rewritten == 0 and rec.skipped and all("users" in s.reason for s in rec.skipped)
    assert_equivalent(gm, model, X)
