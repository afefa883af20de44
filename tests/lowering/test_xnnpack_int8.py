"""Zero pads stay int8 in an int8 .pte (fxaccel.lowering.xnnpack_int8).

Checked end to end with ExecuTorch's event tracer: the program's pads must run as XNNPACK's X8 pad
(not X32 between two Converts), the program must load and run, and its output must stay as close to
fp32 as the int8 floor asks (a zero pad is exact in symmetric int8, so sharing the input's scale
loses nothing; 20 dB is far below this model's ~33 dB and far above a broken program's ~0 dB).
"""
import importlib.util
from pathlib import Path

import pytest
import torch

import fxaccel
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


def test_int8_program_runs_its_pads_in_int8_and_stays_accurate(int8_program, tmp_path):
    model, _, x, path = int8_program
    from fxaccel.lowering.executorch import load_pte

    with torch.no_grad():
        assert sqnr_db(model(x), load_pte(path)(x)) >= FLOOR_DB
    kinds = _profile_tool().profile(path, x, threads=1, warmup=1, runs=2, work=tmp_path)["kinds"]
    pads = {k: c for k, (c, _) in kinds.items() if k.startswith("Constant Pad")}
    assert pads and all("X8" in k for k in pads), kinds
    assert not any("outside XNNPACK" in k for k in kinds), kinds


def test_pads_quantized_by_another_quantizer_stay_fp32_and_the_program_loads(tmp_path):
    """ExecuTorch's own XNNPACKQuantizer gives a pad's output its consumer's scale, not its input's:
    XNNPACK's pad cannot requantize, so that pad must stay the default fp32 pad (with converts)."""
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
