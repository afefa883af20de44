"""Outputs and structure of transmute / deploy on every zoo and wild model, to compare two trees.

A refactor of the engine or the passes must leave every output as it was. Record one tree, record
the other, diff::

    git worktree add /tmp/old REV && ln -s /tmp/old/passes /tmp/old/fxaccel/passes
    PYTHONPATH=/tmp/old python tools/stage_outputs.py record old.json
    python tools/stage_outputs.py record new.json
    python tools/stage_outputs.py diff old.json new.json

``record`` runs (1 thread) transmute and deploy for mobile_cpu and x86 of every zoo model but X3D-L
and every model of ``tests/models_in_the_wild.py``, and stores per stage the relative error
against the vanilla model, the module-type counts, per pass (rewritten, skipped) and the seconds;
a refused deploy is stored as its error. ``diff`` prints what differs (seconds are not compared:
time stages with ``tools/bench_transmute.py`` on an idle machine).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import torch

import fxaccel

STAGES = ("transmute", "mobile_cpu", "x86")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _summary(gm) -> dict:
    passes, rep = {}, fxaccel.report_of(gm)
    while rep is not None:
        passes.update({f"{rep.stage}:{p.name}": [p.rewritten, len(p.skipped)] for p in rep.passes})
        rep = rep.previous
    return {"modules": dict(Counter(type(m).__name__ for m in gm.modules())), "passes": passes}


def _cases():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from models_in_the_wild import ALL_MODELS

    for name in fxaccel.zoo.names():
        if name != "x3d_l":
            yield name, fxaccel.zoo.create(name), fxaccel.zoo.example_input(name)
    for name, make in ALL_MODELS.items():
        yield (name, *make(seed=0))


def record(path: str) -> None:
    torch.set_num_threads(1)
    out = {}
    for name, model, x in _cases():
        model.eval()
        with torch.no_grad():
            ref, row = model(x), {}
            start = time.perf_counter()
            gm = fxaccel.transmute(model, x, verify=False)
            row["transmute"] = {"err": _rel(gm(x), ref), "s": round(time.perf_counter() - start, 2), **_summary(gm)}
            for target in STAGES[1:]:
                try:
                    start = time.perf_counter()
                    fast = fxaccel.deploy(gm, x, target=target, verify=False)
                    row[target] = {"err": _rel(fast(x), ref), "s": round(time.perf_counter() - start, 2),
                                   **_summary(fast)}
                except Exception as err:
                    row[target] = f"{type(err).__name__}: {err}"
        out[name] = row
        print(name, {s: (r if isinstance(r, str) else r["err"]) for s, r in row.items()}, flush=True)
    Path(path).write_text(json.dumps(out, indent=1, sort_keys=True))


def diff(old_path: str, new_path: str) -> int:
    old, new = json.loads(Path(old_path).read_text()), json.loads(Path(new_path).read_text())
    differences = 0
    for name in sorted(set(old) | set(new)):
        for stage in STAGES:
            a, b = old.get(name, {}).get(stage), new.get(name, {}).get(stage)
            if isinstance(a, dict) and isinstance(b, dict):
                found = [f"relative error {a['err']:.3g} -> {b['err']:.3g}"] if a["err"] != b["err"] else []
                for key in ("modules", "passes"):
                    for k in sorted(set(a[key]) | set(b[key])):
                        if a[key].get(k) != b[key].get(k):
                            found.append(f"{k}: {a[key].get(k)} -> {b[key].get(k)}")
            else:
                found = [] if a == b else [f"{a} -> {b}"]
            for line in found:
                print(f"{name} {stage}: {line}")
            differences += len(found)
    print(f"{differences} differences over {len(set(old) | set(new))} models")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("record", help="record this tree's outputs").add_argument("out")
    d = sub.add_parser("diff", help="what differs between two records")
    d.add_argument("old")
    d.add_argument("new")
    args = ap.parse_args(argv)
    if args.cmd == "record":
        record(args.out)
        return 0
    return diff(args.old, args.new)


if __name__ == "__main__":
    raise SystemExit(main())
