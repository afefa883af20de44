"""The peer runtimes (fxaccel.peers), the torch.compile form and interleaved timing rounds in
fxaccel.benchmarking.

Peers are the bar fxaccel's artifacts are measured against, so they must run the *same* model:
fp32 peers match vanilla eager within 1e-4 (ONNX Runtime and OpenVINO reorder fp32 sums, ~1e-6
here), int8 peers reach a stated SQNR floor against it (15 dB: ORT's int8 of this model is ~24 dB
on OpenVINO ~29, fxaccel's ~35, on the same 8 calibration clips; a broken QDQ model gives ~0 dB).
"""
import sys

import pytest
import torch

from fxaccel.benchmarking import PEERS, bench
from fxaccel.errors import MissingDependency
from fxaccel.numerics import relative_error, sqnr_db
from mini_x3d import clip

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
peers = pytest.importorskip("fxaccel.peers")

INT8_FLOOR_DB = 15.0



@pytest.fixture(scope="module")
def onnx_files(mini, tmp_path_factory):
    model, _, x = mini
    d = tmp_path_factory.mktemp("peers")
    fp32 = peers.export_onnx(model, (x,), d / "mini.onnx")
    int8 = peers.quantize_onnx(fp32, [(clip(100 + i),) for i in range(8)], d / "mini_int8.onnx")
    return fp32, int8


@pytest.mark.parametrize("program", ["ort", "openvino"])
def test_fp32_peers_run_the_vanilla_model(mini, onnx_files, program):
    model, _, x = mini
    run = peers.OnnxRuntimeProgram(onnx_files[0]) if program == "ort" else peers.OpenVinoProgram(onnx_files[0])
    saved = torch.get_num_threads()
    try:
        with torch.no_grad():
            ref = model(x)
            for threads in (1, 2):  # one compiled session per thread count, same answer
                torch.set_num_threads(threads)
                assert relative_error(run(x), ref) < 1e-4
    finally:
        torch.set_num_threads(saved)
    assert sorted(run._compiled) == [1, 2]


@pytest.mark.parametrize("program", ["ort", "openvino"])
def test_int8_peers_are_quantized_and_close(mini, onnx_files, program):
    import onnx

    model, _, x = mini
    ops = {n.op_type for n in onnx.load(str(onnx_files[1])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    run = peers.OnnxRuntimeProgram(onnx_files[1]) if program == "ort" else \
        peers.OpenVinoProgram(onnx_files[1], precision=None)
    with torch.no_grad():
        db = sqnr_db(model(x), run(x))
    assert INT8_FLOOR_DB <= db < 80, db  # < 80: really int8, not fp32 passed through


def test_openvino_says_which_precision_it_chose(onnx_files):
    assert peers.OpenVinoProgram(onnx_files[0]).inference_precision() == "f32"
    assert peers.OpenVinoProgram(onnx_files[0], precision=None).inference_precision() in ("f32", "bf16", "f16")


def test_bench_puts_peers_beside_fxaccel_forms_in_interleaved_rounds(mini, tmp_path):
    model, _, x = mini
    rows = bench(model, (x,), ["vanilla", "x86", *PEERS], repeats=2, warmup=0, rounds=3, workdir=tmp_path)
    by = {r.form: r for r in rows}
    assert [r.form for r in rows] == ["vanilla", "x86", *PEERS]
    for r in rows:
        assert r.median_ms and len(r.round_ms) == 3 and len(r.all_ms) == 6, (r.form, r.note)
        assert len(r.round_speedups) == 3 and all(s > 0 for s in r.round_speedups)
    assert by["vanilla"].round_speedups == [1.0, 1.0, 1.0]
    assert "rel err" in by["ort"].note and "rel err" in by["openvino"].note
    assert "OpenVINO chose" in by["openvino_auto"].note
    assert "dB vs vanilla eager" in by["ort_int8"].note and "8 random calibration clips" in by["ort_int8"].note
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model_int8.onnx").is_file()


def test_rounds_must_be_positive(mini):
    model, _, x = mini
    with pytest.raises(ValueError, match="rounds >= 1"):
        bench(model, (x,), ["vanilla"], rounds=0)


def test_a_missing_peer_runtime_is_a_not_built_row_naming_the_extra(mini, onnx_files, tmp_path, monkeypatch):
    model, _, x = mini
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    with pytest.raises(MissingDependency, match=r"fxaccel\[bench\]"):
        peers.OpenVinoProgram(onnx_files[0])(x)
    rows = bench(model, (x,), ["vanilla", "openvino"], repeats=1, warmup=0, workdir=tmp_path)
    assert rows[1].median_ms is None and "fxaccel[bench]" in rows[1].note


def test_x86_form_under_torch_compile_is_a_checked_form(mini, tmp_path):
    model, _, x = mini
    rows = bench(model, (x,), ["vanilla", "x86_compile"], repeats=2, warmup=1, threads=2, workdir=tmp_path)
    row = rows[1]
    assert row.runtime == "torch.compile" and row.median_ms, row.note
    assert "rel err" in row.note and "compiled in" in row.note


def test_x86_bf16_forms_run_in_bf16_and_say_how_close_they_are(mini, tmp_path, monkeypatch):
    model, _, x = mini
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        rows = bench(model, (x,), ["vanilla", "x86_bf16"], repeats=1, warmup=0, workdir=tmp_path)
        assert rows[1].median_ms is None and "AVX512-BF16" in rows[1].note
        return
    rows = bench(model, (x,), ["vanilla", "x86_bf16", "x86_bf16_compile"], repeats=2, warmup=1, threads=2,
                 workdir=tmp_path)
    for row in rows[1:]:
        assert row.precision == "bf16" and row.median_ms, row.note
        db = float(row.note.split("output SQNR ")[1].split(" dB")[0])
        assert 15 <= db < 80, row.note  # < 80: really bf16 (8-bit mantissa), not fp32 passed through
    assert "compiled in" in rows[2].note
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    rows = bench(model, (x,), ["vanilla", "x86_bf16"], repeats=1, warmup=0, workdir=tmp_path)
    assert rows[1].median_ms is None and "AVX512-BF16" in rows[1].note
