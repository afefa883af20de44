"""Train a zoo X3D on the synthetic video task (``fxaccel.zoo.synthetic``) and write its checkpoint.

Why: int8 accuracy can only be judged on a *trained* network, and no trained video checkpoint can be
fetched on the machines fxaccel is built on. This trains one, from a fixed seed, on clips generated
on the fly (every step sees new clips: no epochs, no overfitting to a fixed set).

    python tools/train_zoo.py --size XS --steps 4000 --work train_xs.pt --out fxaccel/zoo/weights/x3d_xs_synthetic.pt

Resumable: the full state (weights, optimiser, step) goes to ``--work`` every ``--eval-every``
steps, and a later run with the same arguments continues from it (step ``k`` always reads the
same clips, so a resumed run trains exactly like an uninterrupted one). At the end the weights are
written in half precision to ``--out`` (the shipped checkpoint), with their sha256, after checking
top-1 of those very half-precision weights on ``--test-clips`` test clips.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import time

import torch
from torch import nn

from fxaccel.zoo import synthetic
from fxaccel.zoo.x3d import x3d


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="XS", help="X3D size (XS, S, M, L)")
    p.add_argument("--frames", type=int, default=synthetic.FRAMES)
    p.add_argument("--crop", type=int, default=synthetic.CROP)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW peak learning rate (cosine decay to 0)")
    p.add_argument("--warmup", type=int, default=200, help="linear warm-up steps")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--eval-clips", type=int, default=200, help="test clips for the in-training check")
    p.add_argument("--test-clips", type=int, default=1000, help="test clips for the final check")
    p.add_argument("--work", default="train_state.pt", help="resumable full state (fp32)")
    p.add_argument("--out", default=None, help="half-precision state dict to ship")
    return p.parse_args(argv)


def batch_at(step: int, args) -> tuple[torch.Tensor, torch.Tensor]:
    """The clips of training step ``step``: the same clips however often the run is resumed."""
    data = synthetic.SyntheticVideo("train", size=(args.steps + 1) * args.batch, frames=args.frames,
                                    crop=args.crop, seed=args.seed)
    order = torch.randperm(args.batch, generator=torch.Generator().manual_seed(step))
    items = [data[step * args.batch + int(i)] for i in order]
    return torch.stack([c for c, _ in items]), torch.tensor([label for _, label in items])


@torch.no_grad()
def top1(model: nn.Module, n: int, args, batch: int = 50) -> float:
    model.eval()
    right = 0
    for clips, labels in synthetic.clips("test", n=n, batch=batch, frames=args.frames, crop=args.crop):
        right += (model(clips).argmax(-1) == labels).sum().item()
    return right / n


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train(args) -> nn.Module:
    torch.set_num_threads(args.threads)
    model = x3d(args.size, num_classes=len(synthetic.CLASSES), seed=args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    step, spent, log = 0, 0.0, []
    if os.path.exists(args.work):
        state = torch.load(args.work, weights_only=True)
        if state["args"] != _key(args):
            sys.exit(f"{args.work} was written by a run with other arguments ({state['args']}); "
                     "remove it or pass another --work")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, spent, log = state["step"], state["seconds"], state["log"]
        print(f"resumed from {args.work} at step {step} ({spent / 60:.1f} min trained)", flush=True)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("training", total=args.steps, completed=step)
        while step < args.steps:
            start = time.perf_counter()
            model.train()
            clips, labels = batch_at(step, args)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, args)
            loss = nn.functional.cross_entropy(model(clips), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            spent += time.perf_counter() - start
            bar.update(task, completed=step, description=f"training (loss {loss.item():.3f})")
            if step % args.eval_every == 0 or step == args.steps:
                acc = top1(model, args.eval_clips, args)
                log.append({"step": step, "loss": round(loss.item(), 4), "top1": acc, "minutes": round(spent / 60, 2)})
                print(f"step {step}: loss {loss.item():.3f}, top-1 {acc:.3f} on {args.eval_clips} test clips, "
                      f"{spent / 60:.1f} min", flush=True)
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "seconds": spent,
                            "log": log, "args": _key(args)}, args.work + ".tmp")
                os.replace(args.work + ".tmp", args.work)
    return model.eval()


def _key(args) -> dict:
    """The arguments that decide what a run trains (a resume must match them)."""
    return {k: getattr(args, k) for k in ("size", "frames", "crop", "steps", "batch", "lr", "warmup",
                                          "weight_decay", "seed")}


def ship(model: nn.Module, args) -> None:
    """Write the half-precision checkpoint and check top-1 of exactly those weights."""
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save(half, args.out)
    digest = hashlib.sha256(open(args.out, "rb").read()).hexdigest()
    shipped = x3d(args.size, num_classes=len(synthetic.CLASSES), weights=args.out)
    acc = top1(shipped, args.test_clips, args)
    print(f"wrote {args.out}: {os.path.getsize(args.out) / 1e6:.2f} MB, sha256 {digest}", flush=True)
    print(f"top-1 of the half-precision weights on {args.test_clips} test clips: {acc:.4f}", flush=True)


def main(argv=None) -> None:
    args = parse(argv)
    model = train(args)
    if args.out:
        ship(model, args)


if __name__ == "__main__":
    main()
