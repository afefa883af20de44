"""Spellings of one depthwise 3x3x3 conv as 2-D ops, each lowered to a .pte and timed: which is fastest.

    python tools/tap_spellings.py                                  # print the table
    python tools/tap_spellings.py --out docs/profiles.md --section tap_spellings

Why: XNNPACK has no 3-D convolution, so a one-clip program spells every ``kT > 1`` conv with 2-D
ops (``fxaccel.forms.one_clip.OneClipTaps``). Its slices, pads and adds are 20-27% of an X3D
``.pte``'s time (docs/profiles.md); this measures the other spellings one could write, on X3D's own
depthwise layer shapes, so the choice rests on numbers from the target runtime rather than belief.
Every spelling is checked against ``F.conv3d`` (relative error <= 1e-5) before it is timed, and
``to_pte`` checks the program against the module. Each spelling runs after a pointwise conv, as
X3D's depthwise convs do, so its ops see the NHWC tensors they see in a network. Rows are interleaved (rounds x repeats, median)
so host drift hits all of them alike; run it on an idle machine (shared/DESIGN.md's timing trap).

``no_shift`` is not the same math: three full-clip convs summed without shifting frames, the
floor any spelling of three 2-D taps pays, shown so the cost of shifting frames reads off directly.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.numerics import relative_error

sys.path.insert(0, str(Path(__file__).resolve().parent))


class Spelling(nn.Module):
    """A depthwise ``3 x 3 x 3`` conv (padding 1, spatial ``stride``) on one clip's ``(T, C, H, W)`` frames."""

    strides = (1, 2)
    exact = True    # False: not the conv it spells (a floor to compare with)
    merged = False  # True: takes and gives the merged layout (to_merged / from_merged)

    def __init__(self, weight: torch.Tensor, stride: int):
        super().__init__()
        self.c, self.stride = weight.shape[0], stride
        # XNNPACK takes only constant weights: each tap's kernel is its own parameter
        self.tap = nn.ParameterList([nn.Parameter(weight[:, :, k].clone()) for k in range(3)])

    def conv(self, k: int, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.tap[k], padding=1, stride=self.stride, groups=self.c)


class TapsIn(Spelling):
    """fxaccel's stride-1 spelling: each shifted tap convolves a slice of input frames, then a zero frame is padded on."""

    def forward(self, x):
        t = x.shape[0]
        before = F.pad(self.conv(0, x[: t - 1]), (0, 0, 0, 0, 0, 0, 1, 0))
        after = F.pad(self.conv(2, x[1:]), (0, 0, 0, 0, 0, 0, 0, 1))
        return before + self.conv(1, x) + after


class TapsOut(Spelling):
    """fxaccel's spelling for shrinking taps: convolve every frame, slice the (smaller) output."""

    def forward(self, x):
        t = x.shape[0]
        before = F.pad(self.conv(0, x)[: t - 1], (0, 0, 0, 0, 0, 0, 1, 0))
        after = F.pad(self.conv(2, x)[1:], (0, 0, 0, 0, 0, 0, 0, 1))
        return before + self.conv(1, x) + after


class PadOnce(Spelling):
    """One zero frame padded on each end of the input, the shifted taps read ``T``-frame windows of it."""

    def forward(self, x):
        t = x.shape[0]
        padded = F.pad(x, (0, 0, 0, 0, 0, 0, 1, 1))
        return self.conv(0, padded[:t]) + self.conv(1, x) + self.conv(2, padded[2:])


class TimeInChannels(Spelling):
    """The three shifted frames stacked into channels, then one grouped conv (3 in, 1 out per group)."""

    strides = (1,)

    def __init__(self, weight, stride):
        super().__init__(weight, stride)
        self.grouped = nn.Parameter(weight[:, 0].clone())  # (C, 3 taps as input channels, 3, 3)

    def forward(self, x):
        t, c, h, w = x.shape
        padded = F.pad(x, (0, 0, 0, 0, 0, 0, 1, 1))
        stacked = torch.stack([padded[:t], padded[1:t + 1], padded[2:]], 2).reshape(t, 3 * c, h, w)
        return F.conv2d(stacked, self.grouped, padding=1, groups=c)


class MultiplierThenTime(Spelling):
    """One depthwise conv with channel multiplier 3 (all taps at once), then the shifted sum as a
    ``(3, 1)`` grouped conv over the ``(C, T, H*W)`` view (two transposes)."""

    strides = (1,)

    def __init__(self, weight, stride):
        super().__init__(weight, stride)
        self.all_taps = nn.Parameter(weight[:, 0].reshape(3 * self.c, 1, 3, 3).clone())  # out channel c*3+k
        pick = torch.zeros(self.c, 3, 3, 1)
        for k in range(3):
            pick[:, k, k, 0] = 1.0
        self.pick = nn.Parameter(pick)

    def forward(self, x):
        t, c, h, w = x.shape
        y = F.conv2d(x, self.all_taps, padding=1, groups=c).transpose(0, 1).reshape(1, 3 * c, t, h * w)
        return F.conv2d(y, self.pick, padding=(1, 0), groups=c).reshape(c, t, h, w).transpose(0, 1)


class MergedTimeHeight(Spelling):
    """Frames stacked along H with a zero row between them, ``(1, C, T*(H+1), W)``: each row tap is
    one conv dilated by the frame pitch, asymmetric padding as explicit pads; one crop at the end."""

    strides = (1,)

    def __init__(self, weight, stride):
        super().__init__(weight, stride)
        self.row = nn.ParameterList([nn.Parameter(weight[:, :, :, j].clone()) for j in range(3)])

    def forward(self, x):
        t, c, h, w = x.shape
        pitch = h + 1
        m = F.pad(x, (0, 0, 0, 1)).transpose(0, 1).reshape(1, c, t * pitch, w)
        acc = None
        for j, dh in enumerate((-1, 0, 1)):
            g = F.conv2d(F.pad(m, (1, 1, pitch - dh, pitch + dh)), self.row[j], dilation=(pitch, 1), groups=c)
            acc = g if acc is None else acc + g
        return acc.reshape(c, t, pitch, w).transpose(0, 1)[:, :, :h]


class MergedLayout(Spelling):
    """A network kept in the merged ``(1, C, T*(H+1), W)`` layout end to end (input and output in
    it): the mask multiply that zeroes the separator rows the conv before wrote, then three dilated
    row-tap convs, whose asymmetric pads XNNPACK fuses into the convs (the tensor is NHWC after the
    pointwise conv). No slice, no transpose: the cost of that layout's temporal conv."""

    strides = (1,)
    merged = True

    def __init__(self, weight, stride):
        super().__init__(weight, stride)
        self.row = nn.ParameterList([nn.Parameter(weight[:, :, :, j].clone()) for j in range(3)])

    def forward(self, m):
        pitch = self.pitch
        m = m * self.mask  # the pointwise conv before wrote its bias into the separator rows
        acc = None
        for j, dh in enumerate((-1, 0, 1)):
            g = F.conv2d(F.pad(m, (1, 1, pitch - dh, pitch + dh)), self.row[j], dilation=(pitch, 1), groups=self.c)
            acc = g if acc is None else acc + g
        return acc

    def set_layout(self, t: int, h: int) -> None:
        self.pitch = h + 1
        mask = torch.ones(1, 1, t, self.pitch, 1)
        mask[:, :, :, h] = 0
        self.register_buffer("mask", mask.reshape(1, 1, t * self.pitch, 1))


def to_merged(x: torch.Tensor) -> torch.Tensor:
    """One clip's ``(T, C, H, W)`` frames as the merged ``(1, C, T*(H+1), W)`` image, zero row after each frame."""
    t, c, h, w = x.shape
    return F.pad(x, (0, 0, 0, 1)).transpose(0, 1).reshape(1, c, t * (h + 1), w)


def from_merged(m: torch.Tensor, t: int, h: int) -> torch.Tensor:
    return m.reshape(m.shape[1], t, h + 1, m.shape[-1]).transpose(0, 1)[:, :, :h]


class NoShift(Spelling):
    """Not the same math: three full-clip convs summed, no frame shifted (the floor of three 2-D taps)."""

    exact = False

    def forward(self, x):
        return self.conv(0, x) + self.conv(1, x) + self.conv(2, x)


SPELLINGS = {"taps_in": TapsIn, "taps_out": TapsOut, "pad_once": PadOnce, "time_in_channels": TimeInChannels,
             "multiplier_then_time": MultiplierThenTime, "merged_time_height": MergedTimeHeight,
             "merged_layout": MergedLayout, "no_shift": NoShift}

# X3D's depthwise layers, (T, C, H, W) of their input and the spatial stride: stage 1-3 of X3D-S
# (13 frames), the strided first blocks, and X3D-XS's 4 frames
SHAPES = [((13, 54, 40, 40), 1), ((13, 108, 20, 20), 1), ((13, 216, 10, 10), 1), ((4, 54, 40, 40), 1),
          ((13, 54, 80, 80), 2), ((13, 108, 40, 40), 2), ((4, 54, 80, 80), 2)]


class Block(nn.Module):
    """The layer as X3D has it: a pointwise conv, then the spelled depthwise conv. The pointwise conv
    leaves the tensor in XNNPACK's NHWC, as in a network, so no spelling pays the program's input
    transpose in its ops (and the merged layout's pads can fuse into its convs)."""

    def __init__(self, pointwise: nn.Conv2d, spelling: Spelling):
        super().__init__()
        self.pointwise, self.spelling = pointwise, spelling

    def forward(self, x):
        return self.spelling(self.pointwise(x))


def pointwise(c: int) -> nn.Conv2d:
    return nn.Conv2d(c, c, 1)


def reference(x: torch.Tensor, weight: torch.Tensor, stride: int, pw: nn.Conv2d) -> torch.Tensor:
    """The block being spelled, on one clip's frames: ``(T, C, H, W)`` in and out."""
    y = F.conv3d(pw(x).transpose(0, 1)[None], weight, padding=1, stride=(1, stride, stride), groups=weight.shape[0])
    return y[0].transpose(0, 1)



def make(cls, weight: torch.Tensor, stride: int, x: torch.Tensor, pw: nn.Conv2d) -> tuple[Block, torch.Tensor]:
    """The block with this spelling and its input: ``x`` itself, or ``x`` in the merged layout."""
    spelling = cls(weight, stride)
    block = Block(pw, spelling).eval()
    if not cls.merged:
        return block, x
    spelling.set_layout(x.shape[0], x.shape[2])
    return block, to_merged(x)


def output(module: nn.Module, inp: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The module's output as ``(T, C, H', W')`` frames, whatever its layout."""
    y = module(inp)
    return from_merged(y, x.shape[0], x.shape[2]) if module.spelling.merged else y


def build(shape, stride: int, names: list[str]) -> dict[str, tuple]:
    """``{name: (program, input, relative error)}`` for the spellings that apply at ``stride``."""
    from fxaccel.lowering.executorch import load_pte, to_pte

    torch.manual_seed(0)
    weight, x, pw = torch.randn(shape[1], 1, 3, 3, 3), torch.randn(*shape), pointwise(shape[1])
    with torch.no_grad():
        ref = reference(x, weight, stride, pw)
    built = {}
    for name in names:
        cls = SPELLINGS[name]
        if stride not in cls.strides:
            continue
        module, inp = make(cls, weight, stride, x, pw)
        with torch.no_grad():
            err = relative_error(output(module, inp, x), ref)
        if cls.exact and err > 1e-5:
            raise AssertionError(f"{name} is not the conv it spells: relative error {err:.1e} on {shape}")
        built[name] = (load_pte(to_pte(module, (inp,)).buffer), inp, err)
    return built


def time_rows(built: dict, rounds: int, repeats: int, warmup: int) -> dict[str, float]:
    per_round = {name: [] for name in built}
    for _ in range(rounds):
        for name, (run, x, _) in built.items():
            for _ in range(warmup):
                run(x)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                run(x)
                times.append((time.perf_counter() - start) * 1e3)
            per_round[name].append(statistics.median(times))
    return {name: statistics.median(v) for name, v in per_round.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spellings", default=",".join(SPELLINGS), help="comma-separated, from " + ",".join(SPELLINGS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", help="markdown file to write (default: print)")
    ap.add_argument("--section", help="with --out: write as this section of that page")
    args = ap.parse_args(argv)
    names = [n for n in args.spellings.split(",") if n]
    unknown = [n for n in names if n not in SPELLINGS]
    if unknown:
        ap.error(f"unknown spellings {unknown}; known: {', '.join(SPELLINGS)}")
    from fxaccel.benchmarking import machine_info
    from fxaccel.lowering.executorch import set_threadpool_size

    command = "python " + shlex.join(["tools/tap_spellings.py", *(sys.argv[1:] if argv is None else argv)])
    before = os.getloadavg()
    built = {(shape, stride): build(shape, stride, names) for shape, stride in SHAPES}
    torch.set_num_threads(args.threads)
    set_threadpool_size(args.threads)
    lines = ["| layer input (T, C, H, W) | stride | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    for (shape, stride), progs in built.items():
        ms = time_rows(progs, args.rounds, args.repeats, args.warmup)
        cells = [f"{ms[n]:.3f}" if n in ms else "n/a" for n in names]
        lines.append(f"| {shape} | {stride} | " + " | ".join(cells) + " |")
        print(lines[-1], file=sys.stderr, flush=True)
    m = machine_info(args.threads)
    head = [f"Generated by `{command}` on {datetime.date.today()}: a pointwise conv then each spelling of a "
            f"depthwise 3x3x3 conv (padding 1), lowered to a `.pte` (ExecuTorch + XNNPACK), median ms of {args.rounds} interleaved "
            f"rounds x {args.repeats} runs after {args.warmup}, {args.threads} thread(s), including the copy of "
            f"the input into the program; {m['cpu']}, torch {m['torch']}, executorch {m['executorch']}; load "
            f"average before {before[0]:.2f}, after {os.getloadavg()[0]:.2f}. `n/a`: the spelling is written for "
            "stride 1 only. `merged_layout` takes and gives the merged `(1, C, T*(H+1), W)` layout (what a "
            "network kept in it would pay per temporal conv). `no_shift` is not the same math (the floor of "
            "three 2-D taps); every other column matches `F.conv3d` within 1e-5.", ""]
    text = "\n".join(head + lines) + "\n"
    if not args.out:
        print(text)
        return 0
    out = Path(args.out)
    if args.section:
        from bench import write_section

        write_section(out, args.section, text, new_page="# Profiles\n")
    else:
        out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
