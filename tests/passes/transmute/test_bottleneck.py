"""bottleneck: ``[act_out](conv_c([act_b]([se](conv_b(conv_a(x))))) + (x | shortcut(x)))`` becomes one
``X3dBottleneck``, each optional part present or absent and ``+`` in either operand order; each
reason the check refuses is reported; a branch the pattern does not know is explained by the miss."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxaccel
from fxaccel.blocks.bottleneck import X3dBottleneck
from models_in_the_wild import ALL_MODELS
from _transmute_helpers import record, transmuted

X = torch.randn(2, 8, 3, 6, 6)
RULE = "bottleneck"


def _conv_bn(cin, cout, kernel=1, groups=1):
    pad = tuple(k // 2 for k in kernel) if isinstance(kernel, tuple) else kernel // 2
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, padding=pad, groups=groups, bias=False), nn.BatchNorm3d(cout))


class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.reduce, self.expand = nn.Conv3d(c, 4, 1), nn.Conv3d(4, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.expand(F.relu(self.reduce(F.adaptive_avg_pool3d(x, 1)))))


class Bottleneck(nn.Module):
    def __init__(self, se=True, act_b=True, act_out=True, shortcut=False, skip_first=False, out=8,
                 kernel_a=1, groups_b=12, kernel_shortcut=1, act_a=F.relu):
        super().__init__()
        self.conv_a = _conv_bn(8, 12, kernel_a)
        self.conv_b = _conv_bn(12, 12, (3, 3, 3), groups=groups_b)
        self.se = SE(12) if se else None
        self.conv_c = _conv_bn(12, out)
        self.shortcut = _conv_bn(8, out, kernel_shortcut) if shortcut else None
        self.act_a, self.act_b, self.act_out, self.skip_first = act_a, act_b, act_out, skip_first

    def branch(self, x):
        y = self.conv_b(self.act_a(self.conv_a(x)))
        y = self.se(y) if self.se is not None else y
        return self.conv_c(F.silu(y) if self.act_b else y)

    def forward(self, x):
        y = self.branch(x)
        s = self.shortcut(x) if self.shortcut is not None else x
        out = s + y if self.skip_first else y + s
        return F.relu(out) if self.act_out else out


def _transmute(model, **kw):
    return transmuted(model, X, bn=True, **kw)


def _blocks(gm):
    return [m for m in gm.modules() if isinstance(m, X3dBottleneck)]


def _record(gm):
    return record(gm, RULE)


@pytest.mark.parametrize("se, act_b, act_out, shortcut, skip_first", itertools.product([True, False], repeat=5))
def test_every_optional_part_present_or_absent_and_either_add_order(se, act_b, act_out, shortcut, skip_first):
    gm = _transmute(Bottleneck(se, act_b, act_out, shortcut, skip_first))
    (block,) = _blocks(gm)
    assert [n.op for n in gm.graph.nodes] == ["placeholder", "call_module", "output"]
    assert (block.se is not None) == se and (block.shortcut is not None) == shortcut
    assert type(block.act_out).__name__ == ("ReLU" if act_out else "Identity")
    # without SE a swish after conv_b joins conv_b's block; after an SE it is the bottleneck's act_b
    assert type(block.act_b).__name__ == ("Swish" if act_b and se else "Identity")
    assert type(block.conv_b.act).__name__ == ("Swish" if act_b and not se else "Identity")
    assert _record(gm).rewritten == 1 and _record(gm).skipped == []


class _Leak(Bottleneck):
    def forward(self, x):
        a = self.act_a(self.conv_a(x))
        y = self.conv_c(F.silu(self.se(self.conv_b(a))))
        return F.relu(y + x) + a.mean()


@pytest.mark.parametrize("model, reason", [
    (_Leak(), "has 2 users (a value inside the match is read elsewhere)"),
    (Bottleneck(kernel_a=(1, 3, 3)), "conv_a / conv_c are not pointwise"),
    (Bottleneck(groups_b=1), "conv_b is not depthwise"),
    (Bottleneck(shortcut=True, kernel_shortcut=(1, 3, 3)), "shortcut is not a 1x1x1 projection"),
    (Bottleneck(out=1), "X3dBottleneck: conv_c gives 1 channels but the residual takes 8"),  # a broadcast add
])
def test_each_reason_the_check_refuses(model, reason):
    gm = _transmute(model)
    assert not _blocks(gm)
    assert any(s.reason.endswith(reason) for s in _record(gm).skipped), _record(gm).skipped


def test_a_branch_the_pattern_does_not_know_is_explained():
    gm = _transmute(Bottleneck(act_a=F.gelu))  # gelu has no block: conv_a -> gelu -> conv_b is no chain
    assert not _blocks(gm)
    miss = _record(gm).miss
    (out,) = [n.args[0] for n in gm.graph.nodes if n.op == "output"]  # the act_out block's call
    assert miss.root == out.name and miss.stopped_at == "gelu"
    # act_out, add, conv_c, act_b, se, conv_b matched; conv_a is not conv_b's input
    assert len(miss.matched) == 6 and miss.matched[1] == "add" and "se" in miss.matched
    assert "expected module Conv3dBnAct, got gelu" in miss.why
    assert "stopped at gelu" in fxaccel.report_of(gm).why(RULE)


def test_the_shortcut_is_never_the_main_branch_itself():
    """``relu(a + proj(...(conv_b(a))))`` with ``a = conv_a(x)``: a shortcut ``conv(x)`` must not be
    matched by ``conv_a``'s own node (that would compute conv_a twice inside the block)."""
    model, x = ALL_MODELS["torch_mul_se"](seed=0)
    gm = fxaccel.transmute(model, x)
    for block in gm.modules():
        if isinstance(block, X3dBottleneck):
            assert block.shortcut is not block.conv_a
    assert fxaccel.report_of(gm).record("bottleneck").rewritten == 0
