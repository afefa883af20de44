"""fold_bn: a BatchNorm after the conv / linear it normalises folds into its weights; each refusal
has its reason (random running stats and affine parameters: defaults would hide folding bugs)."""
import pytest
import torch
from torch import nn

from fxaccel.passes.deploy.fold_bn import FoldBn
from fxaccel.testing import assert_equivalent, randomize_bn


def _x(*shape):
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("layer, bn, x", [
    (nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4), _x(2, 3, 9)),
    (nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), _x(2, 3, 9, 9)),
    (nn.Conv3d(3, 4, 3), nn.BatchNorm3d(4), _x(2, 3, 4, 9, 9)),
    (nn.Linear(3, 4), nn.BatchNorm1d(4), _x(5, 3)),
])
def test_bn_folds_into_the_layer_before_it(layer, bn, x, traced, apply, calls):
    model = nn.Sequential(layer, randomize_bn(bn, 1)).eval()
    gm = traced(model, x)
    rec = apply(FoldBn(), gm)
    assert rec.matched == rec.rewritten == 1 and not rec.skipped
    assert calls(gm) == [type(layer)]
    assert_equivalent(gm, model, x)


def test_a_chain_of_bns_folds_one_by_one(traced, apply, calls):
    model = nn.Sequential(nn.Conv3d(3, 4, 1), randomize_bn(nn.BatchNorm3d(4), 1), randomize_bn(nn.BatchNorm3d(4), 2))
    x = _x(2, 3, 2, 5, 5)
    gm = traced(model, x)
    assert apply(FoldBn(), gm).rewritten == 2 and calls(gm) == [nn.Conv3d]
    assert_equivalent(gm, model.eval(), x)


class _TwoUsers(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv3d(2, 2, 1), randomize_bn(nn.BatchNorm3d(2), 3)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class _LinearOn3d(nn.Module):
    """BatchNorm1d normalises dim 1 of an (N, C, L) tensor: not the Linear's features."""

    def __init__(self, length):
        super().__init__()
        self.fc, self.bn = nn.Linear(6, 4), randomize_bn(nn.BatchNorm1d(length), 1)

    def forward(self, x):
        return self.bn(self.fc(x))


@pytest.mark.parametrize("model, x, reason", [
    (_TwoUsers(), _x(2, 2, 3, 4, 4), "conv output has 2 users (the unnormalised value is needed)"),
    (nn.Sequential(nn.Conv3d(2, 4, 1), nn.BatchNorm3d(4, track_running_stats=False)), _x(3, 2, 3, 4, 4),
     "BN has no running stats (track_running_stats=False): not a constant affine map"),
    (nn.Sequential(nn.Conv3d(2, 4, 1), nn.SyncBatchNorm(4)), _x(3, 2, 3, 4, 4),
     "SyncBatchNorm does not pair with Conv3d"),
    (_LinearOn3d(5), _x(2, 5, 6), "BN has 5 features, fc gives 4"),
    (_LinearOn3d(4), _x(2, 4, 6), "BatchNorm1d after a Linear folds only on 2-D (N, features) inputs"),
])
def test_each_refusal_has_its_reason(model, x, reason, traced, apply, calls):
    gm = traced(model, x)
    before = calls(gm)
    rec = apply(FoldBn(), gm)
    assert rec.rewritten == 0 and [s.reason for s in rec.skipped] == [reason]
    assert calls(gm) == before
    assert_equivalent(gm, model.eval(), x)
