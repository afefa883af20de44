"""guard_inputs: each batched tensor input is checked against its deployed shape (batch free);
an input without a propagated batched shape is left unguarded, with the reason."""
import pytest
import torch
from torch import nn

from fxaccel.forms.folded_ops import ShapeGuard
from fxaccel.passes.deploy.guard_inputs import GuardInput

X = torch.randn(2, 3, 4, 6, 6)


def test_a_tensor_input_is_guarded(traced, apply, calls):
    model = nn.Sequential(nn.Conv3d(3, 4, 1)).eval()
    gm = traced(model, X)
    rec = apply(GuardInput(), gm)
    assert rec.matched == rec.rewritten == 1 and calls(gm) == [ShapeGuard, nn.Conv3d]
    assert torch.equal(gm(X), model(X)) and torch.equal(gm(X[:1]), model(X[:1]))  # batch stays free
    with pytest.raises(ValueError, match="deployed model input"):
        gm(torch.randn(2, 3, 5, 6, 6))


def test_an_input_without_a_shape_is_left_unguarded(traced, apply, calls):
    gm = traced(nn.Sequential(nn.Conv3d(3, 4, 1)), X, shapes=False)
    rec = apply(GuardInput(), gm)
    assert rec.rewritten == 0 and calls(gm) == [nn.Conv3d]
    assert [s.reason for s in rec.skipped] == ["not a batched tensor input: left unguarded"]
