"""fp16 ``.pte`` (``fxaccel.export(..., dtype=torch.float16)``): one XNNPACK delegate running the whole
network in half precision behind fp32 inputs and outputs, at ``exporting.FP16_SQNR_FLOOR`` (25 dB)
or better against fp32.

Tolerance: fp16 is judged like int8, by SQNR against fp32 (its docstring says why); these small nets
reach 55-70 dB, so the tests also ask for 40 dB. A missing cast or a wrong layout gives < 5 dB.
"""
import importlib.util

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn

import fxaccel
from fxaccel import exporting
from fxaccel.testing import relative_error, sqnr_db
from mini_x3d import clip

pytestmark = [pytest.mark.executorch, pytest.mark.skipif(
    importlib.util.find_spec("executorch") is None, reason="needs the executorch extra")]



def _half_pte(fast, x):
    from fxaccel.lowering.executorch import to_pte

    lowered = exporting.lower(fast, (x,), "executorch", "float16")
    return lowered, to_pte(exporting.HalfPrecision(lowered), (x,), sqnr_floor=exporting.FP16_SQNR_FLOOR,
                           reference=fast)


def test_fp16_pte_is_one_delegate_and_matches_fp32(mini, tmp_path):
    from fxaccel.lowering import load_artifact

    model, fast, x = mini
    lowered, art = _half_pte(fast, x)
    assert not any(n.target is F.silu for n in lowered.graph.nodes), "half_silu left a silu"
    assert art.report.delegates == 1, str(art.report)
    # only the fp32 <-> fp16 casts at the program's edges stay outside (XNNPACK delegates no casts)
    assert [o.op for o in art.report.outside_ops] == ["dim_order_ops._to_dim_order_copy.default"] * 2
    assert art.report.mac_share == 1.0
    path = fxaccel.export(fast, x, tmp_path / "m16.pte", dtype=torch.float16)
    run = load_artifact(path)
    for seed in (3, 4):
        with torch.no_grad():
            out, ref = run(clip(seed)), model(clip(seed))
        assert out.dtype == torch.float32
        assert relative_error(out, ref) > 0  # it really ran in half precision
        assert sqnr_db(ref, out) > 40.0


def test_fp32_export_keeps_silu(mini):
    """half_silu runs for fp16 only: fp32 graphs are left as the deploy stage wrote them."""
    _, fast, x = mini
    n_silu = lambda gm: sum(n.target is F.silu for n in gm.graph.nodes)  # noqa: E731
    assert n_silu(exporting.lower(fast, (x,), "executorch")) > 0


def test_bad_dtypes_are_refused(mini, tmp_path):
    _, fast, x = mini
    with pytest.raises(ValueError, match="float32 or float16"):
        fxaccel.export(fast, x, tmp_path / "m.pte", dtype=torch.int8)
    with pytest.raises(ValueError, match="not for torchscript_lite"):
        fxaccel.export(fast, x, tmp_path / "m.ptl", dtype=torch.float16)


@settings(max_examples=3)
@given(c=st.sampled_from([8, 16]), hw=st.sampled_from([8, 16]), t=st.integers(2, 4), swish=st.booleans())
def test_random_nets_in_fp16(c, hw, t, swish):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, c, (3, 3, 3), padding=1)
            self.act = nn.SiLU() if swish else nn.ReLU()
            self.fc = nn.Linear(c, 4)

        def forward(self, x):
            return self.fc(self.act(self.conv(x)).mean((2, 3, 4)))

    torch.manual_seed(c + hw + t)
    model = Net().eval()
    x = torch.randn(1, 3, t, hw, hw)
    fast = fxaccel.deploy(model, x, target="mobile_cpu")
    _, art = _half_pte(fast, x)
    assert art.report.delegates == 1 and art.check["metric"] == "sqnr_db" and art.check["value"] > 40.0
