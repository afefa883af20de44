"""Network-wide folded layout for targets without conv3d (``mobile_cpu``).

After ``lower_blocks`` every 5-D block is a ``TimeFolded`` (fold -> folded form -> unfold), so the
network transposes twice per block; DESIGN.md measured that this eats the gain of the 2-D forms.
This pass makes time fold once at the entry and unfold once at the head:

1. strip the wrappers: each ``TimeFolded`` / ``FoldedInput`` call becomes calls of its parts;
2. cancel ``UnfoldTime(t)`` -> ``FoldTime`` pairs (same clip length): the fold's users read the
   folded value directly;
3. keep elementwise ops in the folded layout when every tensor operand has a folded form with the
   same clip length (or ``T = 1``, repeated over frames): ``add``/``mul``/``sub``/``div``, ReLU,
   sigmoid, SiLU, hardswish, GELU...; out-of-place only (an in-place op must keep writing through
   the unfolded view, which it does when left alone);
4. a leftover ``BatchNorm3d`` becomes a ``BatchNorm2d`` on the folded layout (same parameters and
   buffers; running statistics or batch statistics alike reduce per channel over the same values).

Anything else consumes the unfolded value (an ``UnfoldTime`` stays in front of it) and the report
notes it. With ``deploy(..., layout="block")`` this pass does nothing: the per-block wrappers stay,
which is what the benchmark compares against.
"""
from __future__ import annotations

import copy
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from fxaccel.blocks.layout import FoldTime, TimeFolded, UnfoldTime
from fxaccel.dce import eliminate_dead_code, mutates
from fxaccel.pipeline import When, register_pass

from ._common import BINARY_FNS, install
from fxaccel.forms.folded_ops import FoldedInput, RepeatFrames
from fxaccel.rules import shape_of

_UNARY_FNS = {torch.relu, F.relu, torch.sigmoid, F.sigmoid, F.silu, F.hardswish, F.hardsigmoid, F.gelu,
              torch.tanh, F.tanh, F.relu6, F.leaky_relu, F.elu, F.mish, F.softplus, torch.neg, torch.abs}
_UNARY_METHODS = {"relu", "sigmoid", "tanh", "neg", "abs"}
_BINARY_METHODS = {"add", "mul", "sub", "div"}
_UNARY_MODULES = (nn.ReLU, nn.SiLU, nn.Sigmoid, nn.Hardswish, nn.Hardsigmoid, nn.GELU, nn.Tanh, nn.ReLU6,
                  nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus, nn.Identity)
_ELEMENTWISE_FNS = _UNARY_FNS | set(BINARY_FNS)
_SHOWN = 8  # ops named in the summary note (a transformer has hundreds)


def _module(gm, node):
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def _strip_wrappers(gm: fx.GraphModule) -> int:
    """Replace each TimeFolded / FoldedInput call by calls of its fold, inner (and unfold).

    The inner form takes the wrapper's place in the module tree (``stages.0.1`` stays the
    block's name); fold and unfold become siblings ``<name>_fold`` / ``<name>_unfold``.
    """
    parts: dict[str, tuple[str, str, str | None]] = {}
    n = 0
    for node in list(gm.graph.nodes):
        mod = _module(gm, node)
        if not isinstance(mod, (TimeFolded, FoldedInput)):
            continue
        if node.target not in parts:
            fold = install(gm, mod.fold, f"{node.target}_fold")
            unfold = install(gm, mod.unfold, f"{node.target}_unfold") if isinstance(mod, TimeFolded) else None
            gm.add_submodule(node.target, mod.inner)
            parts[node.target] = (fold, node.target, unfold)
        fold, inner, unfold = parts[node.target]
        with gm.graph.inserting_before(node):
            v = gm.graph.call_module(fold, (node.args[0],))
            v = gm.graph.call_module(inner, (v,))
            if unfold is not None:
                v = gm.graph.call_module(unfold, (v,))
        v.meta.update(node.meta)
        node.replace_all_uses_with(v)
        gm.graph.erase_node(node)
        n += 1
    return n


def _in_place(node: fx.Node, gm) -> bool:
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if node.op == "call_module":
        return bool(getattr(_module(gm, node), "inplace", False))
    return (name.endswith("_") and not name.endswith("__")) or bool(node.kwargs.get("inplace", False)) \
        or name.startswith("__i")


def _is_elementwise(node: fx.Node, gm) -> bool:
    if _in_place(node, gm):
        return False
    if node.op == "call_function":
        return node.target in _ELEMENTWISE_FNS
    if node.op == "call_method":
        return node.target in _UNARY_METHODS | _BINARY_METHODS
    if node.op == "call_module":
        return type(_module(gm, node)) in _UNARY_MODULES
    return False


class _Layout:
    def __init__(self, gm: fx.GraphModule, ctx):
        self.gm, self.ctx = gm, ctx
        self.folded: dict[fx.Node, tuple[fx.Node, int]] = {}  # 5-D value -> (its folded value, T)
        self.unfolded: list[str] = []  # ops that read an unfolded value, for one summary note

    def run(self) -> None:
        for node in list(self.gm.graph.nodes):
            mod = _module(self.gm, node)
            if isinstance(mod, UnfoldTime):
                self.folded[node] = (node.args[0], mod.t)
            elif isinstance(mod, FoldTime):
                self._fold(node, mod)
            elif type(mod) is nn.BatchNorm3d and self._all_folded(node):
                self._batchnorm(node, mod)
            elif _is_elementwise(node, self.gm) and self._all_folded(node):
                self._elementwise(node)
            else:
                self._note_unfolded(node)
        if self.unfolded:
            shown = ", ".join(self.unfolded[:_SHOWN]) + (f", ... ({len(self.unfolded) - _SHOWN} more)"
                                                        if len(self.unfolded) > _SHOWN else "")
            self.ctx.record.note(f"{len(self.unfolded)} op(s) are not folded-layout ops and read the "
                                 f"unfolded 5-D value: {shown}")

    # -- helpers
    def _tensor_args(self, node):
        return [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, fx.Node)]

    def _all_folded(self, node) -> bool:
        args = self._tensor_args(node)
        if not args or any(a not in self.folded for a in args):
            return False
        ts = {self.folded[a][1] for a in args}
        shapes = [shape_of(a) for a in args]
        if any(s is None or len(s) != 5 for s in shapes) or len({s[0] for s in shapes}) != 1:
            return False
        out = shape_of(node)
        return out is not None and len(out) == 5 and (len(ts) == 1 or (len(ts) == 2 and 1 in ts)) \
            and out[2] == max(ts)

    def _fold(self, node, mod: FoldTime) -> None:
        src = node.args[0]
        if src in self.folded and self.folded[src][1] == mod.shape[2]:
            node.replace_all_uses_with(self.folded[src][0])
            self.gm.graph.erase_node(node)
            self.ctx.record.rewritten += 1
        elif not any(mutates(u) or _in_place(u, self.gm) for u in src.users):
            # the entry fold (a copy): later folds of src reuse it, unless src is written in place
            self.folded[src] = (node, mod.shape[2])

    def _unfold_after(self, node, folded_value, t: int) -> None:
        name = install(self.gm, UnfoldTime(t), f"unfold_{node.name}")
        with self.gm.graph.inserting_after(folded_value):
            unfolded = self.gm.graph.call_module(name, (folded_value,))
        unfolded.meta.update(node.meta)
        node.replace_all_uses_with(unfolded)
        self.gm.graph.erase_node(node)
        self.folded[unfolded] = (folded_value, t)

    def _folded_arg(self, a, t: int, before: fx.Node):
        if not isinstance(a, fx.Node):
            return a
        value, ta = self.folded[a]
        if ta == t:
            return value
        shape = shape_of(a)
        name = install(self.gm, RepeatFrames(t, (shape[1], shape[3], shape[4])), f"repeat_{a.name}")
        with self.gm.graph.inserting_before(before):
            return self.gm.graph.call_module(name, (value,))

    def _elementwise(self, node) -> None:
        t = max(self.folded[a][1] for a in self._tensor_args(node))
        args = tuple(self._folded_arg(a, t, node) for a in node.args)
        kwargs = {k: self._folded_arg(v, t, node) for k, v in node.kwargs.items()}
        with self.gm.graph.inserting_before(node):
            new = self.gm.graph.create_node(node.op, node.target, args, kwargs)
        self._unfold_after(node, new, t)
        self.ctx.record.rewritten += 1

    def _batchnorm(self, node, bn: nn.BatchNorm3d) -> None:
        bn2 = nn.BatchNorm2d(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        bn2.load_state_dict(copy.deepcopy(bn.state_dict()))
        bn2.eval()
        value, t = self.folded[node.args[0]]
        name = install(self.gm, bn2, f"{node.target}_2d")
        with self.gm.graph.inserting_before(node):
            new = self.gm.graph.call_module(name, (value,))
        self._unfold_after(node, new, t)
        self.ctx.record.rewritten += 1

    def _note_unfolded(self, node) -> None:
        if node.op in ("output", "placeholder") or isinstance(_module(self.gm, node), UnfoldTime):
            return
        ts = [self.folded[a][1] for a in self._tensor_args(node) if a in self.folded]
        if any(t > 1 for t in ts):  # after the head's time pool (T = 1) unfolding is a mere reshape
            what = node.target if node.op != "call_function" else getattr(node.target, "__name__", node.target)
            self.unfolded.append(f"{node.name} ({what})")


def layout(gm: fx.GraphModule, ctx) -> None:
    stripped = _strip_wrappers(gm)
    ctx.record.matched += stripped
    _Layout(gm, ctx).run()
    eliminate_dead_code(gm)
    gm.delete_all_unused_submodules()
    gm.recompile()


register_pass(layout, stage="deploy", name="layout",
              after=("lower_blocks", "lower_convs", "fix_pools", "fold_pool3d", "mean_5d", "fuse_relu"),
              when=When(target={"conv3d": False}, options={"layout": "network"}))

_ = operator  # operator.add & co. are in BINARY_FNS
