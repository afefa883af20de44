"""ARM64 instructions per inference: fxaccel's artifacts against vanilla torch and ONNX Runtime.

    python tools/bench_arm.py                                   # X3D-XS and X3D-S, every kind, cortex-a76
    python tools/bench_arm.py --models x3d_xs --kinds ts,onnx,pte --out /tmp/arm.md
    python tools/bench_arm.py --models x3d_xs --cpus cortex-a76 max --section arm   # docs/benchmarks.md

Why: this machine is x86, the product runs on phones. The AArch64 harness in shared/arm (README
there; set it up once with ``bash ../shared/arm/setup.sh``) runs the real aarch64 wheels (torch,
ExecuTorch + XNNPACK, ONNX Runtime; LiteRT installed by this tool into ``$ARM_ROOT/litert-site``)
under qemu-aarch64 and counts the instructions of each inference, on every thread. Counts are
deterministic, so host load changes only how long this takes (35-60 s per run). They are not time:
see the harness README's caveats, repeated in the written section.

Each model (a zoo name; ``torch.manual_seed(0)``, build, ``x = torch.randn(example shape)``) is
written once per kind into ``--work/<model>/`` (reused when present) and run at 1 thread per
``--cpus`` model. fp32 kinds are checked against the vanilla model's x86 eager output (the harness's
MATCH: rel err <= 1e-4); int8 kinds against the same artifact run on x86, by the SQNR lower
bound that the ARM run's max abs error allows (>= 25 dB, fxaccel's int8 artifact floor), so
"ARM = x86" means ARM runs the artifact as x86 does; fp16 kinds against the fp32 x86 output by the
SQNR of the ARM output itself (>= 25 dB, ``FP16_SQNR_FLOOR``; one extra plain-qemu run, since
fp16's error is spread over every logit and the max-abs bound understates it by ~10 dB), because a phone computes fp16 natively where x86
emulates it, so ARM's fp16 numbers differ from x86's; the SQNR vs fp32 column is the x86 run's.
A kind whose artifact cannot be built (an export option that does not exist yet) is skipped, with
the reason printed.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
HARNESS = Path(os.environ.get("ARM_HARNESS", ROOT.parent / "shared" / "arm"))
ARM_ROOT = Path(os.environ.get("ARM_ROOT", Path.home() / ".cache" / "arm64-bench"))
GUEST = ROOT / "tools" / "arm_guest"
# kind: (label, file, precision)
KINDS = {
    "ts": ("vanilla torch (TorchScript trace)", "model.ts.pt", "fp32"),
    "onnx": ("vanilla ONNX Runtime (CPU EP)", "model.onnx", "fp32"),
    "pte": ("fxaccel .pte fp32 (ExecuTorch+XNNPACK)", "model.pte", "fp32"),
    "pte_int8": ("fxaccel .pte int8 (ExecuTorch+XNNPACK)", "model_int8.pte", "int8"),
    "pte_fp16": ("fxaccel .pte fp16 (ExecuTorch+XNNPACK)", "model_fp16.pte", "fp16"),
    "tflite": ("fxaccel .tflite fp32 (LiteRT+XNNPACK)", "model.tflite", "fp32"),
    "tflite_int8": ("fxaccel .tflite int8 (LiteRT+XNNPACK)", "model_int8.tflite", "int8"),
}
# the ARM run's SQNR lower bound: int8 against the same artifact on x86 (INT8_SQNR_FLOOR),
# fp16 against the fp32 model on x86 (FP16_SQNR_FLOOR)
MIN_DB = {"int8": 25.0, "fp16": 25.0}
LITERT_DEPS = ("ai-edge-litert", "flatbuffers", "ml_dtypes", "protobuf", "backports.strenum",
               "typing_extensions", "tqdm")


def harness_problem(root: Path = ARM_ROOT) -> str | None:
    """Why the harness cannot run here (None when it can): what to run to set it up."""
    missing = [p for p in (HARNESS / "count.sh", root / "build" / "insncount.so", root / "rootfs" / "usr" / "bin"
                           / "python3") if not p.exists()] + ([] if shutil.which("qemu-aarch64") else ["qemu-aarch64"])
    if missing:
        return (f"the AArch64 harness is not set up (missing: {', '.join(map(str, missing))}); "
                f"run `bash ../shared/arm/setup.sh` from {ROOT} (ARM_ROOT={root})")
    return None


def litert_site(root: Path = ARM_ROOT) -> Path:
    """``$ARM_ROOT/litert-site``: aarch64 ai-edge-litert + the deps the rootfs lacks (host versions)."""
    site = root / "litert-site"
    if (site / "ai_edge_litert").is_dir():
        return site
    have = {re.sub(r"[-_.]+", "_", p.name.split("-")[0]).lower()
            for p in (root / "rootfs/usr/local/lib/python3.11/dist-packages").glob("*.dist-info")}
    pins = [f"{d}=={metadata.version(d)}" for d in LITERT_DEPS if re.sub(r"[-_.]+", "_", d).lower() not in have]
    wheels = root / "litert-wheels"

    def wheel(pin):
        name, version = pin.split("==")
        return glob.glob(str(wheels / f"{re.sub(r'[-.]', '_', name)}-{version}-*.whl"))

    pip = [sys.executable, "-m", "pip"]
    aarch64 = ["--no-deps", "--only-binary=:all:", "--python-version", "3.11", "--platform", "manylinux_2_28_aarch64",
               "--platform", "manylinux_2_27_aarch64", "--platform", "manylinux2014_aarch64"]
    if missing := [pin for pin in pins if not wheel(pin)]:  # the index may lack some (kept in litert-wheels)
        subprocess.run(pip + ["download", "-q", "--dest", str(wheels), *aarch64, *missing], check=True)
    tmp = root / "litert-site.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(pip + ["install", "-q", "--no-index", "--target", str(tmp), *aarch64,
                          *[max(wheel(p)) for p in pins]], check=True)
    tmp.rename(site)
    return site


def sqnr(ref: torch.Tensor, out: torch.Tensor) -> float:
    noise = float(((ref.float() - out.float()) ** 2).sum())
    return math.inf if noise == 0 else 10 * math.log10(float((ref.float() ** 2).sum()) / noise)


def run_x86(path: Path, x: torch.Tensor) -> torch.Tensor:
    """The artifact's own x86 output: the reference its ARM run must reproduce."""
    from fxaccel.lowering import load_artifact
    out = load_artifact(path)(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def write_artifact(kind: str, path: Path, m, x: torch.Tensor, cache: dict) -> None:
    """Write ``kind``'s artifact of ``m`` at ``path`` (via a temp name, so a failure leaves none)."""
    tmp = path.with_name("tmp-" + path.name)
    try:
        _write(kind, tmp, m, x, cache)
    finally:
        if tmp.exists():  # written, then failed its export check
            tmp.unlink()


def _write(kind: str, tmp: Path, m, x: torch.Tensor, cache: dict) -> None:
    import fxaccel
    with torch.no_grad():
        if kind == "ts":
            torch.jit.trace(m, (x,), check_trace=False).save(str(tmp))
        elif kind == "onnx":
            torch.onnx.export(m, (x,), str(tmp), opset_version=18, dynamo=False, input_names=["x"],
                              output_names=["y"])
        else:
            if "fast" not in cache:
                cache["fast"] = fxaccel.deploy(m, x, target="mobile_cpu")
            fast = cache["fast"]
            gen = torch.Generator().manual_seed(1)
            calib = [(torch.randn(tuple(x.shape), generator=gen),) for _ in range(4)]
            if cache.get("task") == "synthetic":  # a trained model calibrates on its own train clips
                from fxaccel.zoo import synthetic
                calib = list(synthetic.clips("train", n=32, batch=1))
            if kind in ("pte", "tflite"):
                fxaccel.export(fast, x, tmp)
            elif kind == "pte_fp16":
                fxaccel.export(fast, x, tmp, dtype=torch.float16)
            else:
                q = fxaccel.quantize(fast, calib, backend="xnnpack" if kind == "pte_int8" else "litert")
                fxaccel.export(q, x, tmp)
    os.replace(tmp, tmp.with_name(tmp.name[len("tmp-"):]))


def prepare(d: Path, m, x: torch.Tensor, kinds: list[str], task: str | None = None) -> dict[str, dict]:
    """Artifacts + references in ``d``; {kind: {"path", "expected", "sqnr_db"} or {"skip": reason}}."""
    d.mkdir(parents=True, exist_ok=True)
    torch.save(x, d / "input.pt")
    with torch.no_grad():
        ref = m(x)
    torch.save(ref, d / "expected.pt")
    cache, out = {"task": task}, {}
    for kind in kinds:
        label, name, prec = KINDS[kind]
        path = d / name
        if not path.exists():
            print(f"  building {kind} ({label}) ...", flush=True)
            try:
                write_artifact(kind, path, m, x, cache)
            except Exception as e:  # noqa: BLE001 - an export option not there yet: skip the kind
                out[kind] = {"skip": f"building it raised {type(e).__name__}: {str(e).splitlines()[0][:200]}"}
                print(f"  skip {kind}: {out[kind]['skip']}", flush=True)
                continue
        row = {"path": path, "expected": d / "expected.pt", "sqnr_db": None}
        if prec == "int8":  # reference = the same artifact on x86 (fp16 is judged against fp32, below)
            exp = d / f"expected_{kind}.pt"
            if not exp.exists() or exp.stat().st_mtime < path.stat().st_mtime:
                torch.save(run_x86(path, x), exp)
            row.update(expected=exp, sqnr_db=sqnr(ref, torch.load(exp)))
        elif prec == "fp16":  # phones compute fp16 natively (x86 emulates it): judge ARM against fp32
            row["sqnr_db"] = sqnr(ref, run_x86(path, x))
        out[kind] = row
    return out


def count(kind: str, art: dict, d: Path, cpu: str, n: int, root: Path = ARM_ROOT) -> dict:
    """One harness run (count.sh --json), reused when its JSON is newer than the artifact."""
    tag = re.sub(r"[^\w.-]", "_", cpu)
    js = d / f"count_{kind}_{tag}_n{n}.json"
    if js.exists() and js.stat().st_mtime > art["path"].stat().st_mtime:
        return json.loads(js.read_text())
    model, extra, hk = str(art["path"]), [], {"ts": "ts", "onnx": "onnx"}.get(kind, "pte")
    if art["path"].suffix == ".tflite":
        hk, model = "eager", f'litert_guest:tflite("{art["path"].resolve()}")'
        extra = ["--pythonpath", str(GUEST), "--pythonpath", str(litert_site(root))]
    cmd = ["sh", str(HARNESS / "count.sh"), "--kind", hk, "--model", model, "--input", str(d / "input.pt"),
           "--expected", str(art["expected"]), "--cpu", cpu, "--n", str(n), "--threads", "1", "--root", str(root),
           "--label", KINDS[kind][0], "--json", str(js), *extra]
    print(f"  counting {kind} on {cpu}: {shlex.join(cmd)}", flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True)
    print("    " + p.stdout.strip().replace("\n", "\n    "), flush=True)
    if p.returncode != 0:
        return {"error": " | ".join((p.stderr.strip().splitlines() or ["?"])[-3:])[-400:]}
    return json.loads(js.read_text())


def measure(name: str, m, x: torch.Tensor, kinds: list[str], cpus: list[str], work: Path, n: int = 2,
            root: Path = ARM_ROOT, task: str | None = None) -> list[dict]:
    """Rows (kind, cpu, label, count JSON or skip/error, x86 references) for one model."""
    arts, rows = prepare(work / name, m, x, kinds, task), []
    for cpu in cpus:
        for kind in kinds:
            row = {"model": name, "kind": kind, "cpu": cpu, "label": KINDS[kind][0], "prec": KINDS[kind][2],
                   "shape": "×".join(map(str, x.shape)), **arts[kind]}
            if "skip" not in row:
                row["run"] = count(kind, row, work / name, cpu, n, root)
                g = row["run"].get("guest", {})
                if "max_abs_err" in g:
                    ms = float((torch.load(row["expected"]).float() ** 2).mean())
                    err = g["max_abs_err"]
                    row["arm_db"] = math.inf if err == 0 else 10 * math.log10(ms / err ** 2)
                    if row["prec"] == "fp16":  # the bound is loose for fp16's spread-out error: measure it
                        tag = re.sub(r"[^\w.-]", "_", cpu)
                        out = arm_outputs(row["path"], work / name / "input.pt",
                                          work / name / f"arm_out_{kind}_{tag}.pt", cpu, root)
                        row["arm_db"], row["exact_db"] = sqnr(torch.load(row["expected"]), out), True
                    row["match"] = g["rel_err"] <= 1e-4 if row["prec"] == "fp32" else row["arm_db"] >= MIN_DB[row["prec"]]
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """One markdown table per (model, cpu)."""
    out = []
    for key in dict.fromkeys((r["model"], r["cpu"]) for r in rows):
        rs = [r for r in rows if (r["model"], r["cpu"]) == key]
        base = {r["kind"]: r.get("run", {}).get("insns_per_inference") for r in rs}
        n = next((r["run"]["n"] for r in rs if "n" in r.get("run", {})), "?")
        out += [f"**{key[0]}** (input {rs[0]['shape']}), `-cpu {key[1]}`, 1 thread, n={n} timed inferences:", "",
                "| runtime / artifact | insns/inference | × fewer than torch | × fewer than ORT "
                "| ARM vs x86: rel err (SQNR ≥) | ARM = x86 | SQNR vs fp32 (x86) | load insns |",
                "|---|---:|---:|---:|---|---|---:|---:|"]
        for r in rs:
            if "skip" in r or "error" in r.get("run", {}):
                why = f"skipped: {r['skip']}" if "skip" in r else f"failed on ARM: {r['run']['error']}"
                out.append(f"| {r['label']} | {why} | | | | | | |")
                continue
            run, g = r["run"], r["run"]["guest"]
            c = run["insns_per_inference"]
            ratio = lambda b: f"{b / c:.2f}" if b else "–"  # noqa: E731
            vs = "same artifact" if r["prec"] == "int8" else "fp32 eager"
            db = "∞" if r["arm_db"] == math.inf else f"{'= ' if r.get('exact_db') else ''}{r['arm_db']:.0f} dB"
            own = "" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f} dB"
            load = f"{run['load_insns'] / 1e6:,.1f} M" if run.get("load_insns") else "–"
            out.append(f"| {r['label']} | {c / 1e6:,.{1 if c >= 1e8 else 3}f} M | {ratio(base.get('ts'))} "
                       f"| {ratio(base.get('onnx'))} "
                       f"| {g['rel_err']:.1e} vs x86 {vs} ({db}) | {'yes' if r['match'] else '**no**'} | {own} "
                       f"| {load} |")
        out.append("")
    return "\n".join(out)


def versions(root: Path = ARM_ROOT) -> str:
    """The guest wheels and qemu the counts depend on."""
    names = [Path(p).name[:-len(".dist-info")] for base in (root / "rootfs/usr/local/lib/python3.11/dist-packages",
             root / "litert-site") for p in glob.glob(str(base / "*.dist-info"))]
    keep = [v for v in names if re.match(r"(torch|executorch|onnxruntime|numpy|ai_edge_litert)-", v)]
    qemu = subprocess.run(["qemu-aarch64", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return f"{qemu}; aarch64 cp311 wheels: {', '.join(sorted(keep))}"


def arm_outputs(model: Path, clips: Path, out: Path, cpu: str, root: Path = ARM_ROOT) -> torch.Tensor:
    """``model`` run on ARM64 (plain qemu, no counting) on every clip saved in ``clips``."""
    view = subprocess.run([sys.executable, str(HARNESS / "mkview.py"), str(root / "rootfs"), str(root / "views"),
                           cpu, "2", str(root / "build" / "midr")], check=True, capture_output=True, text=True)
    view = view.stdout.strip()
    env = dict(os.environ, PYTHONPATH=f"{GUEST}:{litert_site(root)}", OMP_NUM_THREADS="1")
    cmd = ["setarch", "x86_64", "-R", "qemu-aarch64", "-cpu", cpu, "-L", view, f"{view}/usr/bin/python3",
           str(GUEST / "run_outputs.py"), str(model.resolve()), str(clips.resolve()), str(out.resolve())]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"ARM run of {model.name} failed: {p.stderr.strip()[-600:]}")
    return torch.load(out)


def accuracy(name: str, m, kinds: list[str], n: int, cpu: str, work: Path) -> list[dict]:
    """Top-1 and SQNR vs fp32 of each fxaccel artifact of a trained zoo model, run on ARM64 and on x86,
    on ``n`` test clips of its task: what native fp16 and int8 kernels cost in accuracy on a phone."""
    from fxaccel.zoo import synthetic

    d = work / name
    clips, labels = next(iter(synthetic.clips("test", n=n, batch=n)))
    torch.save(clips, d / "acc_clips.pt")
    with torch.no_grad():
        ref = m(clips)
    top1 = lambda logits: float((logits.argmax(1) == labels).float().mean())  # noqa: E731
    rows = [{"label": "vanilla torch (x86 eager, fp32)", "x86_top1": top1(ref), "arm_top1": None}]
    for kind in kinds:
        path = d / KINDS[kind][1]
        if kind in ("ts", "onnx") or not path.exists():
            continue
        print(f"  accuracy of {kind} on {n} clips, ARM {cpu} ...", flush=True)
        from fxaccel.lowering import load_artifact
        run = load_artifact(path)
        with torch.no_grad():
            x86 = torch.cat([run(clips[i:i + 1]) for i in range(n)])
        tag = re.sub(r"[^\w.-]", "_", cpu)
        arm = arm_outputs(path, d / "acc_clips.pt", d / f"acc_{kind}_{tag}.pt", cpu)
        rows.append({"label": KINDS[kind][0], "x86_top1": top1(x86), "arm_top1": top1(arm),
                     "x86_db": sqnr(ref, x86), "arm_db": sqnr(ref, arm), "arm_vs_x86_db": sqnr(x86, arm)})
    for r in rows:
        r.update(model=name, cpu=cpu, n=n)
    return rows


def accuracy_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    r0 = rows[0]
    out = [f"**{r0['model']}** on {r0['n']} test clips of its task (fxaccel.zoo.synthetic), ARM64 `-cpu {r0['cpu']}` "
           "(plain qemu) and x86, every output kept:", "",
           "| runtime / artifact | top-1 x86 | top-1 ARM64 | SQNR vs fp32, x86 | SQNR vs fp32, ARM64 | ARM64 vs x86 |",
           "|---|---:|---:|---:|---:|---:|"]
    db = lambda v: "" if v is None else ("∞" if v == math.inf else f"{v:.1f} dB")  # noqa: E731
    pct = lambda v: "" if v is None else f"{v:.1%}"  # noqa: E731
    for r in rows:
        out.append(f"| {r['label']} | {pct(r['x86_top1'])} | {pct(r['arm_top1'])} | {db(r.get('x86_db'))} "
                   f"| {db(r.get('arm_db'))} | {db(r.get('arm_vs_x86_db'))} |")
    return "\n".join(out + [""])


def section(rows: list[dict], command: str, name: str = "arm", root: Path = ARM_ROOT, acc: list | None = None) -> str:
    """The tables with the command, date, harness versions and the caveats, as one page section."""
    return "\n".join([
        f"## Section: {name}", "",
        f"Generated by `{command}` on {datetime.date.today()} with the AArch64 harness of shared/arm "
        f"({versions(root)}), user-mode qemu + an instruction-counting TCG plugin.", "",
        "Instructions executed per inference on ARM64 (all threads, 1 thread used), deterministic to ~1e-5. "
        "fp32 rows are checked against the vanilla model's x86 eager output (MATCH: rel err <= 1e-4), "
        "int8 rows against the same artifact on x86 (the SQNR lower bound that the ARM run's max abs error "
        "allows, >= 25 dB), fp16 rows by the SQNR of their ARM output against the fp32 x86 output "
        "(\"= N dB\", >= 25 dB; a phone computes fp16 natively, x86 emulates it); the SQNR vs fp32 column is the artifact run on x86.",
        "",
        "**Instruction counts are not time**: they ignore memory stalls, IPC (eager's integer and branch "
        "instructions are cheaper than XNNPACK's FMAs, so ratios vs vanilla torch likely overstate the time "
        "ratio), vector width, frequency and big.LITTLE. Vanilla torch here is the PyPI aarch64 server wheel "
        "(oneDNN reference GEMM for X3D's conv3d on a non-SVE core), not PyTorch Mobile. See the harness "
        "README's caveats; calibrate against a real phone before trusting ratios across code styles.", "",
        table(rows), accuracy_table(acc or [])]).rstrip() + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["x3d_xs", "x3d_s"], help="zoo names")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, from {','.join(KINDS)}")
    ap.add_argument("--cpus", nargs="+", default=["cortex-a76"], help="qemu -cpu models (cortex-a76: a phone core)")
    ap.add_argument("--work", default=str(ARM_ROOT / "cases" / "bench_arm"), help="artifacts, reused when present")
    ap.add_argument("--n", type=int, default=2, help="timed inferences per run")
    ap.add_argument("--out", help="also write the tables to this markdown file")
    ap.add_argument("--section", help="write them as this section of docs/benchmarks.md (e.g. arm)")
    ap.add_argument("--accuracy", type=int, default=0, metavar="N",
                    help="for a trained model: top-1 and SQNR of each artifact on N test clips, on ARM64 and x86")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    bad = [k for k in kinds if k not in KINDS]
    kinds = [k for k in KINDS if k in kinds]  # table order: the vanilla baselines first
    if bad:
        raise SystemExit(f"bench_arm: unknown kinds {bad}; known: {', '.join(KINDS)}")
    if problem := harness_problem():
        raise SystemExit(f"bench_arm: {problem}")
    from fxaccel import zoo
    rows, acc = [], []
    for name in args.models:
        torch.manual_seed(0)
        m = zoo.create(name).eval()
        # a trained model gets a real clip of its task (its SQNRs mean something there), others noise
        x = zoo.example_input(name) if zoo.get(name).task else torch.randn(tuple(zoo.example_input(name).shape))
        print(f"[{name}] input {tuple(x.shape)}", flush=True)
        rows += measure(name, m, x, kinds, args.cpus, Path(args.work), args.n, task=zoo.get(name).task)
        if args.accuracy and zoo.get(name).task:
            acc += accuracy(name, m, kinds, args.accuracy, args.cpus[0], Path(args.work))
    text = table(rows) + "\n" + accuracy_table(acc)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.section:
        sys.path.insert(0, str(ROOT / "tools"))
        from bench import with_section
        command = "python " + shlex.join(["tools/bench_arm.py", *(sys.argv[1:] if argv is None else argv)])
        page = ROOT / "docs" / "benchmarks.md"
        page.write_text(with_section(page.read_text(), args.section, section(rows, command, args.section, acc=acc)))
        print(f"wrote section {args.section!r} of {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
