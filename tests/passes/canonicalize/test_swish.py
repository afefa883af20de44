"""canonicalize_swish / canonicalize_hardswish: every swish spelling becomes ``F.silu(x)``, in either
operand order of ``*``; hardswish becomes ``F.hardswish(x)``, never swish; look-alikes stay."""
import operator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxaccel

SWISH, HARDSWISH = "canonicalize_swish", "canonicalize_hardswish"


class _BodySwish(nn.Module):
    def forward(self, x):
        return x * x.sigmoid()


class _GateSwish(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return self.gate(x) * x


class _FnSwish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return g * s * (1 + x * (1 - s))


@pytest.mark.parametrize("spelling", [
    nn.SiLU(), nn.SiLU(inplace=True), lambda x: F.silu(x, inplace=False),
    lambda x: x * torch.sigmoid(x), lambda x: torch.sigmoid(x) * x,  # both operand orders
    lambda x: torch.mul(x, x.sigmoid()), lambda x: x.mul(F.sigmoid(x)), _GateSwish(), _BodySwish(),
    _FnSwish.apply,
])
def test_swish_spellings_become_silu(spelling, canonicalize, calls):
    gm = canonicalize(spelling)
    assert calls(gm) == [F.silu]
    assert fxaccel.report_of(gm).record(SWISH).rewritten == 1


@pytest.mark.parametrize("spelling", [nn.Hardswish(), lambda x: F.hardswish(x, inplace=False)])
def test_hardswish_spellings_stay_hardswish(spelling, canonicalize, calls):
    gm = canonicalize(spelling)
    assert calls(gm) == [F.hardswish]
    report = fxaccel.report_of(gm)
    assert report.record(HARDSWISH).rewritten == 1 and report.record(SWISH).rewritten == 0


@pytest.mark.parametrize("rule, spelling, kept", [
    (SWISH, lambda y: F.silu(y, inplace=True), F.silu),
    (HARDSWISH, lambda y: F.hardswish(y, inplace=True), F.hardswish),
])
def test_in_place_on_a_shared_value_is_left_alone(rule, spelling, kept, canonicalize, calls):
    def fn(x):
        y = x * 2
        return spelling(y) + y  # y was mutated in place

    gm = canonicalize(fn)
    node = next(n for n in gm.graph.nodes if n.target is kept)
    assert node.kwargs == {"inplace": True}
    (skip,) = fxaccel.report_of(gm).record(rule).skipped
    assert "in-place" in skip.reason and "2 users" in skip.reason


@pytest.mark.parametrize("lookalike", [
    lambda x: x * torch.sigmoid(x + 1), lambda x: torch.sigmoid(x + 1) * x,  # x * sigmoid(y), y != x
    lambda x: x * torch.sigmoid(x[:, :1]),                                    # a broadcast gate
])
def test_a_gate_on_another_value_is_not_swish(lookalike, canonicalize, calls):
    gm = canonicalize(lookalike)
    assert operator.mul in calls(gm) and F.silu not in calls(gm)
    miss = fxaccel.report_of(gm).record(SWISH).miss
    assert miss.root == "mul" and miss.matched == ["mul", "sigmoid"]
    assert "the value already bound to 'x'" in miss.why


@pytest.mark.parametrize("other", [F.gelu, F.hardswish])
def test_other_activations_are_not_swish(other, canonicalize, calls):
    gm = canonicalize(other)
    assert calls(gm) == [other]
