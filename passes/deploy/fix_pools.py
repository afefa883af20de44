"""Pools with sizes known from shape propagation -> fixed forms; 3-D pools -> folded forms on mobile.

* Adaptive pools (``nn.AdaptiveAvgPool*d`` / ``AdaptiveMaxPool*d``, ``F.adaptive_*_pool*d``): with
  the propagated input size, an output size that divides it is a fixed pool with
  ``kernel = stride = in // out``; a global 3-D average becomes the ``GlobalAvgPool3d`` block's
  deploy form (a flat mean on x86, the folded spatial-then-frame mean on mobile).
* On targets without 3-D pooling, ``nn.AvgPool3d`` / ``nn.MaxPool3d`` / ``F.avg_pool3d`` /
  ``F.max_pool3d`` become :class:`~._forms.FoldedPool3d` behind a ``TimeFolded`` (per-frame 2-D
  pool, then over time on the ``(N, T, C*H*W)`` view). ``ceil_mode``, ``divisor_override`` and
  ``return_indices`` have no folded form: deploy fails naming the layer.

Two rules: ``fix_pools`` (every target) and ``fold_pool3d`` (targets without 3-D pooling). They run
in one rule set, so an adaptive pool that becomes a fixed 3-D pool is folded in the next sweep.
Forms read the target from ``m.ctx``.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import fx, nn

from fxaccel.blocks.layout import TimeFolded
from fxaccel.blocks.pool import GlobalAvgPool3d
from fxaccel.errors import DeployError
from fxaccel.pipeline import When, register_pass
from fxaccel.rules import Alt, Any, Fn, Match, Mod, Rule, shape_of

from ._common import swap_module_call
from fxaccel.forms.folded_ops import FoldedPool3d

_ADAPTIVE_MODULES = {nn.AdaptiveAvgPool1d: ("avg", 1), nn.AdaptiveAvgPool2d: ("avg", 2),
                     nn.AdaptiveAvgPool3d: ("avg", 3), nn.AdaptiveMaxPool1d: ("max", 1),
                     nn.AdaptiveMaxPool2d: ("max", 2), nn.AdaptiveMaxPool3d: ("max", 3)}
_ADAPTIVE_FNS = {F.adaptive_avg_pool1d: ("avg", 1), F.adaptive_avg_pool2d: ("avg", 2),
                 F.adaptive_avg_pool3d: ("avg", 3), F.adaptive_max_pool1d: ("max", 1),
                 F.adaptive_max_pool2d: ("max", 2), F.adaptive_max_pool3d: ("max", 3)}
_FIXED = {("avg", 1): nn.AvgPool1d, ("avg", 2): nn.AvgPool2d, ("avg", 3): nn.AvgPool3d,
          ("max", 1): nn.MaxPool1d, ("max", 2): nn.MaxPool2d, ("max", 3): nn.MaxPool3d}

# positional parameter names of the functional 3-D pools (after the input)
_AVG3D = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
_MAX3D = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")


def _adaptive(node: fx.Node, gm):
    """``(kind, rank, output_size)`` of an adaptive-pool node, else ``None``."""
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        if type(mod) in _ADAPTIVE_MODULES and not getattr(mod, "return_indices", False):
            return (*_ADAPTIVE_MODULES[type(mod)], mod.output_size)
    elif node.op == "call_function" and node.target in _ADAPTIVE_FNS:
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        if not node.kwargs.get("return_indices", False) and (len(node.args) <= 2):
            return (*_ADAPTIVE_FNS[node.target], size)
    return None


def _pool3d(node: fx.Node, gm):
    """``(kind, params)`` of a 3-D avg/max pool node, else ``None``."""
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        if type(mod) is nn.AvgPool3d:
            return "avg", dict(kernel_size=mod.kernel_size, stride=mod.stride, padding=mod.padding,
                               ceil_mode=mod.ceil_mode, count_include_pad=mod.count_include_pad,
                               divisor_override=mod.divisor_override)
        if type(mod) is nn.MaxPool3d:
            return "max", dict(kernel_size=mod.kernel_size, stride=mod.stride, padding=mod.padding,
                               dilation=mod.dilation, ceil_mode=mod.ceil_mode, return_indices=mod.return_indices)
    elif node.op == "call_function" and node.target in (F.avg_pool3d, F.max_pool3d):
        names = _AVG3D if node.target is F.avg_pool3d else _MAX3D
        params = dict(zip(names, node.args[1:]))
        params.update(node.kwargs)
        return ("avg" if node.target is F.avg_pool3d else "max"), params
    return None


def _is(kind_of):
    """A pattern condition: ``kind_of`` recognises the node."""
    return lambda node, gm: kind_of(node, gm) is not None


class FixAdaptivePool(Rule):
    """An adaptive pool whose windows all have one size -> the fixed pool (or the global-pool form)."""

    name = "fix_pools"
    pattern = Alt(Mod(tuple(_ADAPTIVE_MODULES), Any("x"), where=_is(_adaptive)),
                  Fn(tuple(_ADAPTIVE_FNS), Any("x"), extra=True, where=_is(_adaptive)))

    @staticmethod
    def _sizes(m: Match):
        """``(kind, rank, input shape, output size)``; the output size with ``None`` resolved."""
        kind, rank, size = _adaptive(m.root, m.gm)
        shape = shape_of(m["x"])
        if shape is None or len(shape) != rank + 2:
            return kind, rank, None, None
        size = tuple(size) if isinstance(size, (tuple, list)) else (size,) * rank
        return kind, rank, shape, tuple(i if o is None else int(o) for i, o in zip(shape[2:], size))

    def check(self, m: Match) -> str | None:
        _, _, shape, out = self._sizes(m)
        if shape is None:
            return "no propagated input shape"
        if any(i % o for i, o in zip(shape[2:], out)):
            return (f"output size {out} does not divide input size {shape[2:]}: adaptive windows "
                    "differ in size, kept as is")
        return None

    def rewrite(self, m: Match) -> None:
        kind, rank, shape, out = self._sizes(m)
        if kind == "avg" and rank == 3 and out == (1, 1, 1):
            module = GlobalAvgPool3d().deploy(shape, m.ctx.target)
        else:
            kernel = tuple(i // o for i, o in zip(shape[2:], out))
            module = _FIXED[(kind, rank)](kernel, kernel)
        swap_module_call(m.gm, m.root, module, f"{m.root.name}_fixed", (m["x"],))

    def describe(self, m: Match) -> str:
        return m.root.name


class FoldPool3d(Rule):
    """A 3-D avg/max pool -> its folded form, on targets without 3-D pooling; no folded form: an error."""

    name = "fold_pool3d"
    pattern = Alt(Mod((nn.AvgPool3d, nn.MaxPool3d), Any("x"), where=_is(_pool3d)),
                  Fn((F.avg_pool3d, F.max_pool3d), Any("x"), extra=True))

    def rewrite(self, m: Match) -> None:
        node, target = m.root, m.ctx.target
        kind, p = _pool3d(node, m.gm)
        where = f"layer {node.target if node.op == 'call_module' else node.name!r}"
        for flag in ("ceil_mode", "return_indices", "divisor_override"):
            if p.get(flag):
                raise DeployError(f"cannot deploy {where} ({kind} pool 3d) for {target.name!r}: {flag}="
                                  f"{p[flag]} has no 2-D form; the target has no 3-D pooling. Use "
                                  f"{flag}=False/None in the model or deploy for x86")
        shape, out = shape_of(m["x"]), shape_of(node)
        if shape is None or out is None or len(shape) != 5:
            raise DeployError(f"cannot deploy {where} for {target.name!r}: no propagated 5-D input shape")
        stride = p.get("stride") or p["kernel_size"]
        inner = FoldedPool3d(kind, shape, out, p["kernel_size"], stride, p.get("padding", 0), p.get("dilation", 1),
                             p.get("count_include_pad", True))
        swap_module_call(m.gm, node, TimeFolded(inner, shape, out[2]), f"{node.name}_folded", (m["x"],))
        m.ctx.report.layers.append({"layer": str(node.target if node.op == "call_module" else node.name),
                                    "block": f"{kind}_pool3d", "form": "FoldedPool3d"})

    def describe(self, m: Match) -> str:
        return m.root.name


register_pass(FixAdaptivePool(), stage="deploy", name="fix_pools", after="lower_convs")
register_pass(FoldPool3d(), stage="deploy", name="fold_pool3d", after="fix_pools", when=When(target={"conv3d": False}))
