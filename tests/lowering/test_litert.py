"""LiteRT ``.tflite`` export (litert-torch + ai-edge-litert): the deploy form converts to builtin
ops only, LiteRT's XNNPACK delegate takes every node, and the program matches eager torch.

Tolerances: fp32 as for ``.pte`` (relative error 1e-4 to the output's largest magnitude: XNNPACK
reorders sums, ~1e-7 measured; a wrong weight or layout gives errors of order 1). int8 against its
own eager int8 model by SQNR (``exporting.INT8_SQNR_FLOOR``, 25 dB: the same quantized math run by
other kernels), and against fp32 at 15 dB ("quantized, not broken": a broken scale gives < 5 dB).
"""
import importlib.util
import sys

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import fxaccel
from fxaccel import errors, exporting
from fxaccel.testing import relative_error, sqnr_db
from mini_x3d import clip

requires_litert = pytest.mark.skipif(
    importlib.util.find_spec("litert_torch") is None or importlib.util.find_spec("ai_edge_litert") is None,
    reason="needs the litert extra: pip install 'fxaccel[litert]'")
pytestmark = requires_litert



@pytest.fixture(scope="module")
def mini_tflite(mini, tmp_path_factory):
    _, fast, x = mini
    return fxaccel.export(fast, x, tmp_path_factory.mktemp("litert") / "mini.tflite")


def test_deploy_form_is_builtin_ops_all_in_xnnpack(mini_tflite):
    from fxaccel.lowering import tflite_report

    report = tflite_report(mini_tflite)
    assert report.all_builtin and report.custom == {}
    assert report.fully_delegated, str(report)
    assert report.ops.get("CONV_2D", 0) > 0 and report.ops.get("DEPTHWISE_CONV_2D", 0) > 0
    assert not any("3D" in op for op in report.ops), report.ops
    assert report.inputs == ["float32"] and report.outputs == ["float32"]


def test_tflite_matches_the_vanilla_model_on_other_clips(mini, mini_tflite):
    from fxaccel.lowering import load_artifact

    model, _, _ = mini
    run = load_artifact(mini_tflite)
    for seed in (5, 6):
        x = clip(seed)
        with torch.no_grad():
            err = relative_error(run(x), model(x))
        assert err < 1e-4, err


def test_tflite_follows_torch_thread_count(mini, mini_tflite):
    from fxaccel.lowering import load_tflite, time_artifact

    _, fast, x = mini
    run = load_tflite(mini_tflite)
    timing = time_artifact(run, (x,), warmup=0, repeats=1, threads=1)
    assert timing.threads == 1 and run._threads == 1


def test_int8_tflite_is_int8_builtin_ops_and_close_to_its_model(mini, tmp_path):
    from fxaccel.lowering import load_tflite
    from fxaccel.lowering.litert import to_tflite

    model, fast, x = mini
    q = fxaccel.quantize(fast, [(clip(s),) for s in range(8)], backend="litert")
    art = to_tflite(q, (x,), tmp_path / "q.tflite", sqnr_floor=exporting.INT8_SQNR_FLOOR)
    assert art.report.all_builtin and art.report.fully_delegated, str(art.report)
    assert art.report.inputs == ["int8"] and art.report.outputs == ["int8"]
    assert art.check["metric"] == "sqnr_db" and art.check["value"] >= exporting.INT8_SQNR_FLOOR
    run = load_tflite(art.path)
    with torch.no_grad():
        got = run(clip(7))
        assert sqnr_db(model(clip(7)), got) > 15.0
    # the same file through fxaccel.export
    assert fxaccel.export(q, x, tmp_path / "q2.tflite").stat().st_size == art.path.stat().st_size


def test_int8_pad_between_two_scales_is_a_clear_error(tmp_path):
    """A kT=3 conv3d on the network input: litert-torch's converter refuses the int8 graph (a tap's PAD
    between two int8 scales); the error says what happened and what converts instead."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(3, 16, 3, stride=(1, 2, 2), padding=1), nn.SiLU(),
                          nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(16, 4)).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    fast = fxaccel.deploy(model, x, target="mobile_cpu")
    q = fxaccel.quantize(fast, [torch.randn(1, 3, 4, 32, 32) for _ in range(4)], backend="litert")
    try:
        fxaccel.export(q, x, tmp_path / "q.tflite")
    except errors.LoweringError as err:
        assert "PAD" in str(err) and "backend='xnnpack'" in str(err)
    # a later litert-torch that converts it must still produce a verified file
    else:
        assert (tmp_path / "q.tflite").is_file()


def test_litert_cannot_keep_layers_in_fp32(mini):
    _, fast, x = mini
    with pytest.raises(ValueError, match="no per-layer opt-out"):
        fxaccel.quantize(fast, [(clip(1),)], backend="litert", keep_float=1)


def test_int8_from_another_backend_is_refused(mini, tmp_path):
    pytest.importorskip("executorch")
    _, fast, x = mini
    q = fxaccel.quantize(fast, [(clip(1),)], backend="xnnpack")
    with pytest.raises(errors.LoweringError, match="backend='litert'"):
        fxaccel.export(q, x, tmp_path / "q.tflite")


def test_5d_model_is_refused_before_the_converter_runs(tmp_path):
    """litert-torch 0.10.0 crashes (SIGSEGV) on a strided depthwise Conv3d: refuse it first."""
    model = nn.Sequential(nn.Conv3d(4, 4, 3, stride=(1, 2, 2), padding=1, groups=4), nn.ReLU()).eval()
    with pytest.raises(errors.UnsupportedOps, match="target=\"mobile_cpu\""):
        fxaccel.export(model, torch.randn(1, 4, 2, 8, 8), tmp_path / "m.tflite")
    assert not (tmp_path / "m.tflite").exists()


def test_missing_extra_names_it(monkeypatch, mini, tmp_path):
    _, fast, x = mini
    monkeypatch.setitem(sys.modules, "litert_torch", None)
    with pytest.raises(errors.MissingDependency, match=r"fxaccel\[litert\]"):
        fxaccel.export(fast, x, tmp_path / "m.tflite")


@settings(max_examples=4)
@given(c=st.sampled_from([4, 8, 12]), stride=st.sampled_from([1, 2]), hw=st.sampled_from([8, 12]),
       t=st.integers(2, 4), act=st.sampled_from(["relu", "swish", "hardswish"]))
def test_random_video_nets_convert_exactly(c, stride, hw, t, act):
    """conv3d (kT x 3 x 3, spatial stride) + BN + act + SE + pool + linear, deployed and converted."""
    acts = {"relu": nn.ReLU(), "swish": nn.SiLU(), "hardswish": nn.Hardswish()}

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, c, (3, 3, 3), stride=(1, stride, stride), padding=1, bias=False)
            self.bn = nn.BatchNorm3d(c)
            self.act = acts[act]
            self.dw = nn.Conv3d(c, c, (3, 3, 3), padding=1, groups=c)
            self.pool = nn.AdaptiveAvgPool3d(1)
            self.fc = nn.Linear(c, 5)

        def forward(self, x):
            y = self.act(self.bn(self.conv(x)))
            y = y + self.dw(y)
            return self.fc(self.pool(y).flatten(1))

    torch.manual_seed(c * 100 + hw + t)
    model = Net().eval()
    nn.init.uniform_(model.bn.running_var, 0.5, 2.0)
    nn.init.normal_(model.bn.running_mean)
    x = torch.randn(1, 3, t, hw, hw)
    fast = fxaccel.deploy(model, x, target="mobile_cpu")
    from fxaccel.lowering.litert import to_tflite

    art = to_tflite(exporting.lower(fast, (x,), "litert"), (x,), reference=model)
    assert art.report.all_builtin and art.report.fully_delegated, str(art.report)
    assert art.check["value"] < 1e-4


def test_bench_times_the_tflite_forms(mini, tmp_path):
    from fxaccel.benchmarking import bench

    model, _, x = mini
    rows = bench(model, (x,), forms=("vanilla", "tflite"), repeats=1, warmup=0, workdir=tmp_path)
    row = {r.form: r for r in rows}["tflite"]
    assert row.runtime == "LiteRT+XNNPACK" and row.median_ms is not None and row.median_ms > 0, row.note
    assert (tmp_path / "model.tflite").is_file()
