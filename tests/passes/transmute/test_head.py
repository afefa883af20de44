"""global_pool / linear: a classifier head's global pool becomes ``GlobalAvgPool3d`` and its
``nn.Linear`` a ``Linear`` block; a pool on a non-5-D input, a Linear subclass and a shared Linear
are left alone with the reason; a pool spelled with another output size is explained by the miss."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxaccel
from fxaccel.blocks.pool import GlobalAvgPool3d, Linear
from _transmute_helpers import transmuted

X = torch.randn(2, 4, 3, 6, 6)


class Head(nn.Module):
    def __init__(self, linear=nn.Linear, pool=lambda x: F.adaptive_avg_pool3d(x, 1)):
        super().__init__()
        self.pool, self.fc = pool, linear(4, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(x), 1))


def _transmute(model, **kw):
    return transmuted(model, X, bn=False, **kw)


def _has(gm, kind):
    return sum(isinstance(m, kind) for m in gm.modules())


@pytest.mark.parametrize("pool", [
    lambda x: F.adaptive_avg_pool3d(x, 1), nn.AdaptiveAvgPool3d(1), lambda x: x.mean((2, 3, 4), keepdim=True),
])
def test_pool_and_linear_become_blocks(pool):
    gm = _transmute(Head(pool=pool))
    assert _has(gm, GlobalAvgPool3d) == 1 and _has(gm, Linear) == 1
    assert isinstance(gm.get_submodule("fc"), Linear)  # the block takes the Linear's place
    report = fxaccel.report_of(gm)
    assert report.record("global_pool").rewritten == 1 and report.record("linear").rewritten == 1


class _Unbatched(nn.Module):
    def forward(self, x):
        return F.adaptive_avg_pool3d(x[0], 1)  # (C, T, H, W): a 4-D input


def test_a_pool_on_a_4d_input_is_left_alone():
    gm = _transmute(_Unbatched())
    assert not _has(gm, GlobalAvgPool3d)
    assert [s.reason for s in fxaccel.report_of(gm).record("global_pool").skipped] == ["input is 4-D, not 5-D"]


def test_a_pool_with_another_output_size_spelling_is_explained():
    """Literals are exact: ``(1, 1, 1)`` (its canonicalisation skipped) is not the constant ``1``."""
    gm = _transmute(Head(pool=lambda x: F.adaptive_avg_pool3d(x, (1, 1, 1))), skip=["canonicalize_global_mean"])
    assert not _has(gm, GlobalAvgPool3d)
    miss = fxaccel.report_of(gm).record("global_pool").miss
    assert miss.root == "adaptive_avg_pool3d" and miss.stopped_at == "(1, 1, 1)"
    assert "expected the constant 1" in miss.why


class _SubLinear(nn.Linear):
    pass


class _SharedLinear(Head):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(self.fc(torch.flatten(self.pool(x), 1)))


@pytest.mark.parametrize("model, leaves, reason", [
    (Head(linear=_SubLinear), [_SubLinear], "_SubLinear subclasses Linear"),
    (_SharedLinear(), [], "linear module is called at 2 places (shared weights)"),
])
def test_a_linear_subclass_or_a_shared_linear_is_left_alone(model, leaves, reason):
    gm = _transmute(model, leaves=leaves)
    assert not _has(gm, Linear) and _has(gm, GlobalAvgPool3d) == 1
    assert {s.reason for s in fxaccel.report_of(gm).record("linear").skipped} == {reason}
