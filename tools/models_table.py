"""Write docs/models.md: every model of the corpus through every stage, one table, one command.

    python tools/models_table.py                  # the whole corpus (tens of minutes on 2 cores)
    python tools/models_table.py --fast           # the cases the default test run covers
    python tools/models_table.py --only slowfast --out /tmp/models.md

The corpus is ``tests/corpus_models.py``: every video-classification class of transformers' auto
mapping, every ``torchvision.models.video`` builder and every whole-network ``pytorchvideo``
builder, each from a small config with random weights (discovered from the libraries, not listed).
Per model: transmute, deploy for x86 and mobile_cpu, ``.pte`` (ExecuTorch + XNNPACK) and
``.tflite`` (LiteRT), each ``ok`` with its worst relative error against eager over every output
tensor, or the error it raised; the share of conv/linear/matmul MACs inside XNNPACK delegates; and
eager, x86-form and ``.pte`` latency (median of ``--repeats`` interleaved rounds, ``--threads``
threads, at the corpus's small input: a smoke figure, not a benchmark; tools/bench.py is).
"""
from __future__ import annotations

import argparse
import datetime
import re
import shlex
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from corpus_models import all_cases  # noqa: E402

import fxaccel  # noqa: E402
from fxaccel.exporting import lower  # noqa: E402
from fxaccel.inputs import clone_inputs, describe, paired_leaves  # noqa: E402
from fxaccel.lowering.runner import time_artifact  # noqa: E402
from fxaccel.testing import relative_error  # noqa: E402


def _worst(got, want) -> float:
    return max(relative_error(o, r) for _, r, o in paired_leaves(want, got, what="the table"))


def _short(err: BaseException) -> str:
    text = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {text[:160]}".replace("|", "\\|")


def row_for(case, workdir: Path, threads: int, repeats: int) -> dict:
    row = {"model": case.id, "input": "", "stages": {}, "errors": [], "mac_share": None, "ms": {}}
    model, call = case.build()
    row["input"] = describe(call)
    with torch.no_grad():
        want = model(*clone_inputs(call))
    runs = {"eager": model}

    def stage(name, make):
        try:
            made = make()
        except Exception as err:  # noqa: BLE001 - the table says what failed
            row["stages"][name] = "error"
            row["errors"].append(f"{name}: {_short(err)}")
            traceback.print_exc()
            return None
        return made

    gm = stage("transmute", lambda: fxaccel.transmute(model, call))
    if gm is None:
        return row
    with torch.no_grad():
        row["stages"]["transmute"] = f"{_worst(gm(*clone_inputs(call)), want):.0e}"
    row["opaque"] = len(fxaccel.report_of(gm).opaque)
    for target in ("x86", "mobile_cpu"):
        fast = stage(target, lambda: fxaccel.deploy(gm, call, target=target, op_counts=False))
        if fast is None:
            continue
        with torch.no_grad():
            row["stages"][target] = f"{_worst(fast(*clone_inputs(call)), want):.0e}"
        runs[target] = fast
    if "mobile_cpu" in runs:
        from fxaccel.lowering.executorch import load_pte, to_pte

        art = stage(".pte", lambda: to_pte(lower(runs["mobile_cpu"], call, "executorch"), call,
                                           workdir / "m.pte", reference=model))
        if art is not None:
            row["stages"][".pte"] = f"{art.check['value']:.0e}"
            row["mac_share"] = art.report.mac_share
            runs[".pte"] = load_pte(workdir / "m.pte")
        done = stage(".tflite", lambda: fxaccel.export(runs["mobile_cpu"], call, workdir / "m.tflite"))
        if done is not None:
            row["stages"][".tflite"] = "ok"
    names = [n for n in ("eager", "x86", ".pte") if n in runs]
    times = {n: [] for n in names}
    for _ in range(repeats):  # interleaved rounds
        for n in names:
            times[n] += time_artifact(runs[n], call, warmup=1, repeats=1, threads=threads).all_ms
    row["ms"] = {n: statistics.median(t) for n, t in times.items()}
    return row


STAGES = ("transmute", "x86", "mobile_cpu", ".pte", ".tflite")
HEADER = ("| model | input | transmute | x86 | mobile_cpu | .pte | .tflite | opaque | MAC share | eager ms | x86 ms "
          "| .pte ms | errors |")


def line_for(r: dict) -> str:
    ms = r["ms"]
    share = f"{r['mac_share']:.0%}" if r["mac_share"] is not None else ""
    return "| " + " | ".join([
        r["model"], f"`{r['input']}`", *(r["stages"].get(s, "") for s in STAGES), str(r.get("opaque", "")),
        share, *(f"{ms[n]:.1f}" if n in ms else "" for n in ("eager", "x86", ".pte")),
        "; ".join(r["errors"])]) + " |"


def existing_lines(path: Path) -> dict[str, str]:
    """``{model id: table line}`` of a docs/models.md written before (``--only`` keeps the others)."""
    if not path.exists():
        return {}
    rows = [line for line in path.read_text().splitlines() if line.startswith("| ") and not line.startswith(HEADER[:9])]
    return {line.split("|")[1].strip(): line for line in rows if ":" in line.split("|")[1]}


def render(lines: list[str], commands: list[str], threads: int) -> str:
    cells = [[c.strip() for c in line.split("|")[3:8]] for line in lines]
    ok = sum(all(c not in ("", "error") for c in row) for row in cells)
    runs = " and ".join(f"`{c}`" for c in commands)
    return "\n".join([
        "# The model corpus",
        "",
        f"Generated {datetime.date.today()} by {runs} (torch {torch.__version__}, {threads} thread(s)).",
        "Every video model that transformers' auto mapping (the video classifiers and their backbones),",
        "`torchvision.models.video` and pytorchvideo's whole-network builders expose, built from a small",
        "config with random weights ([tests/corpus_models.py](../tests/corpus_models.py): discovered, not",
        "listed; `tests/corpus` checks the same). Stage cells are the worst relative error against eager",
        "over every output tensor (`ModelOutput` fields included), `ok` (`.tflite`: checked within 1e-4 by",
        "`fxaccel.export`), or `error` (the message is in the last column). MAC share: conv/linear/matmul",
        "MACs inside XNNPACK delegates in the `.pte`. Times: median ms of interleaved rounds at the small",
        "input: a smoke figure, not a benchmark (tools/bench.py is one).",
        "",
        f"**{ok} of {len(lines)} models pass every stage.**",
        "",
        HEADER,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *lines,
    ]) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the cases the default test run covers")
    parser.add_argument("--only", nargs="*", default=(), help="substrings of case ids to run; the other rows "
                        "of --out are kept as they were")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "models.md")
    args = parser.parse_args(argv)
    cases = [c for c in all_cases() if (c.fast or not args.fast) and (not args.only or any(s in c.id for s in args.only))]
    rows = []
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            rows.append(row_for(case, Path(tmp), args.threads, args.repeats))
            print(f"{case.id}: {rows[-1]['stages']} ({time.perf_counter() - start:.0f} s)", flush=True)
    command = ("python tools/models_table.py " + shlex.join(argv if argv is not None else sys.argv[1:])).strip()
    kept, commands = {}, [command]
    if args.only and args.out.exists():
        kept = existing_lines(args.out)
        generated = next((ln for ln in args.out.read_text().splitlines() if ln.startswith("Generated")), "")
        commands = [c for c in re.findall(r"`([^`]*)`", generated) if c.startswith("python ")] + [command]
    kept.update({r["model"]: line_for(r) for r in rows})
    order = [c.id for c in all_cases()]
    lines = [kept[k] for k in sorted(kept, key=lambda k: order.index(k) if k in order else len(order))]
    args.out.write_text(render(lines, commands, args.threads))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
