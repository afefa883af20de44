#!/usr/bin/env python
"""Where does int8 lose its output SQNR? Simulated 8-bit rounding, one group of layers at a time.

Runs the fp32 ``x86`` deploy form of a zoo model on random clips and compares its logits with the
same model in which only some tensors are rounded to 8 bits: every conv/linear weight (per output
channel, symmetric), every conv/linear input (per tensor, affine over its min..max), the inputs of
one quarter of the layers, or of single layers. A group that alone costs the output more than the
whole int8 budget cannot be fixed by any choice made elsewhere. On the random-weight zoo X3D-XS
(session 4) rounding only the network input already left 21 dB at the logits: the network
amplifies early perturbations by ~19 dB (tests/passes/quantize/test_quantize_zoo.py).

    python tools/int8_noise_budget.py                      # X3D-XS at 64x64, 4 clips
    python tools/int8_noise_budget.py --model x3d_s --crop 112 --single 6
"""
from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

import fxaccel
from fxaccel.testing import sqnr_db

_LAYERS = (nn.Conv2d, nn.Conv3d, nn.Linear)


def round_weight(w: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Symmetric per-output-channel rounding, as int8 backends store conv/linear weights."""
    top = 2 ** (bits - 1) - 1
    scale = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True).clamp_min(1e-12) / top
    return (w / scale).round().clamp(-top, top) * scale


def round_activation(t: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Affine per-tensor rounding over [min(t, 0), max(t, 0)] (a min/max observer)."""
    lo, hi = min(t.min().item(), 0.0), max(t.max().item(), 0.0)
    scale = (hi - lo) / (2 ** bits - 1)
    if scale == 0.0:
        return t
    zero = round(-lo / scale)
    return ((t / scale).round() + zero).clamp(0, 2 ** bits - 1).sub(zero) * scale


def output_sqnr(model: nn.Module, clips: list[torch.Tensor], *, weights: set[int] = frozenset(),
                activations: set[int] = frozenset(), bits: int = 8) -> float:
    """Mean logits SQNR (dB) of ``model`` with the given layer indices' weights/inputs rounded."""
    work = copy.deepcopy(model)
    layers = [m for m in work.modules() if isinstance(m, _LAYERS)]
    for i in weights:
        with torch.no_grad():
            layers[i].weight.copy_(round_weight(layers[i].weight, bits))
    for i in activations:
        layers[i].register_forward_pre_hook(lambda _m, args: (round_activation(args[0], bits), *args[1:]))
    with torch.no_grad():
        return sum(sqnr_db(model(c), work(c)) for c in clips) / len(clips)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="x3d_xs", help="zoo name (default x3d_xs)")
    p.add_argument("--crop", type=int, default=64, help="spatial size of the random clips (default 64)")
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--bits", type=int, default=8)
    p.add_argument("--single", type=int, default=8, metavar="K", help="list the K most harmful single layers")
    args = p.parse_args(argv)

    model = fxaccel.zoo.create(args.model)
    shape = list(fxaccel.zoo.example_input(args.model).shape)
    shape[-2:] = [args.crop, args.crop]
    clips = [fxaccel.zoo.random_clips(shape, seed=i + 1) for i in range(args.clips)]
    form = fxaccel.deploy(model, clips[0], target="x86", verify=False, op_counts=False)
    names = [n for n, m in form.named_modules() if isinstance(m, _LAYERS)]
    n, every = len(names), set(range(len(names)))
    print(f"{args.model} {tuple(shape)}: {n} conv/linear layers, {args.bits}-bit rounding; logits SQNR vs fp32")
    print(f"  weights only            {output_sqnr(form, clips, weights=every, bits=args.bits):6.1f} dB")
    print(f"  activations only        {output_sqnr(form, clips, activations=every, bits=args.bits):6.1f} dB")
    print(f"  both                    {output_sqnr(form, clips, weights=every, activations=every, bits=args.bits):6.1f} dB")
    for q in range(4):
        part = set(range(q * n // 4, (q + 1) * n // 4))
        db = output_sqnr(form, clips, activations=part, bits=args.bits)
        print(f"  activations of quarter {q} {db:6.1f} dB  ({names[min(part)]} .. {names[max(part)]})")
    single = sorted((output_sqnr(form, clips, activations={i}, bits=args.bits), names[i]) for i in range(n))
    print(f"  the {args.single} most harmful single layers (activations):")
    for db, name in single[:args.single]:
        print(f"    {db:6.1f} dB  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
