"""Activation blocks: vanilla math, traceable, name round trips, deploy forms per target."""
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from fxaccel.blocks.act import (
    ACTIVATION_NAMES, Activation, HardSwish, Identity, ReLU, Swish, activation_name, make_activation,
)
from fxaccel.blocks.base import EfficientBlock
from fxaccel.blocks.layout import TimeFolded
from fxaccel.targets import get_target
from fxaccel.testing import activations, assert_equivalent, seeds
from fxaccel.testing.ops import record_aten_ops

# The vanilla spelling each block must reproduce.
REFERENCE = {
    "identity": lambda x: x,
    "relu": torch.relu,
    "swish": lambda x: x * torch.sigmoid(x),
    "hardswish": nn.functional.hardswish,
}
PLAIN = {"identity": nn.Identity, "relu": nn.ReLU, "swish": nn.SiLU, "hardswish": nn.Hardswish}

shapes = st.one_of(
    st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6)),
    st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)),
)


def _input(shape, seed):
    # Scale 4 so hardswish's kinks at -3 / 3 and swish's tails are exercised.
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 4


def test_names_are_the_testing_strategy_names():
    from fxaccel.testing import ACTIVATIONS
    assert set(ACTIVATION_NAMES) == set(ACTIVATIONS)


@settings(deadline=None, max_examples=60)
@given(activations, shapes, seeds)
def test_original_form_is_the_vanilla_function_forward_and_backward(name, shape, seed):
    block = make_activation(name)
    assert isinstance(block, EfficientBlock) and block.name == name
    # Same ops in the same order: identical up to the last bit; 1e-6 leaves no room for other math.
    assert_equivalent(block, REFERENCE[name], _input(shape, seed), rtol=1e-6, grads=True)


@settings(deadline=None, max_examples=60)
@given(activations, shapes, seeds, st.sampled_from(["x86", "mobile_cpu"]))
def test_deploy_form_matches_original(name, shape, seed, target):
    block = make_activation(name)
    form = block.deploy(shape, get_target(target))
    assert not isinstance(form, EfficientBlock)
    if len(shape) == 5 and target == "mobile_cpu":
        assert isinstance(form, TimeFolded) and type(form.inner) is PLAIN[name]
    else:
        assert type(form) is PLAIN[name]
    # nn.SiLU's fused kernel rounds differently from sigmoid-then-mul: ~1 ulp, far below 1e-6.
    x = _input((2, *shape[1:]), seed)  # any batch size works
    assert_equivalent(form, block, x, rtol=1e-6)


def test_mobile_deploy_runs_the_activation_on_folded_frames():
    x = torch.randn(2, 3, 4, 5, 5)
    ops = record_aten_ops(ReLU().deploy(x.shape, "mobile_cpu"), x)
    assert ops[("relu", 4)] == 1 and ops[("relu", 5)] == 0


def test_mobile_deploy_refuses_another_clip_shape():
    form = Swish().deploy((1, 3, 4, 5, 5), "mobile_cpu")
    form(torch.randn(3, 3, 4, 5, 5))  # batch is free
    with pytest.raises(ValueError, match=r"\(N, 3, 4, 5, 5\).*\(1, 3, 6, 5, 5\)"):
        form(torch.randn(1, 3, 6, 5, 5))


def test_swish_traces_and_exports_as_sigmoid_and_mul():
    graph = torch.fx.symbolic_trace(Swish()).graph
    targets = {n.target for n in graph.nodes if n.op in ("call_function", "call_method")}
    assert torch.sigmoid in targets and any(getattr(t, "__name__", t) == "mul" for t in targets)
    ep = torch.export.export(Swish(), (torch.randn(2, 3, 4, 4),))
    ops = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert ops == {"aten.sigmoid.default", "aten.mul.Tensor"}


def test_make_activation():
    assert isinstance(make_activation("relu"), ReLU)
    assert isinstance(make_activation("swish"), Swish)
    assert isinstance(make_activation("hardswish"), HardSwish)
    assert isinstance(make_activation("identity"), Identity)
    assert isinstance(make_activation(None), Identity)
    assert make_activation("relu") is not make_activation("relu")  # fresh modules


@pytest.mark.parametrize("bad", ["gelu", "ReLU", "", 3])
def test_make_activation_rejects_unknown_names_and_lists_known_ones(bad):
    with pytest.raises(ValueError, match="unknown activation.*'relu'.*'swish'"):
        make_activation(bad)


@pytest.mark.parametrize("module, name", [
    (nn.ReLU(), "relu"), (nn.ReLU(inplace=True), "relu"), (nn.SiLU(), "swish"),
    (nn.Hardswish(), "hardswish"), (nn.Identity(), "identity"),
    (ReLU(), "relu"), (Swish(), "swish"), (HardSwish(), "hardswish"), (Identity(), "identity"),
])
def test_activation_name_recognises_plain_modules_and_blocks(module, name):
    assert activation_name(module) == name
    assert_equivalent(make_activation(name), module, torch.randn(2, 3, 4, 4) * 4, rtol=1e-6)


class _MyReLU(nn.ReLU):
    def forward(self, x):
        return torch.relu(x) * 2


@pytest.mark.parametrize("module", [nn.GELU(), nn.Sigmoid(), nn.ReLU6(), nn.Hardsigmoid(), _MyReLU(),
                                    nn.Conv2d(1, 1, 1)])
def test_activation_name_is_none_for_unknown_modules(module):
    assert activation_name(module) is None


def test_activation_base_has_no_plain_form():
    with pytest.raises(NotImplementedError):
        Activation().plain()
