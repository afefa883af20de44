"""squeeze_excite: the SE spellings become ``SqueezeExcite3d``; every bail-out has its reason; an SE
spelled with an op the rule does not know is explained by the report (the closest partial match)."""
import torch
import torch.nn.functional as F
from torch import nn

import fxaccel
from fxaccel.blocks.attention import SqueezeExcite3d

X = torch.randn(2, 8, 3, 6, 6)


class SE(nn.Module):
    def __init__(self, gate=torch.sigmoid, act=F.relu, gate_first=False, linear=False):
        super().__init__()
        self.linear = linear
        layer = (lambda a, b: nn.Linear(a, b)) if linear else (lambda a, b: nn.Conv3d(a, b, 1))
        self.reduce, self.expand = layer(8, 4), layer(4, 8)
        self.gate, self.act, self.gate_first = gate, act, gate_first

    def forward(self, x):
        s = F.adaptive_avg_pool3d(x, 1)
        if self.linear:
            s = s.flatten(1)
        g = self.gate(self.expand(self.act(self.reduce(s))))
        if self.linear:
            g = g.view(-1, 8, 1, 1, 1)
        return g * x if self.gate_first else x * g


def _se_blocks(gm):
    return [m for m in gm.modules() if isinstance(m, SqueezeExcite3d)]


def _record(gm):
    return {p.name: p for p in fxaccel.report_of(gm).passes}["squeeze_excite"]


def test_conv_and_linear_se_in_either_operand_order_become_one_block():
    for linear in (False, True):
        for gate_first in (False, True):
            model = SE(gate_first=gate_first, linear=linear).eval()
            gm = fxaccel.transmute(model, X)
            assert len(_se_blocks(gm)) == 1, (linear, gate_first)
            assert _record(gm).rewritten == 1


def test_a_value_read_outside_the_se_is_a_reason():
    class Leaky(SE):
        def forward(self, x):
            s = F.adaptive_avg_pool3d(x, 1)
            r = self.act(self.reduce(s))
            return x * torch.sigmoid(self.expand(r)) + r.mean()

    gm = fxaccel.transmute(Leaky().eval(), X)
    assert not _se_blocks(gm)
    assert any("users" in s.reason for s in _record(gm).skipped)


def test_shared_weights_are_a_reason():
    class Shared(SE):
        def forward(self, x):
            s = F.adaptive_avg_pool3d(x, 1)
            return x * torch.sigmoid(self.expand(F.relu(self.reduce(s)))) + self.reduce(x).mean()

    gm = fxaccel.transmute(Shared().eval(), X)
    assert not _se_blocks(gm)
    assert any("called at 2 places" in s.reason for s in _record(gm).skipped)


def test_an_unsupported_gate_is_explained_by_the_report():
    model = SE(gate=F.hardsigmoid).eval()  # hard-sigmoid gate: no SE rule spelling for it
    gm = fxaccel.transmute(model, X)
    assert not _se_blocks(gm)
    rec = _record(gm)
    assert rec.rewritten == 0 and rec.miss is not None
    assert rec.miss.root == "mul" and rec.miss.stopped_at == "hardsigmoid"
    assert "expected function sigmoid" in rec.miss.why and "hardsigmoid" in rec.miss.why
    why = fxaccel.report_of(gm).why("squeeze_excite")
    assert "squeeze_excite" in why and "stopped at hardsigmoid" in why


def test_an_unsupported_inner_activation_is_explained_too():
    gm = fxaccel.transmute(SE(act=F.gelu).eval(), X)
    miss = _record(gm).miss
    assert miss.stopped_at == "gelu" and miss.matched[:3] == ["mul", "sigmoid", "expand"]
