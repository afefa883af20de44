"""The pass registry: user passes run in their stage, in the declared order; cycles are clear errors."""
import pytest
import torch
from torch import nn
from torch.fx.passes.infra.pass_base import PassBase, PassResult

import fxaccel
from fxaccel.rules import Any, Fn, Rule


@pytest.fixture
def clean_registry():
    added = []
    yield added
    for stage, name in added:
        fxaccel.unregister_pass(name, stage=stage)


def _model():
    return nn.Sequential(nn.Conv3d(3, 4, 1), nn.ReLU())


def test_user_passes_run_in_declared_order(clean_registry):
    calls = []
    for name, kw in [("p_last", {}), ("p_first", {"before": "p_last"}), ("p_mid", {"after": "p_first", "before": "p_last"})]:
        def p(gm, ctx, name=name):
            calls.append(name)
        fxaccel.register_pass(p, stage="transmute", name=name, **kw)
        clean_registry.append(("transmute", name))
    order = fxaccel.list_passes("transmute")
    assert order.index("p_first") < order.index("p_mid") < order.index("p_last")
    fxaccel.transmute(_model(), torch.randn(1, 3, 2, 4, 4))
    assert calls == ["p_first", "p_mid", "p_last"]


def test_cycle_is_a_clear_error(clean_registry):
    fxaccel.register_pass(lambda gm, ctx: None, stage="deploy", name="a", before="b")
    fxaccel.register_pass(lambda gm, ctx: None, stage="deploy", name="b", before="a")
    clean_registry += [("deploy", "a"), ("deploy", "b")]
    with pytest.raises(ValueError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        fxaccel.list_passes("deploy")


def test_duplicate_name_and_unknown_stage_are_errors(clean_registry):
    fxaccel.register_pass(lambda gm, ctx: None, stage="transmute", name="dup")
    clean_registry.append(("transmute", "dup"))
    with pytest.raises(ValueError, match="already registered"):
        fxaccel.register_pass(lambda gm, ctx: None, stage="transmute", name="dup")
    with pytest.raises(ValueError, match="unknown stage"):
        fxaccel.register_pass(lambda gm, ctx: None, stage="nope")


class DoubleRelu(Rule):
    """A user rule: relu(x) -> relu(x) * 1 is pointless but observable."""
    name = "tag_relu"
    pattern = Fn(torch.relu, Any("x"))

    def check(self, m):
        return None if m.root.meta.get("tensor_meta") is not None else "no shape"

    def rewrite(self, m):
        m.root.meta["tagged"] = True


def test_user_rule_and_passbase_are_registered_like_builtins(clean_registry):
    seen = []

    class Counter(PassBase):
        def call(self, gm):
            seen.append(len(gm.graph.nodes))
            return PassResult(gm, False)

    fxaccel.register_pass(DoubleRelu(), stage="transmute", before="conv_bn_act")
    fxaccel.register_pass(Counter(), stage="transmute", name="counter", after="tag_relu")
    clean_registry += [("transmute", "tag_relu"), ("transmute", "counter")]
    gm = fxaccel.transmute(_model(), torch.randn(1, 3, 2, 4, 4))
    rec = next(p for p in fxaccel.report_of(gm).passes if p.name == "tag_relu")
    assert rec.matched == 1 and rec.rewritten == 1 and seen


def test_decorator_form(clean_registry):
    @fxaccel.register_pass(stage="transmute", name="noted")
    def noted(gm, ctx):
        ctx.record.note("hello")
    clean_registry.append(("transmute", "noted"))
    gm = fxaccel.transmute(_model(), torch.randn(1, 3, 2, 4, 4))
    assert any("hello" in p.notes for p in fxaccel.report_of(gm).passes)
