"""How long ``fxaccel.transmute`` takes on the zoo X3D models (median of repeated runs).

    python tools/bench_transmute.py [--sizes XS S M] [--repeats 5]

Prints a markdown table and the machine load; run it on an idle machine (see shared/DESIGN.md).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

import fxaccel


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["XS", "S", "M"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"command: python {' '.join(sys.argv)}")
    print(f"torch {torch.__version__}, threads {args.threads}, loadavg before {os.getloadavg()}\n")
    print("| model | nodes | transmute median s | min s | of which verify |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        model, x = fxaccel.zoo.x3d(size), fxaccel.zoo.example_input(size)
        times, bare = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            gm = fxaccel.transmute(model, x)
            times.append(time.perf_counter() - start)
            start = time.perf_counter()
            fxaccel.transmute(model, x, verify=False)
            bare.append(time.perf_counter() - start)
        extra = statistics.median(times) - statistics.median(bare)
        print(f"| X3D-{size} | {len(gm.graph.nodes)} | {statistics.median(times):.3f} | {min(times):.3f} | {extra:.3f} |")
    print(f"\nloadavg after {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
