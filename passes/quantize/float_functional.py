"""Swap float ``add`` / ``mul`` / ``cat`` (and scalar forms) for ``FloatFunctional`` modules.

Why: eager-mode int8 has no ``+`` or ``*`` on quantized tensors (``aten::add.out`` raises on the
QuantizedCPU backend); it needs a ``FloatFunctional`` per op, which observes the output range while
calibrating and becomes a ``QFunctional`` (``quantized::add`` etc.) at convert. A transmuted vanilla
model has a plain residual ``+`` and an SE ``x * s``; deploy forms add slice-adds (temporal taps)
and a bias ``+``. Each op gets its own small wrapper module (call_module nodes keep the graph
scriptable and give each op a name under its block):

``a + b`` -> :class:`QAdd` (:class:`QAddReLU` when a ReLU is the sum's only user: one int8 op),
``a * b`` -> :class:`QMul`, ``torch.cat`` -> :class:`QCat`, ``a + c`` / ``a - c`` (``c`` a number)
-> :class:`QAddScalar`, ``a * c`` / ``a / c`` -> :class:`QMulScalar`, ``a - b`` -> ``QAdd(a, -1 * b)``.
Both operands may broadcast (``quantized::add`` / ``mul`` do, measured).

Three rules make the pass ``float_functional``: :class:`AddReLUToQAddReLU` (rooted at the ReLU, so
it is tried before the sum alone), :class:`ArithToFloatFunctional` and :class:`CatToQCat`. An op
they refuse runs in fp32 (``quant_stubs`` dequantizes around it); the report says why.
"""
from __future__ import annotations

import operator
from typing import List

import torch
from torch import Tensor, fx, nn
from torch.ao.nn.quantized import FloatFunctional

from fxaccel.patterns import relu_of
from fxaccel.pipeline import register_pass
from fxaccel.rules import Alt, Any, Fn, Match, Method, Rule, RuleSet, arg

from ._common import EAGER, add_module_near, is_tensor, one_user


class Functional(nn.Module):
    """Holds one ``FloatFunctional`` (``self.ff``); eager convert swaps it for ``QFunctional``.

    Public because ``quant_stubs`` counts every subclass as an int8 op.
    """

    def __init__(self):
        super().__init__()
        self.ff = FloatFunctional()


class QAdd(Functional):
    """``a + b``, observable and convertible to ``quantized::add``."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.ff.add(a, b)


class QAddReLU(Functional):
    """``relu(a + b)`` as one op (``quantized::add_relu``)."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.ff.add_relu(a, b)


class QMul(Functional):
    """``a * b`` (broadcasting), convertible to ``quantized::mul``."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.ff.mul(a, b)


class QCat(Functional):
    """``torch.cat(xs, dim)`` with one observed output range for all parts."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = int(dim)

    def forward(self, xs: List[Tensor]) -> Tensor:
        return self.ff.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class QAddScalar(Functional):
    """``x + c`` for a number ``c``."""

    def __init__(self, c: float):
        super().__init__()
        self.c = float(c)

    def forward(self, x: Tensor) -> Tensor:
        return self.ff.add_scalar(x, self.c)

    def extra_repr(self) -> str:
        return f"c={self.c}"


class QMulScalar(Functional):
    """``x * c`` for a number ``c``."""

    def __init__(self, c: float):
        super().__init__()
        self.c = float(c)

    def forward(self, x: Tensor) -> Tensor:
        return self.ff.mul_scalar(x, self.c)

    def extra_repr(self) -> str:
        return f"c={self.c}"


_ADD = {operator.add, operator.iadd, torch.add, "add", "add_", "__add__", "__iadd__"}
_SUB = {operator.sub, operator.isub, torch.sub, "sub", "sub_", "__sub__"}
_MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_", "__mul__"}
_DIV = {operator.truediv, operator.itruediv, torch.div, "div", "div_", "__truediv__"}
_CAT = (torch.cat, torch.concat)
_INPLACE = {operator.iadd, operator.isub, operator.imul, operator.itruediv, "add_", "sub_", "mul_", "div_"}
_KINDS = (("add", _ADD), ("sub", _SUB), ("mul", _MUL), ("div", _DIV))


def _tensor_valued(node: fx.Node, gm: fx.GraphModule) -> bool:
    return is_tensor(node)


def _binary(targets: set, name: str | None = None, where=_tensor_valued) -> Alt:
    """A two-operand call of ``targets`` (functions or method names) binding ``a`` and ``b``.

    Extra arguments match too (``alpha=``), so that ``check`` can name them; the operand order is
    kept (``commute=False``): which operand is the tensor decides the rewrite.
    """
    fns = tuple(t for t in targets if not isinstance(t, str))
    methods = tuple(t for t in targets if isinstance(t, str))
    return Alt(*(cls(ts, Any("a"), Any("b"), name=name, where=where, extra=True, commute=False)
                 for cls, ts in ((Fn, fns), (Method, methods))))


def _kind(node: fx.Node) -> str:
    return next(kind for kind, targets in _KINDS if node.target in targets)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _reason(node: fx.Node) -> str | None:
    """Why the arithmetic ``node`` cannot become a FloatFunctional, or ``None``."""
    kind = _kind(node)
    if len(node.args) != 2 or node.kwargs:
        return f"{kind} with extra arguments {node.kwargs or node.args[2:]} (e.g. alpha=)"
    a, b = node.args
    if node.target in _INPLACE and isinstance(a, fx.Node) and len(a.users) > 1:
        return f"in-place {kind} on a value with {len(a.users)} users"
    if not is_tensor(a) and not (kind in ("add", "mul") and is_tensor(b)):
        return f"{kind} whose first operand is not a tensor"
    if not (is_tensor(b) or _number(b) or (kind in ("add", "mul") and _number(a))):
        return f"{kind} with operand {b!r}"
    if kind == "div" and not (_number(b) and b != 0):
        return "division by a tensor has no int8 kernel"
    return None


def _call(gm: fx.GraphModule, at: fx.Node, module: nn.Module, hint: str, args: tuple) -> fx.Node:
    """A call of ``module`` (added under ``at``'s scope) inserted before ``at``, with its meta."""
    path = add_module_near(gm, at, module, hint)
    with gm.graph.inserting_before(at):
        new = gm.graph.call_module(path, args)
    new.meta.update({k: v for k, v in at.meta.items() if k in ("nn_module_stack", "tensor_meta")})
    return new


def _operands(gm: fx.GraphModule, node: fx.Node) -> tuple:
    """``(a, b)`` of a tensor ``add`` or ``sub`` node as the operands of an add (``a - b = a + -1 * b``)."""
    a, b = node.args
    if _kind(node) == "sub":
        b = _call(gm, node, QMulScalar(-1.0), "quant_neg", (b,))
    return a, b


def _replace(gm: fx.GraphModule, old: fx.Node, new: fx.Node) -> None:
    old.replace_all_uses_with(new)
    gm.graph.erase_node(old)  # explicitly: an in-place add_ is impure and dead-code removal keeps it


def _convertible_sum(node: fx.Node, gm: fx.GraphModule) -> bool:
    """A tensor ``add`` / ``sub`` read only by the ReLU above it, which ``ArithToFloatFunctional``
    would accept: only then do the two fuse (otherwise the sum's own rule reports why not)."""
    return is_tensor(node) and one_user(node, gm) and _reason(node) is None


class AddReLUToQAddReLU(Rule):
    """``relu(a + b)`` / ``relu(a - b)`` -> ``QAddReLU`` (one ``quantized::add_relu``)."""

    pattern = relu_of(_binary(_ADD | _SUB, name="sum", where=_convertible_sum))

    def rewrite(self, m: Match) -> None:
        total = m["sum"]
        new = _call(m.gm, total, QAddReLU(), "quant_add_relu", _operands(m.gm, total))
        _replace(m.gm, m.root, new)
        m.gm.graph.erase_node(total)


class ArithToFloatFunctional(Rule):
    """Tensor ``+ - * /`` (``/`` by a number only) -> ``QAdd`` / ``QMul`` / ``QAddScalar`` / ``QMulScalar``."""

    pattern = _binary(_ADD | _SUB | _MUL | _DIV)

    def check(self, m: Match) -> str | None:
        why = _reason(m.root)
        return None if why is None else why + "; it runs in fp32"

    def rewrite(self, m: Match) -> None:
        gm, node, kind = m.gm, m.root, _kind(m.root)
        a, b = node.args
        if _number(a):  # c + x, c * x
            a, b = b, a
        if kind == "div":
            new = _call(gm, node, QMulScalar(1.0 / b), "quant_mul_scalar", (a,))
        elif _number(b) and kind in ("add", "sub"):
            new = _call(gm, node, QAddScalar(b if kind == "add" else -b), "quant_add_scalar", (a,))
        elif _number(b):
            new = _call(gm, node, QMulScalar(b), "quant_mul_scalar", (a,))
        elif kind == "mul":
            new = _call(gm, node, QMul(), "quant_mul", (a, b))
        else:
            new = _call(gm, node, QAdd(), "quant_add", _operands(gm, node))
        _replace(gm, node, new)


class CatToQCat(Rule):
    """``torch.cat(tensors, dim)`` (any spelling of its arguments) -> ``QCat(dim)``."""

    pattern = Fn(_CAT, where=_tensor_valued, extra=True)

    def check(self, m: Match) -> str | None:
        xs = arg(m.root, 0, "tensors")
        if not isinstance(xs, (list, tuple)) or not all(is_tensor(x) for x in xs):
            return "torch.cat of something other than a list of tensors; it runs in fp32"
        return None

    def rewrite(self, m: Match) -> None:
        xs, dim = arg(m.root, 0, "tensors"), arg(m.root, 1, "dim", 0)
        _replace(m.gm, m.root, _call(m.gm, m.root, QCat(dim), "quant_cat", (list(xs),)))


FLOAT_FUNCTIONAL = RuleSet([AddReLUToQAddReLU(), ArithToFloatFunctional(), CatToQCat()])

register_pass(FLOAT_FUNCTIONAL, stage="quantize", name="float_functional", after="quantizable_activations",
              when=EAGER)
