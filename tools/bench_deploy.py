#!/usr/bin/env python
"""Benchmark ``fxaccel.deploy`` on the zoo X3D models (CPU, eager and torch.compile).

Variants, per model and thread count:

* ``vanilla``          the zoo model in eager mode (the baseline: ratios are vanilla / variant)
* ``x86``              ``deploy(target="x86")`` in eager mode
* ``mobile``           ``deploy(target="mobile_cpu")`` (network-wide folded layout) in eager mode
* ``mobile_block``     ``deploy(target="mobile_cpu", layout="block")``: per-block fold/unfold, the
                       measurement aid for "does the network-wide layout pay?"
* ``compile_vanilla``  ``torch.compile`` of the vanilla model (what an x86 user would pick instead)
* ``compile_x86``      ``torch.compile`` of the x86 deploy form
* with ``--executorch``: ``et_mobile`` / ``et_mobile_block``, the two mobile forms lowered to
  ExecuTorch+XNNPACK (fxaccel.lowering.executorch) and run in its runtime.

Method: every variant is built and warmed up first; then ``--repeats`` rounds each run every
variant once, in turn (so drift and background load hit all variants alike), and the table gives
the median per variant and the ratio to vanilla computed from those medians of the same run.
``os.getloadavg()`` is printed before and after: figures taken on a loaded machine are noise
(DESIGN.md: X3D-XS went from 44 ms to 2,500 ms under load). Run it on an idle machine only.

    python tools/bench_deploy.py                            # XS, S, M; threads 2 and 1
    python tools/bench_deploy.py --out docs/bench_deploy.md
    python tools/bench_deploy.py --smoke                    # seconds: proves the script runs
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from typing import Callable

import torch

import fxaccel
from fxaccel.deploying import deploy

from fxaccel import zoo


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def _build(size: str, crop: int | None, frames: int | None, args):
    """The variants for one model (name -> callable(x)), its input, build timings, the transmuted model."""
    model = zoo.x3d(size)
    x = zoo.example_input(size, batch=args.batch)
    if crop or frames:
        shape = list(x.shape)
        shape[2] = frames or shape[2]
        shape[3] = shape[4] = crop or shape[3]
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    info = {"input": tuple(x.shape)}
    start = time.perf_counter()
    gm = fxaccel.transmute(model, x)
    info["transmute_s"] = time.perf_counter() - start
    variants: dict[str, Callable] = {"vanilla": model}
    tune = bool(args.tune)
    start = time.perf_counter()
    x86 = deploy(gm, x, target="x86", tune=tune, op_counts=False)
    info["deploy_x86_s"] = time.perf_counter() - start
    variants["x86"] = x86
    start = time.perf_counter()
    mobile = deploy(gm, x, target="mobile_cpu", tune=tune, op_counts=False)
    info["deploy_mobile_s"] = time.perf_counter() - start
    variants["mobile"] = mobile
    mobile_block = deploy(gm, x, target="mobile_cpu", layout="block", tune=tune, op_counts=False)
    variants["mobile_block"] = mobile_block
    if args.executorch:
        from fxaccel.lowering.executorch import load_pte, to_pte

        for name, form in (("et_mobile", mobile), ("et_mobile_block", mobile_block)):
            start = time.perf_counter()
            program = load_pte(to_pte(form, (x,), verify=True).buffer)
            info[f"lower_{name}_s"] = time.perf_counter() - start
            variants[name] = program
    return variants, x, info, gm


def _compile(variants: dict[str, Callable], backend: str) -> None:
    """Fresh ``torch.compile`` variants, for this size's one static shape and this thread count.

    Not reused across thread counts: eager PyTorch picks the conv3d kernel by thread count (a
    batch-1 ``kT x 1 x 1`` conv runs oneDNN with 2 threads, the slow kernel with 1), and the two
    return different memory formats; a graph compiled under one fails inductor's stride
    assertion under the other (seen with torch 2.13 on the x86 deploy form, which is channels-last).
    """
    torch._dynamo.reset()
    variants["compile_vanilla"] = torch.compile(variants["vanilla"], backend=backend, dynamic=False)
    variants["compile_x86"] = torch.compile(variants["x86"], backend=backend, dynamic=False)


def _bench(variants: dict[str, Callable], x: torch.Tensor, repeats: int, warmup: int) -> dict[str, float]:
    failed = []
    with torch.no_grad():
        for name, fn in list(variants.items()):
            try:
                for _ in range(max(1, warmup)):  # at least one call: torch.compile compiles here
                    fn(x)
            except Exception as err:  # e.g. an inductor bug: report it, time the rest
                print(f"  {name} failed, not timed: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
                failed.append(name)
                del variants[name]
    samples: dict[str, list[float]] = {k: [] for k in variants}
    with torch.no_grad():
        for _ in range(repeats):
            for name, fn in variants.items():
                start = time.perf_counter()
                fn(x)
                samples[name].append(time.perf_counter() - start)
    return {k: _median_ms(v) for k, v in samples.items()}


def _table(rows: list[dict], names: list[str]) -> str:
    head = "| model | input | threads | " + " | ".join(f"{n} ms (x)" for n in names) + " |"
    sep = "|" + "---|" * (3 + len(names))
    lines = [head, sep]
    for r in rows:
        base = r["ms"]["vanilla"]
        cells = []
        for n in names:
            ms = r["ms"].get(n)
            cells.append("-" if ms is None else f"{ms:.1f} ({base / ms:.2f}x)")
        lines.append(f"| X3D-{r['size']} | {'x'.join(map(str, r['input'][1:]))} | {r['threads']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["XS", "S", "M"], choices=["XS", "S", "M", "L"])
    p.add_argument("--threads", nargs="+", type=int, default=[2, 1])
    p.add_argument("--repeats", type=int, default=20, help="timed rounds (each runs every variant once)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--crop", type=int, default=None, help="override the design crop (not for reported figures)")
    p.add_argument("--frames", type=int, default=None, help="override the design clip length")
    p.add_argument("--tune", action="store_true", help="deploy with tune=True (measures candidate forms first)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    p.add_argument("--compile-backend", default="inductor")
    p.add_argument("--executorch", action="store_true", help="also time the mobile forms in ExecuTorch+XNNPACK")
    p.add_argument("--out", default=None, help="write the markdown here (e.g. docs/bench_deploy.md)")
    p.add_argument("--smoke", action="store_true",
                   help="prove the script runs: XS at 64x64, 1 thread, 1 repeat, torch.compile with the "
                        "aot_eager backend (no C++ build); the figures mean nothing")
    args = p.parse_args(argv)
    if args.smoke:
        args.sizes, args.threads, args.repeats, args.warmup = ["XS"], [1], 1, 0
        args.crop = args.crop or 64
        if args.compile_backend == "inductor":
            args.compile_backend = "aot_eager"

    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", file=sys.stderr)
    rows, infos = [], []
    names: list[str] = []
    for size in args.sizes:
        variants, x, info, gm = _build(size, args.crop, args.frames, args)
        infos.append((size, info))
        x86_threads = torch.get_num_threads()  # what _build deployed x86 under
        for threads in args.threads:
            torch.set_num_threads(threads)
            if threads != x86_threads:  # x86 deploy reads the thread count (choices.builtin_choice)
                variants["x86"] = deploy(gm, x, target="x86", tune=bool(args.tune), op_counts=False)
                x86_threads = threads
            if not args.no_compile:
                _compile(variants, args.compile_backend)
            ms = _bench(variants, x, args.repeats, args.warmup)
            names += [n for n in ms if n not in names]
            rows.append({"size": size, "input": info["input"], "threads": threads, "ms": ms})
            print(f"X3D-{size} threads={threads}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items()),
                  file=sys.stderr)
    load_after = os.getloadavg()

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    out = [
        "# fxaccel.deploy benchmark",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; torch {torch.__version__}; "
        f"compile backend {args.compile_backend}; batch {args.batch}; median of {args.repeats} interleaved rounds "
        f"after {args.warmup} warm-up calls; tune={args.tune}.",
        "",
        f"Load average (1/5/15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}. Figures under load are noise.",
        "",
        "Cells: median milliseconds per clip, and (speed-up over vanilla eager, measured in the same run).",
        "",
        _table(rows, names),
        "",
    ]
    if args.smoke:
        out.insert(2, "**SMOKE RUN: reduced input, one repeat; the figures mean nothing.**\n")
    for size, info in infos:
        out.append(f"- X3D-{size}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in info.items()))
    text = "\n".join(out) + "\n"
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
