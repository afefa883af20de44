"""Where a .pte spends its time, per XNNPACK operator kind: an ETDump profile of fxaccel's artifacts.

    python tools/profile_pte.py                                   # X3D-XS, X3D-S: pte and pte_int8, 2 threads
    python tools/profile_pte.py --models x3d_m --forms pte --out docs/profile.md --section m

Why: a latency table says *that* a program is slow, not *why*. ExecuTorch's event tracer records
every delegate operator's duration (XNNPACK's per-op profiling is compiled into the pip wheel), and
its Inspector reads the dump. Each model's artifact is built as ``tools/bench.py`` builds it
(:class:`fxaccel.benchmarking.FormBuilder`), loaded with the event tracer on, run ``--warmup`` then
``--runs`` times, and every operator event is grouped by kind (``Convolution (NHWC, F32) IGEMM``,
``Constant Pad (ND, X32)``, ``Convert (NC, F32, QD8)``...): calls per inference, median ms per
inference, share of the traced time. The tracer costs a little per event, so the sum exceeds a
plain run's latency by a few percent; read the shares, and time with ``tools/bench.py``.

Run it on an idle machine (shared/DESIGN.md's timing trap); the page records the load average.
Needs the ``executorch`` extra and the devtools that ship with it.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import os
import re
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from fxaccel import zoo
from fxaccel.benchmarking import FORMS, FormBuilder, machine_info, safe_stem

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def kind(name: str) -> str:
    """An event's operator kind: XNNPACK names ops ``Kind (layout, types) #id``-style; drop the id."""
    return re.sub(r"\s*#?\d+$", "", name).strip()


def profile(path: Path, x: torch.Tensor, threads: int, warmup: int, runs: int, work: Path) -> dict:
    """{kind: (calls per inference, median ms per inference)} and the median traced ms per inference."""
    from executorch.devtools import Inspector
    from executorch.extension.pybindings import portable_lib

    from fxaccel.lowering.executorch import set_threadpool_size

    torch.set_num_threads(threads)
    set_threadpool_size(threads)
    portable_lib._unsafe_reset_threadpool(threads)
    module = portable_lib._load_for_executorch(str(path), enable_etdump=True)
    for _ in range(warmup):
        module.run_method("forward", (x,))
    dump = work / f"{path.stem}.etdump"
    module = portable_lib._load_for_executorch(str(path), enable_etdump=True)
    for _ in range(runs):
        module.run_method("forward", (x,))
    module.write_etdump_result_to_file(str(dump))
    inspector = Inspector(etdump_path=str(dump))
    per_kind: dict[str, list[list[float]]] = collections.defaultdict(list)
    calls: collections.Counter = collections.Counter()
    totals = [0.0] * runs
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        for ev in block.events:
            raw = list(getattr(ev.perf_data, "raw", None) or [])
            if not raw or ev.name in ("Method::execute", "DELEGATE_CALL", "OPERATOR_CALL") or \
                    ev.name.startswith("Method::"):
                continue
            k = kind(ev.name) + ("" if ev.is_delegated_op else " [outside XNNPACK]")
            per_kind[k].append(raw[-runs:])
            calls[k] += 1
            for i, ms in enumerate(raw[-runs:]):
                totals[i] += ms
    out = {}
    for k, events in per_kind.items():
        per_run = [sum(e[i] for e in events if i < len(e)) for i in range(runs)]
        out[k] = (calls[k], statistics.median(per_run))
    return {"kinds": out, "total_ms": statistics.median(totals)}


def table(name: str, form: str, shape, result: dict, top: int) -> list[str]:
    total = result["total_ms"]
    rows = sorted(result["kinds"].items(), key=lambda kv: -kv[1][1])
    lines = [f"**{name}** `{form}` (input {'×'.join(map(str, shape))}): {total:.2f} ms traced per inference, "
             f"{sum(c for c, _ in result['kinds'].values())} operator events", "",
             "| operator kind | calls | ms | share |", "|---|---:|---:|---:|"]
    for k, (c, ms) in rows[:top]:
        lines.append(f"| {k} | {c} | {ms:.2f} | {ms / total:.1%} |")
    rest = rows[top:]
    if rest:
        lines.append(f"| ({len(rest)} more kinds) | {sum(c for _, (c, _) in rest)} | "
                     f"{sum(ms for _, (_, ms) in rest):.2f} | {sum(ms for _, (_, ms) in rest) / total:.1%} |")
    return lines + [""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["x3d_xs", "x3d_s"])
    ap.add_argument("--forms", default="pte,pte_int8", help="artifact forms (pte, pte_int8, pte_fp16)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--top", type=int, default=12, help="kinds listed per table (the rest summed)")
    ap.add_argument("--out", help="markdown file to write (default: print)")
    ap.add_argument("--section", help="with --out: write as this section of that page (kept markers)")
    args = ap.parse_args(argv)
    forms = [f for f in args.forms.split(",") if f]
    bad = [f for f in forms if f not in FORMS or not FORMS[f].runtime.startswith("ExecuTorch")]
    if bad:
        ap.error(f"not .pte forms: {bad}")
    command = "python " + shlex.join(["tools/profile_pte.py", *(sys.argv[1:] if argv is None else argv)])
    before = os.getloadavg()
    lines = []
    with tempfile.TemporaryDirectory(prefix="fxaccel-profile-") as tmp:
        for name in args.models:
            torch.manual_seed(0)
            model, x = zoo.create(name), zoo.example_input(name)
            builder = FormBuilder(model, (x,), Path(tmp) / name, stem=safe_stem(name))
            for form in forms:
                print(f"{name} {form}: building", file=sys.stderr, flush=True)
                path = builder.get(form)
                print(f"{name} {form}: profiling", file=sys.stderr, flush=True)
                lines += table(name, form, tuple(x.shape), profile(Path(path), x, args.threads, args.warmup,
                                                                  args.runs, Path(tmp)), args.top)
    m = machine_info(args.threads)
    head = [f"Generated by `{command}` on {datetime.date.today()}: ETDump (ExecuTorch event tracer) of each "
            f"artifact, {args.threads} thread(s), median of {args.runs} traced runs after {args.warmup}; "
            f"{m['cpu']}, torch {m['torch']}, executorch {m['executorch']}; load average before "
            f"{before[0]:.2f}, after {os.getloadavg()[0]:.2f}.", ""]
    text = "\n".join(head + lines)
    if not args.out:
        print(text)
        return 0
    out = Path(args.out)
    if args.section:
        from bench import write_section

        write_section(out, args.section, text, new_page="# Profiles\n")
    else:
        out.write_text("# Profiles\n\n" + text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
