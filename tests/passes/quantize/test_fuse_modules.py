"""fuse_modules: conv-BN-ReLU, conv-BN, conv-ReLU, linear-ReLU and BN-ReLU become torch's fused
module at the head's name (BN folded, rtol 1e-5: the fold reorders sums; randomised BN stats);
the longest chain wins; a value read elsewhere ends the chain; shared weights are a reason."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.passes.quantize.fuse_modules import FuseModules
from fxaccel.testing import assert_equivalent, randomize_bn

from _quantize_helpers import apply, calls, traced

X = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))


class Chain(nn.Module):
    def __init__(self, *layers, relu=None):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.relu = relu

    def forward(self, a, b):
        for layer in self.layers:
            a = layer(a)
        return self.relu(a) if self.relu is not None else a


def _bn(c=4, seed=0, **kw):
    bn = nn.BatchNorm2d(c, **kw)
    if bn.track_running_stats:
        randomize_bn(bn, seed)
    return bn


def _model(*layers, relu=None):
    return Chain(*layers, relu=relu).eval()


@pytest.mark.parametrize("model, fused", [
    (lambda: _model(nn.Conv2d(3, 4, 3), _bn(), relu=nn.ReLU()), "ConvReLU2d"),
    (lambda: _model(nn.Conv2d(3, 4, 3), _bn(), relu=torch.relu), "ConvReLU2d"),
    (lambda: _model(nn.Conv2d(3, 4, 3), _bn(), relu=lambda y: F.relu(y, inplace=True)), "ConvReLU2d"),
    (lambda: _model(nn.Conv2d(3, 4, 3), _bn()), "Conv2d"),
    (lambda: _model(nn.Conv2d(3, 4, 3), relu=lambda y: y.relu()), "ConvReLU2d"),
    (lambda: _model(_bn(3), relu=nn.ReLU()), "BNReLU2d"),
    (lambda: _model(nn.Flatten(), nn.Linear(108, 5), relu=torch.relu), "LinearReLU"),
])
def test_each_chain_becomes_one_fused_module_at_the_head_name(model, fused):
    model = model()
    gm = traced(model, X, X)
    record = apply(FuseModules(), gm)
    assert (record.matched, record.rewritten, record.skipped) == (1, 1, [])
    modules = [c for c in calls(gm) if isinstance(c, type)]
    assert [t.__name__ for t in modules if t is not nn.Flatten] == [fused]
    assert not [c for c in calls(gm) if c in (torch.relu, F.relu, "relu")]
    head = "layers.1" if fused == "LinearReLU" else "layers.0"  # the fused module takes the head's name
    assert type(gm.get_submodule(head)).__name__ == fused
    assert_equivalent(gm, model, (X, X), rtol=1e-5, atol=1e-6)


def test_bn_without_running_stats_fuses_only_with_its_relu():
    model = _model(nn.Conv2d(3, 4, 3), _bn(track_running_stats=False), relu=nn.ReLU())
    gm = traced(model, X, X)
    apply(FuseModules(), gm)
    assert [t.__name__ for t in calls(gm) if isinstance(t, type)] == ["Conv2d", "BNReLU2d"]


def test_a_value_read_elsewhere_ends_the_chain_without_a_reason():
    class Branch(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 1), _bn()

        def forward(self, a, b):
            y = self.bn(self.conv(a))
            return torch.relu(y) + y  # the BN output is read twice: conv-BN fuses, the ReLU stays

    model = Branch().eval()
    gm = traced(model, X, X)
    record = apply(FuseModules(), gm)
    assert calls(gm)[:2] == [nn.Conv2d, torch.relu] and record.rewritten == 1 and not record.skipped
    assert_equivalent(gm, model, (X, X), rtol=1e-5, atol=1e-6)


def test_shared_weights_are_a_reason():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, a, b):
            return torch.relu(self.conv(a)) + self.conv(b)

    model = Shared().eval()
    gm = traced(model, X, X)
    record = apply(FuseModules(), gm)
    (skip,) = record.skipped
    assert (skip.where, skip.reason) == ("conv", "module conv is called more than once (shared weights)")
    assert calls(gm).count(nn.Conv2d) == 2 and torch.relu in calls(gm)
