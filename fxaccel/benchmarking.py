"""Latency of one model across its forms and runtimes, measured the same way for each.

A *form* is what runs: the vanilla model in eager torch, its transmuted or deployed GraphModule in
eager torch, or an artifact (``.pte`` on ExecuTorch+XNNPACK, ``.ptl`` on the lite interpreter).
:func:`bench` builds the requested forms (sharing the transmute/deploy work between them), times
each with :func:`fxaccel.lowering.runner.time_artifact` (median of ``repeats`` runs after
``warmup``), and returns one :class:`Row` per form with the speedup over vanilla eager and the
achieved GFLOP/s (the *vanilla* model's FLOPs over the form's time, so forms that do the same
work compare fairly).

Timings mean something only on an idle machine: every row carries the load average, and
:func:`machine_info` the CPU, threads and versions, so a reader can tell (shared/DESIGN.md).

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.ReLU()).eval()
>>> rows = bench(model, (torch.randn(1, 3, 4, 8, 8),), ["vanilla", "x86"], repeats=1, warmup=0)
>>> [r.form for r in rows], rows[1].runtime
(['vanilla', 'x86'], 'torch eager')

Stability: experimental (``FORMS``, ``bench``, ``Row``, ``machine_info``, ``matmul_ceiling_gflops``).
"""
from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

import torch
from torch import nn

from .inputs import clone_inputs, map_tensors
from .quantizing import USABLE_SQNR_DB


@dataclass(frozen=True)
class Form:
    """How a form is built and what runs it."""

    name: str
    runtime: str
    precision: str
    description: str


FORMS: dict[str, Form] = {f.name: f for f in (
    Form("vanilla", "torch eager", "fp32", "the model as written"),
    Form("transmuted", "torch eager", "fp32", "fxaccel.transmute: efficient blocks, original form"),
    Form("x86", "torch eager", "fp32", "fxaccel.deploy(target='x86'): channels-last, BN folded, 1x1x1 convs as GEMMs, depthwise conv3d kept"),
    Form("x86_compile", "torch.compile", "fp32", "the x86 deploy form under torch.compile (inductor, "
         "C++/OpenMP kernels; compiled once per thread count)"),
    Form("x86_bf16", "torch eager", "bf16", "fxaccel.deploy(target='x86', dtype=torch.bfloat16): the x86 form "
         "in bf16 (oneDNN's AVX512-BF16/AMX kernels, fp32 accumulation), fp32 in and out; CPUs with bf16 only"),
    Form("x86_bf16_compile", "torch.compile", "bf16", "x86_bf16 under torch.compile"),
    Form("mobile", "torch eager", "fp32", "fxaccel.deploy(target='mobile_cpu'): time folded, 4-D ops only"),
    Form("ptl", "TorchScript lite", "fp32", "mobile deploy form as a .ptl (lite interpreter)"),
    Form("pte", "ExecuTorch+XNNPACK", "fp32", "mobile deploy form as a .pte"),
    Form("pte_int8", "ExecuTorch+XNNPACK", "int8", "mobile deploy form, pt2e int8 (xnnpack), as a .pte"),
    Form("pte_fp16", "ExecuTorch+XNNPACK", "fp16", "mobile deploy form in half precision, as a .pte (native on ARMv8.2+)"),
    Form("tflite", "LiteRT+XNNPACK", "fp32", "mobile deploy form as a .tflite (litert-torch)"),
    Form("tflite_int8", "LiteRT+XNNPACK", "int8", "mobile deploy form, pt2e int8 (litert), as a .tflite"),
    # peers: what a user would run instead, on the vanilla model (fxaccel.peers; the `bench` extra)
    Form("ort", "ONNX Runtime", "fp32", "peer: the vanilla model via torch.onnx.export, CPU execution provider"),
    Form("ort_int8", "ONNX Runtime", "int8", "peer: the vanilla ONNX, ORT static int8 (QDQ, per-channel), "
         "calibrated on the clips fxaccel's int8 uses"),
    Form("openvino", "OpenVINO", "fp32", "peer: the vanilla ONNX on OpenVINO's CPU plugin, fp32 forced"),
    Form("openvino_auto", "OpenVINO", "auto", "peer: the vanilla ONNX on OpenVINO at its default precision "
         "(bf16 where the CPU has AVX512-BF16/AMX, else fp32; the note says which)"),
    Form("openvino_int8", "OpenVINO", "int8", "peer: ort_int8's QDQ model on OpenVINO"),
)}
PEERS = ("ort", "ort_int8", "openvino", "openvino_auto", "openvino_int8")

ARTIFACT_RUNTIMES = {".pte": ("ExecuTorch+XNNPACK", "pte"), ".tflite": ("LiteRT+XNNPACK", "tflite"),
                     ".ptl": ("TorchScript lite", "ptl"), ".pt": ("TorchScript", "pt")}


@dataclass
class Row:
    """One timed form. ``median_ms`` is ``None`` when the form could not be built (``note`` says why)."""

    model: str
    form: str
    runtime: str
    precision: str
    median_ms: float | None = None
    all_ms: list[float] = field(default_factory=list)
    threads: int | None = None
    loadavg: float | None = None
    speedup: float | None = None
    gflops: float | None = None
    ceiling_share: float | None = None
    top1: float | None = None  # on the eval clips, when bench was given labelled data
    round_ms: list[float] = field(default_factory=list)  # median of each interleaved round
    round_speedups: list[float] = field(default_factory=list)  # vanilla's round median / this one's
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Step = Callable[[str], ContextManager]


def _no_step(description: str) -> ContextManager:
    return contextlib.nullcontext()


def model_flops(model: nn.Module, inputs: tuple) -> int | None:
    """FLOPs of one forward pass (torch's ``FlopCounterMode``: convs, matmuls; 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(*clone_inputs(inputs))
    except Exception:  # a model the counter cannot run: no GFLOP/s column, not a failed benchmark
        return None
    return int(counter.get_total_flops()) or None


class FormBuilder:
    """Builds forms lazily and once, so ``pte`` reuses the mobile deploy form and that the transmute.

    ``get(name)`` returns a runnable module or an artifact path; ``built(name)`` what was built so
    far (or ``None``). Artifacts are written to ``workdir`` as ``<stem>.pte`` / ``.ptl`` / ``.tflite``
    / ``_int8.pte`` / ``_int8.tflite`` / ``_fp16.pte`` by :func:`fxaccel.export` (lower stage, writer,
    load-back check). ``calib`` random clips calibrate the int8 forms (or ``calib_data``, real clips,
    when given), whose int8 model must reach ``sqnr_floor`` dB against the fp32 deploy form.
    """

    def __init__(self, model: nn.Module, inputs: tuple, workdir: str | Path, *, stem: str = "model",
                 calib: int = 8, sqnr_floor: float = USABLE_SQNR_DB, calib_data: list | None = None):
        self.model, self.inputs, self.workdir = model, inputs, Path(workdir)
        self.stem, self.calib, self.sqnr_floor = stem, calib, sqnr_floor
        self.calib_data = calib_data
        self._cache: dict[str, Any] = {}
        self._files: dict[str, Path] = {}
        self._expected = None  # vanilla eager on the example: the reference of every peer form
        self.notes: dict[str, str] = {}

    def get(self, name: str):
        if name not in FORMS:
            raise ValueError(f"unknown form {name!r}; known forms: {', '.join(FORMS)}")
        if name not in self._cache:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._cache[name] = getattr(self, "_" + name)()
        return self._cache[name]

    def built(self, name: str):
        return self._cache.get(name)

    def _vanilla(self):
        return self.model.eval()

    def _transmuted(self):
        from .transmuting import transmute

        return transmute(self.model, self.inputs).eval()

    def _x86(self):
        from .deploying import deploy

        return deploy(self.get("transmuted"), self.inputs, target="x86")

    def _x86_compile(self):
        return self._compiled("x86_compile", "x86")

    def _x86_bf16(self):
        from .deploying import deploy

        return self._peer("x86_bf16", deploy(self.get("transmuted"), self.inputs, target="x86",
                                             dtype=torch.bfloat16))

    def _x86_bf16_compile(self):
        return self._compiled("x86_bf16_compile", "x86_bf16")

    def _compiled(self, form: str, source: str):
        """``source`` under torch.compile, checked like a peer (the first call compiles)."""
        from .errors import LoweringError

        start = time.perf_counter()
        try:
            program = self._peer(form, CompiledPerThreads(self.get(source)))
        except _QualityError:
            raise
        except Exception as exc:  # inductor's own failures (torch 2.13 at 1 thread: a depthwise conv3d's
            # channels-last output stride differs from its meta kernel's): this form does not exist here
            raise LoweringError(f"torch.compile failed at {torch.get_num_threads()} thread(s): "
                                f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}") from exc
        self.notes[form] += f"; compiled in {time.perf_counter() - start:.0f} s"
        return program

    def _mobile(self):
        from .deploying import deploy

        return deploy(self.get("transmuted"), self.inputs, target="mobile_cpu")

    def _ptl(self):
        from .exporting import export

        return export(self.get("mobile"), self.inputs, self.workdir / f"{self.stem}.ptl")

    def _pte(self):
        """What :func:`fxaccel.export` writes (lower stage, writer, load-back check), keeping the
        delegation report for the row's note."""
        from .exporting import lower
        from .lowering.executorch import to_pte

        path = self.workdir / f"{self.stem}.pte"
        art = to_pte(lower(self.get("mobile"), self.inputs, "executorch"), self.inputs, path)
        if art.report.mac_share is not None:
            self.notes["pte"] = f"{art.report.mac_share:.1%} of MACs in XNNPACK delegates"
        return path

    def _pte_int8(self):
        return self._int8("pte_int8", "xnnpack", ".pte")

    def _tflite_int8(self):
        return self._int8("tflite_int8", "litert", ".tflite")

    def _int8(self, form: str, backend: str, suffix: str):
        from .exporting import export
        from .provenance import provenance_of
        from .quantizing import quantize

        fp32 = self.get("mobile")
        clips = self._calibration()
        q = quantize(fp32, clips, backend=backend)
        sqnr = provenance_of(q).output_sqnr_db
        if not (sqnr is not None and sqnr >= self.sqnr_floor):
            raise _QualityError(f"int8 output SQNR {sqnr} dB vs fp32 is below {self.sqnr_floor} dB")
        self.notes[form] = f"output SQNR {sqnr} dB vs fp32 ({self._calibration_words()})"
        path = export(q, self.inputs, self.workdir / f"{self.stem}_int8{suffix}")
        if suffix == ".tflite":
            self.notes[form] += "; " + _tflite_note(path)
        return path

    def _pte_fp16(self):
        from .exporting import export

        return export(self.get("mobile"), self.inputs, self.workdir / f"{self.stem}_fp16.pte", dtype=torch.float16)

    def _tflite(self):
        from .exporting import export

        path = export(self.get("mobile"), self.inputs, self.workdir / f"{self.stem}.tflite")
        self.notes["tflite"] = _tflite_note(path)
        return path

    def _calibration(self) -> list:
        """The int8 forms' calibration clips (fxaccel's and the peers' alike): real ones when given."""
        from . import zoo

        return self.calib_data or [map_tensors(lambda t, i=i: zoo.random_clips(t.shape, seed=100 + i), self.inputs)
                                   for i in range(self.calib)]

    def _calibration_words(self) -> str:
        return f"{len(self.calib_data)} real calibration clips" if self.calib_data else \
            f"{self.calib} random calibration clips"

    def _onnx_file(self, precision: str) -> Path:
        """The vanilla model as ONNX (``fp32``) or ORT's static int8 of it (``int8``), written once."""
        from . import peers

        if precision not in self._files:
            fp32 = self._files.get("fp32") or peers.export_onnx(self.model, self.inputs,
                                                                  self.workdir / f"{self.stem}.onnx")
            self._files["fp32"] = fp32
            if precision == "int8":
                self._files["int8"] = peers.quantize_onnx(fp32, self._calibration(),
                                                          self.workdir / f"{self.stem}_int8.onnx")
        return self._files[precision]

    def _peer(self, form: str, program):
        """``program`` checked against vanilla eager on the example input: fp32 within 1e-4 (else it
        is no fair peer: not built), reduced precision by its SQNR, which the note reports."""
        from .lowering.checking import compare_outputs

        with torch.no_grad():
            if self._expected is None:
                self._expected = self.model.eval()(*clone_inputs(self.inputs))
            expected, got = self._expected, program(*clone_inputs(self.inputs))
        fp32 = FORMS[form].precision == "fp32"
        try:
            check = compare_outputs(expected, got, self.inputs, rtol=1e-4, sqnr_floor=None if fp32 else -math.inf,
                                    what=f"{form} ({FORMS[form].runtime})")
        except Exception as exc:
            raise _QualityError(str(exc)) from exc
        self.notes[form] = (f"rel err {check['value']:.1e} vs vanilla eager" if fp32 else
                            f"output SQNR {check['value']:.1f} dB vs vanilla eager")
        if FORMS[form].precision == "int8":
            self.notes[form] += f" ({self._calibration_words()})"
        return program

    def _ort(self):
        return self._onnx_peer("ort")

    def _ort_int8(self):
        return self._onnx_peer("ort_int8")

    def _openvino(self):
        return self._onnx_peer("openvino")

    def _openvino_auto(self):
        program = self._onnx_peer("openvino_auto")
        self.notes["openvino_auto"] = f"OpenVINO chose {program.inference_precision()}; " + self.notes["openvino_auto"]
        return program

    def _openvino_int8(self):
        program = self._onnx_peer("openvino_int8")
        self.notes["openvino_int8"] += f"; {program.inference_precision()} around the int8 ops"
        return program

    def _onnx_peer(self, form: str):
        """A peer form: its runtime on the vanilla ONNX of its precision (int8: ORT's QDQ model);
        OpenVINO fp32 forced for ``openvino``, its own choice otherwise."""
        from .peers import OnnxRuntimeProgram, OpenVinoProgram

        path = self._onnx_file("int8" if FORMS[form].precision == "int8" else "fp32")
        program = (OnnxRuntimeProgram(path) if FORMS[form].runtime == "ONNX Runtime" else
                   OpenVinoProgram(path, precision="f32" if form == "openvino" else None))
        return self._peer(form, program)


class CompiledPerThreads:
    """``torch.compile(module)``, recompiled when torch's thread count changes: inductor bakes the
    count into its OpenMP kernels at code generation and does not guard on it."""

    def __init__(self, module: nn.Module):
        self.module, self._threads, self._compiled = module, None, None

    def __call__(self, *inputs):
        n = torch.get_num_threads()
        if n != self._threads:
            torch._dynamo.reset()
            self._threads, self._compiled = n, torch.compile(self.module)
        return self._compiled(*inputs)


def _tflite_note(path: Path) -> str:
    from .lowering.litert import tflite_report

    rep = tflite_report(path)
    outside = sum(rep.outside.values())
    return (f"{sum(rep.ops.values())} ops, {'all builtin' if rep.all_builtin else 'NOT all builtin'}, "
            f"{rep.delegates} XNNPACK partition(s), {outside} op(s) outside")


class _QualityError(ValueError):
    """A form was built but misses its accuracy bar; its row says so instead of a timing."""


def safe_stem(name: str) -> str:
    """``name`` as a file stem: ``pkg.mod:factory`` -> ``pkg_mod_factory``."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(name).name)
    return stem.strip("_") or "model"


def _expected_failure(err: BaseException) -> bool:
    """Failures that mean "this form is not available for this model here", not a bug."""
    from .errors import DeployError, LoweringError, MissingDependency

    return isinstance(err, (DeployError, LoweringError, MissingDependency, _QualityError))


def bench(
    model: nn.Module,
    inputs: tuple,
    forms: Sequence[str] = ("vanilla", "x86", "pte"),
    *,
    name: str = "model",
    repeats: int = 10,
    warmup: int = 3,
    threads: int | None = None,
    workdir: str | Path | None = None,
    calib: int = 8,
    sqnr_floor: float = USABLE_SQNR_DB,
    ceiling_gflops: float | None = None,
    step: Step = _no_step,
    builder: FormBuilder | None = None,
    calib_data: list | None = None,
    eval_data: list | None = None,
    rounds: int = 1,
) -> list[Row]:
    """Build and time ``forms`` of ``model`` on ``inputs``; one :class:`Row` per form, in order.

    Artifacts go to ``workdir`` (a temporary directory when ``None``). A form that cannot exist
    here (executorch not installed, a layer with no mobile deploy form) gets a row with
    ``median_ms=None`` and the reason in ``note``; other errors propagate. ``step(description)``
    is entered around each build and each timing (progress bars). ``calib``/``sqnr_floor``: the
    random calibration clips and the accepted SQNR (dB, vs the fp32 deploy form) of ``pte_int8``.
    Pass a :class:`FormBuilder` as ``builder`` to keep what was built (``workdir``, ``calib`` and
    ``sqnr_floor`` are then the builder's). ``calib_data``: real clips to calibrate ``pte_int8`` on
    instead of random ones; ``eval_data``: labelled batches ``(clips, labels)``; each row then
    carries the form's top-1 on them (``Row.top1``).

    Every form is built first, then timed in ``rounds`` interleaved rounds (each form ``repeats``
    runs per round), so a drift in machine load hits all forms alike; ``median_ms`` is the median
    of all runs, ``round_ms`` each round's median and ``round_speedups`` the speedup within each
    round: compare forms by those, never across runs.
    """
    from .lowering.runner import thread_count

    unknown = [f for f in forms if f not in FORMS]
    if unknown:
        raise ValueError(f"unknown form(s) {unknown}; known forms: {', '.join(FORMS)}")
    if rounds < 1:
        raise ValueError(f"need rounds >= 1, got {rounds}")
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    with contextlib.ExitStack() as stack:
        if builder is None:
            if workdir is None:
                workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="fxaccel-bench-"))
            builder = FormBuilder(model, inputs, workdir, stem=safe_stem(name), calib=calib, sqnr_floor=sqnr_floor,
                                  calib_data=calib_data)
        with step("counting FLOPs"):
            flops = model_flops(model.eval(), inputs)
        rows, runnables = [], {}
        for fname in forms:
            form = FORMS[fname]
            row = Row(name, fname, form.runtime, form.precision)
            rows.append(row)
            try:  # at the timed thread count: what compiles per thread count compiles for that one
                with step(f"building {fname}"), thread_count(threads):
                    runnables[fname] = _loaded(builder.get(fname))
            except Exception as err:
                if not _expected_failure(err):
                    raise
                row.note = f"not built: {str(err).splitlines()[0][:200]}"
        timings: dict[str, list] = {f: [] for f in runnables}
        for r in range(rounds):
            for fname, runnable in runnables.items():
                with step(f"timing {fname}" + (f" (round {r + 1}/{rounds})" if rounds > 1 else "")):
                    timings[fname].append(_time(runnable, inputs, warmup, repeats, threads))
        for row in rows:
            if row.form not in runnables:
                continue
            _fill(row, timings[row.form], flops, ceiling_gflops)
            if eval_data:
                with step(f"top-1 of {row.form}"):
                    row.top1 = top1(runnables[row.form], eval_data)
            row.note = builder.notes.get(row.form, "")
    return with_speedups(rows)


def _loaded(runnable):
    """An artifact path loaded once (timing rounds and top-1 reuse it); modules and programs as they are."""
    from .lowering.runner import load_artifact

    return load_artifact(runnable) if isinstance(runnable, (str, Path)) else runnable


def top1(runnable, eval_data: list) -> float:
    """Share of ``eval_data``'s samples (batches ``(clips, labels)``) whose arg-max is the label.
    An artifact path is loaded and run one clip at a time (it was exported for one shape)."""
    program = _loaded(runnable)
    if isinstance(program, nn.Module) and not isinstance(program, torch.jit.ScriptModule):
        run = program
    else:  # artifacts and peer programs are compiled for the example's batch of one
        run = lambda clips: torch.cat([program(clips[i:i + 1]) for i in range(clips.shape[0])])  # noqa: E731
    right = total = 0
    with torch.no_grad():
        for clips, labels in eval_data:
            right += (run(clips).argmax(-1) == labels).sum().item()
            total += len(labels)
    return right / total


def bench_artifact(path: str | Path, inputs: tuple, *, repeats: int = 10, warmup: int = 3,
                   threads: int | None = None) -> Row:
    """Time a ``.pte`` / ``.ptl`` / ``.pt`` file (no FLOPs or speedup: its vanilla model is unknown)."""
    path = Path(path)
    runtime, form = ARTIFACT_RUNTIMES.get(path.suffix, ("?", path.suffix))
    row = Row(path.name, form, runtime, "?")
    _fill(row, [_time(path, inputs, warmup, repeats, threads)], None, None)
    return row


def _time(runnable, inputs, warmup, repeats, threads):
    from .lowering.runner import time_artifact

    return time_artifact(runnable, inputs, warmup=warmup, repeats=repeats, threads=threads)


def _fill(row: Row, timings: list, flops: int | None, ceiling: float | None) -> None:
    """``row``'s latency from one timing per round: the median of every run, and each round's median."""
    row.all_ms = [round(t, 4) for timing in timings for t in timing.all_ms]
    row.median_ms = statistics.median(row.all_ms) if len(timings) > 1 else timings[0].median_ms
    row.round_ms = [timing.median_ms for timing in timings]
    row.threads = timings[0].threads
    row.loadavg = round(max(timing.loadavg[0] for timing in timings), 2)
    if flops and row.median_ms > 0:
        row.gflops = flops / (row.median_ms * 1e-3) / 1e9
        if ceiling:
            row.ceiling_share = row.gflops / ceiling


def with_speedups(rows: list[Row]) -> list[Row]:
    """Fill ``speedup`` = vanilla median / form median, per model (rows without vanilla keep None),
    and ``round_speedups``, the same within each timing round."""
    base = {r.model: r for r in rows if r.form == "vanilla" and r.median_ms}
    for r in rows:
        if r.median_ms and r.model in base:
            r.speedup = base[r.model].median_ms / r.median_ms
            r.round_speedups = [b / t for b, t in zip(base[r.model].round_ms, r.round_ms)]
    return rows


def matmul_ceiling_gflops(threads: int | None = None, size: int = 1024, repeats: int = 10) -> float:
    """The fp32 GFLOP/s this CPU reaches on a square ``torch.mm`` (best of ``repeats``): a practical ceiling."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(saved)
    return 2 * size**3 / best / 1e9


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """What a reader needs to judge a timing: CPU, cores, threads, versions, load average now."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    return {
        "cpu": cpu_model(), "cores": os.cpu_count(), "threads": threads or torch.get_num_threads(),
        "torch": torch.__version__, "executorch": installed("executorch"),
        "litert_torch": installed("litert-torch"), "ai_edge_litert": installed("ai-edge-litert"),
        "onnxruntime": installed("onnxruntime"), "openvino": installed("openvino"),
        "python": platform.python_version(),
        "platform": platform.platform(), "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


__all__ = ["ARTIFACT_RUNTIMES", "FORMS", "PEERS", "Form", "FormBuilder", "Row", "bench", "bench_artifact", "cpu_model",
           "CompiledPerThreads", "machine_info", "matmul_ceiling_gflops", "model_flops", "top1", "with_speedups"]
