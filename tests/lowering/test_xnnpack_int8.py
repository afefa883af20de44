"""Zero pads and sigmoids stay int8 in an int8 .pte (fxaccel.lowering.xnnpack_int8).

Checked end to end with ExecuTorch's event tracer: the program's pads must run as XNNPACK's X8 pad
(not X32 between two Converts), no tensor may leave int8 between the program's input and output
(the only Converts are those two), the program must load and run, and its output must stay as close
to fp32 as the int8 floor asks (a zero pad is exact in symmetric int8, a sigmoid's 1/256 step moves
a gate by at most 1/512; 20 dB is far below this model's ~34 dB and far above a broken program's ~0 dB).
"""
import importlib.util
from pathlib import Path

import pytest
import torch

import fxaccel
from fxaccel.lowering.xnnpack_int8 import SIGMOID_SCALE, SIGMOID_ZERO_POINT, split_silu
from fxaccel.numerics import sqnr_db
from mini_x3d import clip, mini_x3d

pytest.importorskip("executorch")

FLOOR_DB = 20.0
TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _profile_tool():
    spec = importlib.util.spec_from_file_location("_profile_pte_tool", TOOLS / "profile_pte.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.fixture(scope="module")
def int8_program(tmp_path_factory):
    model, fast, x = mini_x3d()
    q = fxaccel.quantize(fast, [(clip(100 + i),) for i in range(8)], backend="xnnpack")
    path = fxaccel.export(q, x, tmp_path_factory.mktemp("int8") / "mini_int8.pte")
    return model, q, x, path


def test_every_zero_pad_of_the_int8_graph_keeps_its_input_scale(int8_program):
    _, q, _, _ = int8_program
    pads = [n for n in q.graph.nodes if n.op == "call_function" and "pad" in str(n.target)]
    assert pads, "the mini X3D's temporal taps pad their outputs"
    for pad in pads:
        src = pad.args[0]
        assert "dequantize" in str(src.target), pad.format_node()
        users = list(pad.users)
        assert users and all("quantize_per_tensor" in str(u.target) for u in users), pad.format_node()
        assert users[0].args[1:3] == src.args[1:3], "a zero pad must keep its input's scale and zero point"


def test_every_sigmoid_of_the_int8_graph_has_the_fixed_output_qparams(int8_program):
    _, q, _, _ = int8_program
    assert not [n for n in q.graph.nodes if "silu" in str(n.target)], "silu is split before annotation"
    sigmoids = [n for n in q.graph.nodes if n.target is torch.ops.aten.sigmoid.default]
    assert len(sigmoids) >= 2, "the mini X3D has an SE gate and swish"
    for sig in sigmoids:
        assert "dequantize" in str(sig.args[0].target), sig.format_node()
        (q_out,) = sig.users
        assert q_out.args[1:3] == (SIGMOID_SCALE, SIGMOID_ZERO_POINT), q_out.format_node()
    # an SE gate is reshaped before its multiply: the reshape must not requantize (XNNPACK cannot)
    reshaped = [u for s in sigmoids for dq in next(iter(s.users)).users for u in dq.users
                if u.target is torch.ops.aten.reshape.default]
    assert reshaped, "the mini X3D's SE gate is reshaped"
    for r in reshaped:
        (q_after,) = r.users
        assert q_after.args[1:3] == (SIGMOID_SCALE, SIGMOID_ZERO_POINT), q_after.format_node()


def test_a_sigmoid_feeding_a_cat_leaves_the_cat_its_own_scale():
    """A cat shares one scale among its inputs: it must not inherit the sigmoid's [0, 1) one."""
    class GateAndFeatures(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 1)

        def forward(self, x):
            y = self.conv(x)
            return torch.cat([torch.sigmoid(y), y * 10], 1)

    torch.manual_seed(0)
    model = GateAndFeatures().eval()
    data = [(torch.randn(1, 3, 8, 8),) for _ in range(4)]
    q = fxaccel.quantize(model, data, backend="xnnpack")
    sig = next(n for n in q.graph.nodes if n.target is torch.ops.aten.sigmoid.default)
    assert next(iter(sig.users)).args[1:3] == (SIGMOID_SCALE, SIGMOID_ZERO_POINT)
    cat = next(n for n in q.graph.nodes if n.target is torch.ops.aten.cat.default)
    (q_cat,) = cat.users
    assert q_cat.args[1] > 8 * SIGMOID_SCALE, q_cat.format_node()  # y * 10 spans far more than [0, 1)
    for dq in cat.args[0]:  # one scale in, one out, as XNNPACK's int8 concatenate takes it
        assert dq.args[1:3] == q_cat.args[1:3], dq.format_node()
    with torch.no_grad():
        assert sqnr_db(model(*data[0]), q(*data[0])) >= FLOOR_DB


def test_split_silu_is_the_same_function():
    x = torch.linspace(-12, 12, 300).reshape(2, 150)
    gm = torch.export.export(torch.nn.SiLU(), (x,)).module()
    before = gm(x)
    assert split_silu(gm) == 1
    assert not [n for n in gm.graph.nodes if "silu" in str(n.target)]
    torch.testing.assert_close(gm(x), before, rtol=1e-6, atol=1e-7)


def test_int8_program_runs_its_pads_in_int8_and_stays_accurate(int8_program, tmp_path):
    model, _, x, path = int8_program
    from fxaccel.lowering.executorch import load_pte

    with torch.no_grad():
        assert sqnr_db(model(x), load_pte(path)(x)) >= FLOOR_DB
    kinds = _profile_tool().profile(path, x, threads=1, warmup=1, runs=2, work=tmp_path)["kinds"]
    pads = {k: c for k, (c, _) in kinds.items() if k.startswith("Constant Pad")}
    assert pads and all("X8" in k for k in pads), kinds
    assert not any("outside XNNPACK" in k for k in kinds), kinds
    # int8 end to end: one Convert in (the fp32 clip), one out (the fp32 logits), none between
    assert kinds["Convert (NC)"][0] == 2, kinds


def test_pads_quantized_by_another_quantizer_stay_fp32_and_the_program_loads(tmp_path):
    """ExecuTorch's own XNNPACKQuantizer gives a pad's output its consumer's scale, not its input's,
    and leaves sigmoids unannotated: XNNPACK's pad cannot requantize, so that pad must stay the
    default fp32 pad (with converts), and those sigmoids the default fp32 sigmoid."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from fxaccel.exporting import lower
    from fxaccel.lowering.executorch import to_pte

    model, fast, x = mini_x3d()
    one_clip = lower(fast, (x,), "executorch")  # the taps as the .pte has them (pads along dim 0)
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(one_clip, (x,)).module(), quantizer)
    for i in range(4):
        prepared(clip(200 + i))
    art = to_pte(convert_pt2e(prepared), (x,), tmp_path / "plain.pte", sqnr_floor=FLOOR_DB, reference=model)
    assert art.check["value"] >= FLOOR_DB
    kinds = _profile_tool().profile(art.path, x, threads=1, warmup=1, runs=2, work=tmp_path)["kinds"]
    assert any(k.startswith("Constant Pad") and "X32" in k for k in kinds), kinds
