"""Write docs/benchmarks.md and docs/benchmarks.png: latency of zoo models across forms and runtimes.

    python tools/bench.py                      # the checked-in report: X3D-XS and X3D-S, 1 and 2 threads
    python tools/bench.py --smoke --out /tmp/b # 1 repeat, X3D-XS, cheap forms: checks the script runs
    python tools/bench.py --section torchvision --models torchvision:r3d_18 torchvision:mvit_v2_s \
        --forms vanilla,x86,pte --threads 2        # one section of docs/benchmarks.md, the rest kept

A model is a zoo name or ``torchvision:<name>`` (``torchvision.models.video``, random weights, 10
classes, BN statistics randomised, at its design input: tests/torchvision_video.py, which also holds
the import workaround for torchvision beside a CPU-only torch). ``--section NAME`` writes the tables
between ``<!-- section NAME -->`` markers of the page (appended if missing), with their own command,
so one run does not have to remeasure everything; without it the whole page and its plot are written.

For each model and thread count every form (vanilla eager, transmuted, x86 and mobile deploy forms
in eager torch, the x86 form under torch.compile, .ptl, .pte fp32/int8/fp16, .tflite fp32/int8, and the peers a user would pick
instead: ONNX Runtime and OpenVINO on the vanilla model's ONNX, fp32 and int8, and OpenVINO at its
default precision; the `bench` extra) is built once, then timed in --rounds interleaved rounds
(--repeats runs each after --warmup). The table gives the speedup over vanilla eager at the same thread count, the
achieved GFLOP/s (the vanilla model's FLOPs over the form's time) and its share of this CPU's
measured fp32 matmul ceiling; the page records the exact command, the machine and the load
average before and after. Run it on an idle machine: under load, two-thread timings are
meaningless (shared/DESIGN.md). The plot is written without matplotlib (tools/_png.py).
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _png import Canvas  # noqa: E402

from fxaccel import zoo  # noqa: E402
from fxaccel.benchmarking import FORMS, PEERS, bench, machine_info, matmul_ceiling_gflops  # noqa: E402
from fxaccel.modelspec import parse_shape  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ALL_FORMS = "vanilla,transmuted,x86,x86_compile,x86_bf16,x86_bf16_compile,mobile,ptl,pte,pte_int8,pte_fp16,tflite,tflite_int8," + ",".join(PEERS)
SMOKE_FORMS = "vanilla,x86,mobile"
# bar colours per form (plot)
COLORS = {"vanilla": (120, 120, 120), "transmuted": (160, 160, 160), "x86": (70, 130, 200),
          "x86_compile": (40, 90, 160), "x86_bf16": (110, 160, 220), "x86_bf16_compile": (20, 60, 120),
          "mobile": (140, 180, 230), "ptl": (230, 160, 60), "pte": (60, 170, 90), "pte_int8": (30, 120, 60),
          "pte_fp16": (100, 200, 120), "tflite": (200, 90, 160), "tflite_int8": (140, 50, 110),
          "ort": (200, 60, 60), "ort_int8": (150, 40, 40), "openvino": (90, 60, 170), "openvino_auto": (130, 100, 210),
          "openvino_int8": (60, 40, 120)}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["x3d_xs", "x3d_s"], help="zoo names (default: x3d_xs x3d_s)")
    ap.add_argument("--forms", default=ALL_FORMS, help=f"comma-separated, from {','.join(FORMS)}")
    ap.add_argument("--threads", nargs="+", type=int, default=None,
                    help="thread counts (default: 1 2; --smoke: torch's current count)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (every form, then again): "
                    "the table gives each form's speedup range across rounds")
    ap.add_argument("--calib", type=int, default=8, help="calibration clips for pte_int8 (random, or the "
                    "synthetic task's train clips for a model trained on it)")
    ap.add_argument("--eval", type=int, default=1000, help="test clips for the top-1 column of a model trained "
                    "on the synthetic task (x3d_xs_synthetic)")
    ap.add_argument("--input-shape", default=None, help="override every model's input (smoke tests)")
    ap.add_argument("--out", default=None, help="directory for benchmarks.md/.png (default: docs/; "
                                                "--smoke: a temporary directory)")
    ap.add_argument("--section", default=None, help="rewrite only this section of the page (see above)")
    ap.add_argument("--smoke", action="store_true",
                    help=f"check the script: 1 repeat, no warmup, x3d_xs only, forms {SMOKE_FORMS}, current threads")
    args = ap.parse_args(argv)
    if args.smoke:
        args.repeats, args.warmup, args.rounds, args.models = 1, 0, 1, ["x3d_xs"]
        args.threads = args.threads or [torch.get_num_threads()]
        if args.forms == ALL_FORMS:
            args.forms = SMOKE_FORMS
    args.threads = args.threads or [1, 2]
    args.forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    unknown = [f for f in args.forms if f not in FORMS]
    if unknown:
        ap.error(f"unknown form(s) {unknown}; known: {', '.join(FORMS)}")
    return args


def _task_data(name: str, args):
    """(calibration clips, labelled test clips) for a zoo model trained on a task, else (None, None)."""
    if name.startswith("torchvision:") or zoo.get(name).task != "synthetic":
        return None, None
    from fxaccel.zoo import synthetic

    calib = synthetic.clips("train", n=args.calib, batch=1)  # quantize ignores the labels
    return calib, synthetic.clips("test", n=args.eval, batch=50)


def _subject(name: str, shape):
    """(model, input) for a zoo name or ``torchvision:<name>``."""
    if name.startswith("torchvision:"):
        sys.path.insert(0, str(ROOT / "tests"))
        from torchvision_video import VIDEO_MODELS, build, clip

        tv = name.split(":", 1)[1]
        return build(tv), clip(shape or VIDEO_MODELS[tv][1])
    return zoo.create(name), zoo.random_clips(shape) if shape else zoo.example_input(name)


def run(args, command: str) -> dict:
    """Measure everything; returns what the page and the plot are made of."""
    loadavg_before = os.getloadavg()
    ceilings = {t: matmul_ceiling_gflops(t) for t in args.threads}
    rows, inputs = [], {}
    with tempfile.TemporaryDirectory(prefix="fxaccel-bench-") as work:
        for name in args.models:
            model, x = _subject(name, parse_shape(args.input_shape) if args.input_shape else None)
            inputs[name] = tuple(x.shape)
            calib_data, labelled = _task_data(name, args)
            for threads in args.threads:
                print(f"{name}, {threads} thread(s): {', '.join(args.forms)}", file=sys.stderr, flush=True)
                rows += bench(model, (x,), args.forms, name=name, repeats=args.repeats, warmup=args.warmup, rounds=args.rounds,
                              threads=threads, workdir=Path(work) / name, calib=args.calib,
                              ceiling_gflops=ceilings[threads], calib_data=calib_data, eval_data=labelled)
    return {"command": command, "rows": rows, "inputs": inputs, "ceilings": ceilings, "machine": machine_info(max(args.threads)),
            "loadavg_before": loadavg_before, "loadavg_after": os.getloadavg(), "args": args}


def _fmt(v, spec: str, suffix: str = "") -> str:
    return "-" if v is None else f"{v:{spec}}{suffix}"


def markdown(result: dict, png_name: str) -> str:
    args, m = result["args"], result["machine"]
    lines = [
        "# Benchmarks", "",
        "Generated by `tools/bench.py`; do not edit by hand, rerun the command instead:", "",
        "```bash", result["command"], "```", "",
        f"Measured {datetime.date.today().isoformat()}. Every form of a model is built first, then timed in "
        f"{args.rounds} interleaved round(s) of {args.repeats} runs after {args.warmup} warm-up runs; median ms "
        "is over all runs; speedup is over vanilla eager torch at the same thread count (the range: within "
        "each round, so load drift hits both sides alike); GFLOP/s is the "
        "vanilla model's FLOPs (convolutions and matmuls, 2 per multiply-accumulate) divided by the "
        "form's median time, so every form of a model is credited with the same work.", "",
        "Inputs (N, C, T, H, W): " + ", ".join(f"{n} {s}" for n, s in result["inputs"].items()) + ".", "",
        "## Machine", "",
        f"- CPU: {m['cpu']} ({m['cores']} cores visible)",
        f"- torch {m['torch']}, executorch {m['executorch'] or 'not installed'}, litert-torch "
        f"{m['litert_torch'] or 'not installed'}, ai-edge-litert {m['ai_edge_litert'] or 'not installed'}, "
        f"onnxruntime {m['onnxruntime'] or 'not installed'}, openvino {m['openvino'] or 'not installed'}, "
        f"Python {m['python']}, {m['platform']}",
        "- fp32 matmul ceiling (best `torch.mm` of two 1024x1024 matrices): "
        + ", ".join(f"{g:.1f} GFLOP/s at {t} thread(s)" for t, g in result["ceilings"].items()),
        f"- load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in result['loadavg_before'])}; "
        f"after: {', '.join(f'{v:.2f}' for v in result['loadavg_after'])}",
        "", "## Latency", "",
    ]
    accuracy = any(r.top1 is not None for r in result["rows"])
    if accuracy:
        lines += [f"top-1: on {args.eval} test clips of the synthetic task (fxaccel.zoo.synthetic); pte_int8 is "
                  f"calibrated on {args.calib} of its train clips.", ""]
    lines += [
        "| model | form | runtime | precision | threads | median ms | speedup vs vanilla eager | range over rounds "
        "| GFLOP/s | share of matmul ceiling |" + (" top-1 |" if accuracy else "") + " note |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if accuracy else "") + "---|",
    ]
    for r in result["rows"]:
        spread = (f"{min(r.round_speedups):.2f}-{max(r.round_speedups):.2f}x" if len(r.round_speedups) > 1 else "-")
        lines.append(f"| {r.model} | {r.form} | {r.runtime} | {r.precision} | {r.threads or '-'} | "
                     f"{_fmt(r.median_ms, '.2f')} | {_fmt(r.speedup, '.2f', 'x')} | {spread} | {_fmt(r.gflops, '.1f')} | "
                     f"{_fmt(None if r.ceiling_share is None else 100 * r.ceiling_share, '.1f', '%')} | "
                     + (f"{_fmt(None if r.top1 is None else 100 * r.top1, '.1f', '%')} | " if accuracy else "")
                     + f"{r.note.replace('|', '/')} |")
    lines += ["", f"![Median latency by form]({png_name})", "", "## Forms", ""]
    lines += [f"- `{f.name}` ({f.runtime}, {f.precision}): {f.description}" for f in FORMS.values()
              if f.name in args.forms]
    return "\n".join(lines) + "\n"


def plot(result: dict) -> bytes:
    """Horizontal bars: one panel per (model, threads), one bar per form, labelled with the median ms."""
    rows = [r for r in result["rows"] if r.median_ms]
    panels: dict[tuple, list] = {}
    for r in rows:
        panels.setdefault((r.model, r.threads), []).append(r)
    bar_h, gap, label_w, bar_w, pad = 16, 5, 140, 420, 12
    height = 40 + sum(28 + len(p) * (bar_h + gap) + pad for p in panels.values()) + 20
    c = Canvas(label_w + bar_w + 170, max(height, 80))
    c.text(pad, pad, "MEDIAN LATENCY BY FORM (MS, LOWER IS BETTER)", (0, 0, 0), 2)
    y = 40
    for (model, threads), items in panels.items():
        c.text(pad, y + 6, f"{model} - {threads} THREAD(S)", (0, 0, 0), 2)
        y += 28
        top = max(r.median_ms for r in items)
        for r in items:
            c.text(pad, y + 4, r.form, (40, 40, 40), 1)
            w = max(1, round(bar_w * r.median_ms / top))
            c.rect(label_w, y, w, bar_h, COLORS.get(r.form, (100, 100, 100)))
            label = f"{r.median_ms:.1f} MS" + (f"  {r.speedup:.2f}X" if r.speedup else "")
            c.text(label_w + w + 6, y + 4, label, (0, 0, 0), 1)
            y += bar_h + gap
        c.rect(label_w, y, 1, 1, (255, 255, 255))
        y += pad
    return c.png()


def main(argv=None) -> int:
    args = parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in ["tools/bench.py", *(sys.argv[1:] if argv is None else argv)])
    out = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="fxaccel-bench-smoke-")) if args.smoke
                                           else ROOT / "docs")
    out.mkdir(parents=True, exist_ok=True)
    result = run(args, command)
    page = out / "benchmarks.md"
    if args.section:
        old = page.read_text() if page.exists() else "# Benchmarks\n"
        page.write_text(with_section(old, args.section, section(result, args.section)))
        print(f"wrote section {args.section!r} of {page}")
        return 0
    (out / "benchmarks.png").write_bytes(plot(result))
    page.write_text(markdown(result, "benchmarks.png"))
    print(f"wrote {page} and {out / 'benchmarks.png'}")
    return 0


def section(result: dict, name: str) -> str:
    """The latency table of ``result`` with its command and machine, as one page section."""
    full = markdown(result, "").split("\n")
    start = next(i for i, line in enumerate(full) if line.startswith("Generated by"))
    end = next(i for i, line in enumerate(full) if line.startswith("![Median latency"))
    body = [line.replace("## ", "### ") for line in full[start:end]]
    return "\n".join([f"## Section: {name}", "", *body]).rstrip() + "\n"


def write_section(path: Path, name: str, text: str, new_page: str) -> None:
    """Write ``text`` under a ``## Section: name`` heading as that section of the page at ``path``
    (``new_page`` starts the page when there is none yet)."""
    page = path.read_text() if path.exists() else new_page
    path.write_text(with_section(page, name, f"## Section: {name}\n\n{text}"))


def with_section(page: str, name: str, text: str) -> str:
    """``page`` with the section ``name`` replaced by ``text`` (appended when the page has none)."""
    begin, end = f"<!-- section {name} -->", f"<!-- end section {name} -->"
    block = f"{begin}\n{text}{end}\n"
    if begin in page and end in page:
        head, rest = page.split(begin, 1)
        return head + block + rest.split(end, 1)[1].lstrip("\n")
    return page.rstrip("\n") + "\n\n" + block


if __name__ == "__main__":
    raise SystemExit(main())
