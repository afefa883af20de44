"""activation / unsupported_activation: a standalone relu, swish or hardswish becomes its activation
block (never one for the other); after a conv, ``conv_bn_act`` takes it; activations with no block
are reported as not converted."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxaccel
from fxaccel.blocks.act import Activation
from fxaccel.blocks.conv import Conv3dBnAct
from _transmute_helpers import transmuted

X = torch.randn(2, 4, 3, 6, 6)


class Act(nn.Module):
    """``act(x + 1)``: the activation's input is no conv, so it stands alone."""

    def __init__(self, act):
        super().__init__()
        self.act = act

    def forward(self, x):
        return self.act(x + 1)


def _transmute(model, **kw):
    return transmuted(model, X, bn=False, **kw)


def _acts(gm):
    return [type(m).__name__ for m in gm.modules() if isinstance(m, Activation)]


@pytest.mark.parametrize("act, block", [
    (nn.ReLU(), "ReLU"), (F.relu, "ReLU"), (torch.relu, "ReLU"), (nn.SiLU(), "Swish"), (F.silu, "Swish"),
    (lambda x: x * torch.sigmoid(x), "Swish"), (nn.Hardswish(), "HardSwish"), (F.hardswish, "HardSwish"),
])
def test_a_standalone_activation_becomes_its_block(act, block):
    gm = _transmute(Act(act))
    assert _acts(gm) == [block]
    assert fxaccel.report_of(gm).record("activation").rewritten == 1


def test_a_module_activation_block_takes_the_module_path():
    gm = _transmute(Act(nn.SiLU()))
    assert type(gm.get_submodule("act")).__name__ == "Swish"


def test_after_a_conv_the_activation_joins_the_conv_block():
    model = nn.Sequential(nn.Conv3d(4, 4, 1), nn.Hardswish())
    gm = _transmute(model)
    (block,) = [m for m in gm.modules() if isinstance(m, Conv3dBnAct)]
    assert type(block.act).__name__ == "HardSwish"
    assert fxaccel.report_of(gm).record("activation").rewritten == 0


@pytest.mark.parametrize("act, name", [(nn.GELU(), "act"), (F.gelu, "gelu"), (nn.ReLU6(), "act"), (F.elu, "elu")])
def test_an_activation_without_a_block_is_reported(act, name):
    gm = _transmute(Act(act))
    assert not _acts(gm)
    rec = fxaccel.report_of(gm).record("unsupported_activation")
    assert rec.rewritten == 0
    assert [s.reason for s in rec.skipped] == [f"activation {name} has no efficient block; not converted"]


def test_an_activation_with_an_extra_argument_is_not_converted():
    """Exact arity: ``F.silu(y, inplace=False)`` (canonicalisation skipped) is not ``F.silu(y)``."""
    gm = _transmute(Act(F.silu), skip=["canonicalize_swish"])
    assert not _acts(gm)
    miss = fxaccel.report_of(gm).record("activation").miss
    assert miss.root == "silu" and miss.stopped_at == "silu"
    assert "called with keyword arguments inplace" in miss.why
    assert "stopped at silu" in fxaccel.report_of(gm).why("activation")
