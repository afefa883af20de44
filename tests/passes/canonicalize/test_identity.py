"""drop_identity: calls of ``nn.Identity`` (a disabled SE, a placeholder) are removed, so rules see
``conv -> act`` where the model wrote ``conv -> Identity() -> act``; subclasses may compute: kept."""
import torch
from torch import nn

import fxaccel
from fxaccel.blocks.conv import Conv3dBnAct

RULE = "drop_identity"


class _Placeholder(nn.Module):
    def __init__(self, identity=nn.Identity):
        super().__init__()
        self.conv, self.se, self.act = nn.Conv3d(3, 4, 1), identity(), nn.ReLU()

    def forward(self, x):
        return self.act(self.se(self.conv(x)))


class _Scale(nn.Identity):
    def forward(self, x):
        return x * 2


def test_identity_calls_are_removed(canonicalize):
    gm = canonicalize(_Placeholder())
    assert not any(n.op == "call_module" and n.target.endswith("se") for n in gm.graph.nodes)
    assert fxaccel.report_of(gm).record(RULE).rewritten == 1


def test_without_the_identity_conv_and_act_become_one_block():
    model, x = _Placeholder().eval(), torch.randn(1, 3, 2, 4, 4)
    gm = fxaccel.transmute(model, x)
    (block,) = [m for m in gm.modules() if isinstance(m, Conv3dBnAct)]
    assert type(block.act).__name__ == "ReLU"


def test_a_subclass_of_identity_is_kept(canonicalize):
    gm = canonicalize(_Placeholder(_Scale), leaves=[_Scale])  # a leaf: traced into, it is no module call
    assert any(n.op == "call_module" and n.target.endswith("se") for n in gm.graph.nodes)
    rec = fxaccel.report_of(gm).record(RULE)
    assert rec.rewritten == 0 and rec.miss.stopped_at.endswith("se") and "condition <lambda> is false" in rec.miss.why
