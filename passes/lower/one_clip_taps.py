"""Temporal taps of a one-clip ExecuTorch or LiteRT program sum along the batch dim, not on a 3-D view.

``.pte`` and ``.tflite`` programs have static shapes and are almost always exported for one clip; then each
``TemporalTaps`` becomes ``OneClipTaps`` (see ``fxaccel.forms.one_clip`` for why: no NHWC <-> NCHW
transposes around XNNPACK's convolutions, and taps convolve only the frames they read). Taps fed
several clips, or with a temporal stride, keep their form; the report says which and why.
"""
from __future__ import annotations

from torch import fx

from fxaccel.forms.one_clip import specialise_one_clip
from fxaccel.pipeline import When, register_pass

from ._common import XNNPACK_FORMATS


def one_clip_taps(gm: fx.GraphModule, ctx) -> None:
    """Swap the taps a forward run on the example inputs shows to see one clip (a graph pass: the
    taps sit inside deploy-form modules, and which clip count reaches them is known only by running)."""
    swapped, skipped = specialise_one_clip(gm, ctx.example_inputs)
    ctx.record.matched += len(swapped) + len(skipped)
    ctx.record.rewritten += len(swapped)
    for name, reason in skipped.items():
        ctx.record.skip(name, reason)
    if swapped:
        gm.recompile()


# before inlining: the taps must still be TemporalTaps modules to be swapped
register_pass(one_clip_taps, stage="lower", name="one_clip_taps", before="inline_forms",
              when=When(formats=XNNPACK_FORMATS, inputs=True))
