"""canonicalize_global_mean: global average pools over (T, H, W) become ``F.adaptive_avg_pool3d(x, 1)``
(without ``keepdim``: the pool then ``flatten(1)``); partial means and non-global pools stay, and
negative dims without a known rank are left alone."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxaccel

RULE = "canonicalize_global_mean"


@pytest.mark.parametrize("spelling", [
    nn.AdaptiveAvgPool3d(1), nn.AdaptiveAvgPool3d((1, 1, 1)), lambda x: F.adaptive_avg_pool3d(x, (1, 1, 1)),
    lambda x: x.mean((2, 3, 4), keepdim=True), lambda x: torch.mean(x, dim=[-3, -2, -1], keepdim=True),
    lambda x: x.mean(dim=(4, 2, 3), keepdim=True),
])
def test_global_mean_spellings_become_the_pool(spelling, canonicalize):
    gm = canonicalize(spelling)
    nodes = [n for n in gm.graph.nodes if n.op in ("call_function", "call_method", "call_module")]
    assert [n.target for n in nodes] == [F.adaptive_avg_pool3d] and nodes[0].args[1:] == (1,)
    assert fxaccel.report_of(gm).record(RULE).rewritten == 1


@pytest.mark.parametrize("spelling", [lambda x: x.mean((2, 3, 4)), lambda x: torch.mean(x, (2, 3, 4))])
def test_without_keepdim_it_becomes_pool_then_flatten(spelling, canonicalize, calls):
    gm = canonicalize(spelling)
    assert calls(gm) == [F.adaptive_avg_pool3d, torch.flatten]


@pytest.mark.parametrize("lookalike", [
    lambda x: x.mean((3, 4), keepdim=True),                       # spatial only
    lambda x: x.mean((2, 3, 4), keepdim=True, dtype=torch.float64),  # another dtype
    nn.AdaptiveAvgPool3d((1, 2, 2)),                                 # not global
])
def test_partial_means_and_pools_stay(lookalike, canonicalize):
    gm = canonicalize(lookalike)
    assert fxaccel.report_of(gm).record(RULE).rewritten == 0
    assert F.adaptive_avg_pool3d not in [n.target for n in gm.graph.nodes]


def test_negative_dims_need_the_rank(canonicalize, calls):
    spelling = lambda x: x.mean((-3, -2, -1), keepdim=True)  # noqa: E731
    assert calls(canonicalize(spelling, x=None)) == ["mean"]  # no example input: no shapes, rank unknown
    assert calls(canonicalize(spelling)) == [F.adaptive_avg_pool3d]


def test_the_canonical_pool_is_left_as_it_is(canonicalize):
    gm = canonicalize(lambda x: F.adaptive_avg_pool3d(x, 1))
    rec = fxaccel.report_of(gm).record(RULE)
    assert rec.rewritten == 0 and "condition _pool_not_canonical is false" in rec.miss.why
