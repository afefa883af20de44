#!/usr/bin/env python
"""Benchmark ``fxaccel.quantize``: int8 vs fp32 deploy-form latency per backend on the zoo X3D models.

Pairs, per model, backend and thread count (the fp32 side is the deploy form the int8 one was made from):

* ``qnnpack``  ``deploy(target="mobile_cpu")`` fp32 vs ``quantize(backend="qnnpack")``, both as
               TorchScript (``torch.jit.trace``), the path they ship on; engine ``qnnpack``.
* ``x86``      ``deploy(target="x86")`` fp32 vs ``quantize(backend="x86")``, TorchScript; engine ``x86``.
* ``xnnpack``  (``--executorch``) the mobile form fp32 vs ``quantize(backend="xnnpack")``, both lowered
               to ExecuTorch+XNNPACK ``.pte`` programs and run in its runtime (lowering takes minutes).

Method: everything is built first; then, per backend, its fp32 and int8 variants are warmed up and
``--repeats`` rounds each run both once, in turn (drift and background load hit the pair alike; pairs
are not interleaved with each other because torch's OpenMP threads keep spinning after an eager
call and would steal the cores from XNNPACK's own threadpool); the table gives medians and the fp32/int8 ratio
computed from the medians of the same run (> 1: int8 is faster). The quantized engine is set before
each int8 call (it is process-global). ``os.getloadavg()`` is printed before and after: figures taken
on a loaded machine are noise (DESIGN.md). Output SQNR of each int8 model vs fp32 is listed too.

    python tools/bench_quantize.py                               # XS and S; threads 2 and 1
    python tools/bench_quantize.py --executorch --out docs/bench_quantize.md
    python tools/bench_quantize.py --smoke                       # seconds: proves the script runs
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from typing import Callable

import torch

import fxaccel
from fxaccel import zoo
from fxaccel.deploying import deploy
from fxaccel.lowering import thread_count
from fxaccel.quantizing import quantize

_TARGET = {"qnnpack": "mobile_cpu", "x86": "x86", "xnnpack": "mobile_cpu"}


def _input(size: str, args) -> torch.Tensor:
    x = zoo.example_input(size, batch=args.batch)
    if args.crop or args.frames:
        shape = list(x.shape)
        shape[2] = args.frames or shape[2]
        shape[3] = shape[4] = args.crop or shape[3]
        x = zoo.random_clips(shape, seed=0)
    return x


def _engine(name: str, fn: Callable) -> Callable:
    def call(x):
        torch.backends.quantized.engine = name
        return fn(x)
    return call


def _build(size: str, backends: list[str], args) -> tuple[dict[str, Callable], torch.Tensor, dict]:
    """name -> callable(x) for every fp32/int8 variant of one model; and build info."""
    model = zoo.x3d(size)
    x = _input(size, args)
    data = [zoo.random_clips(x.shape, seed=i + 1) for i in range(args.calibration)]
    variants: dict[str, Callable] = {}
    info: dict[str, object] = {"input": tuple(x.shape)}
    forms: dict[str, torch.nn.Module] = {}
    for backend in backends:
        target = _TARGET[backend]
        if target not in forms:
            forms[target] = deploy(model, x, target=target, verify=False, op_counts=False)
        fp32 = forms[target]
        start = time.perf_counter()
        q = quantize(fp32, data, backend=backend, progress=False)
        rep = fxaccel.report_of(q)
        info[f"{backend} quantize s"] = round(time.perf_counter() - start, 1)
        info[f"{backend} SQNR dB"] = rep.extra["output_sqnr_db"]
        if backend == "xnnpack":
            from fxaccel.lowering import load_pte

            start = time.perf_counter()  # written and verified as users get them; loaded from bytes,
            with tempfile.TemporaryDirectory() as tmp:  # which outlive the folder (reloads on resize)
                for precision, model_ in (("fp32", fp32), ("int8", q)):
                    path = fxaccel.export(model_, (x,), f"{tmp}/{precision}.pte")
                    variants[f"xnnpack {precision}"] = load_pte(path.read_bytes())
            info["xnnpack lowering s"] = round(time.perf_counter() - start, 1)
            continue
        with torch.no_grad():
            torch.backends.quantized.engine = backend
            variants[f"{backend} fp32"] = torch.jit.trace(fp32.eval(), (x,), check_trace=False)
            variants[f"{backend} int8"] = _engine(backend, torch.jit.trace(q, (x,), check_trace=False))
    return variants, x, info


def _bench(variants: dict[str, Callable], x: torch.Tensor, repeats: int, warmup: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in variants}
    with torch.no_grad():
        for _ in range(warmup):
            for fn in variants.values():
                fn(x)
        for _ in range(repeats):
            for name, fn in variants.items():
                start = time.perf_counter()
                fn(x)
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) * 1e3 for name, s in samples.items()}


def _table(rows: list[dict], backends: list[str]) -> str:
    head = ["model", "threads"] + [f"{b} {k}" for b in backends for k in ("fp32 ms", "int8 ms", "fp32/int8")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], str(r["threads"])]
        for b in backends:
            f, i = r["ms"].get(f"{b} fp32"), r["ms"].get(f"{b} int8")
            cells += [f"{f:.1f}" if f else "-", f"{i:.1f}" if i else "-", f"{f / i:.2f}x" if f and i else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["XS", "S"], choices=["XS", "S", "M", "L"])
    p.add_argument("--backends", nargs="+", default=["qnnpack", "x86"], choices=["qnnpack", "x86", "xnnpack"])
    p.add_argument("--executorch", action="store_true", help="add the xnnpack pair (ExecuTorch .pte, slow to lower)")
    p.add_argument("--threads", nargs="+", type=int, default=[2, 1])
    p.add_argument("--repeats", type=int, default=20, help="timed rounds (each runs every variant once)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--calibration", type=int, default=8, help="random calibration clips")
    p.add_argument("--crop", type=int, default=None, help="override the design crop (not for reported figures)")
    p.add_argument("--frames", type=int, default=None, help="override the design clip length")
    p.add_argument("--out", default=None, help="write the markdown here (e.g. docs/bench_quantize.md)")
    p.add_argument("--smoke", action="store_true",
                   help="XS at 64x64, 1 repeat, no warm-up, 2 calibration clips, current thread count: "
                        "proves the script runs; its figures mean nothing")
    args = p.parse_args(argv)
    if args.smoke:
        args.sizes, args.repeats, args.warmup, args.calibration = ["XS"], 1, 0, 2
        args.crop, args.threads = args.crop or 64, [torch.get_num_threads()]
    backends = list(dict.fromkeys(args.backends + (["xnnpack"] if args.executorch else [])))

    load_before = os.getloadavg()
    print(f"loadavg before: {load_before}", flush=True)
    rows, infos = [], {}
    for size in args.sizes:
        variants, x, info = _build(size, backends, args)
        infos[size] = info
        print(f"X3D-{size}: {info}", flush=True)
        for threads in args.threads:
            with thread_count(threads):  # torch's and ExecuTorch's threadpool alike
                ms = {}
                for backend in backends:
                    pair = {k: v for k, v in variants.items() if k.startswith(backend + " ")}
                    ms.update(_bench(pair, x, args.repeats, args.warmup))
            rows.append({"model": f"X3D-{size}", "threads": threads, "ms": ms})
            print(f"  threads={threads}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items()), flush=True)
    load_after = os.getloadavg()
    print(f"loadavg after: {load_after}")

    text = "\n".join([
        "# fxaccel.quantize: int8 vs fp32 deploy-form latency",
        "",
        f"Command: `python {' '.join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])}`  ",
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"medians of {args.repeats} rounds after {args.warmup} warm-up rounds, fp32 and int8 of a backend interleaved; "
        f"batch {args.batch}; {args.calibration} random calibration clips.  ",
        f"loadavg before {tuple(round(v, 2) for v in load_before)}, after {tuple(round(v, 2) for v in load_after)}"
        + (" — **smoke run: figures mean nothing**" if args.smoke else ""),
        "",
        _table(rows, backends),
        "",
        "Build info (inputs, quantize time, output SQNR of int8 vs fp32 on the calibration clips):",
        "",
        *[f"- X3D-{size}: {info}" for size, info in infos.items()],
        "",
    ])
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
