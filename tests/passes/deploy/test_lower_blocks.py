"""lower_blocks: every efficient block becomes its deploy form for the target and its propagated
input shape (a report row per layer); a block the example inputs never reach keeps its original
form, with the reason; a block called at two places gets one form per call site."""
import pytest
import torch
from torch import nn

from fxaccel.blocks.base import EfficientBlock
from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.passes.deploy.lower_blocks import LowerBlock
from fxaccel.testing import assert_equivalent
from fxaccel.testing.ops import ops_not_on_mobile, record_aten_ops
from fxaccel.zoo import realistic_bn

X = torch.randn(2, 3, 4, 6, 6, generator=torch.Generator().manual_seed(0))


def _block():
    conv = nn.Sequential(nn.Conv3d(3, 5, 3, padding=1, bias=False), nn.BatchNorm3d(5))
    realistic_bn(conv, [X])
    return Conv3dBnAct.from_modules(conv[0], conv[1], nn.ReLU()).eval()


@pytest.mark.parametrize("target", ["mobile_cpu", "x86"])
def test_a_block_becomes_its_deploy_form(target, traced, apply, calls, context):
    model = nn.Sequential(_block())
    gm = traced(model, X, leaves=(EfficientBlock,))
    ctx = context(target, X)
    rec = apply(LowerBlock(), gm, ctx)
    assert rec.matched == rec.rewritten == 1
    assert not isinstance(gm.get_submodule("0"), EfficientBlock)
    assert [row["layer"] for row in ctx.report.layers] == ["0"]
    if target == "mobile_cpu":
        assert ops_not_on_mobile(record_aten_ops(gm, X)) == []
    assert_equivalent(gm, model, X)


def test_a_block_without_a_propagated_shape_keeps_its_form(traced, apply, context):
    gm = traced(nn.Sequential(_block()), X, shapes=False, leaves=(EfficientBlock,))
    rec = apply(LowerBlock(), gm, context("mobile_cpu", X))
    assert rec.rewritten == 0 and isinstance(gm.get_submodule("0"), Conv3dBnAct)
    (skip,) = rec.skipped
    assert skip.where == "0" and "no propagated input shape" in skip.reason


def test_a_block_called_twice_gets_a_form_per_call_site(traced, apply, context):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = _block()

        def forward(self, x):
            return self.block(x) + self.block(x[:, :, :2]).mean()

    model = Twice().eval()
    gm = traced(model, X, leaves=(EfficientBlock,))
    rec = apply(LowerBlock(), gm, context("mobile_cpu", X))
    assert rec.rewritten == 2
    targets = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert len(set(targets)) == 2  # one form per site: the last site took the block's own path
    assert not any(isinstance(gm.get_submodule(t), EfficientBlock) for t in targets)
    assert_equivalent(gm, model, X)
