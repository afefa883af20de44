"""The targets' data: op-legality table and conv form registry (what Conv3dBnAct.deploy,
lower_blocks, the tuner, check_target and the ExecuTorch writer read)."""
from collections import Counter

import pytest
import torch
from torch import nn

from fxaccel.choices import builtin_choice
from fxaccel.forms.folded import FramewiseConv2d, TemporalTaps, TimeAsHeight
from fxaccel.forms.x86 import Conv3dAct, FrameTaps, PointwiseConv2dAct, PointwiseLinear
from fxaccel.targets import TARGETS, get_target
from fxaccel.testing.ops import ops_not_on_mobile

MOBILE, X86 = get_target("mobile_cpu"), get_target("x86")


def test_op_table_is_what_mobile_cannot_run():
    ops = Counter({("convolution", 5): 1, ("convolution", 4): 1, ("mean", 5): 1, ("mean", 4): 1,
                   ("avg_pool3d", 4): 1, ("view", 5): 1, ("amin", 5): 1})
    assert MOBILE.unsupported(ops) == ops_not_on_mobile(ops) == [
        ("amin", 5), ("avg_pool3d", 4), ("convolution", 5), ("mean", 5)]
    assert X86.unsupported(ops) == []
    assert {name: t.conv3d for name, t in TARGETS.items()} == {"mobile_cpu": False, "x86": True}
    # ExecuTorch refuses only what its portable kernels cannot run either (a 5-D mean runs, slowly)
    assert not MOBILE.no_kernel_for("convolution", 5).fallback
    assert MOBILE.no_kernel_for("mean", 5).fallback


@pytest.mark.parametrize("target, conv, kind, choice", [
    (X86, nn.Conv3d(4, 8, 1), "pointwise_conv", ("linear", "conv3d", "conv2d")),
    (X86, nn.Conv3d(4, 8, 1, stride=2), "pointwise_conv", ("linear", "conv3d")),
    (X86, nn.Conv3d(4, 8, (1, 3, 3)), "spatial_conv", ("frames2d", "conv3d")),
    (X86, nn.Conv3d(4, 4, 1, groups=4), "spatial_conv", ("frames2d", "conv3d")),
    (X86, nn.Conv3d(4, 4, (5, 1, 1), groups=4), "temporal_depthwise", ("conv3d", "taps")),
    (X86, nn.Conv3d(4, 8, 3), "conv", ("conv3d",)),
    (MOBILE, nn.Conv3d(4, 8, (1, 3, 3)), "framewise_conv", ()),
    (MOBILE, nn.Conv3d(4, 8, (3, 1, 1)), "temporal_conv", ("taps", "time_as_height")),
    (MOBILE, nn.Conv3d(4, 8, 3), "conv", ("taps",)),
    (MOBILE, nn.Conv3d(4, 8, 1, padding=(1, 0, 0)), "conv", ("taps",)),  # kT == 1 mixing frames: no choice
])
def test_each_conv_has_one_kind_and_its_candidates(target, conv, kind, choice):
    k = target.layer_kind(conv)
    assert k.name == kind and tuple(f.name for f in k.candidates(conv)) == choice


@pytest.mark.parametrize("target, conv, form, module", [
    (X86, nn.Conv3d(4, 8, 1), None, PointwiseLinear),
    (X86, nn.Conv3d(4, 8, 1), "conv2d", PointwiseConv2dAct),
    (X86, nn.Conv3d(4, 8, 1, stride=2), "conv2d", Conv3dAct),            # does not apply: the fallback
    (X86, nn.Conv3d(4, 8, 1), "taps", Conv3dAct),
    (X86, nn.Conv3d(4, 4, 1, groups=4), "taps", FrameTaps),             # applies outside its kind too
    (X86, nn.Conv3d(4, 4, (5, 1, 1), groups=4), None, Conv3dAct),       # the block's own; builtin may differ
    (MOBILE, nn.Conv3d(4, 8, 1), "time_as_height", FramewiseConv2d),    # a fixed kind keeps its form
    (MOBILE, nn.Conv3d(4, 8, (3, 1, 1)), None, TemporalTaps),
    (MOBILE, nn.Conv3d(4, 8, (3, 1, 1)), "time_as_height", TimeAsHeight),
    (MOBILE, nn.Conv3d(4, 8, 1, padding=(1, 0, 0)), "time_as_height", TimeAsHeight),
])
def test_form_for_a_request(target, conv, form, module):
    assert target.form_for(conv, form).module is module


def test_form_requests_that_cannot_be_met_say_why():
    with pytest.raises(ValueError, match="unknown form 'fast' for target 'x86'"):
        X86.form_for(nn.Conv3d(4, 8, 1), "fast")
    with pytest.raises(ValueError, match="time_as_height.*kT x 1 x 1.*use form='taps'"):
        MOBILE.form_for(nn.Conv3d(4, 8, 3), "time_as_height")


def test_builtin_choice_reads_the_registry_and_its_overrides(monkeypatch):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert builtin_choice(X86, "temporal_depthwise", "sig") == "taps"
        torch.set_num_threads(2)
        assert builtin_choice(X86, "temporal_depthwise", "sig") == "conv3d"
    finally:
        torch.set_num_threads(before)
    monkeypatch.setitem(MOBILE.measured, "sig", "time_as_height")
    assert builtin_choice("mobile_cpu", "temporal_conv", "sig") == "time_as_height"
    assert builtin_choice("mobile_cpu", "temporal_conv", "other") == "taps"
    with pytest.raises(KeyError, match="no built-in choice for kind 'conv'"):  # one form: nothing to choose
        builtin_choice(MOBILE, "conv", "sig")
