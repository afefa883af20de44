"""deploy() on models written by others (tests/models_in_the_wild.py), both targets, batch 1 and 3."""
import pytest
import torch

import fxaccel
from fxaccel.deploying import DeployError, deploy
from models_in_the_wild import ALL_MODELS

from _deploy_helpers import RTOL, assert_unchanged, mobile_violations, rel_err, snapshot

NAMES = sorted(set(ALL_MODELS) - {"control_flow"})


@pytest.mark.parametrize("target", ["mobile_cpu", "x86"])
@pytest.mark.parametrize("name", NAMES)
def test_wild_model_deploys_exactly(name, target):
    model, x = ALL_MODELS[name](seed=1)
    snap = snapshot(model)
    fast = deploy(model, x, target=target, op_counts=False)
    assert_unchanged(model, snap)
    for batch in (1, 3):
        xb = torch.randn((batch, *x.shape[1:]), generator=torch.Generator().manual_seed(batch))
        assert rel_err(fast, model, xb) < RTOL
        if target == "mobile_cpu":
            assert mobile_violations(fast, xb) == []
    assert fxaccel.report_of(fast).stage == "deploy"


def test_untraceable_block_goes_mobile_with_its_conv_rewritten_inside():
    """``gate`` is opaque (data-dependent branch): its own code runs as written, but its Conv3d (a
    leaf inside it) is rewritten there, so it deploys; the 5-D ``sum`` of its branch is a note."""
    model, x = ALL_MODELS["control_flow"]()
    fast = deploy(model, x, target="mobile_cpu")
    assert rel_err(fast, model, x) < RTOL
    assert [op for op, _ in mobile_violations(fast, x)] == ["sum"]  # the branch's x.sum(): a portable kernel
    assert any("sum(5-D)" in n for n in fxaccel.report_of(fast).record("check_target").notes)


class _FunctionalGate(torch.nn.Module):
    """A 5-D conv spelt functionally inside untraceable code: nothing fxaccel can rewrite."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(3, 3, 1, 1, 1))

    def forward(self, x):
        if x.sum() > 0:
            return torch.nn.functional.conv3d(x, self.weight)
        return x


def test_untraceable_functional_conv_cannot_go_mobile_and_error_names_it():
    model, x = torch.nn.Sequential(_FunctionalGate()).eval(), torch.rand(1, 3, 2, 8, 8)
    with pytest.raises(DeployError, match=r"'0'.*_FunctionalGate.*opaque.*convolution\(5-D\)"):
        deploy(model, x, target="mobile_cpu")


def test_untraceable_block_is_fine_on_x86():
    model, x = ALL_MODELS["control_flow"]()
    fast = deploy(model, x, target="x86", op_counts=False)
    assert rel_err(fast, model, x) < RTOL


def test_shared_conv_gets_a_folded_copy_per_call_site():
    """Each call of the shared conv is followed by its own BN: each site folds its own copy."""
    model, x = ALL_MODELS["shared_conv"]()
    fast = deploy(model, x, target="x86", op_counts=False)
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in fast.modules())
    assert rel_err(fast, model, x) < RTOL


def test_two_users_bn_runs_folded_on_mobile():
    model, x = ALL_MODELS["two_users"]()
    fast = deploy(model, x, target="mobile_cpu", op_counts=False)
    assert rel_err(fast, model, x) < RTOL
    # on mobile the leftover BatchNorm3d runs per frame as a BatchNorm2d in the folded layout
    assert any(type(m) is torch.nn.BatchNorm2d for m in fast.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in fast.modules())


class _SumGatedRoot(torch.nn.Module):
    """An untraceable *root* whose only 5-D op outside the convs is a full reduction (``x.sum()``)."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv3d(3, 4, (3, 1, 1), padding=(1, 0, 0)), torch.nn.ReLU())

    def forward(self, x):
        if x.sum() > 0:
            return self.body(x)
        return self.body(-x)


def test_full_reduction_on_5d_is_a_note_not_a_refusal_on_mobile():
    model, x = _SumGatedRoot().eval(), torch.rand(1, 3, 4, 6, 6)
    fast = deploy(model, x, target="mobile_cpu", op_counts=False)
    assert rel_err(fast, model, x) < RTOL and rel_err(fast, model, -x) < RTOL
    notes = [n for p in fxaccel.report_of(fast).passes if p.name == "check_target" for n in p.notes]
    assert any("sum(5-D)" in n and "portable kernels" in n for n in notes), notes
