"""canonicalize_sigmoid: ``nn.Sigmoid`` / ``F.sigmoid`` / ``x.sigmoid()`` (and in-place forms) become
``torch.sigmoid(x)``, the spelling swish and SE match on; in place on a shared value: left alone."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxaccel

RULE = "canonicalize_sigmoid"


@pytest.mark.parametrize("spelling", [
    nn.Sigmoid(), F.sigmoid, lambda x: x.sigmoid(), lambda x: (x * 1).sigmoid_(),
    lambda x: torch.sigmoid_(x * 1),
])
def test_sigmoid_spellings_become_torch_sigmoid(spelling, canonicalize, calls):
    gm = canonicalize(spelling)
    assert torch.sigmoid in calls(gm)
    assert not {F.sigmoid, torch.sigmoid_, "sigmoid", "sigmoid_"} & set(calls(gm))
    assert not any(isinstance(m, nn.Sigmoid) for m in gm.modules())
    assert fxaccel.report_of(gm).record(RULE).rewritten == 1


def test_in_place_sigmoid_on_a_shared_value_is_left_alone(canonicalize, calls):
    def fn(x):
        y = x * 2
        return y.sigmoid_() + y

    gm = canonicalize(fn)
    assert "sigmoid_" in calls(gm)
    (skip,) = fxaccel.report_of(gm).record(RULE).skipped
    assert "in-place sigmoid_ on a value with 2 users" in skip.reason

