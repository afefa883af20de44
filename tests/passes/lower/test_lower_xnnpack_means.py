"""``xnnpack_means``: every mean becomes the one spelling XNNPACK delegates, with the same numbers.

Fast (no ExecuTorch): numerics against the original graph, structure (every mean left is a 4-D
mean over (-1, -2) with keepdim=True), and that it acts only for the executorch format.
Delegation of the rewritten spelling itself is checked in tests/lowering/test_export.py.
Tolerance: 1e-5 relative to the output's largest magnitude -- the rewrite only changes the
order of an fp32 sum over at most a few hundred values (errors ~1e-7).
"""
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import fx, nn

from fxaccel.exporting import lower
from fxaccel.testing import relative_error


class MeanNet(nn.Module):
    def __init__(self, dims, keepdim):
        super().__init__()
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        return torch.relu(x).mean(self.dims, keepdim=self.keepdim) * 2


def _means(gm):
    return [n for n in gm.graph.nodes if (n.op == "call_method" and n.target == "mean")
            or (n.op == "call_function" and n.target is torch.mean)]


def _xnnpack_spelling(node, gm):
    shape = node.args[0].meta["tensor_meta"].shape
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    return len(shape) == 4 and sorted(d % 4 for d in dims) == [2, 3] and node.kwargs.get("keepdim") is True


@settings(deadline=None, max_examples=25)
@given(rank=st.integers(2, 5), data=st.data(), keepdim=st.booleans(), seed=st.integers(0, 2**16))
def test_any_mean_becomes_a_4d_keepdim_mean_with_the_same_values(rank, data, keepdim, seed):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    dims = tuple(data.draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank, unique_by=lambda d: d % rank)))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    gm = fx.symbolic_trace(MeanNet(dims, keepdim))
    low = lower(gm, (x,), "executorch")
    assert relative_error(low(x), gm(x)) < 1e-5
    from torch.fx.passes.shape_prop import ShapeProp
    ShapeProp(low).propagate(x)
    assert _means(low) and all(_xnnpack_spelling(n, low) for n in _means(low))


def test_frame_mean_of_the_head_is_rewritten_and_delegated_spelling_is_kept():
    class Head(nn.Module):
        def forward(self, x):  # (N*T, C, H, W), T=2
            s = x.mean((2, 3), keepdim=True)          # already XNNPACK's spelling: kept
            return s.reshape(-1, 2, 5).mean(1)         # 3-D frame mean: rewritten

    x = torch.randn(6, 5, 3, 3, generator=torch.Generator().manual_seed(1))
    gm = fx.symbolic_trace(Head())
    low = lower(gm, (x,), "executorch")
    torch.testing.assert_close(low(x), gm(x), rtol=1e-5, atol=1e-6)
    record = {p.name: p for p in __import__("fxaccel").report_of(low).passes}["xnnpack_means"]
    assert (record.matched, record.rewritten) == (2, 1)
    methods = [n.target for n in low.graph.nodes if n.op == "call_method"]
    assert methods.count("mean") == 2 and "permute" in methods


@pytest.mark.parametrize("fmt", ["torchscript", "torchscript_lite", "nnapi"])
def test_other_formats_keep_their_means(fmt):
    gm = fx.symbolic_trace(MeanNet((1,), False))
    x = torch.randn(2, 3, 4)
    low = lower(gm, (x,), fmt)
    assert [n.args[1:] for n in _means(low)] == [((1,),)]


def test_int8_models_are_not_touched():
    """The lower stage runs on fp32 deploy graphs only (quantized graphs are exported as they are)."""
    from fxaccel.provenance import Provenance, mark

    gm = fx.symbolic_trace(MeanNet((1,), False))
    mark(gm, Provenance("quantize", "mobile_cpu", backend="qnnpack"))
    assert lower(gm, (torch.randn(2, 3, 4),), "executorch") is gm
