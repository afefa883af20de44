"""Canonicalisation: every spelling becomes the one canonical call; look-alikes stay as they are."""
import operator

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

import fxaccel
from fxaccel.pipeline import PassContext, run_stage
from fxaccel.report import Report
from fxaccel.targets import get_target
from fxaccel.testing import assert_equivalent
from fxaccel.transmuting import propagate_shapes


def canonicalize(fn_or_module, x):
    module = fn_or_module if isinstance(fn_or_module, nn.Module) else _Wrap(fn_or_module)
    gm = fxaccel.trace(module)
    propagate_shapes(gm, (x,))
    report = Report("transmute")
    out = run_stage("canonicalize", gm, PassContext("canonicalize", get_target("x86"), (x,), report))
    assert_equivalent(out, module, x, rtol=1e-6)
    return out, report


class _Wrap(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def targets(gm):
    return [n.target for n in gm.graph.nodes if n.op in ("call_function", "call_method", "call_module")]


X = torch.randn(2, 3, 4, 5, 5)


@pytest.mark.parametrize("spelling", [
    nn.ReLU(), nn.ReLU(inplace=True), F.relu, lambda x: F.relu(x, inplace=True), torch.relu,
    lambda x: torch.relu_(x * 1), lambda x: x.relu(), lambda x: (x * 1).relu_(),
])
def test_relu_spellings(spelling):
    gm, _ = canonicalize(spelling, X)
    assert torch.relu in targets(gm)
    assert not {F.relu, torch.relu_, "relu", "relu_"} & set(targets(gm))
    assert not any(isinstance(m, nn.ReLU) for m in gm.modules())


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
    nn.SiLU(), F.silu, lambda x: x * torch.sigmoid(x), lambda x: torch.sigmoid(x) * x,
    lambda x: torch.mul(x, x.sigmoid()), lambda x: x.mul(F.sigmoid(x)), _GateSwish(),
    _BodySwish(), _FnSwish.apply,
])
def test_swish_spellings(spelling):
    gm, _ = canonicalize(spelling, X)
    assert targets(gm) == [F.silu]


@pytest.mark.parametrize("spelling", [nn.Hardswish(), F.hardswish])
def test_hardswish_spellings_stay_hardswish(spelling):
    gm, _ = canonicalize(spelling, X)
    assert targets(gm) == [F.hardswish]


@pytest.mark.parametrize("spelling", [
    nn.AdaptiveAvgPool3d(1), nn.AdaptiveAvgPool3d((1, 1, 1)), lambda x: F.adaptive_avg_pool3d(x, (1, 1, 1)),
    lambda x: x.mean((2, 3, 4), keepdim=True), lambda x: torch.mean(x, dim=[-3, -2, -1], keepdim=True),
    lambda x: x.mean(dim=(4, 2, 3), keepdim=True),
])
def test_global_mean_spellings(spelling):
    gm, _ = canonicalize(spelling, X)
    nodes = [n for n in gm.graph.nodes if n.op == "call_function"]
    assert [n.target for n in nodes] == [F.adaptive_avg_pool3d] and nodes[0].args[1] == 1


def test_global_mean_without_keepdim_becomes_pool_then_flatten():
    gm, _ = canonicalize(lambda x: x.mean((2, 3, 4)), X)
    assert targets(gm) == [F.adaptive_avg_pool3d, torch.flatten]


@pytest.mark.parametrize("lookalike, kept", [
    (lambda x: x * torch.sigmoid(x + 1), operator.mul),          # x * sigmoid(y), y != x
    (lambda x: x * torch.sigmoid(x[:, :1]), operator.mul),       # broadcast gate: not swish
    (F.hardswish, F.hardswish),                                   # never swish
    (lambda x: F.gelu(x), F.gelu),                                # other activations stay
    (lambda x: x.mean((3, 4), keepdim=True), "mean"),              # spatial-only mean: not global
    (nn.Sequential(nn.AdaptiveAvgPool3d((1, 2, 2))), nn.AdaptiveAvgPool3d),       # not global
    (lambda x: torch.add(x, x, alpha=2), torch.add),              # alpha != 1 is not "+"
])
def test_lookalikes_are_not_canonicalized(lookalike, kept):
    gm, _ = canonicalize(lookalike, X)
    assert F.silu not in targets(gm)
    if isinstance(kept, type):
        assert any(isinstance(m, kept) for m in gm.modules())
    else:
        assert kept in targets(gm)


def test_inplace_relu_on_shared_value_is_left_alone():
    def fn(x):
        y = x * 2
        z = torch.relu_(y)
        return z + y   # y was mutated: dropping in-place would change this
    gm, report = canonicalize(fn, X)
    assert torch.relu_ in targets(gm)
    (name, skip), = report.skipped
    assert name == "canonicalize_relu" and "users" in skip.reason
