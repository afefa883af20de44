"""X3dBottleneck: original == vanilla (pytorchvideo-style) bottleneck, deploy forms == original."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fxaccel.blocks.attention import SqueezeExcite3d
from fxaccel.blocks.bottleneck import X3dBottleneck
from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.blocks.layout import FoldTime, TimeFolded, UnfoldTime, fold_time
from fxaccel.targets import get_target
from fxaccel.testing import assert_equivalent, randomize_bn, seeds
from fxaccel.testing.models import (
    VanillaBottleneck, VanillaSqueezeExciteFunctional, VanillaSqueezeExciteLinear, VanillaSqueezeExciteModule,
)
from fxaccel.testing.ops import count_ops, ops_not_on_mobile, record_aten_ops

# Original vs vanilla: the same modules in the same order; only nn.SiLU vs x*sigmoid(x) inside
# the activation blocks may round differently (~1 ulp), far below 1e-6 of the output's scale.
ORIGINAL_RTOL = 1e-6
# Deploy: BN folded into weights, depthwise conv as summed temporal taps, SE mean folded into
# its first layer; a few rounding steps per element through four layers: 1e-5.
DEPLOY_RTOL = 1e-5

cases = st.fixed_dictionaries({
    "cin": st.integers(1, 8), "inner": st.integers(1, 12), "cout": st.integers(1, 8),
    "stride": st.sampled_from((1, 2)), "se": st.sampled_from((None, 1, 2, 4)),
    "se_spelling": st.sampled_from(("module", "functional", "linear")),
    "kt": st.sampled_from((1, 3)), "act_b": st.sampled_from(("silu", "relu", "hardswish")),
    "n": st.sampled_from((1, 3)), "t": st.integers(1, 6),
    "h": st.sampled_from((1, 3, 5, 7, 9)), "w": st.sampled_from((3, 5, 7)), "seed": seeds,
})


def _vanilla(case):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(case["seed"])
        v = VanillaBottleneck(case["cin"], case["inner"], case["cout"], case["stride"],
                              case["se"], case["se_spelling"], case["kt"], case["act_b"])
    for i, bn in enumerate(m for m in v.modules() if isinstance(m, nn.BatchNorm3d)):
        randomize_bn(bn, case["seed"] + i)
    return v.eval()


def _from_vanilla(v):
    """The block made of the vanilla model's own modules (what the transmuter will do)."""
    se = None
    if isinstance(v.se, VanillaSqueezeExciteModule):
        _, fc1, act, fc2, _ = v.se.block
        se = SqueezeExcite3d.from_modules(fc1, act, fc2)
    elif isinstance(v.se, VanillaSqueezeExciteFunctional):
        se = SqueezeExcite3d.from_modules(v.se.fc1, nn.ReLU(), v.se.fc2)
    elif isinstance(v.se, VanillaSqueezeExciteLinear):
        se = SqueezeExcite3d.from_linear(v.se.fc1, v.se.act, v.se.fc2)
    shortcut = None if v.branch1_conv is None else Conv3dBnAct.from_modules(v.branch1_conv, v.branch1_norm)
    return X3dBottleneck(
        Conv3dBnAct.from_modules(v.conv_a, v.norm_a, v.act_a), Conv3dBnAct.from_modules(v.conv_b, v.norm_b),
        se, v.act_b, Conv3dBnAct.from_modules(v.conv_c, v.norm_c), shortcut, v.act,
    )


def _input(case, batch=None):
    shape = (batch or case["n"], case["cin"], case["t"], case["h"], case["w"])
    return torch.randn(shape, generator=torch.Generator().manual_seed(case["seed"] + 1)) * 1.5


@settings(deadline=None, max_examples=20)
@given(case=cases)
def test_original_equals_vanilla(case):
    vanilla = _vanilla(case)
    block = _from_vanilla(vanilla)
    assert block.conv_a.conv is vanilla.conv_a and block.conv_b.bn is vanilla.norm_b
    assert_equivalent(block, vanilla, _input(case), rtol=ORIGINAL_RTOL, grads=True)


@settings(deadline=None, max_examples=20)
@given(case=cases, target=st.sampled_from(("x86", "mobile_cpu")))
def test_deploy_equals_original(case, target):
    block = _from_vanilla(_vanilla(case))
    x = _input(case)
    fast = block.deploy(x.shape, get_target(target))
    assert_equivalent(fast, block, x, rtol=DEPLOY_RTOL)
    assert_equivalent(fast, block, _input(case, batch=2), rtol=DEPLOY_RTOL)


def test_build_makes_the_x3d_structure():
    b = X3dBottleneck.build(8, 16, 8)
    assert b.shortcut is None and b.se is not None and b.se.reduce.out_channels == 1
    assert b.conv_b.conv.groups == 16 and b.conv_b.conv.kernel_size == (3, 3, 3)
    assert type(b.conv_b.act).__name__ == "Identity" and type(b.act_b).__name__ == "Swish"
    assert type(b.act_out).__name__ == "ReLU" and type(b.conv_c.act).__name__ == "Identity"
    s = X3dBottleneck.build(8, 16, 12, stride=2, se_ratio=None)
    assert s.se is None and s.shortcut.conv.stride == (1, 2, 2) and s.conv_b.conv.stride == (1, 2, 2)
    assert X3dBottleneck.build(8, 16, 8, se_channels=5).se.reduce.out_channels == 5


@pytest.mark.parametrize("stride, cout", [(1, 8), (2, 6)])
def test_build_deploys_exactly(stride, cout):
    block = X3dBottleneck.build(8, 12, cout, stride=stride)
    for i, bn in enumerate(m for m in block.modules() if isinstance(m, nn.BatchNorm3d)):
        randomize_bn(bn, i)
    block.eval()
    x = torch.randn(3, 8, 4, 9, 9, generator=torch.Generator().manual_seed(0))
    for target in ("x86", "mobile_cpu"):
        assert_equivalent(block.deploy(x.shape, get_target(target)), block, x, rtol=DEPLOY_RTOL)


@pytest.mark.parametrize("t, stride", [(1, 1), (4, 2)])
def test_mobile_form_is_one_fold_with_4d_ops_only(t, stride):
    block = X3dBottleneck.build(6, 12, 8, stride=stride).eval()
    x = torch.randn(2, 6, t, 7, 7)
    assert ops_not_on_mobile(record_aten_ops(block, x)) != []  # positive control: vanilla has 5-D ops
    fast = block.deploy(x.shape, get_target("mobile_cpu"))
    assert isinstance(fast, TimeFolded)
    inner_layout = [m for m in fast.inner.modules() if isinstance(m, (TimeFolded, FoldTime, UnfoldTime))]
    assert inner_layout == [], "parts must be chained in the folded layout, with no fold/unfold inside"
    with torch.no_grad():
        assert ops_not_on_mobile(record_aten_ops(fast, x)) == []
        ops = record_aten_ops(fast.inner, fold_time(x))
    assert max(rank for _, rank in ops if rank is not None) <= 4
    assert count_ops(ops, "add") >= 1


@pytest.mark.parametrize("stride", [1, 2])
def test_x86_form_keeps_depthwise_conv3d_pointwise_as_linear_and_works_in_place(stride):
    block = X3dBottleneck.build(6, 12, 6 * stride, stride=stride).eval()
    x = torch.randn(2, 6, 3, 5, 5).contiguous(memory_format=torch.channels_last_3d)
    before = x.clone()
    fast = block.deploy(x.shape, get_target("x86"))
    with torch.no_grad():
        ops = record_aten_ops(fast, x)
        assert_equivalent(fast, block, x, rtol=1e-5)
    assert torch.equal(x, before)  # in place on its own intermediates only, never on the input
    # conv_b (3x3x3 depthwise) stays a Conv3d; conv_a / conv_c (1x1x1) are GEMMs on the
    # channels-last view; SE's mean is flat
    assert count_ops(ops, "convolution", rank=5) == 1 and count_ops(ops, "mean", rank=5) == 0
    gemms = 4 + (stride != 1)  # conv_a, conv_c, SE reduce and expand (+ the projection shortcut)
    assert count_ops(ops, "addmm") + count_ops(ops, "mm") == gemms
    # the residual add and the activations after it and after SE write into fresh buffers
    assert ops[("add_", 5)] == 1 and ops[("relu_", 5)] == 2 and ops[("silu_", 5)] == 1
    assert ("relu", 5) not in ops and ("silu", 5) not in ops


@pytest.mark.parametrize("target", ["x86", "mobile_cpu"])
def test_deploy_forms_trace_and_export(target):
    block = X3dBottleneck.build(6, 8, 10, stride=2).eval()
    x = torch.randn(2, 6, 3, 7, 7)
    fast = block.deploy(x.shape, get_target(target))
    part, part_in = (fast, x) if target == "x86" else (fast.inner, fold_time(x))
    assert_equivalent(torch.fx.symbolic_trace(part), part, part_in, rtol=0.0)
    if target == "x86":  # the shape guard survives dead-code elimination in a trace
        gm = torch.fx.symbolic_trace(fast)
        gm.graph.eliminate_dead_code()
        gm.recompile()
        with pytest.raises(ValueError, match="deploy form was built for"):
            gm(torch.randn(2, 6, 3, 7, 8))
    exported = torch.export.export(fast, (x,), dynamic_shapes=({0: torch.export.Dim("n")},))
    assert_equivalent(exported.module(), block, torch.randn(3, 6, 3, 7, 7), rtol=DEPLOY_RTOL)


@pytest.mark.parametrize("target", ["x86", "mobile_cpu"])
@pytest.mark.parametrize("bad", [(2, 6, 4, 7, 7), (2, 6, 3, 7, 9), (2, 5, 3, 7, 7), (2, 6, 3, 7)])
def test_wrong_input_shape_raises(target, bad):
    fast = X3dBottleneck.build(6, 8, 6).eval().deploy((1, 6, 3, 7, 7), get_target(target))
    with pytest.raises(ValueError) as err:
        fast(torch.randn(bad))
    assert "(N, 6, 3, 7, 7)" in str(err.value) and str(bad) in str(err.value)


def test_deploy_refuses_a_wrong_shape_up_front():
    with pytest.raises(ValueError, match=r"expected an input shape \(N, 6, T, H, W\), got \(1, 4, 3, 7, 7\)"):
        X3dBottleneck.build(6, 8, 6).deploy((1, 4, 3, 7, 7), get_target("x86"))


def test_constructor_refuses_inconsistent_parts():
    a, b, c = Conv3dBnAct(6, 8, 1), Conv3dBnAct(8, 8, 3, padding=1, groups=8), Conv3dBnAct(8, 6, 1)
    with pytest.raises(TypeError, match="Conv3dBnAct.from_modules"):
        X3dBottleneck(nn.Conv3d(6, 8, 1), b, None, "swish", c, None, "relu")
    with pytest.raises(TypeError, match="SqueezeExcite3d"):
        X3dBottleneck(a, b, nn.Identity(), "swish", c, None, "relu")
    with pytest.raises(ValueError, match="conv_b gives 8 channels but se takes 4"):
        X3dBottleneck(a, b, SqueezeExcite3d(4, 2), "swish", c, None, "relu")
    with pytest.raises(ValueError, match="conv_c gives 5 channels but the residual takes 6"):
        X3dBottleneck(a, b, None, "swish", Conv3dBnAct(8, 5, 1), None, "relu")


def test_identity_shortcut_with_stride_is_refused_at_deploy():
    a, c = Conv3dBnAct(6, 8, 1), Conv3dBnAct(8, 6, 1)
    b = Conv3dBnAct(8, 8, 3, stride=(1, 2, 2), padding=1, groups=8)
    block = X3dBottleneck(a, b, None, "swish", c, None, "relu").eval()
    with pytest.raises(ValueError, match="add a projection shortcut"):
        block.deploy((1, 6, 3, 7, 7), get_target("mobile_cpu"))


# ---------------------------------------------------------------- fxaccel.testing.models smoke tests
# (They live here because the vanilla bottleneck is the richest thing the strategy draws.)
from fxaccel.blocks.base import EfficientBlock  # noqa: E402
from fxaccel.testing.models import build_vanilla_model, vanilla_model_specs, vanilla_models  # noqa: E402


@settings(deadline=None, max_examples=20)
@given(case=vanilla_models())
def test_vanilla_models_run_trace_and_are_vanilla(case):
    model, x = case
    assert not model.training
    assert not any(isinstance(m, EfficientBlock) for m in model.modules())
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm3d)):
        assert not torch.equal(bn.running_var, torch.ones_like(bn.running_var))
        assert not torch.equal(bn.weight, torch.ones_like(bn.weight))
    with torch.no_grad():
        y = model(x)
    assert torch.isfinite(y).all() and y.shape[0] == x.shape[0]
    assert_equivalent(torch.fx.symbolic_trace(model), model, x, rtol=0.0)


@settings(deadline=None, max_examples=10)
@given(spec=vanilla_model_specs(kinds=("bottleneck",), max_layers=2, head=True))
def test_vanilla_models_are_reproducible_and_bottlenecks_become_blocks(spec):
    (m1, x1), (m2, x2) = build_vanilla_model(spec), build_vanilla_model(spec)
    assert torch.equal(x1, x2)
    assert_equivalent(m1, m2, x1, rtol=0.0)
    assert isinstance(m1[-1], nn.Module) and spec.layers[-1][0] == "head"
    y = m1[0](x1)
    for layer in list(m1)[1:-1]:
        assert isinstance(layer, VanillaBottleneck)
        block = _from_vanilla(layer)
        assert_equivalent(block, layer, y, rtol=ORIGINAL_RTOL)
        y = layer(y)
