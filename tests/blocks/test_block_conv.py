"""Conv3dBnAct: vanilla original form; deploy forms equal to it, and structurally what we meant.

Tolerances: the original form runs the very same modules as the vanilla composition, so it must
agree to 1e-6 relative (it is in fact bit-identical). Deploy forms fold BN into the weights and
reorder the conv sums (per-tap partial sums, different kernels): fp32 rounding of sums of at most
C*kT*k*k ~ 1,000 terms stays near 1e-6 relative to the output's largest magnitude; 1e-5 leaves a
10x margin while still catching any wrong tap, shift, pad or fold (those give errors of order 1).
"""
import copy
import operator

import pytest
import torch
from hypothesis import assume, given, settings, strategies as st
from torch import nn

from fxaccel.blocks.act import Activation, ReLU, Swish, make_activation
from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.blocks.layout import TimeFolded
from fxaccel.forms.folded import FramewiseConv2d, TemporalTaps, TimeAsHeight
from fxaccel.forms.x86 import Conv3dAct, FramesConv2d, FrameTaps, PointwiseLinear
from fxaccel.targets import get_target
from fxaccel.testing import activations, assert_equivalent, conv3d_configs, randomize_bn, seeds
from fxaccel.testing.ops import count_ops, ops_not_on_mobile, record_aten_ops

PLAIN_ACT = {"identity": nn.Identity, "relu": nn.ReLU, "swish": nn.SiLU, "hardswish": nn.Hardswish}
# The spelling each activation block computes. nn.SiLU's fused kernel rounds differently from
# x * sigmoid(x) (1 ulp, checked in test_block_act.py); the reference here must be the same math
# bit for bit, because train-mode BN makes the conv weight's gradient pure cancellation noise
# (BN output does not depend on the conv's scale), which only identical math reproduces.
SPELLING = {
    "identity": lambda x: x, "relu": torch.relu, "swish": lambda x: x * torch.sigmoid(x),
    "hardswish": nn.functional.hardswish,
}
# The forms of the targets' registries: every x86 form, the mobile temporal choice (its first is
# what a block builds by itself).
X86_FORMS = get_target("x86").form_names
TEMPORAL_FORMS = tuple(f.name for k in get_target("mobile_cpu").layers if k.name == "temporal_conv" for f in k.forms)
DEFAULT_TEMPORAL_FORM = TEMPORAL_FORMS[0]
FORMS = st.sampled_from(TEMPORAL_FORMS)
TARGET_FORMS = st.sampled_from([("x86", f) for f in X86_FORMS] + [("mobile_cpu", f) for f in TEMPORAL_FORMS])


def _vanilla(cfg, seed, norm, act):
    """The user's modules: a Conv3d, a BatchNorm3d with random stats and affine, an activation."""
    conv = cfg.make(seed)
    bn = randomize_bn(nn.BatchNorm3d(cfg.out_channels), seed) if norm else None
    return conv, bn, PLAIN_ACT[act]()


def _compose(conv, bn, act):
    def run(x):
        y = conv(x)
        return act(bn(y) if bn is not None else y)
    return run


def _block(cfg, seed, norm=True, act="relu"):
    return Conv3dBnAct.from_modules(*_vanilla(cfg, seed, norm, act)).eval()


def _time_as_height_applies(conv):
    return conv.kernel_size[1:] == (1, 1) and conv.stride[1:] == (1, 1) and conv.padding[1:] == (0, 0)


def _live_taps(conv, t):
    """Independent count of temporal taps that read at least one real (non-padding) frame."""
    (kt, s, d, p) = conv.kernel_size[0], conv.stride[0], conv.dilation[0], conv.padding[0]
    t_out = (t + 2 * p - d * (kt - 1) - 1) // s + 1
    if conv.padding_mode != "zeros":
        return kt
    return sum(any(0 <= o * s + k * d - p < t for o in range(t_out)) for k in range(kt)) or 1


# --------------------------------------------------------------------------- original form
@settings(deadline=None, max_examples=80)
@given(conv3d_configs(), seeds, st.booleans(), activations, st.booleans())
def test_original_form_is_the_vanilla_composition(cfg, seed, norm, act, train):
    conv, bn, act_mod = _vanilla(cfg, seed, norm, act)
    ref_conv, ref_bn = copy.deepcopy(conv), copy.deepcopy(bn)
    block = Conv3dBnAct.from_modules(conv, bn, act_mod)
    x = cfg.example_input(seed)
    with torch.no_grad():
        out_shape = block.eval()(x).shape
    # Train-mode BN needs more than one value per channel.
    train = train and norm and out_shape.numel() // out_shape[1] > 1
    block.train(train)
    for m in (ref_conv, ref_bn):
        if m is not None:
            m.train(train)
    assert_equivalent(block, _compose(ref_conv, ref_bn, SPELLING[act]), x, rtol=1e-6, grads=True)
    # Same parameter gradients (trainable exactly like the vanilla model) and same BN updates.
    assert_equivalent(lambda: block.conv.weight.grad, lambda: ref_conv.weight.grad, (), rtol=1e-6)
    if norm:
        assert_equivalent(lambda: block.bn.weight.grad, lambda: ref_bn.weight.grad, (), rtol=1e-6)
        assert torch.equal(block.bn.running_mean, ref_bn.running_mean)


def test_constructor_builds_vanilla_modules_with_vanilla_names():
    block = Conv3dBnAct(4, 8, (3, 1, 1), stride=(1, 2, 2), padding=(1, 0, 0), groups=2, bias=True,
                        padding_mode="replicate", activation="swish", eps=1e-3, momentum=0.2)
    assert type(block.conv) is nn.Conv3d and type(block.bn) is nn.BatchNorm3d
    assert isinstance(block.act, Swish)
    assert (block.conv.groups, block.conv.padding_mode, block.bn.eps, block.bn.momentum) == (2, "replicate", 1e-3, 0.2)
    assert {"conv.weight", "conv.bias", "bn.weight", "bn.running_mean"} <= set(block.state_dict())
    plain = Conv3dBnAct(4, 8, 1, norm=False, activation=None)
    assert plain.bn is None and type(plain.act).__name__ == "Identity"
    assert set(plain.state_dict()) == {"conv.weight"}


def test_from_modules_reuses_the_given_objects():
    conv, bn, act = nn.Conv3d(2, 4, 3), nn.BatchNorm3d(4), Swish()
    block = Conv3dBnAct.from_modules(conv, bn, act)
    assert block.conv is conv and block.bn is bn and block.act is act
    relu_block = Conv3dBnAct.from_modules(conv, None, nn.ReLU(inplace=True))
    assert isinstance(relu_block.act, ReLU) and relu_block.bn is None
    assert isinstance(Conv3dBnAct.from_modules(conv).act, Activation)


@pytest.mark.parametrize("args, error, match", [
    ((nn.Conv2d(2, 4, 3),), TypeError, "nn.Conv3d"),
    ((nn.Conv3d(2, 4, 3), nn.BatchNorm2d(4)), TypeError, "BatchNorm3d"),
    ((nn.Conv3d(2, 4, 3), nn.BatchNorm3d(5)), ValueError, "5 features.*4 output channels"),
    ((nn.Conv3d(2, 4, 3), None, nn.GELU()), ValueError, "unsupported activation GELU"),
])
def test_from_modules_rejects_what_it_cannot_represent(args, error, match):
    with pytest.raises(error, match=match):
        Conv3dBnAct.from_modules(*args)


# --------------------------------------------------------------------------- deploy numerics
@settings(deadline=None, max_examples=100)
@given(conv3d_configs(), seeds, st.booleans(), activations, TARGET_FORMS, st.sampled_from((1, 2)), st.booleans())
def test_deploy_form_matches_original(cfg, seed, norm, act, target_form, batch, channels_last):
    target, form = target_form
    block = _block(cfg, seed, norm, act)
    if form == "time_as_height" and not _time_as_height_applies(block.conv):
        form = DEFAULT_TEMPORAL_FORM
    deployed = block.deploy(cfg.input_shape, get_target(target), form=form)
    x = cfg.example_input(seed)[:1].expand(batch, -1, -1, -1, -1).contiguous() * 2  # batch is free
    if channels_last:  # x86 deploy runs the network in channels_last_3d: same values, other strides
        x = x.contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        assert_equivalent(deployed, block, x, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("target", ["x86", "mobile_cpu"])
@pytest.mark.parametrize("conv, t", [
    (nn.Conv3d(3, 4, (2, 4, 3), padding="same"), 5),  # asymmetric: the extra pad goes after
    (nn.Conv3d(3, 4, (2, 4, 3), padding="same", padding_mode="reflect", dilation=(3, 1, 1)), 5),
    (nn.Conv3d(3, 4, (3, 3, 3), padding="valid", bias=True), 4),
    (nn.Conv3d(3, 4, 1, padding=(3, 0, 0), stride=(2, 1, 1), bias=True), 1),  # only padding frames
    (nn.Conv3d(3, 4, (3, 1, 1), padding=(4, 0, 0), dilation=(2, 1, 1)), 1),  # one live tap of 3
    (nn.Conv3d(3, 3, (5, 3, 3), padding=(2, 1, 1), groups=3, padding_mode="circular"), 2),
    (nn.Conv3d(3, 4, (3, 1, 1), padding=(2, 0, 0), stride=(3, 1, 1), padding_mode="replicate"), 7),
])
def test_deploy_form_matches_original_on_edge_cases(conv, t, target):
    block = Conv3dBnAct.from_modules(conv, randomize_bn(nn.BatchNorm3d(conv.out_channels), 3), Swish()).eval()
    x = torch.randn(2, 3, t, 6, 7, generator=torch.Generator().manual_seed(0))
    if target == "x86":
        forms = X86_FORMS
    else:
        forms = TEMPORAL_FORMS if _time_as_height_applies(conv) and not isinstance(conv.padding, str) else ["taps"]
    for form in forms:
        with torch.no_grad():
            assert_equivalent(block.deploy(x.shape, target, form=form), block, x, rtol=1e-5)


def test_deploy_uses_running_stats_and_leaves_the_block_alone():
    block = Conv3dBnAct(3, 4, 3, padding=1)
    randomize_bn(block.bn, 1)
    before = {k: v.clone() for k, v in block.state_dict().items()}
    x = torch.randn(2, 3, 4, 5, 5)
    deployed = block.deploy(x.shape, "mobile_cpu")  # block is in train mode: deploy still folds running stats
    assert block.training
    assert all(torch.equal(before[k], v) for k, v in block.state_dict().items())
    assert all(p1 is not p2 for p1 in deployed.parameters() for p2 in block.parameters())
    with torch.no_grad():
        assert_equivalent(deployed, block.eval(), x, rtol=1e-5)
        # a deploy form that ignored BN would be far off: the check can fail
        with pytest.raises(AssertionError):
            assert_equivalent(deployed, block.conv, x, rtol=1e-5)


def test_bn_without_running_stats_cannot_be_deployed():
    block = Conv3dBnAct.from_modules(nn.Conv3d(2, 2, 1), nn.BatchNorm3d(2, track_running_stats=False))
    with pytest.raises(ValueError, match="no running statistics"):
        block.deploy((1, 2, 3, 4, 4), "x86")


# --------------------------------------------------------------------------- deploy structure
@settings(deadline=None, max_examples=60)
@given(conv3d_configs(), seeds, FORMS)
def test_mobile_deploy_runs_no_5d_conv_and_kT_conv2d_calls(cfg, seed, form):
    block = _block(cfg, seed)
    conv = block.conv
    if form == "time_as_height" and not _time_as_height_applies(conv):
        form = DEFAULT_TEMPORAL_FORM
    deployed = block.deploy(cfg.input_shape, "mobile_cpu", form=form)
    assert isinstance(deployed, TimeFolded)
    with torch.no_grad():
        ops = record_aten_ops(deployed, cfg.example_input(seed))
    assert ops_not_on_mobile(ops) == []
    kt, t, t_pad = conv.kernel_size[0], cfg.input_shape[2], conv.padding[0]
    if kt == 1 and t_pad == 0:
        expected, kind = 1, FramewiseConv2d
    elif form == "time_as_height":
        expected, kind = 1, TimeAsHeight
    else:
        expected, kind = _live_taps(conv, t), TemporalTaps
    assert type(deployed.inner) is kind
    assert count_ops(ops, "convolution") == count_ops(ops, "convolution", rank=4) == expected
    assert type(deployed.inner.act) is nn.ReLU
    assert _strided_slices(torch.fx.symbolic_trace(deployed.inner)) == []


def _strided_slices(gm):
    """Indexing with a step other than 1: XNNPACK's slice has none, so it would leave the delegate."""
    bad = []
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target is operator.getitem:
            index = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
            bad += [i for i in index if isinstance(i, slice) and i.step not in (None, 1)]
    return bad


def test_the_strided_slice_check_can_fail():
    gm = torch.fx.symbolic_trace(lambda x: x[:, ::2])
    assert _strided_slices(gm) == [slice(None, None, 2)]


@pytest.mark.parametrize("kernel, padding", [((3, 3, 3), 1), ((3, 1, 1), (1, 0, 0)), ((5, 3, 3), (2, 1, 1))])
def test_temporal_taps_call_count_is_kT_whatever_the_clip_length(kernel, padding):
    block = Conv3dBnAct(4, 4, kernel, padding=padding, groups=4).eval()
    seen = set()
    for t in range(kernel[0], 17, 3):
        x = torch.randn(1, 4, t, 6, 6)
        with torch.no_grad():
            ops = record_aten_ops(block.deploy(x.shape, "mobile_cpu"), x)
        assert count_ops(ops, "convolution", rank=4) == kernel[0]
        assert ops_not_on_mobile(ops) == []
        seen.add(sum(ops.values()))
    assert len(seen) == 1  # the whole op count is independent of T (the reference's grows with T)


def test_the_structural_check_can_fail():
    x = torch.randn(1, 2, 3, 4, 4)
    ops = record_aten_ops(nn.Sequential(nn.Conv3d(2, 2, 3), nn.AvgPool3d(1)), x)
    assert ops_not_on_mobile(ops) == [("avg_pool3d", 5), ("convolution", 5)]


def test_x86_deploy_keeps_one_conv3d_with_bn_folded_and_the_activation_after():
    block = _block_with(nn.Conv3d(3, 4, 3, padding=1, padding_mode="reflect"))
    x = torch.randn(1, 3, 4, 5, 5)
    deployed = block.deploy(x.shape, "x86")
    assert type(deployed) is Conv3dAct and type(deployed.conv) is nn.Conv3d
    assert deployed.conv.padding == (0, 0, 0) and deployed.pad is not None
    assert not any(isinstance(m, nn.BatchNorm3d) for m in deployed.modules())
    with torch.no_grad():
        ops = record_aten_ops(deployed, x)
    assert count_ops(ops, "convolution") == count_ops(ops, "convolution", rank=5) == 1
    assert ops[("relu_", 5)] == 1  # in place on the conv's fresh output: no second buffer
    zeros = _block_with(nn.Conv3d(3, 4, 3, padding=1)).deploy(x.shape, "x86")
    assert zeros.pad is None and zeros.conv.padding == (1, 1, 1)


@pytest.mark.parametrize("stride", [(1, 1, 1), (2, 1, 1), (1, 2, 3)])
def test_x86_pointwise_conv_is_one_matrix_product_on_the_channels_last_view(stride):
    block = _block_with(nn.Conv3d(6, 5, 1, stride=stride, bias=True))
    x = torch.randn(1, 6, 4, 5, 7).contiguous(memory_format=torch.channels_last_3d)
    deployed = block.deploy(x.shape, "x86")
    assert type(deployed) is PointwiseLinear and deployed.linear.weight.shape == (5, 6)
    with torch.no_grad():
        ops = record_aten_ops(deployed, x)
        assert_equivalent(deployed, block, x, rtol=1e-5)
    assert count_ops(ops, "convolution") == 0
    assert deployed(x.contiguous()).is_contiguous(memory_format=torch.channels_last_3d)  # whatever comes in
    assert ops[("addmm", 1)] == 1  # the bias goes in the GEMM
    copies = sum(n for (name, _), n in ops.items() if name in ("clone", "_unsafe_view", "copy_"))
    assert copies == (stride != (1, 1, 1))  # stride 1: a free view; else one copy of the strided slice
    assert ops[("relu_", 5)] == 1


def test_x86_framewise_conv_is_one_conv2d_over_the_frames():
    block = _block_with(nn.Conv3d(3, 8, (1, 3, 3), stride=(2, 2, 2), padding=(0, 1, 1)))
    x = torch.randn(2, 3, 5, 8, 8)
    deployed = block.deploy(x.shape, "x86")
    assert type(deployed) is FramesConv2d and deployed.t_stride == 2
    for layout in (torch.contiguous_format, torch.channels_last_3d):  # the output is channels-last either way
        x = x.contiguous(memory_format=layout)
        with torch.no_grad():
            ops = record_aten_ops(deployed, x)
            y = deployed(x)
            assert_equivalent(deployed, block, x, rtol=1e-5)
        assert count_ops(ops, "convolution") == count_ops(ops, "convolution", rank=4) == 1
        assert y.shape == (2, 8, 3, 4, 4) and y.is_contiguous(memory_format=torch.channels_last_3d)


@settings(deadline=None, max_examples=60)
@given(channels=st.integers(1, 6), kt=st.integers(1, 5), t=st.integers(1, 9), stride=st.integers(1, 3),
       dilation=st.integers(1, 3), pad=st.integers(0, 3), mode=st.sampled_from(["zeros", "replicate", "circular"]),
       bias=st.booleans(), norm=st.booleans(), act=activations, batch=st.sampled_from((1, 3)),
       channels_last=st.booleans(), seed=seeds)
def test_x86_frame_taps_match_the_conv(channels, kt, t, stride, dilation, pad, mode, bias, norm, act, batch,
                                       channels_last, seed):
    assume(t + 2 * pad >= dilation * (kt - 1) + 1)  # at least one output frame
    assume(mode == "zeros" or pad <= t)  # torch's circular pad reads at most one wrap
    torch.manual_seed(seed)
    conv = nn.Conv3d(channels, channels, (kt, 1, 1), stride=(stride, 1, 1), padding=(pad, 0, 0),
                     dilation=(dilation, 1, 1), groups=channels, bias=bias, padding_mode=mode)
    bn = randomize_bn(nn.BatchNorm3d(channels), seed) if norm else None
    block = Conv3dBnAct.from_modules(conv, bn, PLAIN_ACT[act]()).eval()
    x = torch.randn(batch, channels, t, 3, 4, generator=torch.Generator().manual_seed(seed))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    deployed = block.deploy(x.shape, "x86", form="taps")
    assert type(deployed) is FrameTaps
    with torch.no_grad():
        ops = record_aten_ops(deployed, x)
        assert_equivalent(deployed, block, x, rtol=1e-5)
        if channels_last:  # the network's layout survives the form
            assert deployed(x).is_contiguous(memory_format=torch.channels_last_3d)
    assert count_ops(ops, "convolution") == 0


def test_x86_frame_taps_only_for_per_channel_temporal_convs():
    for conv in (nn.Conv3d(4, 4, (3, 1, 1), groups=2), nn.Conv3d(4, 8, (3, 1, 1), groups=4),
                 nn.Conv3d(4, 4, (3, 1, 3), groups=4), nn.Conv3d(4, 4, (3, 1, 1), stride=(1, 2, 1), groups=4)):
        assert type(_block_with(conv).deploy((1, 4, 5, 6, 6), "x86", form="taps")) is Conv3dAct


def test_x86_conv3d_form_can_be_asked_for_and_other_forms_fall_back_to_it():
    pointwise = _block_with(nn.Conv3d(4, 4, 1))
    assert type(pointwise.deploy((1, 4, 3, 4, 4), "x86", form="conv3d")) is Conv3dAct
    assert type(pointwise.deploy((1, 4, 3, 4, 4), "x86", form="frames2d")) is Conv3dAct  # frames2d: not pointwise
    temporal = _block_with(nn.Conv3d(4, 4, (3, 1, 1), padding=(1, 0, 0)))
    assert type(temporal.deploy((1, 4, 3, 4, 4), "x86", form="linear")) is Conv3dAct
    with pytest.raises(ValueError, match="unknown form 'time_as_height' for target 'x86'"):
        temporal.deploy((1, 4, 3, 4, 4), "x86", form="time_as_height")


def _block_with(conv):
    return Conv3dBnAct.from_modules(conv, randomize_bn(nn.BatchNorm3d(conv.out_channels), 0), ReLU()).eval()


def test_taps_hold_constant_weights_and_relu_follows_the_sum():
    block = _block_with(nn.Conv3d(4, 4, (3, 3, 3), padding=1, groups=4))
    inner = block.deploy((1, 4, 6, 5, 5), "mobile_cpu").inner
    gm = torch.fx.symbolic_trace(inner)
    convs = [n for n in gm.graph.nodes if n.op == "call_module" and isinstance(gm.get_submodule(n.target), nn.Conv2d)]
    assert len(convs) == 3
    assert all(type(t.weight) is nn.Parameter and t.weight.shape == (4, 1, 3, 3) for t in inner.taps)
    assert not any(n.op == "get_attr" for n in gm.graph.nodes)  # no weight sliced in forward
    out = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    assert out.op == "call_module" and out.target == "act"


def test_framewise_conv_is_followed_directly_by_relu_for_fusion():
    block = _block_with(nn.Conv3d(4, 8, (1, 3, 3), stride=(2, 1, 1), padding=(0, 1, 1)))
    inner = block.deploy((1, 4, 6, 5, 5), "mobile_cpu").inner
    gm = torch.fx.symbolic_trace(inner)
    out = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    assert out.target == "act" and out.args[0].target == "conv"


def test_time_as_height_is_one_conv2d_with_a_kT_by_1_kernel():
    block = _block_with(nn.Conv3d(4, 6, (3, 1, 1), padding=(1, 0, 0)))
    x = torch.randn(2, 4, 5, 3, 3)
    deployed = block.deploy(x.shape, "mobile_cpu", form="time_as_height")
    assert deployed.inner.conv.kernel_size == (3, 1)
    with torch.no_grad():
        assert count_ops(record_aten_ops(deployed, x), "convolution", rank=4) == 1


def test_form_choices_are_validated():
    assert DEFAULT_TEMPORAL_FORM == "taps"
    block = _block_with(nn.Conv3d(2, 2, 3, padding=1))
    with pytest.raises(ValueError, match="unknown form 'fast'"):
        block.deploy((1, 2, 4, 4, 4), "mobile_cpu", form="fast")
    with pytest.raises(ValueError, match="time_as_height.*kT x 1 x 1"):
        block.deploy((1, 2, 4, 4, 4), "mobile_cpu", form="time_as_height")
    with pytest.raises(ValueError, match="unknown target"):
        block.deploy((1, 2, 4, 4, 4), "gpu")
    with pytest.raises(ValueError, match=r"5-D input shape \(N, 2, T, H, W\)"):
        block.deploy((1, 3, 4, 4, 4), "x86")
    with pytest.raises(ValueError, match="too small"):
        _block_with(nn.Conv3d(2, 2, 3)).deploy((1, 2, 2, 4, 4), "x86")


# --------------------------------------------------------------------------- traceability
@pytest.mark.parametrize("conv, form", [
    (nn.Conv3d(4, 4, (3, 3, 3), padding=1, groups=4, padding_mode="reflect"), "taps"),
    (nn.Conv3d(4, 6, (1, 3, 3), stride=2, padding=(0, 1, 1)), "taps"),
    (nn.Conv3d(4, 6, (3, 1, 1), padding=(1, 0, 0), padding_mode="replicate"), "time_as_height"),
])
def test_inner_forms_symbolic_trace_and_export(conv, form):
    block = _block_with(conv)
    x = torch.randn(2, 4, 5, 6, 6)
    deployed = block.deploy(x.shape, "mobile_cpu", form=form)
    folded = deployed.fold(x)
    gm = torch.fx.symbolic_trace(deployed.inner)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    with torch.no_grad():
        assert_equivalent(gm, deployed.inner, folded, rtol=1e-6)
        ep = torch.export.export(deployed.inner, (folded,))
        assert_equivalent(ep.module(), deployed.inner, folded, rtol=1e-6)
    with pytest.raises(ValueError, match=r"built for folded input"):  # the check survives tracing
        gm(folded[:, :3])
    x86 = torch.fx.symbolic_trace(block.deploy(x.shape, "x86"))
    with torch.no_grad():
        assert_equivalent(x86, block, x, rtol=1e-5)


# --------------------------------------------------------------------------- wrong shapes
@pytest.mark.parametrize("target, form, conv", [
    *[("mobile_cpu", f, nn.Conv3d(4, 4, (3, 1, 1), padding=(1, 0, 0))) for f in TEMPORAL_FORMS],
    ("x86", "conv3d", nn.Conv3d(4, 4, (3, 1, 1), padding=(1, 0, 0))),
    ("x86", "linear", nn.Conv3d(4, 4, 1)),
    ("x86", "frames2d", nn.Conv3d(4, 4, (1, 3, 3), padding=(0, 1, 1))),
])
@pytest.mark.parametrize("bad", [(1, 4, 6, 6, 6), (1, 4, 5, 7, 6), (1, 4, 5, 6, 5), (1, 3, 5, 6, 6)])
def test_deploy_forms_refuse_another_input_shape(target, form, conv, bad):
    block = _block_with(conv)
    deployed = block.deploy((2, 4, 5, 6, 6), target, form=form)
    deployed(torch.randn(7, 4, 5, 6, 6))  # batch is free
    with pytest.raises(ValueError, match=r"\(N, 4, 5, 6, 6\).*" + str(bad).replace("(", r"\(").replace(")", r"\)")):
        deployed(torch.randn(bad))


@pytest.mark.parametrize("conv", [nn.Conv3d(4, 4, (3, 3, 3), padding=1), nn.Conv3d(4, 4, (1, 3, 3), stride=(2, 1, 1)),
                                  nn.Conv3d(4, 4, (3, 1, 1))])
@pytest.mark.parametrize("bad", [(9, 4, 6, 6), (10, 3, 6, 6), (10, 4, 5, 6), (10, 4, 6, 7), (2, 10, 4, 6, 6)])
def test_inner_forms_refuse_another_folded_shape(conv, bad):
    inner = _block_with(conv).deploy((2, 4, 5, 6, 6), "mobile_cpu").inner
    inner(torch.randn(15, 4, 6, 6))  # any number of 5-frame clips
    with pytest.raises(ValueError, match=r"\(N\*5, 4, 6, 6\).*" + str(bad).replace("(", r"\(").replace(")", r"\)")):
        inner(torch.randn(bad))


def test_activation_choice_reaches_the_deploy_form():
    block = Conv3dBnAct(2, 2, (3, 1, 1), padding=(1, 0, 0), activation="hardswish").eval()
    assert type(block.deploy((1, 2, 3, 2, 2), "mobile_cpu").inner.act) is nn.Hardswish
    assert type(block.deploy((1, 2, 3, 2, 2), "x86").act) is nn.Hardswish
    assert isinstance(make_activation("identity").plain(), nn.Identity)


def test_x86_frames_form_is_right_for_one_channel_and_a_width_stride():
    """Found by hypothesis: oneDNN's conv2d on a one-channel tensor that is also channels-last
    contiguous is wrong for batch > 1 with stride (1, 2) (torch 2.13, x86): the form avoids that layout."""
    torch.manual_seed(0)
    block = Conv3dBnAct.from_modules(nn.Conv3d(1, 1, (1, 3, 3), stride=(2, 1, 2), bias=False)).eval()
    deployed = block.deploy((1, 1, 3, 4, 3), get_target("x86"), form="frames2d")
    x = torch.randn(2, 1, 3, 4, 3)
    with torch.no_grad():
        assert_equivalent(deployed, block, x, rtol=1e-5)
