"""canonicalize_arith: ``torch.mul`` / ``x.mul(y)`` / ``torch.add`` / ``x.add(y)`` become ``*`` / ``+``;
``alpha`` other than 1 is another op and stays (the record's miss says which condition failed)."""
import operator

import pytest
import torch

import fxaccel

RULE = "canonicalize_arith"


@pytest.mark.parametrize("spelling, op", [
    (lambda x: torch.mul(x, x + 1), operator.mul), (lambda x: x.mul(x + 1), operator.mul),
    (lambda x: torch.add(x, x * 2), operator.add), (lambda x: x.add(x * 2), operator.add),
    (lambda x: torch.add(x, x * 2, alpha=1), operator.add), (lambda x: x.add(x * 2, alpha=1), operator.add),
])
def test_mul_and_add_spellings_become_operators(spelling, op, canonicalize, calls):
    gm = canonicalize(spelling)
    assert op in calls(gm)
    assert not {torch.mul, torch.add, "mul", "add"} & set(calls(gm))
    assert fxaccel.report_of(gm).record(RULE).rewritten == 1


def test_operand_order_is_kept(canonicalize):
    gm = canonicalize(lambda x: torch.add(x * 2, x))
    (add,) = [n for n in gm.graph.nodes if n.target is operator.add]
    assert [a.name for a in add.args] == ["mul", "x"]


@pytest.mark.parametrize("spelling, kept", [
    (lambda x: torch.add(x, x, alpha=2), torch.add), (lambda x: x.add(x, alpha=2), "add"),
])
def test_alpha_other_than_one_is_not_plus(spelling, kept, canonicalize, calls):
    gm = canonicalize(spelling)
    assert kept in calls(gm) and operator.add not in calls(gm)
    rec = fxaccel.report_of(gm).record(RULE)
    assert rec.rewritten == 0 and rec.miss.stopped_at == "add" and "condition _plain is false" in rec.miss.why
