"""Transmute on whole models: zoo X3D, models written in other styles, and the traps."""
import copy

import pytest
import torch
from hypothesis import given, settings
from torch import fx, nn

import fxaccel
from fxaccel.blocks.bottleneck import X3dBottleneck
from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.testing import assert_equivalent
from fxaccel.testing.models import vanilla_models
from models_in_the_wild import ALL_MODELS


def _check_same_model(model, x, gm, grads=True):
    """Same outputs (rel err < 1e-6) and same input gradients; the user's model untouched."""
    assert_equivalent(gm, model, x, rtol=1e-6, grads=grads)


def _blocks(gm, kind):
    return [m for m in gm.modules() if isinstance(m, kind)]


def _conv3d_outside_blocks(gm):
    inside = {id(c) for b in _blocks(gm, fxaccel.blocks.EfficientBlock) for c in b.modules()}
    return [m for m in gm.modules() if isinstance(m, nn.Conv3d) and id(m) not in inside]


@pytest.mark.parametrize("size", ["XS", "S"])
def test_x3d_every_conv_in_a_block_every_bottleneck_matched(size):
    model, x = fxaccel.zoo.x3d(size), fxaccel.zoo.example_input(size)
    before = copy.deepcopy(model.state_dict())
    gm = fxaccel.transmute(model, x)
    report = fxaccel.report_of(gm)
    n_blocks = sum(len(stage) for stage in model.stages)
    assert len(_blocks(gm, X3dBottleneck)) == n_blocks
    assert not _conv3d_outside_blocks(gm)
    assert report.coverage == 1.0
    assert report.skipped == []
    if size == "XS":
        _check_same_model(model, x, gm)
    else:
        assert_equivalent(gm, model, x, rtol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_x3d_checkpoint_loads_through_the_state_dict_map():
    vanilla = fxaccel.zoo.x3d("XS", seed=1)
    gm = fxaccel.transmute(fxaccel.zoo.x3d("XS", seed=2), fxaccel.zoo.example_input("XS"))
    fxaccel.load_vanilla_state_dict(gm, vanilla.state_dict())
    assert_equivalent(gm, vanilla, fxaccel.zoo.example_input("XS"), rtol=1e-6)


def test_x3d_transmuted_model_trains_like_the_original():
    model, x = fxaccel.zoo.x3d("XS"), fxaccel.zoo.example_input("XS", batch=2)
    gm = fxaccel.transmute(model, x)
    model.train(), gm.train()
    named = dict(gm.named_parameters())
    mapping = fxaccel.report_of(gm).state_dict_map
    torch.manual_seed(0)  # same dropout mask in both
    model(x).square().sum().backward()
    torch.manual_seed(0)
    gm(x).square().sum().backward()
    for name, p in model.named_parameters():
        q = named[mapping[name]]
        assert q is not p
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["resnet3d_18", "r2plus1d_18", "csn_26"])
def test_other_zoo_models_fully_covered(name):
    model, x = fxaccel.zoo.create(name), fxaccel.zoo.example_input(name)
    gm = fxaccel.transmute(model, x)
    assert fxaccel.report_of(gm).coverage == 1.0
    assert not _conv3d_outside_blocks(gm)
    _check_same_model(model, x, gm)


SAFE = sorted(set(ALL_MODELS) - {"shared_conv", "control_flow"})


@pytest.mark.parametrize("name", SAFE)
def test_models_in_the_wild(name):
    model, x = ALL_MODELS[name](seed=0)
    gm = fxaccel.transmute(model, x)
    _check_same_model(model, x, gm)
    assert fxaccel.report_of(gm).coverage == 1.0


@pytest.mark.parametrize("name, blocks", [
    ("functional_se", 1), ("linear_se", 1), ("torch_mul_se", 1), ("method_mul_se", 1),
])
def test_every_se_spelling_becomes_a_block(name, blocks):
    from fxaccel.blocks.attention import SqueezeExcite3d
    model, x = ALL_MODELS[name](seed=0)
    assert len(_blocks(fxaccel.transmute(model, x), SqueezeExcite3d)) == blocks


def test_swish_spellings_become_swish_blocks_never_hardswish():
    from fxaccel.blocks.act import HardSwish, Swish
    for name in ("modulelist_stages", "torch_mul_se", "autograd_swish"):
        gm = fxaccel.transmute(*ALL_MODELS[name](seed=0))
        acts = [type(m.act) for m in _blocks(gm, Conv3dBnAct)] + [type(m) for m in gm.modules()]
        assert Swish in acts and HardSwish not in acts, name
    gm = fxaccel.transmute(*ALL_MODELS["hardswish"](seed=0))
    acts = [type(m.act) for m in _blocks(gm, Conv3dBnAct)]
    assert HardSwish in acts and Swish not in acts


def _skips(gm):
    return [(p, s.reason) for p, s in fxaccel.report_of(gm).skipped]


def test_shared_conv_is_left_alone_with_a_reason():
    model, x = ALL_MODELS["shared_conv"](seed=0)
    gm = fxaccel.transmute(model, x)
    assert ("conv_bn_act", "conv module is called at 2 places (shared weights); left alone") in _skips(gm)
    assert any(isinstance(m, nn.Conv3d) for m in gm.modules() if not isinstance(m, Conv3dBnAct))
    _check_same_model(model, x, gm)


def test_conv_output_with_two_users_keeps_bn_outside():
    model, x = ALL_MODELS["two_users"](seed=0)
    gm = fxaccel.transmute(model, x)
    assert any("2 users" in r for _, r in _skips(gm))
    _check_same_model(model, x, gm)


def test_bn_without_running_stats_is_not_folded_into_a_block():
    model, x = ALL_MODELS["bn_batch_stats"](seed=0)
    gm = fxaccel.transmute(model, x)
    assert any("no running stats" in r for _, r in _skips(gm))
    assert all(b.bn is None or b.bn.track_running_stats for b in _blocks(gm, Conv3dBnAct))
    _check_same_model(model, x, gm)


def test_gelu_and_cross_gate_are_not_swish():
    from fxaccel.blocks.act import Swish
    gm = fxaccel.transmute(*ALL_MODELS["gelu"](seed=0))
    assert any("gelu" in r for _, r in _skips(gm))
    gm = fxaccel.transmute(*ALL_MODELS["cross_gate"](seed=0))
    assert not [m for m in gm.modules() if isinstance(m, Swish)]


def test_control_flow_model_transmutes_around_its_opaque_part():
    model, x = ALL_MODELS["control_flow"](seed=0)
    gm = fxaccel.transmute(model, x)
    report = fxaccel.report_of(gm)
    assert [o.path for o in report.opaque] == ["gate"]
    # the opaque gate's own code runs as written; its conv (a leaf inside it) is wrapped in a one-node
    # graph and rewritten there, so every conv MAC is inside a block
    assert report.coverage == 1.0
    assert isinstance(gm.get_submodule("gate.conv"), fx.GraphModule)
    from fxaccel.blocks.base import EfficientBlock
    assert any(isinstance(m, EfficientBlock) for m in gm.get_submodule("gate.conv").modules())
    _check_same_model(model, x, gm)


@settings(max_examples=300, deadline=None)
@given(vanilla_models())
def test_random_vanilla_models_transmute_exactly(case):
    model, x = case
    gm = fxaccel.transmute(model, x, verify=False)
    assert_equivalent(gm, model, x, rtol=1e-5)
