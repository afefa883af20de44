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
"""
from __future__ import annotations

import operator
from typing import List

import torch
from torch import Tensor, fx, nn
from torch.ao.nn.quantized import FloatFunctional

from fxaccel.pipeline import PassContext, register_pass

from ._common import add_module_near, eager, finish, is_relu, is_tensor, sole_user


class _Functional(nn.Module):
    """Holds one ``FloatFunctional`` (``self.ff``); eager convert swaps it for ``QFunctional``."""

    def __init__(self):
        super().__init__()
        self.ff = FloatFunctional()


class QAdd(_Functional):
    """``a + b``, observable and convertible to ``quantized::add``."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.ff.add(a, b)


class QAddReLU(_Functional):
    """``relu(a + b)`` as one op (``quantized::add_relu``)."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.ff.add_relu(a, b)


class QMul(_Functional):
    """``a * b`` (broadcasting), convertible to ``quantized::mul``."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.ff.mul(a, b)


class QCat(_Functional):
    """``torch.cat(xs, dim)`` with one observed output range for all parts."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = int(dim)

    def forward(self, xs: List[Tensor]) -> Tensor:
        return self.ff.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class QAddScalar(_Functional):
    """``x + c`` for a number ``c``."""

    def __init__(self, c: float):
        super().__init__()
        self.c = float(c)

    def forward(self, x: Tensor) -> Tensor:
        return self.ff.add_scalar(x, self.c)

    def extra_repr(self) -> str:
        return f"c={self.c}"


class QMulScalar(_Functional):
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
_CAT = {torch.cat, torch.concat}
_INPLACE = {operator.iadd, operator.isub, operator.imul, operator.itruediv, "add_", "sub_", "mul_", "div_"}


def _kind(node: fx.Node) -> str | None:
    if node.op not in ("call_function", "call_method"):
        return None
    for kind, targets in (("add", _ADD), ("sub", _SUB), ("mul", _MUL), ("div", _DIV), ("cat", _CAT)):
        if node.target in targets:
            return kind
    return None


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class _Rewriter:
    def __init__(self, gm: fx.GraphModule, ctx: PassContext):
        self.gm, self.ctx = gm, ctx

    def call(self, at: fx.Node, module: nn.Module, hint: str, args: tuple) -> fx.Node:
        path = add_module_near(self.gm, at, module, hint)
        with self.gm.graph.inserting_before(at):
            new = self.gm.graph.call_module(path, args)
        new.meta.update({k: v for k, v in at.meta.items() if k in ("nn_module_stack", "tensor_meta")})
        return new

    def reason(self, node: fx.Node, kind: str) -> str | None:
        """Why ``node`` cannot become a FloatFunctional, or ``None``."""
        if kind == "cat":
            xs = node.args[0] if node.args else node.kwargs.get("tensors")
            if not isinstance(xs, (list, tuple)) or not all(is_tensor(x) for x in xs):
                return "torch.cat of something other than a list of tensors"
            return None
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

    def rewrite(self, node: fx.Node, kind: str) -> fx.Node:
        if kind == "cat":
            xs = node.args[0] if node.args else node.kwargs["tensors"]
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            return self.call(node, QCat(dim), "quant_cat", (list(xs),))
        a, b = node.args
        if _number(a):  # c + x, c * x
            a, b = b, a
        if kind == "div":
            return self.call(node, QMulScalar(1.0 / b), "quant_mul_scalar", (a,))
        if _number(b):
            if kind in ("add", "sub"):
                return self.call(node, QAddScalar(b if kind == "add" else -b), "quant_add_scalar", (a,))
            return self.call(node, QMulScalar(b), "quant_mul_scalar", (a,))
        if kind == "mul":
            return self.call(node, QMul(), "quant_mul", (a, b))
        if kind == "sub":
            b = self.call(node, QMulScalar(-1.0), "quant_neg", (b,))
        relu = sole_user(node)
        if relu is not None and is_relu(self.gm, relu) and relu.args[0] is node:
            new = self.call(node, QAddReLU(), "quant_add_relu", (a, b))
            relu.replace_all_uses_with(new)
            self.gm.graph.erase_node(relu)
            return new
        return self.call(node, QAdd(), "quant_add", (a, b))


def float_functional(gm: fx.GraphModule, ctx: PassContext) -> None:
    """Replace every float add / sub / mul / div-by-number / cat with a FloatFunctional wrapper."""
    if not eager(ctx):
        return
    rw = _Rewriter(gm, ctx)
    for node in list(gm.graph.nodes):
        kind = _kind(node)
        if kind is None or not is_tensor(node):
            continue
        ctx.record.matched += 1
        why = rw.reason(node, kind)
        if why is not None:
            ctx.record.skip(node.name, why + "; it runs in fp32")
            continue
        new = rw.rewrite(node, kind)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        ctx.record.rewritten += 1
    finish(gm)


register_pass(float_functional, stage="quantize", name="float_functional", after="quantizable_activations")
