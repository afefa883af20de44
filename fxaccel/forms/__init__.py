"""Deploy forms of a Conv3d (+ folded BN) (+ activation), and the registry a target carries.

A target's form registry (``Target.layers``) is an ordered tuple of :class:`LayerKind`: a conv
belongs to the first kind whose ``applies`` accepts it (the last kind accepts every conv). A kind
lists its candidate :class:`Form`\\ s, first the one a block builds by itself, and names the
built-in choice among them (``default``; the tuner, ``deploy(..., tune=True)``, times the
candidates instead). A form has its own applicability predicate and a builder from a
:class:`~fxaccel.forms.common.ConvLayer`. ``Conv3dBnAct.deploy``, the ``lower_blocks`` pass and
the tuner all read this registry, so a new target is one ``Target`` entry with its kinds here.

Stability: experimental (``Form``, ``LayerKind``, ``MOBILE_CPU``, ``X86``).

>>> [k.name for k in X86]
['pointwise_conv', 'spatial_conv', 'temporal_depthwise', 'conv']
>>> [f.name for f in X86[0].forms]
['linear', 'conv3d', 'conv2d']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from . import folded, x86
from .common import ConvLayer, is_framewise, is_pointwise, is_temporal_depthwise, is_temporal_only


def _always(conv: nn.Conv3d) -> bool:
    return True


@dataclass(frozen=True)
class Form:
    """One exact deploy form: ``build(layer)`` returns a module of type ``module`` (which later
    passes recognise); it applies to a conv when ``applies(conv)``, ``needs`` says what that takes."""

    name: str
    module: type
    build: Callable[[ConvLayer], nn.Module]
    applies: Callable[[nn.Conv3d], bool] = _always
    needs: str = ""


@dataclass(frozen=True)
class LayerKind:
    """A kind of conv layer on a target and its candidate forms (the first: what a block builds
    by itself). ``default()`` is the built-in choice (``None``: the first form); ``fixed``: the
    first form is the only exact one, whatever a caller asks for."""

    name: str
    applies: Callable[[nn.Conv3d], bool]
    forms: tuple[Form, ...]
    default: Callable[[], str] | None = None
    fixed: bool = False

    def candidates(self, conv: nn.Conv3d) -> tuple[Form, ...]:
        """The forms the tuner may choose among for ``conv`` (one or none: no choice)."""
        return () if self.fixed else tuple(f for f in self.forms if f.applies(conv))

    def builtin(self) -> str:
        return self.forms[0].name if self.default is None else self.default()


def _x86_temporal_depthwise() -> str:
    # PyTorch runs this conv on oneDNN only with 2+ threads (X3D-XS stem: 0.3 ms, taps 0.8 ms);
    # with 1 it takes a slow kernel (4.3 ms, taps 1.5 ms) in another memory format. So the
    # choice reads the thread count at deploy time: deploy under the thread count you run.
    return "taps" if torch.get_num_threads() == 1 else "conv3d"


# Built-in choices from `deploy(..., tune=True)` on zoo X3D-XS/S/M (2 threads, eager,
# channels_last_3d; docs/bench_deploy.md):
# - pointwise: "linear" was fastest on 32 of 49 layers; where conv3d won (mostly the larger maps
#   of S and M) linear was 3-48% slower on the layer, yet per-layer tuning bought only 1-3% end to
#   end (XS 1.45x -> 1.48x, S 1.91x -> 1.96x, M 2.16x -> 2.17x over vanilla, one run), so one rule
#   and no per-layer table; `tune=True` is there for the rest.
# - spatial (the stems' 1x3x3 convs): "frames2d" 2.7-4.0x faster than conv3d on all three.
# - temporal depthwise (the stems' 5x1x1 convs): conv3d, or taps with one thread (above).
_CONV3D = Form("conv3d", x86.Conv3dAct, x86.conv3d)
X86: tuple[LayerKind, ...] = (
    LayerKind("pointwise_conv", is_pointwise, (
        Form("linear", x86.PointwiseLinear, x86.linear, is_pointwise, "a 1x1x1 unpadded ungrouped conv"),
        _CONV3D,
        Form("conv2d", x86.PointwiseConv2dAct, x86.conv2d, lambda c: is_pointwise(c) and c.stride == (1, 1, 1),
             "a 1x1x1 unpadded ungrouped conv of stride 1"),
    )),
    LayerKind("spatial_conv", is_framewise, (
        Form("frames2d", x86.FramesConv2d, x86.frames2d, lambda c: is_framewise(c) and not is_pointwise(c),
             "a 1 x kh x kw conv without temporal padding"),
        _CONV3D,
    )),
    LayerKind("temporal_depthwise", is_temporal_depthwise, (
        _CONV3D,
        Form("taps", x86.FrameTaps, x86.taps, is_temporal_depthwise, "a per-channel kT x 1 x 1 conv"),
    ), default=_x86_temporal_depthwise),
    LayerKind("conv", _always, (_CONV3D,)),
)

# mobile temporal: "taps", the block's own default (it never leaves the folded layout); ExecuTorch
# timings are in docs/deploy_and_export.md.
_TAPS = Form("taps", folded.TemporalTaps, folded.taps)
_TIME_AS_HEIGHT = Form("time_as_height", folded.TimeAsHeight, folded.time_as_height, is_temporal_only,
                       "a kT x 1 x 1 conv with spatial stride 1 and no spatial padding (it flattens H*W)")
MOBILE_CPU: tuple[LayerKind, ...] = (
    LayerKind("framewise_conv", is_framewise, (Form("frames2d", folded.FramewiseConv2d, folded.frames2d, is_framewise,
                                                    "a 1 x kh x kw conv without temporal padding"),), fixed=True),
    LayerKind("temporal_conv", lambda c: c.kernel_size[0] > 1 and is_temporal_only(c), (_TAPS, _TIME_AS_HEIGHT)),
    LayerKind("conv", _always, (_TAPS,)),
)

__all__ = ["ConvLayer", "Form", "LayerKind", "MOBILE_CPU", "X86"]
