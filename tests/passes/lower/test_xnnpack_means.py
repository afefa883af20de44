"""xnnpack_means (rule): a mean XNNPACK would leave to the portable kernel becomes the 4-D
``mean((-1, -2), keepdim=True)`` it delegates, with the same numbers; each bail-out reason
asserted; the means the rule writes are not matched again. (Pipeline and format gating:
test_lower_xnnpack_means.py.)"""
import pytest
import torch
from torch import fx
from torch.fx.passes.shape_prop import ShapeProp

from fxaccel.passes.lower.xnnpack_means import XnnpackMeans
from fxaccel.report import PassRecord
from fxaccel.rules import apply_rules
from graph_helpers import Call

X = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))



def _apply(fn, x=X, shapes=True):
    gm = fx.symbolic_trace(Call(fn))
    if shapes:
        ShapeProp(gm).propagate(x)
    record = PassRecord("xnnpack_means", "lower")
    apply_rules(XnnpackMeans(), gm, record)
    return gm, record


def _means(gm):
    return [n for n in gm.graph.nodes if n.target in ("mean", torch.mean)]


@pytest.mark.parametrize("fn", [
    lambda x: x.mean(1),                       # other dim, no keepdim
    lambda x: torch.mean(x, (2, 3)),           # the right dims without keepdim
    lambda x: x.mean((-1, 1), keepdim=True),   # permute needed
    lambda x: x.mean(),                        # a full mean: a 0-d output
    lambda x: x.reshape(2, 3, 4, 5, 1).mean((2, 3, 4)),  # 5-D
])
def test_a_mean_becomes_one_4d_keepdim_mean_of_the_same_values(fn):
    gm, record = _apply(fn)
    assert (record.matched, record.rewritten, record.skipped) == (1, 1, [])
    (mean,) = _means(gm)
    assert mean.op == "call_method" and mean.args[1] == (-1, -2) and mean.kwargs == {"keepdim": True}
    ShapeProp(gm).propagate(X)
    assert len(mean.args[0].meta["tensor_meta"].shape) == 4
    torch.testing.assert_close(gm(X), fn(X), rtol=1e-5, atol=1e-6)


def test_the_reduced_dims_end_up_innermost():
    gm, _ = _apply(lambda x: x.mean((-1, 1), keepdim=True))
    permute = next(n for n in gm.graph.nodes if n.target == "permute")
    assert permute.args[1:] == (0, 2, 1, 3)  # kept (0, 2), then reduced (1, 3)


@pytest.mark.parametrize("fn, shapes, x, reason", [
    (lambda x: x.mean(1), False, X, "no shapes (graph not shape-propagated on the example inputs)"),
    (lambda x: torch.mean(x, 1, False, dtype=torch.float64), True, X, "mean with a dtype argument"),
    (lambda x: x.mean(), True, torch.tensor(3.0), "mean of a 0-d tensor"),
    (lambda x: x.mean((2, -1), keepdim=True), True, X,
     "already the 4-D mean over (2, 3) with keepdim=True that XNNPACK delegates"),
])
def test_each_refusal_has_its_reason_and_keeps_the_mean(fn, shapes, x, reason):
    gm, record = _apply(fn, x, shapes)
    (skip,) = record.skipped
    assert skip.reason == reason and (record.matched, record.rewritten) == (1, 0)
    assert len(_means(gm)) == 1 and not [n for n in gm.graph.nodes if n.target in ("reshape", "permute")]
