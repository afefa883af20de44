"""Tracing: untraceable parts become opaque leaves, their children are still traced."""
import pytest
import torch
from torch import fx, nn

import fxaccel
from fxaccel.testing import assert_equivalent


class Branchy(nn.Module):
    """Tensor-dependent control flow: symbolic tracing of this forward must fail."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(nn.Conv3d(4, 4, 1), nn.BatchNorm3d(4), nn.ReLU())
        self.other = nn.Conv3d(4, 4, 1)

    def forward(self, x):
        x = self.inner(x)
        if x.sum() > 0:
            return self.other(x)
        return x


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(3, 4, 1)
        self.branchy = Branchy()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.branchy(self.stem(x)).mean((2, 3, 4)))


def test_untraceable_submodule_is_opaque_and_reported():
    model, x = Net().eval(), torch.randn(2, 3, 2, 4, 4)
    with pytest.raises(Exception):
        fx.symbolic_trace(model)
    gm = fxaccel.transmute(model, x)
    report = fxaccel.report_of(gm)
    assert [o.path for o in report.opaque] == ["branchy"]
    assert "control flow" in report.opaque[0].error
    assert isinstance(gm.branchy.inner, fx.GraphModule)     # its children were traced
    assert_equivalent(gm, model, x, rtol=1e-6)


def test_untraceable_root_is_wrapped_whole():
    model, x = Branchy().eval(), torch.randn(1, 4, 2, 3, 3)
    gm = fxaccel.trace(model)
    assert [n.op for n in gm.graph.nodes] == ["placeholder", "call_module", "output"]
    assert_equivalent(gm, model, x, rtol=0)


def test_trace_never_mutates_and_leaves_are_respected():
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gm = fxaccel.trace(model, leaves=["stem", Branchy])
    assert {n.target for n in gm.graph.nodes if n.op == "call_module"} >= {"stem", "branchy"}
    assert gm.stem is not model.stem
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_inputs_are_clear_errors():
    model = Net()
    with pytest.raises(ValueError, match=r"example inputs of shape \(1, 3, 4, 4\).*\(N, C, T, H, W\)"):
        fxaccel.transmute(model, torch.randn(1, 3, 4, 4))
    with pytest.raises(TypeError, match="tensor or a tuple of tensors"):
        fxaccel.transmute(model, [1, 2])
    with pytest.raises(TypeError, match="nn.Module"):
        fxaccel.transmute(lambda x: x, torch.randn(1))
    with pytest.raises(ValueError, match="unknown target 'gpu'.*mobile_cpu"):
        fxaccel.transmute(model, torch.randn(1, 3, 2, 4, 4), target="gpu")
