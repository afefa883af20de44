"""deploy() on the zoo X3D: exact for both targets and batch sizes 1 and 3, mobile structure.

The fast tests use X3D-XS at a 64x64 crop (deploy is shape-specific; the smaller crop keeps the
file quick); the ``slow`` ones run XS, S and M at their design input.
"""
import pytest
import torch
from torch import nn

import fxaccel
from fxaccel.blocks.layout import FoldTime, UnfoldTime
from fxaccel.deploying import deploy

from _deploy_helpers import RTOL, assert_unchanged, mobile_violations, rel_err, snapshot

SHAPE = (1, 3, 4, 64, 64)


@pytest.fixture(scope="module")
def x3d():
    model = fxaccel.zoo.x3d("XS", num_classes=10)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    snap = snapshot(model)
    gm = fxaccel.transmute(model, x)
    deployed = {t: deploy(gm, x, target=t) for t in ("mobile_cpu", "x86")}
    return model, x, snap, gm, deployed


def _clip(batch, t=4, seed=1):
    return torch.randn((batch, 3, t, 64, 64), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("target", ["mobile_cpu", "x86"])
@pytest.mark.parametrize("batch", [1, 3])
def test_x3d_deploy_equals_original(x3d, target, batch):
    model, _, _, _, deployed = x3d
    assert rel_err(deployed[target], model, _clip(batch)) < RTOL


def test_x3d_mobile_runs_no_5d_conv_pool_or_mean(x3d):
    _, _, _, _, deployed = x3d
    assert mobile_violations(deployed["mobile_cpu"], _clip(3)) == []


def test_x3d_mobile_folds_time_once_and_unfolds_once(x3d):
    fast = x3d[4]["mobile_cpu"]
    kinds = [type(fast.get_submodule(n.target)) for n in fast.graph.nodes if n.op == "call_module"]
    assert kinds.count(FoldTime) == 1
    assert kinds.count(UnfoldTime) == 1
    assert not any(isinstance(m, (nn.Conv3d, nn.BatchNorm3d)) for m in fast.modules())


def test_x3d_x86_keeps_conv3d_and_folds_every_bn(x3d):
    fast = x3d[4]["x86"]
    assert any(isinstance(m, nn.Conv3d) for m in fast.modules())
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fast.modules())


@pytest.mark.parametrize("target", ["mobile_cpu", "x86"])
def test_another_clip_length_is_refused(x3d, target):
    fast = x3d[4][target]
    with pytest.raises(ValueError, match=r"built for input shape \(N, 3, 4, 64, 64\).*deploy again"):
        fast(_clip(1, t=6))


def test_inputs_unchanged(x3d):
    model, _, snap, gm, _ = x3d
    assert_unchanged(model, snap)
    assert fxaccel.report_of(gm).stage == "transmute"  # the transmuted input is not deployed in place


def test_x3d_report_lists_every_layer(x3d):
    rep = fxaccel.report_of(x3d[4]["mobile_cpu"])
    assert rep.stage == "deploy" and rep.previous is not None and rep.previous.stage == "transmute"
    assert rep.layers and all({"layer", "block", "form", "ops_before", "ops_after"} <= row.keys()
                              for row in rep.layers)
    assert any(row["form"] == "TemporalTaps" for row in rep.layers)


@pytest.mark.slow
@pytest.mark.parametrize("size", ["XS", "S", "M"])
def test_zoo_x3d_design_input(size):
    model, x = fxaccel.zoo.x3d(size), fxaccel.zoo.example_input(size)
    gm = fxaccel.transmute(model, x)
    for target in ("mobile_cpu", "x86"):
        fast = deploy(gm, x, target=target, op_counts=False)
        for batch in (1, 3):
            xb = fxaccel.zoo.example_input(size, batch=batch, seed=batch)
            assert rel_err(fast, model, xb) < RTOL
        if target == "mobile_cpu":
            assert mobile_violations(fast, x) == []
