"""float_functional: every float ``+ - * /`` and ``cat`` of tensors becomes its FloatFunctional
wrapper (exact in fp32: the wrapper runs the same torch op), ``relu(a + b)`` one ``QAddReLU``;
every bail-out reason asserted, and the op it refuses is left as it was."""
import operator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.passes.quantize.float_functional import (
    FLOAT_FUNCTIONAL, QAdd, QAddReLU, QAddScalar, QCat, QMul, QMulScalar)

from _quantize_helpers import apply, calls, traced

A = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
B = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
ARITH = (operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.cat, "add", "mul", "add_")


class ReLUOfSum(nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, a, b):
        return self.relu(a + b)


@pytest.mark.parametrize("fn, modules, ops", [
    (lambda a, b: a + b, [QAdd], 1),
    (lambda a, b: a.add(b), [QAdd], 1),
    (lambda a, b: a * b.mean((2, 3), keepdim=True), [QMul], 1),  # broadcasting operand
    (lambda a, b: a - b, [QMulScalar, QAdd], 1),                 # a + (-1 * b)
    (lambda a, b: torch.relu(a + b), [QAddReLU], 1),
    (lambda a, b: F.relu(a - b), [QMulScalar, QAddReLU], 1),
    (lambda a, b: (a + b).relu(), [QAddReLU], 1),
    (ReLUOfSum(), [QAddReLU], 1),
    (lambda a, b: a * 2.5 + 0.5, [QMulScalar, QAddScalar], 2),
    (lambda a, b: 3.0 * a - 1.5, [QMulScalar, QAddScalar], 2),
    (lambda a, b: a / 4, [QMulScalar], 1),
    (lambda a, b: torch.cat([a, b], 1), [QCat], 1),
    (lambda a, b: torch.cat(tensors=(a, b), dim=-1), [QCat], 1),
])
def test_each_spelling_becomes_its_wrapper_with_the_same_values(fn, modules, ops):
    gm = traced(fn, A, B)
    record = apply(FLOAT_FUNCTIONAL, gm)
    assert [c for c in calls(gm) if isinstance(c, type)] == modules
    assert not [c for c in calls(gm) if c in ARITH or c in (torch.relu, F.relu, "relu")]
    assert record.rewritten == record.matched == ops and not record.skipped
    # the same torch op on the same tensors, except x / c -> x * (1 / c) (exact for c = 4)
    assert torch.equal(gm(A, B), fn(A, B))


def test_scalars_keep_their_roles():
    gm = traced(lambda a, b: (a - 1.5, 2.0 * a, a / 4), A, B)
    apply(FLOAT_FUNCTIONAL, gm)
    assert [m.c for m in gm.modules() if isinstance(m, QAddScalar)] == [-1.5]
    assert sorted(m.c for m in gm.modules() if isinstance(m, QMulScalar)) == [0.25, 2.0]


def test_a_sum_read_by_more_than_the_relu_is_a_plain_qadd():
    def fn(a, b):
        s = a + b
        return torch.relu(s), s

    gm = traced(fn, A, B)
    apply(FLOAT_FUNCTIONAL, gm)
    assert QAddReLU not in calls(gm) and QAdd in calls(gm) and torch.relu in calls(gm)
    ref, got = fn(A, B), gm(A, B)
    assert all(torch.equal(r, g) for r, g in zip(ref, got))


def test_arithmetic_on_sizes_is_not_a_candidate():
    gm = traced(lambda a, b: a.reshape(a.size(0) * 2, -1), A, B)
    record = apply(FLOAT_FUNCTIONAL, gm)
    assert record.matched == 0 and operator.mul in calls(gm)


def _inplace_on_shared(a, b):
    t = a.abs()
    t.add_(b)  # t is read again below: the in-place add is part of what that reader sees
    return t * 1.0, t


@pytest.mark.parametrize("fn, op, reason", [
    (lambda a, b: torch.add(a, b, alpha=2.0), torch.add, "add with extra arguments {'alpha': 2.0} (e.g. alpha=)"),
    (lambda a, b: 2.0 - a, operator.sub, "sub whose first operand is not a tensor"),
    (lambda a, b: a + a.size(0), operator.add, "add with operand size"),
    (lambda a, b: a / b, operator.truediv, "division by a tensor has no int8 kernel"),
    (lambda a, b: a / 0, operator.truediv, "division by a tensor has no int8 kernel"),
    (lambda a, b: torch.cat(a.unbind(0), 0), torch.cat, "torch.cat of something other than a list of tensors"),
    (_inplace_on_shared, "add_", "in-place add on a value with 3 users"),
])
def test_each_refusal_has_its_reason_and_keeps_the_op(fn, op, reason):
    gm = traced(fn, A, B)
    record = apply(FLOAT_FUNCTIONAL, gm)
    (skip,) = record.skipped
    assert skip.reason == reason + "; it runs in fp32"
    assert op in calls(gm)
    ref, got = fn(A, B), gm(A, B)
    ref, got = (ref, got) if isinstance(ref, tuple) else ((ref,), (got,))
    assert all(torch.equal(r, g) for r, g in zip(ref, got))
