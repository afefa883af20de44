"""conv_bn_act: ``[act]([bn](conv(x)))`` becomes one ``Conv3dBnAct``, BN and activation optional; each
reason to keep BN (or the whole conv) outside is reported, and the smaller match is taken instead."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxaccel
from fxaccel.blocks.conv import Conv3dBnAct
from _transmute_helpers import record, transmuted

X = torch.randn(2, 4, 3, 6, 6)
RULE = "conv_bn_act"


class ConvBnAct(nn.Module):
    def __init__(self, bn=True, act=torch.relu, conv=nn.Conv3d, norm=nn.BatchNorm3d):
        super().__init__()
        self.conv = conv(4, 6, (1, 3, 3), padding=(0, 1, 1))
        self.bn = norm(6) if bn else None
        self.act = act

    def forward(self, x):
        y = self.conv(x)
        y = self.bn(y) if self.bn is not None else y
        return self.act(y) if self.act is not None else y


def _transmute(model, **kw):
    return transmuted(model, X, bn=True, **kw)


def _blocks(gm):
    return [m for m in gm.modules() if isinstance(m, Conv3dBnAct)]


def _record(gm):
    return record(gm, RULE)


@pytest.mark.parametrize("bn", [True, False])
@pytest.mark.parametrize("act, block_act", [
    (None, "Identity"), (torch.relu, "ReLU"), (nn.ReLU(), "ReLU"), (F.silu, "Swish"), (nn.SiLU(), "Swish"),
    (F.hardswish, "HardSwish"),
])
def test_conv_with_or_without_bn_and_activation_becomes_one_block(bn, act, block_act):
    gm = _transmute(ConvBnAct(bn=bn, act=act))
    (block,) = _blocks(gm)
    assert (block.bn is not None) == bn and type(block.act).__name__ == block_act
    assert [n.op for n in gm.graph.nodes] == ["placeholder", "call_module", "output"]
    assert _record(gm).rewritten == 1 and _record(gm).skipped == []


class _SubConv(nn.Conv3d):
    pass


class _SubBN(nn.BatchNorm3d):
    pass


def test_a_conv3d_subclass_is_left_alone():
    gm = _transmute(ConvBnAct(conv=_SubConv), leaves=[_SubConv])  # a leaf, else it is traced into
    assert not _blocks(gm)
    assert [s.reason for s in _record(gm).skipped] == ["_SubConv subclasses Conv3d (its forward may differ)"]


class _Shared(ConvBnAct):
    def forward(self, x):
        return self.act(self.bn(self.conv(x))) + self.conv(x)


def test_a_conv_called_twice_is_left_alone():
    gm = _transmute(_Shared())
    assert not _blocks(gm)
    assert {s.reason for s in _record(gm).skipped} == {"conv module is called at 2 places (shared weights); left alone"}


class _TwoUsers(ConvBnAct):
    def forward(self, x):
        y = self.conv(x)
        return self.act(self.bn(y)) + y


class _BnShared(ConvBnAct):
    def __init__(self):
        super().__init__()
        self.conv2 = nn.Conv3d(4, 6, 1)

    def forward(self, x):
        return self.act(self.bn(self.conv(x))) + self.bn(self.conv2(x))


class _BnLeak(ConvBnAct):
    def forward(self, x):
        y = self.bn(self.conv(x))
        return self.act(y) + y


@pytest.mark.parametrize("model, leaves, reason, bn_inside", [
    (_TwoUsers(), [], "conv output has 2 users: BN not fused", False),
    (ConvBnAct(norm=_SubBN), [_SubBN], "BN bn kept outside: _SubBN is not BatchNorm3d", False),
    (ConvBnAct(norm=lambda c: nn.BatchNorm3d(c, track_running_stats=False)), [],
     "BN bn kept outside: BN has no running stats (track_running_stats=False)", False),
    (_BnShared(), [], "BN bn kept outside: BN module is called at several places", False),
    (_BnLeak(), [], "bn has 2 users (a value inside the match is read elsewhere)", True),
])
def test_each_reason_to_keep_bn_or_the_activation_outside(model, leaves, reason, bn_inside):
    gm = _transmute(model, leaves=leaves)
    assert reason in [s.reason for s in _record(gm).skipped]
    block = gm.get_submodule("conv")
    assert isinstance(block, Conv3dBnAct)  # the smaller match (conv, or conv + BN) still fires
    assert (block.bn is not None) == bn_inside and type(block.act).__name__ == "Identity"


def test_an_activation_with_an_extra_argument_does_not_join():
    """Exact arity: ``F.silu(y, inplace=False)`` (canonicalisation skipped) is not ``F.silu(y)``."""
    gm = _transmute(ConvBnAct(act=F.silu), skip=["canonicalize_swish"])
    (block,) = _blocks(gm)
    assert block.bn is not None and type(block.act).__name__ == "Identity"
    assert F.silu in [n.target for n in gm.graph.nodes]
    miss = _record(gm).miss
    assert miss.stopped_at == "silu" and "called with keyword arguments inplace" in miss.why
    assert "stopped at silu" in fxaccel.report_of(gm).why(RULE)
