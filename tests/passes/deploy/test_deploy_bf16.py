"""deploy(target="x86", dtype=torch.bfloat16): the x86 form in bf16 behind fp32 inputs and outputs."""
import pytest
import torch

import fxaccel
from fxaccel import bfloat16
from fxaccel.bfloat16 import BF16_SQNR_FLOOR
from fxaccel.deploying import deploy
from fxaccel.errors import DeployError
from fxaccel.numerics import sqnr_db
from fxaccel.report import report_of

from _deploy_helpers import assert_unchanged, snapshot
from mini_x3d import mini_x3d

needs_bf16 = pytest.mark.skipif(not bfloat16.bf16_supported(), reason="no AVX512-BF16 or AMX on this CPU")


@needs_bf16
def test_x3d_in_bf16_is_bf16_inside_fp32_outside_and_close():
    model, fp32, x = mini_x3d()
    before = snapshot(model)
    fast = deploy(model, x, target="x86", dtype=torch.bfloat16)
    assert_unchanged(model, before)
    floats = [p for p in fast.parameters() if p.is_floating_point()]
    assert floats and all(p.dtype == torch.bfloat16 for p in floats)
    with torch.no_grad():
        out, ref = fast(x), model(x)
        full = deploy(model, x, target="x86")(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    db = sqnr_db(out, ref)
    # really bf16 (8 significant bits: far from the fp32 form's ~100 dB), and within the floor
    assert BF16_SQNR_FLOOR <= db < 60 < sqnr_db(full, ref), db
    assert report_of(fast).extra["output_sqnr_db"] == pytest.approx(db, abs=0.05)
    assert report_of(fast).extra["dtype"] == "bfloat16"
    y = torch.randn(3, *x.shape[1:])  # the batch stays free
    with torch.no_grad():
        assert sqnr_db(fast(y), model(y)) >= BF16_SQNR_FLOOR


def test_bf16_is_refused_where_it_cannot_pay(monkeypatch):
    model, _, x = mini_x3d()
    with pytest.raises(ValueError, match="target='x86'.*dtype=torch.float16"):
        deploy(model, x, target="mobile_cpu", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="float32 or bfloat16.*fxaccel.quantize"):
        deploy(model, x, target="x86", dtype=torch.int8)
    monkeypatch.setattr(bfloat16, "bf16_supported", lambda: False)
    with pytest.raises(DeployError, match="AVX512-BF16 or AMX.*deploy in fp32"):
        fxaccel.deploy(model, x, target="x86", dtype=torch.bfloat16)


def test_only_floating_inputs_and_outputs_are_cast():
    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(2.0))

        def forward(self, x, index):
            return x * self.scale, index + 1

    gm = torch.fx.symbolic_trace(TwoInputs())
    x, index = torch.randn(4), torch.arange(4)
    bfloat16.to_bfloat16(gm, (x, index))
    y, i = gm(x, index)
    assert gm.scale.dtype == torch.bfloat16
    assert y.dtype == torch.float32 and torch.equal(y, (x.bfloat16() * 2).float())
    assert i.dtype == torch.int64 and torch.equal(i, index + 1)
