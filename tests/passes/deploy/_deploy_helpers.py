"""Shared helpers of the deploy tests (a unique module name: tests are collected rootdir-wide)."""
from __future__ import annotations

import torch
from torch import fx, nn

from fxaccel.provenance import Provenance, mark
from fxaccel.report import Report, attach
from fxaccel.testing import relative_error
from fxaccel.testing.ops import ops_not_on_mobile, record_aten_ops

# fp32 rewrites (folded BN, decomposed convs, two-stage means) only reorder sums: ~1e-6 relative
# to the output's largest magnitude; the bound is 1e-5.
RTOL = 1e-5


def as_transmuted(model: nn.Module, target: str = "mobile_cpu") -> fx.GraphModule:
    """``model`` traced as is and marked transmuted, so deploy sees its vanilla layers unchanged
    (what transmute leaves when its rules do not fire)."""
    gm = fx.symbolic_trace(model)
    attach(gm, Report("transmute", target))
    mark(gm, Provenance("transmute", target))  # what deploy reads to reuse a transmuted model
    return gm


def rel_err(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return relative_error(a(x), b(x))


def mobile_violations(model: nn.Module, x: torch.Tensor):
    with torch.no_grad():
        return ops_not_on_mobile(record_aten_ops(model, x))


def snapshot(model: nn.Module):
    """Everything deploy must not change: tensors (values and identity), training flags."""
    return ({k: v.detach().clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()], [id(p) for p in model.parameters()])


def assert_unchanged(model: nn.Module, snap) -> None:
    state, flags, ids = snap
    now = model.state_dict()
    assert state.keys() == now.keys()
    for k, v in state.items():
        assert torch.equal(v, now[k]), f"deploy changed {k}"
    assert flags == [m.training for m in model.modules()]
    assert ids == [id(p) for p in model.parameters()]
