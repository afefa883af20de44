"""``inline_forms``: deploy-form modules are traced through (for ExecuTorch and NNAPI) so the fixes
see every op; numerics are unchanged (exactly: the same ops on the same tensors)."""
import torch
from torch import fx, nn

import fxaccel
from fxaccel.exporting import lower
from fxaccel.testing import randomize_bn


def _model(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv3d(3, 6, (3, 3, 3), padding=1), nn.BatchNorm3d(6), nn.ReLU(),
                      nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(6, 4)).eval()
    randomize_bn(m[1], seed)
    return m


def test_deploy_form_is_flattened_and_exact():
    x = torch.randn(2, 3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    deployed = fxaccel.deploy(_model(), x, target="mobile_cpu")
    assert any(n.op == "call_module" for n in deployed.graph.nodes)
    low = lower(deployed, (x,), "executorch")
    assert not any(n.op == "call_module" for n in low.graph.nodes)
    with torch.no_grad():
        assert torch.equal(low(x), deployed(x))
    record = {p.name: p for p in fxaccel.report_of(low).passes}["inline_forms"]
    assert record.rewritten == record.matched > 0


def test_torchscript_formats_keep_the_modules():
    x = torch.randn(1, 3, 3, 8, 8)
    deployed = fxaccel.deploy(_model(), x, target="mobile_cpu")
    low = lower(deployed, (x,), "torchscript_lite")
    assert [n.target for n in low.graph.nodes if n.op == "call_module"] == \
        [n.target for n in deployed.graph.nodes if n.op == "call_module"]


def test_untraceable_module_is_kept_with_the_reason():
    class Gate(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x  # data-dependent control flow

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate = Gate()

        def forward(self, x):
            return self.gate(x) + 1

    class Leaves(fx.Tracer):
        def is_leaf_module(self, m, q):
            return isinstance(m, Gate) or super().is_leaf_module(m, q)

    net = Net()
    gm = fx.GraphModule(net, Leaves().trace(net))
    x = torch.randn(3)
    low = lower(gm, (x,), "executorch")
    assert any(n.op == "call_module" for n in low.graph.nodes)
    (skip,) = {p.name: p for p in fxaccel.report_of(low).passes}["inline_forms"].skipped
    assert skip.where == "gate" and "tracing through it fails" in skip.reason  # the rest is inlined
    assert [n.target for n in low.graph.nodes if n.op == "call_module"] == ["gate"]
    assert torch.equal(low(x), gm(x))


def test_module_whose_traced_code_fails_on_the_inputs_is_kept():
    """Swin3D's window attention: it traces, but its graph mutates a list FX froze."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2] / "framework"))
    from test_tracing import ListMutator

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = ListMutator().eval()

        def forward(self, x):
            return self.attn(x) * 2

    class Leaves(fx.Tracer):
        def is_leaf_module(self, m, q):
            return isinstance(m, ListMutator) or super().is_leaf_module(m, q)

    net = Net().eval()
    gm = fx.GraphModule(net, Leaves().trace(net))
    x = torch.randn(1, 4, 3, 2, 2)
    low = lower(gm, (x,), "executorch")
    skips = {s.where: s.reason for s in {p.name: p for p in fxaccel.report_of(low).passes}["inline_forms"].skipped}
    assert "fails on the example inputs" in skips["attn"] and "immutable_list" in skips["attn"]
    assert torch.allclose(low(x), net(x))
