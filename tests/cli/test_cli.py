"""The ``fxaccel`` command line: every subcommand on tiny inputs, --json, help, errors and exit codes.

Commands run in-process through ``fxaccel.cli.main`` (fast: no new interpreter per call); one test
runs the installed console script to prove the entry point and a clean one-line error.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fxaccel import cli
from fxaccel.modelspec import SpecError, parse_shape
from fxaccel.numerics import relative_error

HERE = Path(__file__).resolve().parent
TINY = f"{HERE / '_models.py'}:tiny"
SHAPE = "1,3,4,16,16"
HAS_EXECUTORCH = importlib.util.find_spec("executorch") is not None
needs_executorch = pytest.mark.skipif(not HAS_EXECUTORCH, reason="needs the executorch extra")


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: commands stay quick on a shared machine (two threads wait on each other under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def tiny_model_and_input():
    spec = importlib.util.spec_from_file_location("_cli_models", HERE / "_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from fxaccel import zoo

    return mod.tiny(), zoo.random_clips(parse_shape(SHAPE), seed=0)


# ------------------------------------------------------------------ help


def test_help_lists_every_command(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("run", "zoo", "transmute", "deploy", "export", "report", "bench"):
        assert f"    {command}" in out
    assert "exit status" in out


@pytest.mark.parametrize("command, words", [
    ("run", ["--out-dir", "--no-pte", "x3d_xs", "--threads"]),
    ("zoo", ["--json"]),
    ("transmute", ["MODEL", "--input-shape", "--target", "--skip"]),
    ("deploy", ["--target", "--tune"]),
    ("export", ["OUT", ".pte", ".ptl", "--int8", "--calib", "--sqnr-floor"]),
    ("report", ["--dot", "--svg", "--deploy"]),
    ("bench", ["--forms", "pte_int8", "--repeats", "--threads", ".pte/.ptl/.pt"]),
])
def test_each_subcommand_help(capsys, command, words):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    for word in words:
        assert word in out, f"{command} --help does not mention {word}"


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("fxaccel ")


# ------------------------------------------------------------------ commands


def test_zoo_table_and_json(capsys):
    code, out, _ = run(capsys, "zoo")
    assert code == 0 and "x3d_xs" in out and "csn_26" in out
    data = run_json(capsys, "zoo")
    shapes = {m["name"]: m["input_shape"] for m in data["models"]}
    assert shapes["x3d_xs"] == [1, 3, 4, 160, 160] and data["default"] == "x3d_xs"


def test_transmute_prints_the_report(capsys):
    code, out, _ = run(capsys, "transmute", TINY, "--input-shape", SHAPE)
    assert code == 0
    assert "conv_bn_act" in out and "coverage: 100.0%" in out


def test_transmute_json_on_a_zoo_model_with_a_small_input(capsys):
    data = run_json(capsys, "transmute", "x3d_xs", "--input-shape", "1,3,4,32,32")
    assert data["input_shape"] == [[1, 3, 4, 32, 32]]
    assert data["report"]["stage"] == "transmute" and data["report"]["coverage"] == 1.0
    assert data["blocks"]["X3dBottleneck"] == 26


def test_transmute_skip_is_passed_on(capsys):
    data = run_json(capsys, "transmute", TINY, "--input-shape", SHAPE, "--skip", "conv_bn_act")
    assert "conv_bn_act" not in [p["name"] for p in data["report"]["passes"]]
    assert "Conv3dBnAct" not in data["blocks"]


def test_factory_spec_takes_literal_arguments(capsys):
    data = run_json(capsys, "transmute", f"{HERE / '_models.py'}:tiny_with(width=6, classes=3)", "--input-shape", SHAPE)
    assert data["report"]["coverage"] == 1.0
    data = run_json(capsys, "deploy", f"{HERE / '_models.py'}:tiny_with(6, classes=3)", "--input-shape", SHAPE,
                    "--target", "x86")
    assert data["report"]["stage"] == "deploy"


@pytest.mark.parametrize("spec, words", [
    ("tiny_with(width=os.getcwd())", ["must be Python literals", "(num_classes=10)"]),
    ("tiny_with(**opts)", ["must be Python literals"]),
    ("tiny_with(depth=2)", ["calling", "tiny_with(depth=2) failed", "unexpected keyword argument 'depth'"]),
])
def test_bad_factory_arguments_are_clear_errors(capsys, spec, words):
    code, _, err = run(capsys, "transmute", f"{HERE / '_models.py'}:{spec}", "--input-shape", SHAPE)
    assert code == 2
    for word in words:
        assert word in err


@pytest.mark.parametrize("target", ["mobile_cpu", "x86"])
def test_deploy_json(capsys, target):
    data = run_json(capsys, "deploy", TINY, "--input-shape", SHAPE, "--target", target)
    rep = data["report"]
    assert rep["stage"] == "deploy" and rep["target"] == target
    assert rep["previous"]["stage"] == "transmute"
    assert rep["extra"]["max_relative_error"] < 1e-5  # deploy verified itself on the example input
    assert rep["layers"], "the per-layer deploy forms are reported"


@pytest.mark.parametrize("command", [["transmute"], ["deploy", "--target", "mobile_cpu"]])
def test_a_list_of_pathways_on_the_command_line(capsys, command):
    """``--input-shape '[slow;fast]'``: one list argument (SlowFast); the result is verified on it."""
    data = run_json(capsys, *command, f"{HERE / '_models.py'}:two_pathways", "--input-shape",
                    "[1,3,2,16,16;1,3,8,16,16]")
    assert data["input_shape"] == [[1, 3, 2, 16, 16], [1, 3, 8, 16, 16]]
    assert data["report"]["extra"]["max_relative_error"] < 1e-5


def test_input_shapes_parse_as_a_call():
    from fxaccel.modelspec import parse_inputs
    assert parse_inputs("1,3,4,8,8") == (1, 3, 4, 8, 8)
    assert parse_inputs("1,4,3,8,8;1,5") == ((1, 4, 3, 8, 8), (1, 5))
    assert parse_inputs("[1,3,2,8,8;1,3,8,8,8]") == ([(1, 3, 2, 8, 8), (1, 3, 8, 8, 8)],)
    with pytest.raises(SpecError, match="does not close"):
        parse_inputs("[1,3,2,8,8")


def test_deploy_bf16_is_for_x86_on_a_cpu_with_bf16(capsys):
    from fxaccel.bfloat16 import BF16_SQNR_FLOOR, bf16_supported

    code, _, err = run(capsys, "deploy", TINY, "--input-shape", SHAPE, "--target", "mobile_cpu", "--bf16")
    assert code == 2 and "--target x86" in err
    if not bf16_supported():
        code, _, err = run(capsys, "deploy", TINY, "--input-shape", SHAPE, "--target", "x86", "--bf16")
        assert code == 2 and "AVX512-BF16" in err
        return
    rep = run_json(capsys, "deploy", TINY, "--input-shape", SHAPE, "--target", "x86", "--bf16")["report"]
    assert rep["extra"]["dtype"] == "bfloat16" and rep["extra"]["output_sqnr_db"] >= BF16_SQNR_FLOOR


def test_deploy_needs_a_target(capsys):
    code, _, err = run(capsys, "deploy", TINY, "--input-shape", SHAPE)
    assert code == 2 and "--target" in err


def test_export_ptl_matches_the_model(capsys, tmp_path):
    out_file = tmp_path / "tiny.ptl"
    data = run_json(capsys, "export", TINY, out_file, "--input-shape", SHAPE)
    assert out_file.is_file() and data["bytes"] == out_file.stat().st_size
    assert data["precision"] == "fp32" and data["check"].endswith("ok")
    from fxaccel.lowering import load_artifact

    model, x = tiny_model_and_input()
    got = load_artifact(out_file)(x)
    with torch.no_grad():
        want = model(x)
    # frozen TorchScript folds BN into the conv (reordered fp32 sums): 1e-5 of the output's magnitude
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()


def test_export_int8_torchscript(capsys, tmp_path):
    out_file = tmp_path / "tiny_int8.pt"
    data = run_json(capsys, "export", TINY, out_file, "--input-shape", SHAPE, "--target", "x86",
                    "--int8", "--calib", "2")
    assert data["precision"] == "int8" and data["backend"] == "x86"
    assert out_file.is_file() and data["output_sqnr_db"] > 10


@needs_executorch
def test_export_pte_matches_the_model(capsys, tmp_path):
    out_file = tmp_path / "tiny.pte"
    code, out, err = run(capsys, "export", TINY, out_file, "--input-shape", SHAPE)
    assert code == 0, err
    assert out_file.is_file() and f"wrote {out_file}" in out
    from fxaccel.lowering import load_artifact

    model, x = tiny_model_and_input()
    got = load_artifact(out_file)(x)
    got = got[0] if isinstance(got, (list, tuple)) else got
    with torch.no_grad():
        want = model(x)
    # XNNPACK reorders fp32 sums: 1e-4 of the output's magnitude, as fxaccel.export checks
    assert (got - want).abs().max() <= 1e-4 * want.abs().max()


@needs_executorch
def test_export_fp16_pte(capsys, tmp_path):
    out_file = tmp_path / "tiny16.pte"
    data = run_json(capsys, "export", TINY, out_file, "--input-shape", SHAPE, "--fp16")
    assert data["precision"] == "fp16" and out_file.is_file()
    from fxaccel.exporting import FP16_SQNR_FLOOR
    from fxaccel.lowering import load_artifact
    from fxaccel.testing import sqnr_db

    model, x = tiny_model_and_input()
    with torch.no_grad():
        want = model(x)
    assert sqnr_db(want, load_artifact(out_file)(x)) >= FP16_SQNR_FLOOR


@pytest.mark.skipif(importlib.util.find_spec("litert_torch") is None, reason="needs the litert extra")
def test_export_tflite_fp32_and_int8(capsys, tmp_path):
    data = run_json(capsys, "export", TINY, tmp_path / "tiny.tflite", "--input-shape", SHAPE)
    assert data["format"] == "tflite" and data["precision"] == "fp32" and data["check"].endswith("ok")
    data = run_json(capsys, "export", TINY, tmp_path / "tiny8.tflite", "--input-shape", SHAPE, "--int8",
                    "--calib", "2")
    assert data["precision"] == "int8" and data["backend"] == "litert"


def test_int8_below_the_sqnr_floor_is_status_1_without_internal_error(capsys, tmp_path):
    code, _, err = run(capsys, "export", TINY, tmp_path / "q.pt", "--input-shape", SHAPE, "--target", "x86",
                       "--int8", "--calib", "2", "--sqnr-floor", "200")
    assert code == 1 and "below --sqnr-floor 200" in err and "internal error" not in err
    assert not (tmp_path / "q.pt").exists()


def test_report_writes_dot_and_svg(capsys, tmp_path):
    dot, svg = tmp_path / "g.dot", tmp_path / "g.svg"
    data = run_json(capsys, "report", TINY, "--input-shape", SHAPE, "--dot", dot, "--svg", svg, "--deploy")
    assert data["coverage"] == 1.0 and data["pictures"] == {"dot": str(dot), "svg": str(svg)}
    text = dot.read_text()
    assert text.startswith("digraph") and text.count("subgraph cluster_") == 3  # before, transmuted, deployed
    assert '"Conv3d\\n0"' in text and "Conv3dBnAct" in text
    root = ET.fromstring(svg.read_text())  # well-formed SVG
    from fxaccel.graphviz import COLORS

    fills = [e.get("fill") for e in root.iter() if e.tag.endswith("rect")]
    assert COLORS["block"] in fills and COLORS["module"] in fills


def test_report_lists_skips_with_reasons(capsys):
    spec = f"{HERE / '_models.py'}:two_users"  # the conv feeds BN and the residual: BN must not fuse
    code, out, _ = run(capsys, "report", spec, "--input-shape", SHAPE)
    assert code == 0 and "skipped by conv_bn_act: conv: conv output has 2 users" in out
    data = run_json(capsys, "report", spec, "--input-shape", SHAPE)
    [skip] = data["skipped"]
    assert skip["pass"] == "conv_bn_act" and skip["where"] == "conv" and "2 users" in skip["reason"]
    assert data["opaque"] == []


def test_bench_forms_json(capsys):
    data = run_json(capsys, "bench", TINY, "--input-shape", SHAPE, "--forms", "vanilla,x86,mobile",
                    "--repeats", "1", "--warmup", "0", "--threads", "1")
    rows = {r["form"]: r for r in data["rows"]}
    assert list(rows) == ["vanilla", "x86", "mobile"]
    assert rows["vanilla"]["speedup"] == 1.0
    assert all(r["median_ms"] > 0 and r["threads"] == 1 and r["gflops"] > 0 for r in rows.values())
    assert data["machine"]["torch"] == torch.__version__


def test_bench_an_artifact(capsys, tmp_path):
    art = tmp_path / "tiny.ptl"
    assert run(capsys, "export", TINY, art, "--input-shape", SHAPE)[0] == 0
    code, out, err = run(capsys, "bench", art, "--input-shape", SHAPE, "--repeats", "2", "--warmup", "0")
    assert code == 0, err
    assert "tiny.ptl" in out and "TorchScript lite" in out


@needs_executorch
def test_run_exports_a_pte_and_prints_the_latency_table(capsys, tmp_path):
    data = run_json(capsys, "run", TINY, "--input-shape", SHAPE, "--out-dir", tmp_path, "--repeats", "1",
                    "--warmup", "0")
    assert [r["form"] for r in data["rows"]] == ["vanilla", "x86", "pte"]
    assert all(r["median_ms"] > 0 for r in data["rows"]), data["rows"]
    pte = Path(data["summary"]["pte"])
    assert pte.parent == tmp_path and pte.suffix == ".pte" and pte.is_file()
    assert data["summary"]["coverage"] == 1.0
    assert set(data["summary"]["deploy"]) == {"mobile_cpu", "x86"}


def test_run_without_pte_prints_a_table(capsys, tmp_path):
    code, out, err = run(capsys, "run", TINY, "--input-shape", SHAPE, "--out-dir", tmp_path, "--repeats", "1",
                         "--warmup", "0", "--no-pte")
    assert code == 0, err
    assert "vanilla" in out and "x86" in out and "speedup" in out and "deploy mobile_cpu: verified" in out
    assert not list(tmp_path.glob("*.pte"))


def test_run_says_so_and_continues_without_executorch(capsys, tmp_path, monkeypatch):
    from fxaccel import errors
    from fxaccel.lowering import executorch

    def missing():
        raise errors.MissingDependency("executorch", "executorch")

    monkeypatch.setattr(executorch, "_import_executorch", missing)
    code, out, err = run(capsys, "run", TINY, "--input-shape", SHAPE, "--out-dir", tmp_path, "--repeats", "1",
                         "--warmup", "0")
    assert code == 0, err
    assert "executorch is not installed" in out and "continuing without it" in out
    assert "x86" in out


# ------------------------------------------------------------------ errors and exit codes


@pytest.mark.parametrize("argv, words", [
    (["transmute", "no_such_model"], ["unknown model 'no_such_model'", "x3d_xs"]),
    (["transmute", "no_such_pkg.models:build", "--input-shape", SHAPE], ["cannot import 'no_such_pkg.models'"]),
    (["transmute", "missing_file.py:build", "--input-shape", SHAPE], ["no such file: missing_file.py"]),
    (["transmute", f"{HERE / '_models.py'}:nope", "--input-shape", SHAPE], ["has no attribute 'nope'"]),
    (["transmute", f"{HERE / '_models.py'}:broken", "--input-shape", SHAPE], ["weights not found"]),
    (["transmute", f"{HERE / '_models.py'}:not_a_model", "--input-shape", SHAPE], ["not an nn.Module"]),
    (["transmute", TINY], ["needs --input-shape"]),
    (["transmute", TINY, "--input-shape", "1,3,16,16"], ["does not run on an input of shape (1, 3, 16, 16)"]),
    (["transmute", "x3d_xs", "--input-shape", "1,3,x"], ["not a shape"]),
    (["bench", "missing.pte", "--input-shape", SHAPE], ["no such file: missing.pte"]),
    (["transmute", "model.pte"], ["only `fxaccel bench` runs artifacts"]),
    (["export", TINY, "out.onnx", "--input-shape", SHAPE], ["cannot tell the format"]),
    (["export", TINY, "out.pte", "--input-shape", SHAPE, "--target", "x86"], ["no 3-D convolution"]),
    (["export", TINY, "out.tflite", "--input-shape", SHAPE, "--target", "x86"], ["LiteRT", "no 3-D convolution"]),
    (["export", TINY, "out.ptl", "--input-shape", SHAPE, "--fp16"], ["--fp16", ".pte path"]),
    (["export", TINY, "out.ptl", "--input-shape", SHAPE, "--format", "nnapi"], ["--format nnapi", ".pt path"]),
    (["bench", TINY, "--input-shape", SHAPE, "--forms", "vanilla,warp"], ["unknown form", "warp"]),
    (["bench", TINY, "--input-shape", SHAPE, "--repeats", "0"], ["--repeats >= 1"]),
    (["deploy", f"{HERE / '_models.py'}:undeployable", "--input-shape", SHAPE, "--target", "mobile_cpu"],
     ["cannot deploy", "ceil_mode"]),
])
def test_bad_input_is_a_one_line_error_with_status_2(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"fxaccel {argv[0]}: error: ")
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in err and out == ""


def test_argparse_usage_errors_are_status_2(capsys):
    assert run(capsys, "transmute")[0] == 2                       # MODEL missing
    assert run(capsys, "deploy", TINY, "--target", "gpu")[0] == 2  # not a choice
    assert run(capsys, "frobnicate")[0] == 2


def test_json_errors_are_json(capsys):
    code, out, err = run(capsys, "transmute", "no_such_model", "--json")
    assert code == 2
    data = json.loads(out)
    assert data["exit_code"] == 2 and "unknown model" in data["error"]


def test_internal_failure_is_status_1_and_debug_shows_the_traceback(capsys, monkeypatch):
    import fxaccel.transmuting

    def boom(*args, **kwargs):
        raise RuntimeError("a pass exploded\nsecond line")

    monkeypatch.setattr(fxaccel.transmuting, "transmute", boom)
    code, _, err = run(capsys, "transmute", TINY, "--input-shape", SHAPE)
    assert code == 1
    assert err.strip().count("\n") == 0 and "internal error: RuntimeError: a pass exploded" in err
    assert "--debug" in err and "Traceback" not in err
    code, _, err = run(capsys, "--debug", "transmute", TINY, "--input-shape", SHAPE)
    assert code == 1 and "Traceback" in err


def test_console_script_gives_one_line_and_status_2():
    exe = shutil.which("fxaccel", path=str(Path(sys.executable).parent)) or shutil.which("fxaccel")
    if exe is None:
        pytest.skip("the fxaccel console script is not installed (pip install -e .)")
    done = subprocess.run([exe, "transmute", "no_such_model"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "100"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "unknown model" in done.stderr


# ------------------------------------------------------------------ shapes


@settings(deadline=None, max_examples=30)
@given(st.lists(st.integers(1, 512), min_size=1, max_size=6), st.sampled_from([",", "x", ", "]))
def test_parse_shape_round_trips(shape, sep):
    assert parse_shape(sep.join(map(str, shape))) == tuple(shape)


@pytest.mark.parametrize("text", ["", "1,,", "1,0,3", "-1,3", "a,b", "1.5,2"])
def test_parse_shape_rejects_non_shapes(text):
    with pytest.raises(SpecError, match="not a shape"):
        parse_shape(text)


# ------------------------------------------------------------------ tools/bench.py (smoke only: timings need an idle machine)


def _tool(name):
    """Load ``tools/<name>.py`` as a module (tools are scripts, not a package)."""
    root = HERE.parents[1]
    spec = importlib.util.spec_from_file_location(f"_{name}_tool", root / "tools" / f"{name}.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_bench_tool_smoke_writes_the_page_and_the_plot(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE.parents[1] / "tools"))  # bench.py imports tools/_png.py
    tool = _tool("bench")
    argv = ["--smoke", "--out", str(tmp_path), "--forms", "vanilla,x86", "--input-shape", "1,3,4,32,32",
            "--threads", "1"]
    assert tool.main(argv) == 0
    page = (tmp_path / "benchmarks.md").read_text()
    assert "python tools/bench.py --smoke" in page and "matmul ceiling" in page and "load average" in page
    table = [ln for ln in page.splitlines() if ln.startswith("| x3d_xs |")]
    assert [ln.split("|")[2].strip() for ln in table] == ["vanilla", "x86"]
    assert "| 1.00x |" in table[0]
    png = (tmp_path / "benchmarks.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in png[-12:]


def test_bench_tool_section_replaces_only_its_part_of_the_page(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE.parents[1] / "tools"))
    tool = _tool("bench")
    (tmp_path / "benchmarks.md").write_text("# Benchmarks\n\nkept by hand\n")
    argv = ["--smoke", "--out", str(tmp_path), "--forms", "vanilla", "--input-shape", "1,3,4,32,32",
            "--threads", "1", "--section", "small"]
    assert tool.main(argv) == 0
    assert tool.main(argv) == 0                      # a second run replaces the section, never appends it
    page = (tmp_path / "benchmarks.md").read_text()
    assert page.startswith("# Benchmarks\n\nkept by hand\n")
    assert page.count("<!-- section small -->") == 1 and page.count("<!-- end section small -->") == 1
    assert page.count("| x3d_xs | vanilla |") == 1 and "--section small" in page
    assert not (tmp_path / "benchmarks.png").exists()


# ------------------------------------------------------------------ tools/profile_pte.py


def test_profile_tool_groups_xnnpack_events_by_operator_kind(tmp_path, monkeypatch):
    pytest.importorskip("executorch")
    import fxaccel

    monkeypatch.syspath_prepend(str(HERE.parents[1] / "tools"))
    tool = _tool("profile_pte")
    assert tool.kind("Convolution (NHWC, F32) IGEMM #12") == "Convolution (NHWC, F32) IGEMM"
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)).eval()
    x = torch.randn(1, 3, 16, 16)
    path = fxaccel.export(model, x, tmp_path / "tiny.pte")
    result = tool.profile(path, x, threads=1, warmup=1, runs=3, work=tmp_path)
    kinds = result["kinds"]
    assert any(k.startswith("Convolution") and "DWConv" in k for k in kinds), kinds
    assert sum(calls for calls, _ in kinds.values()) >= 2
    assert result["total_ms"] > 0 and all(ms >= 0 for _, ms in kinds.values())
    assert not any("outside XNNPACK" in k for k in kinds), kinds  # conv+relu+dwconv: all delegated


# ------------------------------------------------------------------ tools/tap_spellings.py


@settings(deadline=None, max_examples=25)
@given(t=st.integers(2, 6), c=st.integers(1, 5), h=st.integers(2, 9), w=st.integers(2, 9), stride=st.sampled_from([1, 2]),
       seed=st.integers(0, 2**16))
def test_every_tap_spelling_is_the_conv3d_it_spells(t, c, h, w, stride, seed):
    tool = _tool("tap_spellings")
    torch.manual_seed(seed)
    weight, x, pw = torch.randn(c, 1, 3, 3, 3), torch.randn(t, c, h, w), tool.pointwise(c)
    with torch.no_grad():
        ref = tool.reference(x, weight, stride, pw)
    for name, cls in tool.SPELLINGS.items():
        if stride not in cls.strides:
            continue
        module, inp = tool.make(cls, weight, stride, x, pw)
        with torch.no_grad():
            got = tool.output(module, inp, x)
        assert got.shape == ref.shape, name
        if cls.exact:  # fp32 sums in another order: 1e-5 of the largest magnitude
            assert relative_error(got, ref) < 1e-5, name
        else:
            assert relative_error(got, ref) > 1e-3, name  # no_shift really is other math


def test_tap_spellings_lower_and_run_as_programs():
    pytest.importorskip("executorch")
    tool = _tool("tap_spellings")
    built = tool.build((3, 4, 6, 6), 2, ["taps_in", "taps_out", "time_in_channels"])
    assert sorted(built) == ["taps_in", "taps_out"]  # time_in_channels is written for stride 1 only
    ms = tool.time_rows(built, rounds=1, repeats=1, warmup=0)
    assert set(ms) == {"taps_in", "taps_out"} and all(v > 0 for v in ms.values())
    merged = tool.build((3, 4, 5, 6), 1, ["merged_layout"])  # to_pte checks the program against the module
    assert merged["merged_layout"][1].shape == (1, 4, 3 * 6, 6)


# ------------------------------------------------------------------ tools/int8_noise_budget.py


def test_noise_budget_rounding_is_what_int8_stores_and_more_bits_cost_less():
    import torch
    from torch import nn

    tool = _tool("int8_noise_budget")
    w = torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    q = tool.round_weight(w)
    steps = (q / (w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127)).flatten(1)
    assert torch.allclose(steps, steps.round(), atol=1e-4) and (q - w).abs().max() < w.abs().max() / 127
    t = torch.rand(1000) * 5 - 1
    levels = tool.round_activation(t).unique()
    assert len(levels) <= 256 and (tool.round_activation(t) - t).abs().max() <= 6 / 255 / 2 + 1e-6
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)).eval()
    clips = [torch.randn(2, 3, 12, 12) for _ in range(2)]
    assert tool.output_sqnr(model, clips) == float("inf")
    db8 = tool.output_sqnr(model, clips, weights={0, 1, 2}, activations={0, 1, 2})
    db12 = tool.output_sqnr(model, clips, weights={0, 1, 2}, activations={0, 1, 2}, bits=12)
    assert 20 < db8 < db12


def test_report_why_explains_a_rule(capsys):
    spec = f"{HERE / '_models.py'}:two_users"
    code, out, _ = run(capsys, "report", spec, "--input-shape", SHAPE, "--why", "conv_bn_act")
    assert code == 0 and "conv_bn_act (transmute): matched" in out and "conv output has 2 users" in out
    code, out, err = run(capsys, "report", spec, "--input-shape", SHAPE, "--why", "no_such_rule")
    assert code == 2 and "no pass named 'no_such_rule'" in out + err


# --- the trained model: calibration on the synthetic task, top-1 beside SQNR and latency --------------

def test_export_int8_of_the_trained_model_calibrates_on_its_task_and_reports_top1(capsys, tmp_path):
    out_file = tmp_path / "trained_int8.ptl"
    data = run_json(capsys, "export", "x3d_xs_synthetic", out_file, "--int8", "--calib", "2", "--eval", "20")
    assert data["calib_data"] == "synthetic" and data["eval_clips"] == 20
    assert data["fp32_top1"] >= 0.9 and data["int8_top1"] >= data["fp32_top1"] - 0.1
    assert data["eval_sqnr_db"] > 15 and out_file.is_file()


def test_export_int8_of_a_random_model_says_its_calibration_is_random(capsys, tmp_path):
    code, out, err = run(capsys, "export", TINY, tmp_path / "t.pt", "--input-shape", SHAPE, "--target", "x86",
                         "--int8", "--calib", "2")
    assert code == 0, err
    assert "calibrated on random clips" in out and "int8_top1" not in out


def test_synthetic_calibration_needs_a_video_input_it_can_make(capsys, tmp_path):
    code, _, err = run(capsys, "export", TINY, tmp_path / "t.pt", "--input-shape", "1,3,2,16,16", "--target", "x86",
                       "--int8", "--calib-data", "synthetic")
    assert code == 2 and "--calib-data random" in err


def test_run_on_the_trained_model_shows_top1(capsys, tmp_path):
    data = run_json(capsys, "run", "x3d_xs_synthetic", "--no-pte", "--eval", "20", "--repeats", "1", "--warmup", "0",
                    "--out-dir", tmp_path)
    rows = {r["form"]: r for r in data["rows"]}
    assert set(rows) == {"vanilla", "x86"}
    assert rows["vanilla"]["top1"] >= 0.9 and rows["x86"]["top1"] == rows["vanilla"]["top1"]


@pytest.mark.slow
def test_export_time_tool_smoke_measures_both_ways_and_finds_the_programs_identical(tmp_path):
    """About 90 s: two fresh processes each export X3D-XS twice."""
    out = tmp_path / "export_time.md"
    assert _tool("export_time").main(["--smoke", "--out", str(out)]) == 0
    row = [ln for ln in out.read_text().splitlines() if ln.startswith("| X3D-XS | fp32 |")]
    assert len(row) == 1 and row[0].rstrip().endswith("| yes |"), row
