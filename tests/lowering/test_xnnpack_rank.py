"""Window shuffles of more than 6 dims (Swin's partition) reach XNNPACK at a rank it takes."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fxaccel.lowering.xnnpack_rank import MAX_DIMS, collapse_permute


@st.composite
def _views_and_perms(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=9)))
    perm = tuple(draw(st.permutations(range(len(shape)))))
    return shape, perm


@settings(max_examples=200, deadline=None)
@given(_views_and_perms())
def test_collapsed_permute_moves_every_element_the_same_way(case):
    shape, perm = case
    new_shape, new_perm = collapse_permute(shape, perm)
    x = torch.arange(torch.Size(shape).numel())
    want = x.reshape(shape).permute(perm).reshape(-1)
    got = x.reshape(new_shape).permute(new_perm).reshape(-1)
    assert torch.equal(got, want)
    assert len(new_shape) <= len(shape) and sorted(new_perm) == list(range(len(new_shape)))


class WindowShuffle(nn.Module):
    """Swin's window partition and reverse: 8-D views and permutes around a linear."""

    def __init__(self, c=8, w=(2, 2, 2)):
        super().__init__()
        self.w, self.proj = w, nn.Linear(c, c)

    def forward(self, x):  # (B, T, H, W, C)
        b, t, h, w, c = x.shape
        wt, wh, ww = self.w
        y = x.view(b, t // wt, wt, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
        y = self.proj(y.reshape(-1, wt * wh * ww, c))
        y = y.view(b, t // wt, h // wh, w // ww, wt, wh, ww, c).permute(0, 1, 4, 2, 5, 3, 6, 7)
        return y.reshape(b, t, h, w, c)


@pytest.mark.executorch
def test_eight_dim_window_shuffle_lowers_runs_and_matches():
    pytest.importorskip("executorch")
    from fxaccel.lowering.executorch import _delegated_graph, to_pte

    model, x = WindowShuffle().eval(), torch.randn(1, 4, 4, 6, 8)
    art = to_pte(model, (x,))                    # without the rewrite the program fails to load
    assert art.check["value"] <= 1e-5
    assert art.report.mac_share == 1.0 and art.report.outside == {}
    gm = art.edge.exported_program().graph_module
    inner = [n for call in gm.graph.nodes if call.op == "call_function" and "call_delegate" in str(call.target)
             for n in _delegated_graph(gm, call).graph.nodes if "val" in n.meta]
    assert max(len(n.meta["val"].shape) for n in inner if hasattr(n.meta["val"], "shape")) <= MAX_DIMS


class RelPosBroadcast(nn.Module):
    """MViT-v2's relative positions: three 6-D terms broadcast into an 8-D sum (no lower-rank
    spelling of the graph as exported), then a linear."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, h, w, t):  # each (B, heads, q_t, q_h, q_w, k)
        s = h[:, :, :, :, :, None, :, None] + w[:, :, :, :, :, None, None, :] + t[:, :, :, :, :, :, None, None]
        b, n, qt, qh, qw, kt, kh, kw = s.shape
        return self.proj(s.reshape(b, n, qt * qh * qw, kt * kh * kw))


@pytest.mark.executorch
def test_what_needs_more_than_six_dims_runs_outside_the_delegate_with_the_reason():
    pytest.importorskip("executorch")
    from fxaccel.lowering.executorch import to_pte
    from fxaccel.lowering.xnnpack_rank import TOO_MANY_DIMS

    g = torch.Generator().manual_seed(0)
    x = tuple(torch.randn(1, 2, 2, 2, 2, 2, generator=g) for _ in range(3))
    art = to_pte(RelPosBroadcast().eval(), x)
    assert art.check["value"] <= 1e-5
    outside = [o for o in art.report.outside_ops if o.reason == TOO_MANY_DIMS]
    assert outside and all("add" in o.op or "unsqueeze" in o.op or "view" in o.op for o in outside), outside
    assert art.report.mac_share == 1.0                 # the linear is still delegated
