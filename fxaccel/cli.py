"""The ``fxaccel`` command line: transmute, deploy, export, report and benchmark video models.

    fxaccel run                         # the main job on X3D-XS: transmute, deploy, .pte, latency table
    fxaccel zoo                         # the built-in models
    fxaccel transmute x3d_xs            # what each transmute pass did
    fxaccel deploy x3d_xs --target x86
    fxaccel export x3d_xs x3d_xs.pte [--int8 --calib 8 | --fp16]   # or x3d_xs.tflite (LiteRT)
    fxaccel report x3d_xs --svg graph.svg
    fxaccel bench x3d_xs --forms vanilla,x86,pte --threads 1
    fxaccel bench x3d_xs.pte --input-shape 1,3,4,160,160

MODEL is a zoo name, ``package.module:factory`` / ``file.py:factory`` (with ``--input-shape``), or
(``bench`` only) a ``.pte`` / ``.ptl`` / ``.pt`` file; see :mod:`fxaccel.modelspec`.

Exit status: 0 success; 2 bad usage or bad input (unknown model, missing file, wrong input shape,
a model that cannot be deployed or exported, a missing optional dependency); 1 a failure (int8
below its SQNR floor, or an internal error). Errors
are one line on stderr; ``--debug`` adds the traceback. ``--json`` prints one JSON document on
stdout instead of tables (errors then also as ``{"error": ..., "exit_code": ...}``). Progress bars
go to stderr, only when it is a terminal.

Stability: the commands and options are public; table layouts may change (use ``--json``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

from .inputs import describe, first_tensor, input_tensors, map_tensors
from .quantizing import USABLE_SQNR_DB

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
TARGETS = ("mobile_cpu", "x86")
DEFAULT_MODEL = "x3d_xs"


class _Usage(Exception):
    """A problem the user can fix (exit status 2)."""


class _Quality(Exception):
    """The result was built but is not good enough (exit status 1)."""


# ------------------------------------------------------------------ output helpers

class _Out:
    """Where a command writes: rich tables and lines on stdout, or one JSON document; progress on stderr."""

    def __init__(self, as_json: bool):
        from rich.console import Console

        self.json = as_json
        self.console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120,
                               highlight=False, soft_wrap=True)
        self.err = Console(file=sys.stderr, highlight=False)
        self.bars = sys.stderr.isatty() and not as_json

    def print(self, *args, **kwargs) -> None:
        if not self.json:
            self.console.print(*args, **kwargs)

    def note(self, text: str) -> None:
        """A remark for humans (stderr under --json, so stdout stays one JSON document)."""
        (self.err if self.json else self.console).print(text)

    def emit(self, data: Any) -> None:
        if self.json:
            sys.stdout.write(json.dumps(_jsonable(data), indent=2) + "\n")

    @contextlib.contextmanager
    def progress(self, total: int | None = None) -> Iterator["_Steps"]:
        """Steps shown as one progress bar (transient) when stderr is a terminal."""
        if not self.bars:
            yield _Steps(None, None)
            return
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                      console=self.err, transient=True) as bar:
            yield _Steps(bar, bar.add_task("starting", total=total))


class _Steps:
    """``with steps("tracing"): ...`` advances the bar by one (a no-op without a bar)."""

    def __init__(self, bar, task):
        self.bar, self.task = bar, task

    @contextlib.contextmanager
    def __call__(self, description: str) -> Iterator[None]:
        if self.bar is not None:
            self.bar.update(self.task, description=description)
        yield
        if self.bar is not None:
            self.bar.advance(self.task)


def _jsonable(x: Any) -> Any:
    """Strict JSON: non-finite floats become strings, paths and other objects ``str``."""
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if x is None or isinstance(x, (str, int, bool)):
        return x
    return str(x)


_NUMERIC = {"input (N, C, T, H, W)", "median ms", "speedup", "GFLOP/s", "top-1", "ops_before", "ops_after"}


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]):
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        t.add_column(col, justify="right" if col in _NUMERIC else "left")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


# ------------------------------------------------------------------ shared steps

def _subject(args, *, allow_artifact: bool = False):
    from .modelspec import check_runs, parse_inputs, resolve

    shape = parse_inputs(args.input_shape) if getattr(args, "input_shape", None) else None
    subject = resolve(args.model, shape, allow_artifact=allow_artifact)
    check_runs(subject)
    return subject


def _shape(subject) -> list[list[int]]:
    return [list(t.shape) for t in input_tensors(subject.inputs)]


def _transmute(subject, target: str, skip=()):
    from .transmuting import transmute

    return transmute(subject.model, subject.inputs, target=target, skip=skip)


def _deploy(model, subject, target: str, **kw):
    from .deploying import deploy

    return deploy(model, subject.inputs, target=target, **kw)


def _blocks_summary(gm) -> dict[str, int]:
    """Efficient blocks the graph calls (not the blocks nested inside them), by type."""
    from collections import Counter

    from torch import fx

    from .blocks.base import EfficientBlock

    counts: Counter = Counter()
    for _, sub in gm.named_modules():
        if isinstance(sub, fx.GraphModule):
            for node in sub.graph.nodes:
                if node.op == "call_module" and isinstance(sub.get_submodule(node.target), EfficientBlock):
                    counts[type(sub.get_submodule(node.target)).__name__] += 1
    return dict(counts)


# ------------------------------------------------------------------ commands

def cmd_zoo(args, out: _Out) -> int:
    from . import zoo

    rows = []
    for name in zoo.names():
        entry = zoo.get(name)
        rows.append({"name": name, "input_shape": list(entry.example_input(batch=1).shape),
                     "description": entry.description})
    out.emit({"models": rows, "default": DEFAULT_MODEL})
    out.print(_table("fxaccel zoo (vanilla models; random weights with realistic BN unless trained)",
                     ("name", "input (N, C, T, H, W)", "description"),
                     [(r["name"], tuple(r["input_shape"]), r["description"]) for r in rows]))
    return EXIT_OK


def cmd_transmute(args, out: _Out) -> int:
    from .report import report_of

    with out.progress(2) as step:
        with step(f"building {args.model}"):
            subject = _subject(args)
        with step("transmuting"):
            gm = _transmute(subject, args.target, args.skip)
    rep = report_of(gm)
    out.emit({"model": subject.name, "input_shape": _shape(subject), "blocks": _blocks_summary(gm),
              "report": rep.to_dict()})
    out.print(rep.table())
    out.print(f"efficient blocks: {_blocks_summary(gm)}")
    return EXIT_OK


def cmd_deploy(args, out: _Out) -> int:
    from .report import report_of

    import torch

    if args.bf16 and args.target != "x86":
        raise _Usage("--bf16 is for --target x86 (oneDNN's bf16 kernels); for a phone: fxaccel export ... --fp16")
    with out.progress(2) as step:
        with step(f"building {args.model}"):
            subject = _subject(args)
        with step(f"deploying for {args.target}"):
            gm = _deploy(subject.model, subject, args.target, tune=args.tune, skip=args.skip,
                         dtype=torch.bfloat16 if args.bf16 else torch.float32)
    rep = report_of(gm)
    out.emit({"model": subject.name, "input_shape": _shape(subject), "target": args.target,
              "report": rep.to_dict()})
    out.print(rep.table())
    _print_layers(out, rep)
    return EXIT_OK


def _print_layers(out: _Out, rep) -> None:
    if rep.layers:
        keys = ("layer", "block", "form", "ops_before", "ops_after")
        out.print(_table(f"deploy forms ({rep.target})", keys, [[lay.get(k) for k in keys] for lay in rep.layers]))


def cmd_export(args, out: _Out) -> int:
    import torch

    from . import zoo

    path = Path(args.out)
    suffix = path.suffix
    if suffix not in (".pte", ".tflite", ".ptl", ".pt"):
        raise _Usage(f"cannot tell the format of {args.out!r}: end it in .pte (ExecuTorch), .tflite (LiteRT), "
                     ".ptl (TorchScript lite) or .pt (TorchScript, or NNAPI with --format nnapi)")
    if args.fp16 and (suffix != ".pte" or args.int8):
        raise _Usage("--fp16 writes an fp16 .pte (XNNPACK's fp16 kernels): use a .pte path and no --int8")
    if args.format == "nnapi" and (suffix != ".pt" or args.int8):
        raise _Usage("--format nnapi writes an fp32 TorchScript file wrapping the NNAPI model: use a .pt path "
                     "and no --int8")
    if (suffix in (".pte", ".tflite") or args.format == "nnapi") and args.target != "mobile_cpu":
        runtime = {".pte": "a .pte runs on ExecuTorch+XNNPACK", ".tflite": "a .tflite runs on LiteRT"}.get(suffix, "NNAPI")
        raise _Usage(f"{runtime}, which has no 3-D convolution: use --target mobile_cpu")
    if args.calib < 1:
        raise _Usage(f"--calib must be at least 1, got {args.calib}")
    steps = 3 + (1 if args.int8 else 0)
    with out.progress(steps) as step:
        with step(f"building {args.model}"):
            subject = _subject(args)
        with step(f"deploying for {args.target}"):
            fp32 = _deploy(subject.model, subject, args.target)
        model, info = fp32, {"format": args.format or suffix[1:], "target": args.target,
                             "precision": "fp16" if args.fp16 else "fp32"}
        if args.int8:
            from .provenance import provenance_of
            from .quantizing import quantize
            from .report import report_of

            backend = {".pte": "xnnpack", ".tflite": "litert"}.get(
                suffix, "qnnpack" if args.target == "mobile_cpu" else "x86")
            source = _calib_source(args, subject)
            with step(f"calibrating int8 ({backend}) on {args.calib} {source} clips"):
                if source == "synthetic":
                    clips, labelled = _task_data(subject, args.calib, args.eval)
                else:
                    clips = [map_tensors(lambda t, i=i: zoo.random_clips(t.shape, seed=1000 + i), subject.inputs)
                             for i in range(args.calib)]
                    labelled = None
                model = quantize(fp32, clips, backend=backend, eval_data=labelled)
            sqnr = provenance_of(model).output_sqnr_db
            extra = report_of(model).extra
            info.update(precision="int8", backend=backend, output_sqnr_db=sqnr, calib_data=source,
                        top1_agreement=extra.get("top1_agreement"),
                        **{k: extra[k] for k in ("eval_clips", "fp32_top1", "int8_top1", "eval_sqnr_db") if k in extra})
            if not sqnr >= args.sqnr_floor:
                raise _Quality(f"int8 output SQNR {sqnr} dB vs fp32 is below --sqnr-floor "
                               f"{args.sqnr_floor} dB: calibrate on more clips (--calib), or quantize in Python "
                               "with keep_float= / skip= (docs/int8.md)")
        with step(f"writing {path.name}"):
            info.update(_write(model, subject, path, args.format, torch.float16 if args.fp16 else torch.float32))
    info.update(model=subject.name, input_shape=_shape(subject), path=str(path), bytes=path.stat().st_size)
    out.emit(info)
    out.print(f"wrote {path} ({info['bytes'] / 1e6:.2f} MB, {info['format']}, {info['precision']}, "
              f"target {args.target}, input {describe(subject.inputs)})")
    for key in ("check", "output_sqnr_db", "top1_agreement", "eval_clips", "fp32_top1", "int8_top1", "eval_sqnr_db"):
        if info.get(key) not in (None, [], ""):
            out.print(f"  {key}: {info[key]}")
    if args.int8 and info["calib_data"] == "random":
        out.print("  calibrated on random clips: for real accuracy, quantize with your data in Python "
                  "(fxaccel.quantize), see docs/int8.md")
    return EXIT_OK


def _calib_source(args, subject) -> str:
    """Where int8 calibration clips come from: ``--calib-data``, else the model's own task, else random."""
    source = args.calib_data or ("synthetic" if subject.task == "synthetic" else "random")
    if source == "synthetic":
        shape = first_tensor(subject.inputs).shape
        if len(shape) != 5 or shape[1] != 3 or shape[3] != shape[4] or shape[2] < 4 or shape[3] < 16:
            raise _Usage(f"--calib-data synthetic makes clips (N, 3, T, S, S) with T >= 4 and S >= 16; the "
                         f"model's input is {tuple(shape)}: use --calib-data random")
    return source


def _task_data(subject, n_calib: int, n_eval: int):
    """Synthetic train clips to calibrate on (the input's batch size) and labelled test clips."""
    from .zoo import synthetic

    n, _, t, s, _ = first_tensor(subject.inputs).shape
    calib = synthetic.clips("train", n=n_calib * n, batch=n, frames=t, crop=s)  # quantize ignores the labels
    labelled = synthetic.clips("test", n=n_eval, batch=n, frames=t, crop=s) if n_eval else None
    return calib, labelled


def _write(model, subject, path: Path, fmt: str | None, dtype=None) -> dict[str, Any]:
    """``fxaccel.export``: the lower stage, the writer, and the load-back check (raises on mismatch)."""
    from .exporting import export

    export(model, subject.inputs, path, format=fmt, **({"dtype": dtype} if dtype is not None else {}))
    return {"check": "loaded back and compared with the model: ok"}


def cmd_report(args, out: _Out) -> int:
    from .report import report_of
    from .tracing import trace

    with out.progress(3 if args.deploy else 2) as step:
        with step(f"building {args.model}"):
            subject = _subject(args)
        with step("transmuting"):
            gm = _transmute(subject, args.target)
        deployed = None
        if args.deploy:
            with step(f"deploying for {args.target}"):
                deployed = _deploy(gm, subject, args.target)
    rep = report_of(deployed if deployed is not None else gm)
    pictures = {}
    if args.dot or args.svg:
        from . import graphviz

        graphs = {"before (vanilla, traced)": trace(subject.model), "after transmute": gm}
        if deployed is not None:
            graphs[f"after deploy ({args.target})"] = deployed
        for flag, render in (("dot", graphviz.to_dot), ("svg", graphviz.to_svg)):
            target = getattr(args, flag)
            if target:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                Path(target).write_text(render(graphs))
                pictures[flag] = target
    why = None
    if args.why:
        try:
            why = rep.why(args.why)
        except ValueError as err:  # an unknown pass name: the user's request, not our bug
            raise _Usage(str(err)) from None
    transmuted = rep if rep.stage == "transmute" else rep.previous
    out.emit({"model": subject.name, "input_shape": _shape(subject), "blocks": _blocks_summary(gm),
              "coverage": transmuted.coverage if transmuted else None,
              "opaque": [{"path": o.path, "error": o.error} for o in (transmuted.opaque if transmuted else [])],
              "skipped": [{"pass": p, "where": s.where, "reason": s.reason} for p, s in _all_skips(rep)],
              "pictures": pictures, "report": rep.to_dict(),
              **({"why": why} if why else {})})
    out.print(why or rep.table())
    if deployed is not None:
        _print_layers(out, rep)
    out.print(f"efficient blocks: {_blocks_summary(gm)}")
    for flag, target in pictures.items():
        out.print(f"wrote {target} ({flag}: graph before and after, efficient blocks in green)")
    return EXIT_OK


def _all_skips(rep):
    while rep is not None:
        yield from rep.skipped
        rep = rep.previous


def cmd_bench(args, out: _Out) -> int:
    from .benchmarking import FORMS, bench, bench_artifact

    forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    unknown = [f for f in forms if f not in FORMS]
    if unknown or not forms:
        raise _Usage(f"unknown form(s) {unknown or args.forms!r}; choose from {','.join(FORMS)}")
    _check_counts(args)
    subject = None
    with out.progress(None if args.model.endswith((".pte", ".ptl", ".pt")) else
                      1 + (1 + args.rounds) * len(forms)) as step:
        with step(f"loading {args.model}"):
            subject = _subject(args, allow_artifact=True)
        if subject.kind == "artifact":
            with step(f"timing {subject.name}"):
                rows = [bench_artifact(subject.path, subject.inputs, repeats=args.repeats, warmup=args.warmup,
                                       threads=args.threads)]
        else:
            rows = bench(subject.model, subject.inputs, forms, name=subject.name, repeats=args.repeats,
                         warmup=args.warmup, threads=args.threads, workdir=args.out_dir, calib=args.calib,
                         step=step, rounds=args.rounds)
    _latency(out, subject, rows, args)
    return EXIT_OK


def _check_counts(args) -> None:
    if args.repeats < 1 or args.warmup < 0 or args.rounds < 1 or (args.threads is not None and args.threads < 1):
        raise _Usage(f"need --repeats >= 1, --warmup >= 0, --rounds >= 1 and --threads >= 1 (got {args.repeats}, "
                     f"{args.warmup}, {args.rounds}, {args.threads})")


def _latency(out: _Out, subject, rows, args, extra: dict | None = None) -> None:
    from .benchmarking import machine_info

    machine = machine_info(args.threads)
    out.emit({"model": subject.name, "input_shape": _shape(subject), "machine": machine,
              "repeats": args.repeats, "warmup": args.warmup, "rows": [r.to_dict() for r in rows], **(extra or {})})
    accuracy = any(r.top1 is not None for r in rows)
    table = []
    for r in rows:
        table.append((r.form, r.runtime, r.precision,
                      None if r.median_ms is None else f"{r.median_ms:.2f}",
                      None if r.speedup is None else f"{r.speedup:.2f}x",
                      None if r.gflops is None else f"{r.gflops:.1f}",
                      *([None if r.top1 is None else f"{r.top1:.1%}"] if accuracy else []), r.note))
    columns = ("form", "runtime", "precision", "median ms", "speedup", "GFLOP/s",
               *(["top-1"] if accuracy else []), "note")
    out.print(_table(f"{subject.name}, input {tuple(subject.inputs[0].shape)}: median of {args.repeats} run(s)",
                     columns, table))
    if accuracy:
        out.print(f"top-1 on {getattr(args, 'eval', '?')} test clips of the synthetic task (fxaccel.zoo.synthetic)")
    out.print(f"machine: {machine['cpu']}, {machine['threads']} thread(s) of {machine['cores']} cores, "
              f"torch {machine['torch']}, loadavg {machine['loadavg'][0]:.2f}")
    if machine["loadavg"][0] > max(0.5, 0.25 * (machine["cores"] or 1)):
        out.note("note: the machine is busy (load average above); timings taken under load are not "
                 "comparable with others. Benchmark on an idle machine.")


def cmd_run(args, out: _Out) -> int:
    from .benchmarking import FormBuilder, bench, safe_stem
    from .report import report_of

    _check_counts(args)
    with out.progress(None) as step:
        with step(f"building {args.model}"):
            subject = _subject(args)
        calib_data = labelled = None
        if _calib_source(args, subject) == "synthetic":  # labelled clips: an int8 row and a top-1 column
            calib_data, labelled = _task_data(subject, args.calib, args.eval)
        forms = ["vanilla", "x86"] + ([] if args.no_pte else ["pte"] + (["pte_int8"] if calib_data else []))
        builder = FormBuilder(subject.model, subject.inputs, args.out_dir, stem=safe_stem(subject.name),
                              calib_data=calib_data)
        with step("transmuting"):
            gm = builder.get("transmuted")
        with step("deploying for mobile_cpu"):
            builder.get("mobile")
        with step("deploying for x86"):
            builder.get("x86")
        rows = bench(subject.model, subject.inputs, forms, name=subject.name, repeats=args.repeats,
                     warmup=args.warmup, threads=args.threads, step=step, builder=builder, eval_data=labelled,
                     rounds=args.rounds)
    trep = report_of(gm)
    summary = {"coverage": trep.coverage, "blocks": _blocks_summary(gm), "opaque": [o.path for o in trep.opaque],
               "deploy": {t: report_of(builder.built(f)).extra for t, f in (("mobile_cpu", "mobile"), ("x86", "x86"))}}
    pte = builder.built("pte")
    summary["pte"] = str(pte) if pte else None
    blocks = ", ".join(f"{n} {k}" for k, n in summary["blocks"].items())
    out.print(f"[bold]transmute[/bold] {subject.name}: {blocks}; coverage "
              f"{trep.coverage:.0%} of Conv3d MACs" if trep.coverage is not None else f"transmute: {blocks}")
    for t, extra in summary["deploy"].items():
        out.print(f"[bold]deploy[/bold] {t}: verified, max relative error {extra.get('max_relative_error')} "
                  f"({extra.get('seconds')} s)")
    if pte:
        out.print(f"[bold]export[/bold] {pte} ({Path(pte).stat().st_size / 1e6:.2f} MB): loaded back in "
                  "ExecuTorch and verified against the model")
    elif not args.no_pte:
        reason = next((r.note for r in rows if r.form == "pte"), "")
        out.note(f"export: no .pte ({reason}); continuing without it")
    _latency(out, subject, rows, args, extra={"summary": summary})
    return EXIT_OK


# ------------------------------------------------------------------ the parser

def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print one JSON document on stdout instead of tables")
    g.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks and library warnings")
    return p


def _model_args(default: str | None = None, artifact: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    what = "zoo name (see `fxaccel zoo`), package.module:factory or file.py:factory"
    if artifact:
        what += ", or a .pte/.ptl/.pt file"
    if default:
        p.add_argument("model", metavar="MODEL", nargs="?", default=default, help=f"{what} (default: {default})")
    else:
        p.add_argument("model", metavar="MODEL", help=what)
    p.add_argument("--input-shape", metavar="N,C,T,H,W",
                   help="example input shape; required for factory specs and artifacts, "
                        "optional for zoo models (default: the model's own clip size). Several "
                        "positional inputs: separate shapes with ';'; a list argument (SlowFast's "
                        "pathways): '[1,3,2,64,64;1,3,8,64,64]'")
    return p


def _target(p: argparse.ArgumentParser, default: str = "mobile_cpu", required: bool = False) -> None:
    p.add_argument("--target", choices=TARGETS, default=None if required else default, required=required,
                   help="mobile_cpu: XNNPACK/NNAPI (time folded into the batch, 4-D ops only); "
                        f"x86: oneDNN (Conv3d kept, BN folded){'' if required else f' (default: {default})'}")


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib-data", choices=("random", "synthetic"), default=None,
                   help="int8 calibration clips: random, or the synthetic task's train clips (default: "
                        "synthetic for a model trained on it, e.g. x3d_xs_synthetic, else random)")
    p.add_argument("--eval", type=int, default=200, metavar="N",
                   help="with synthetic data: labelled test clips to measure top-1 on (default 200, 0: none)")


def _timing(p: argparse.ArgumentParser, repeats: int) -> None:
    g = p.add_argument_group("timing")
    g.add_argument("--threads", type=int, default=None, help="torch / ExecuTorch threads (default: torch's)")
    g.add_argument("--repeats", type=int, default=repeats, help=f"timed runs; the median is reported (default {repeats})")
    g.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    g.add_argument("--rounds", type=int, default=1, help="interleaved timing rounds over all forms, so load "
                   "drift hits each alike (default 1)")


def build_parser() -> argparse.ArgumentParser:
    """The ``fxaccel`` argument parser (every subcommand has its own ``--help``)."""
    from . import __version__
    from .benchmarking import FORMS

    fmt = argparse.RawDescriptionHelpFormatter
    common = _common()
    ap = argparse.ArgumentParser(
        prog="fxaccel", formatter_class=fmt,
        description="fxaccel rewrites vanilla PyTorch video models (X3D, 3D ResNets, R(2+1)D, CSN) into "
                    "efficient blocks,\ndeploys them for a target, and exports them to ExecuTorch / TorchScript.",
        epilog="examples:\n  fxaccel run                      the main job on X3D-XS (about a minute)\n"
               "  fxaccel zoo                      list the built-in models\n"
               "  fxaccel report x3d_xs --svg g.svg\n"
               "  fxaccel export x3d_xs x3d_xs.pte --int8\n"
               "  fxaccel bench mypkg.models:build --input-shape 1,3,8,112,112\n\n"
               "exit status: 0 ok, 2 bad usage or input, 1 internal failure. `fxaccel CMD --help` for details.")
    ap.add_argument("--version", action="version", version=f"fxaccel {__version__}")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    ap.add_argument("--debug", action="store_true", help="show tracebacks and library warnings")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, help_, description, parents=(), epilog=None):
        return sub.add_parser(name, help=help_, description=description, epilog=epilog, formatter_class=fmt,
                              parents=[*parents, common])

    p = add("run", "the main job: transmute, deploy, export .pte, latency table",
            "Transmute MODEL, deploy it for mobile_cpu and x86 (both verified against the original), export\n"
            "the mobile form to a .pte (when executorch is installed) and print the latency of vanilla eager\n"
            "torch vs the x86 deploy form vs the .pte. Takes about a minute for X3D-XS on 2 cores.",
            [_model_args(DEFAULT_MODEL)])
    p.add_argument("--out-dir", default=".", help="where the .pte goes (default: the current directory)")
    p.add_argument("--no-pte", action="store_true", help="skip the ExecuTorch export")
    p.add_argument("--calib", type=int, default=8, metavar="N",
                   help="with synthetic data: calibration clips for the int8 .pte row (default 8)")
    _data_args(p)
    _timing(p, repeats=10)
    p.set_defaults(func=cmd_run)

    p = add("zoo", "list the built-in models", "List the zoo's vanilla models with their input shapes.")
    p.set_defaults(func=cmd_zoo)

    p = add("transmute", "swap efficient blocks in and report what each pass did",
            "Transmute MODEL (efficient blocks in original form: same math, still trainable) and print\n"
            "per pass what it matched, rewrote and skipped (with the reason), opaque parts and coverage.",
            [_model_args()])
    _target(p)
    p.add_argument("--skip", action="append", default=[], metavar="PASS", help="a pass not to run (repeatable)")
    p.set_defaults(func=cmd_transmute)

    p = add("deploy", "put MODEL in deploy form for a target and report it",
            "Deploy MODEL for --target (verified against the original on the example input) and print\n"
            "the transmute and deploy reports and the form each layer got.", [_model_args()])
    _target(p, required=True)
    p.add_argument("--tune", action="store_true", help="time candidate forms per layer and keep the fastest")
    p.add_argument("--skip", action="append", default=[], metavar="PASS", help="a deploy pass not to run (repeatable)")
    p.add_argument("--bf16", action="store_true",
                   help="x86: the form in bf16, fp32 in and out (CPUs with AVX512-BF16 or AMX)")
    p.set_defaults(func=cmd_deploy)

    p = add("export", "write a .pte / .tflite / .ptl / .pt artifact",
            "Deploy MODEL and write OUT with fxaccel.export: .pte (ExecuTorch + XNNPACK, needs\n"
            "fxaccel[executorch]), .tflite (LiteRT, needs fxaccel[litert]), .ptl (TorchScript lite\n"
            "interpreter), .pt (TorchScript; NNAPI with --format nnapi). The artifact is loaded back and checked against the model it was written\n"
            "from (fp32: relative error; int8: SQNR).", [_model_args()])
    p.add_argument("out", metavar="OUT", help="output file: .pte, .tflite, .ptl or .pt")
    _target(p)
    p.add_argument("--int8", action="store_true",
                   help="quantize to int8 (xnnpack for .pte, litert for .tflite, qnnpack/x86 for TorchScript)")
    p.add_argument("--fp16", action="store_true", help="a .pte in half precision (ARMv8.2+ phones; slow on most x86)")
    p.add_argument("--calib", type=int, default=8, metavar="N", help="calibration clips for --int8 (default 8)")
    _data_args(p)
    p.add_argument("--sqnr-floor", type=float, default=USABLE_SQNR_DB, metavar="DB",
                   help="with --int8: the least output SQNR (dB) of the int8 model vs fp32 on the calibration "
                        f"clips (default {USABLE_SQNR_DB:g}: below it the int8 model is broken)")
    p.add_argument("--format", choices=("nnapi",), default=None,
                   help="nnapi: an Android NNAPI model in a .pt file (converted and loaded here, runs on Android)")
    p.set_defaults(func=cmd_export)

    p = add("report", "what transmute (and deploy) did; graph pictures",
            "Print what each pass did (matched, rewritten, skipped with reason), opaque parts and\n"
            "coverage; --dot / --svg draw the graph before and after, efficient blocks in green.",
            [_model_args()])
    _target(p)
    p.add_argument("--deploy", action="store_true", help="also deploy for --target and report the forms")
    p.add_argument("--why", metavar="RULE", help="explain what the pass RULE did and, where it did not fire, "
                   "the closest partial match and where it stopped")
    p.add_argument("--dot", metavar="FILE", help="write the graphs as Graphviz DOT")
    p.add_argument("--svg", metavar="FILE", help="write the graphs as SVG (Graphviz `dot` when installed, else built in)")
    p.set_defaults(func=cmd_report)

    p = add("bench", "latency across forms and runtimes",
            "Build the requested forms of MODEL and time each (median), with the speedup over vanilla\n"
            "eager torch and GFLOP/s; or time one artifact. Run it on an idle machine.\n\nforms:\n"
            + "\n".join(f"  {f.name:<11}{f.runtime}, {f.precision}: {f.description}" for f in FORMS.values()),
            [_model_args(artifact=True)])
    p.add_argument("--forms", default="vanilla,x86,mobile,pte", help="comma-separated forms (default: %(default)s)")
    p.add_argument("--out-dir", default=None, help="keep the artifacts here (default: a temporary directory)")
    p.add_argument("--calib", type=int, default=8, metavar="N", help="random calibration clips for pte_int8 (default 8)")
    _timing(p, repeats=10)
    p.set_defaults(func=cmd_bench)
    return ap


# ------------------------------------------------------------------ main

def _exit_code(err: BaseException) -> int:
    from .errors import DeployError, MissingDependency, SpecError, UnsupportedOps

    usage = (_Usage, SpecError, DeployError, MissingDependency, UnsupportedOps)  # the model or setup, not us
    return EXIT_USAGE if isinstance(err, usage) else EXIT_INTERNAL


def _one_line(err: BaseException, code: int) -> str:
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else type(err).__name__
    if len(lines) > 1:
        text += f" (+{len(lines) - 1} more lines: --debug)"
    if code == EXIT_INTERNAL and not isinstance(err, _Quality):
        text = f"internal error: {type(err).__name__}: {text}; rerun with --debug for the traceback"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and argparse's own usage errors (status 2)
        return int(exit_.code or 0)
    args.json = getattr(args, "json", False)
    args.debug = getattr(args, "debug", False)
    out = _Out(args.json)
    with warnings.catch_warnings():
        if not args.debug:  # library chatter (deprecations, torchao/executorch notices) hides our output
            warnings.simplefilter("ignore")
            logging.disable(logging.WARNING)
            os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
        try:
            return args.func(args, out)
        except KeyboardInterrupt:
            print("fxaccel: interrupted", file=sys.stderr)
            return 130
        except Exception as err:
            code = _exit_code(err)
            if args.debug:
                traceback.print_exc()
            message = _one_line(err, code)
            print(f"fxaccel {args.command}: error: {message}", file=sys.stderr)
            if args.json:
                sys.stdout.write(json.dumps({"error": message, "exit_code": code}) + "\n")
            return code
        finally:
            logging.disable(logging.NOTSET)


if __name__ == "__main__":
    raise SystemExit(main())
