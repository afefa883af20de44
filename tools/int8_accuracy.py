"""int8 accuracy of the trained X3D-XS (``zoo.x3d("XS", weights="synthetic")``) on every backend.

    python tools/int8_accuracy.py --eval 1000 --calib 32 > docs/int8_accuracy.md

For each backend (qnnpack and x86: TorchScript eager int8; xnnpack: pt2e, then the ``.pte`` run on
the ExecuTorch runtime) and each activation observer: top-1 of fp32 and int8 on the synthetic
task's test clips, the logits' SQNR against fp32 on them, and the layers kept in fp32. Calibration
uses train clips (batch 1); the test clips are never seen in calibration or training. With
``--auto`` a backend that misses the budget (top-1 within 1 point, SQNR >= 20 dB) is quantized
again with ``keep_float="auto"``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

import fxaccel
from fxaccel.zoo import synthetic
from fxaccel.zoo.x3d import x3d


def _sqnr(ref: torch.Tensor, got: torch.Tensor) -> float:
    noise = (ref.double() - got.double()).pow(2).sum()
    return float(10 * torch.log10(ref.double().pow(2).sum() / noise)) if noise > 0 else float("inf")


def _pte_row(q, x, labelled, refs, workdir: Path) -> dict:
    """Export the pt2e int8 model to a .pte and evaluate *that* on the ExecuTorch runtime."""
    from fxaccel.lowering.executorch import load_pte

    start = time.perf_counter()
    path = fxaccel.export(q, x, workdir / "x3d_xs_synthetic_int8.pte")
    export_s = time.perf_counter() - start
    program = load_pte(path)
    outs = torch.cat([torch.cat([program(c[i:i + 1]) for i in range(len(c))]) for c, _ in labelled])
    labels = torch.cat([y for _, y in labelled])
    return {"int8_top1": (outs.argmax(-1) == labels).float().mean().item(), "eval_sqnr_db": _sqnr(refs, outs),
            "export_s": round(export_s, 1), "bytes": path.stat().st_size}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--eval", type=int, default=1000, help="test clips (default 1000)")
    p.add_argument("--calib", type=int, default=32, help="train clips to calibrate on (default 32)")
    p.add_argument("--backends", default="qnnpack,x86,xnnpack")
    p.add_argument("--observers", default="histogram,minmax")
    p.add_argument("--auto", action="store_true", help="also keep_float='auto' where a backend misses the budget")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = x3d("XS", weights="synthetic")
    x = synthetic.example_input()
    calib = synthetic.clips("train", n=args.calib, batch=1)  # quantize ignores the labels
    labelled = synthetic.clips("test", n=args.eval, batch=50)
    forms = {"mobile_cpu": fxaccel.deploy(model, x, target="mobile_cpu"), "x86": fxaccel.deploy(model, x, target="x86")}
    with torch.no_grad():
        refs = torch.cat([forms["mobile_cpu"](c) for c, _ in labelled])
    labels = torch.cat([y for _, y in labelled])
    fp32 = (refs.argmax(-1) == labels).float().mean().item()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            fp32_form = forms["x86" if backend == "x86" else "mobile_cpu"]
            for observer in args.observers.split(","):
                for keep in ([0, "auto"] if args.auto else [0]):
                    if keep == "auto" and rows and rows[-1]["meets"]:
                        continue
                    start = time.perf_counter()
                    q = fxaccel.quantize(fp32_form, calib, backend=backend, observer=observer, eval_data=labelled,
                                         keep_float=keep)
                    extra = fxaccel.report_of(q).extra
                    row = {"backend": backend, "runtime": "torch eager int8" if backend != "xnnpack" else "pt2e (torch)",
                           "observer": observer, "keep_float": keep, "kept": len(extra["kept_float"]),
                           "fp32_top1": extra["fp32_top1"], "int8_top1": extra["int8_top1"],
                           "eval_sqnr_db": extra["eval_sqnr_db"], "seconds": round(time.perf_counter() - start, 1)}
                    row["meets"] = row["int8_top1"] >= row["fp32_top1"] - 0.01 and row["eval_sqnr_db"] >= 20
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    if backend == "xnnpack":
                        pte = {**row, "runtime": "ExecuTorch .pte", **_pte_row(q, x, labelled, refs, Path(tmp))}
                        pte["meets"] = pte["int8_top1"] >= pte["fp32_top1"] - 0.01 and pte["eval_sqnr_db"] >= 20
                        rows.append(pte)
                        print(json.dumps(pte), file=sys.stderr, flush=True)
    print(f"X3D-XS trained on the synthetic task, {args.eval} test clips, calibrated on {args.calib} train clips; "
          f"fp32 (mobile_cpu deploy form) top-1 {fp32:.1%}\n")
    print("| backend | runtime | observer | layers kept fp32 | fp32 top-1 | int8 top-1 | logits SQNR vs fp32 | meets |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        kept = f"{r['kept']} (auto)" if r["keep_float"] == "auto" else str(r["kept"])
        print(f"| {r['backend']} | {r['runtime']} | {r['observer']} | {kept} | {r['fp32_top1']:.1%} | "
              f"{r['int8_top1']:.1%} | {r['eval_sqnr_db']:.1f} dB | {'yes' if r['meets'] else 'no'} |")
    print(f"\ntorch {torch.__version__}, {args.threads} threads, loadavg {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
