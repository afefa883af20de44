"""canonicalize_relu: every ReLU spelling becomes ``torch.relu(x)``; in place on a shared value it
is left alone, with the reason."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxaccel

RULE = "canonicalize_relu"


@pytest.mark.parametrize("spelling", [
    nn.ReLU(), nn.ReLU(inplace=True), F.relu, lambda x: F.relu(x, inplace=True),
    lambda x: torch.relu_(x * 1), lambda x: x.relu(), lambda x: (x * 1).relu_(),
])
def test_relu_spellings_become_torch_relu(spelling, canonicalize, calls):
    gm = canonicalize(spelling)
    assert torch.relu in calls(gm)
    assert not {F.relu, torch.relu_, "relu", "relu_"} & set(calls(gm))
    assert not any(isinstance(m, nn.ReLU) for m in gm.modules())
    assert fxaccel.report_of(gm).record(RULE).rewritten == 1


def test_torch_relu_is_already_canonical(canonicalize, calls):
    gm = canonicalize(torch.relu)
    assert calls(gm) == [torch.relu]
    assert fxaccel.report_of(gm).record(RULE).rewritten == 0


def _shared(relu):
    def fn(x):
        y = x * 2
        z = relu(y)
        return z + y  # y was mutated in place: dropping in-place would change this sum
    return fn


class _SharedModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return _shared(self.act)(x)


@pytest.mark.parametrize("model, kept", [
    (_shared(torch.relu_), torch.relu_), (_shared(lambda y: y.relu_()), "relu_"),
    (_shared(lambda y: F.relu(y, inplace=True)), F.relu), (_SharedModule(), "fn.act"),
])
def test_in_place_relu_on_a_shared_value_is_left_alone(model, kept, canonicalize, calls):
    gm = canonicalize(model)
    assert kept in calls(gm) and torch.relu not in calls(gm)
    rec = fxaccel.report_of(gm).record(RULE)
    assert rec.rewritten == 0 and rec.matched == 1
    (skip,) = rec.skipped
    assert "in-place" in skip.reason and "2 users" in skip.reason
