"""quantizable_activations: swish becomes ``x * sigmoid(x)`` and a functional hardswish an
``nn.Hardswish`` module (both have int8 kernels, the originals do not); in place on a shared value
is refused with its reason; in the stage, the new ``*`` becomes a ``QMul`` in the same fixed point."""
import operator

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.ao.quantization import get_default_qconfig
from torch.fx.passes.shape_prop import ShapeProp

from fxaccel.passes.quantize.float_functional import QMul
from fxaccel.passes.quantize.quantizable_activations import QUANTIZABLE_ACTIVATIONS
from fxaccel.options import QuantizeOptions
from fxaccel.pipeline import PassContext, list_passes, run_stage
from fxaccel.report import Report
from fxaccel.targets import get_target
from fxaccel.testing import assert_equivalent

from _quantize_helpers import apply, calls, traced

A = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))


class Act(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.act = act

    def forward(self, a, b):
        return self.act(a * 2) + b  # not on the input itself: an in-place act would change the caller's tensor


class MySiLU(nn.SiLU):
    """A subclass may compute something else: only ``nn.SiLU`` itself is respelled."""


class _KeepMySiLU(fx.Tracer):
    def is_leaf_module(self, m, qualname):
        return isinstance(m, MySiLU) or super().is_leaf_module(m, qualname)


@pytest.mark.parametrize("act, expected", [
    (nn.SiLU(), [torch.sigmoid, operator.mul]),
    (nn.SiLU(inplace=True), [torch.sigmoid, operator.mul]),  # its input has no other reader
    (F.silu, [torch.sigmoid, operator.mul]),
    (F.hardswish, [nn.Hardswish]),
    (lambda x: F.hardswish(x, inplace=True), [nn.Hardswish]),
])
def test_each_spelling_is_respelled_with_the_same_values(act, expected):
    model = Act(act)
    gm = traced(model, A, A)
    record = apply(QUANTIZABLE_ACTIVATIONS, gm)
    assert calls(gm) == [operator.mul] + expected + [operator.add]
    assert record.rewritten == record.matched == 1 and not record.skipped
    # silu vs x * sigmoid(x): two roundings instead of one
    assert_equivalent(gm, model, (A, A), rtol=1e-6)


def test_x_times_sigmoid_reads_the_same_x():
    gm = traced(Act(nn.SiLU()), A, A)
    apply(QUANTIZABLE_ACTIVATIONS, gm)
    x, sig, mul = (n for n in gm.graph.nodes if n.target in (torch.sigmoid, operator.mul))
    assert sig.args == (x,) and mul.args == (x, sig)


def test_a_subclass_is_not_a_candidate():
    model = Act(MySiLU())
    gm = fx.GraphModule(model, _KeepMySiLU().trace(model))  # an opaque leaf in the quantize flow
    ShapeProp(gm).propagate(A, A)
    record = apply(QUANTIZABLE_ACTIVATIONS, gm)
    assert record.matched == 0 and calls(gm) == [operator.mul, MySiLU, operator.add]


@pytest.mark.parametrize("act", [nn.SiLU(inplace=True), lambda x: F.hardswish(x, inplace=True)])
def test_in_place_on_a_value_read_elsewhere_is_a_reason(act):
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = act

        def forward(self, a, b):
            t = a * 2
            return self.act(t) + t  # the add reads t after the activation overwrote it

    model = Shared()
    gm = traced(model, A, A)
    before = calls(gm)
    record = apply(QUANTIZABLE_ACTIVATIONS, gm)
    (skip,) = record.skipped
    assert "in-place" in skip.reason and "on a value with 2 users" in skip.reason
    assert calls(gm) == before and record.rewritten == 0
    assert torch.equal(gm(A, A), model(A, A))


def test_in_the_stage_the_swish_product_becomes_a_qmul():
    gm = traced(Act(nn.SiLU()), A, A)
    report = Report("quantize")
    ctx = PassContext("quantize", get_target("mobile_cpu"), (A, A), report, options=QuantizeOptions(
        "eager", qconfig=get_default_qconfig("qnnpack")))
    keep = ("quantizable_activations", "float_functional")
    gm = run_stage("quantize", gm, ctx, skip=[n for n in list_passes("quantize") if n not in keep])
    assert calls(gm)[1:3] == [torch.sigmoid, QMul] and operator.mul not in calls(gm)
    assert report.record("quantizable_activations").rewritten == 1
    assert report.record("float_functional").rewritten == 3  # a * 2, the product, the + b


def test_other_flows_are_left_alone():
    gm = traced(Act(nn.SiLU()), A, A)
    ctx = PassContext("quantize", get_target("mobile_cpu"), (A, A), Report("quantize"), options=QuantizeOptions("pt2e"))
    gm = run_stage("quantize", gm, ctx)
    assert calls(gm) == [operator.mul, nn.SiLU, operator.add]
