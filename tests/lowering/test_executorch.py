"""ExecuTorch + XNNPACK lowering: artifacts run and match eager, the delegation report is right, and
the delegation facts written in ``fxaccel.lowering.executorch``'s docstring hold.

Tolerances: fp32 XNNPACK reorders sums (NHWC kernels, fused BN), so outputs agree with eager to
~1e-6 relative to their largest magnitude; ``to_pte``'s default bound 1e-4 keeps a 100x margin and
still catches any wrong weight or layout (errors of order 1). int8 is measured as SQNR against the
fp32 model: per-channel symmetric int8 on these tiny nets gives 30-45 dB; a 20 dB floor means
"quantized, not broken" (a broken scale or layout gives < 5 dB).
"""
import importlib.util
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn

from fxaccel import errors
from fxaccel.lowering.executorch import (
    DelegationReport, OutsideOp, assert_all_compute_delegated, delegation_report, load_pte, op_kind, to_pte,
)
from fxaccel.testing import assert_equivalent, randomize_bn, seeds

requires_et = pytest.mark.skipif(importlib.util.find_spec("executorch") is None,
                                 reason="needs the executorch extra: pip install 'fxaccel[executorch]'")
pytestmark = pytest.mark.executorch

N, C, T, H, W = 2, 4, 3, 6, 6


class TinyFolded(nn.Module):
    """A time-folded video net of the deploy-form flavour, every op in its XNNPACK-friendly spelling.

    Entry fold (N, C, T, H, W) -> (N*T, C, H, W); conv2d + BN + ReLU; depthwise + hardswish; SE
    (mean keepdim, sigmoid, broadcast mul); a temporal tap as a slice-add along time in a 3-D view;
    residual add; head: per-frame mean, time mean as a 4-D mean after a permute, linear.
    """

    def __init__(self, c_in=3, c=8, classes=5, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.stem = nn.Conv2d(c_in, c, 3, padding=1, bias=False)
        self.bn = randomize_bn(nn.BatchNorm2d(c), seed)
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.se1, self.se2 = nn.Conv2d(c, 4, 1), nn.Conv2d(4, c, 1)
        self.tap_now, self.tap_prev = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1, bias=False)
        self.fc = nn.Linear(c, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
            randomize_bn(self.bn, seed)

    def forward(self, x):
        n, c, t, h, w = x.shape
        y = x.transpose(1, 2).reshape(n * t, c, h, w)
        y = torch.relu(self.bn(self.stem(y)))
        z = F.hardswish(self.dw(y))
        z = z * torch.sigmoid(self.se2(torch.relu(self.se1(z.mean((-1, -2), keepdim=True)))))
        now = self.tap_now(z).reshape(n, t, -1)
        prev = self.tap_prev(z).reshape(n, t, -1)
        z = torch.cat([now[:, :1], now[:, 1:] + prev[:, :-1]], 1).reshape(n * t, -1, h, w)
        y = y + z
        m = y.mean((-1, -2), keepdim=True).reshape(n, t, -1, 1).permute(0, 2, 1, 3)
        return self.fc(m.mean((-1, -2), keepdim=True).flatten(1))


def _x(seed=0, shape=(N, 3, T, H, W)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ report helpers (no executorch)


@pytest.mark.parametrize("op, kind", [
    ("aten.convolution.default", "conv"), ("aten.linear.default", "linear"), ("aten.mean.dim", "pool"),
    ("aten.avg_pool2d.default", "pool"), ("aten.hardswish.default", "activation"),
    ("aten.sigmoid.default", "activation"), ("aten.mul.Tensor", "elementwise"),
    ("aten.view_copy.default", "reshape"), ("aten.slice_copy.Tensor", "reshape"),
    ("quantized_decomposed.quantize_per_tensor.default", "quant"), ("aten.full_like.default", "other"),
])
def test_op_kind(op, kind):
    assert op_kind(op) == kind


def test_assert_all_compute_delegated_lists_offenders_and_ignores_copies():
    report = DelegationReport(delegates=1, outside_ops=[
        OutsideOp("m", "aten.mean.dim", "pool", (6, 4, 6, 6), "mean.dim only supports keepdim=True"),
        OutsideOp("s", "aten.slice_copy.Tensor", "reshape", (6, 4, 6, 6)),
    ])
    with pytest.raises(errors.NotDelegated, match="keepdim=True") as info:
        assert_all_compute_delegated(report)
    assert info.value.ops == ["aten.mean.dim"]
    with pytest.raises(errors.NotDelegated):
        assert_all_compute_delegated(report, kinds=("reshape",))
    assert_all_compute_delegated(DelegationReport(delegates=1, outside_ops=report.outside_ops[1:]))


def test_missing_executorch_raises_missing_dependency(monkeypatch):
    # A None entry makes `import name` fail; block every executorch module, loaded or not.
    for name in [m for m in sys.modules if m == "executorch" or m.startswith("executorch.")] + ["executorch"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(errors.MissingDependency, match=r'pip install "fxaccel\[executorch\]"') as info:
        to_pte(nn.ReLU(), (torch.randn(2),))
    assert isinstance(info.value, ImportError)


# ------------------------------------------------------------------ fp32 end to end


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory):
    """TinyFolded lowered once for the tests that only read the result (lowering is the slow part)."""
    model = TinyFolded().eval()
    return model, to_pte(model, (_x(),), tmp_path_factory.mktemp("pte") / "tiny.pte")


@requires_et
def test_tiny_folded_net_is_fully_delegated_and_matches(tiny_artifact):
    model, art = tiny_artifact
    assert art.path.read_bytes() == art.buffer and bytes(art) == art.buffer
    assert art.check["metric"] == "rel_err" and art.check["value"] < 1e-4
    assert_all_compute_delegated(art.report, kinds=("conv", "linear", "pool", "activation", "elementwise",
                                                    "reshape", "other"))
    assert art.report.outside == {} and art.report.delegates == 1
    assert art.report.inside["conv"] == 6 and art.report.inside["linear"] == 1
    # The report read back from the edge program agrees with the one to_pte made.
    assert delegation_report(art.edge).inside_ops == art.report.inside_ops
    # Loaded from the file, on new data, it still computes the model (not just the example).
    assert_equivalent(load_pte(art.path), model, (_x(1),), rtol=1e-4)
    assert set(art.to_dict()) == {"path", "bytes", "report", "check"}


def _small(seed=0):
    """conv + BN (random stats) + ReLU: the smallest model with state worth protecting."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(4, 4, 3), randomize_bn(nn.BatchNorm2d(4), seed), nn.ReLU())


@requires_et
def test_to_pte_restores_training_flags_and_leaves_weights_alone():
    model = _small().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    art = to_pte(model, (torch.randn(2, 4, 8, 8),))
    assert art.check["value"] < 1e-4  # compared in eval mode: BN used its running stats
    assert model.training and model[1].training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@requires_et
def test_a_strided_example_input_gives_a_program_that_runs_on_contiguous_tensors():
    """A batch-1 folded clip is a strided view; exported as is, the program took that dim order and
    refused the contiguous tensors it is run on (error 0x1)."""
    model = nn.Sequential(nn.Conv2d(8, 8, 1, groups=8), nn.ReLU()).eval()
    x = torch.randn(1, 8, 4, 6, 6).transpose(1, 2).reshape(4, 8, 6, 6)
    assert not x.is_contiguous()
    art = to_pte(model, (x,))
    assert art.check["value"] < 1e-4


@requires_et
def test_mismatch_is_an_error_not_a_warning():
    with pytest.raises(errors.ExportMismatch, match="does not match"):
        to_pte(_small(0).eval(), (torch.randn(2, 4, 8, 8),), reference=_small(1).eval())


@requires_et
def test_exported_program_is_accepted():
    model = nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU()).eval()
    x = torch.randn(2, 4, 8, 8)
    art = to_pte(torch.export.export(model, (x,)), (x,))
    assert art.report.inside_ops == {"aten.convolution.default": 1, "aten.relu.default": 1}


@requires_et
@settings(deadline=None, max_examples=2)
@given(c=st.integers(2, 6), t=st.integers(2, 3), hw=st.integers(4, 7), seed=seeds)
def test_random_tiny_nets_lower_fully_delegated_and_match(c, t, hw, seed):
    model = TinyFolded(c_in=c, c=c + 2, seed=seed).eval()
    art = to_pte(model, (_x(seed, (2, c, t, hw, hw)),))
    assert art.check["value"] < 1e-4
    assert_all_compute_delegated(art.report)


# ------------------------------------------------------------------ the delegation facts


X4, X5 = (N * T, C, H, W), (N, C, T, H, W)

# Delegated (fp32) in TinyFolded, which has nothing outside its delegates: the entry fold (5-D
# permute + reshape), 3-D views, slices along dim 1 of a 3-D view, cat, mean (-1,-2) keepdim, the
# time mean as a 4-D mean after a permute, hardswish, sigmoid, mul by (N*T, C, 1, 1), linear.
TINY_FOLDED_INSIDE = [
    "aten.permute_copy.default", "aten.view_copy.default", "aten.slice_copy.Tensor", "aten.cat.default",
    "aten.mean.dim", "aten.hardswish.default", "aten.sigmoid.default", "aten.mul.Tensor",
    "aten.linear.default", "aten.convolution.default", "aten.relu.default", "aten.add.Tensor",
]


@requires_et
def test_tiny_folded_net_delegates_every_op_the_deploy_forms_use(tiny_artifact):
    _, art = tiny_artifact
    assert art.report.outside_ops == []
    missing = [op for op in TINY_FOLDED_INSIDE if op not in art.report.inside_ops]
    assert not missing, f"not inside a delegate: {missing}\n{art.report}"


# (case, fn, input shape, op that must be inside a delegate or None, op that must stay outside or None)
FACTS = [
    ("slice along dim 0", lambda s, x: x[1:] + x[:-1], X4, "aten.slice_copy.Tensor", None),
    ("avg_pool2d, and without counted padding",
     lambda s, x: F.avg_pool2d(x, 2) + F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), X4,
     "aten.avg_pool2d.default", None),
    ("mul by (N, 1, C, 1)", lambda s, x: (x.reshape(N, T, C, H * W) * s.scale).reshape(N * T, C, H, W), X4,
     "aten.mul.Tensor", None),
    ("slice with step 2", lambda s, x: x[::2] * 2.0, X4, "aten.mul.Tensor", "aten.slice_copy.Tensor"),
    ("mean (-1,-2) no keepdim", lambda s, x: x.mean((-1, -2)), X4, None, "aten.mean.dim"),
    ("mean of a 3-D tensor", lambda s, x: x.mean((-1, -2), keepdim=True).reshape(N, T, C).mean(1), X4,
     "aten.mean.dim", "aten.mean.dim"),
    ("mean of a 5-D tensor", lambda s, x: x.mean((2, 3, 4), keepdim=True), X5, None, "aten.mean.dim"),
    ("avg_pool2d counting zero padding", lambda s, x: F.avg_pool2d(x, 3, 1, 1), X4, None, "aten.avg_pool2d.default"),
    ("zeros_like", lambda s, x: torch.cat([torch.zeros_like(x[:1]), x[:-1]]), X4, "aten.cat.default",
     "aten.full_like.default"),
]


class _F(nn.Module):
    """One op under test: ``fn(self, x)``, with a parameter shaped like a per-clip scale."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.scale = nn.Parameter(torch.randn(N, 1, C, 1))

    def forward(self, x):
        return self.fn(self, x)


@requires_et
@pytest.mark.parametrize("case, fn, shape, inside, outside", FACTS, ids=[f[0] for f in FACTS])
def test_delegation_fact(case, fn, shape, inside, outside):
    art = to_pte(_F(fn).eval(), (_x(0, shape),))  # also runs it in the runtime and compares
    report = art.report
    if inside is not None:
        assert inside in report.inside_ops, f"{case}: expected {inside} inside; report:\n{report}"
    if outside is not None:
        assert outside in [o.op for o in report.outside_ops], f"{case}: expected {outside} outside; report:\n{report}"
    else:
        assert report.outside_ops == [], f"{case}: expected nothing outside; report:\n{report}"


@requires_et
def test_outside_ops_carry_xnnpack_reason():
    art = to_pte(_F(lambda s, x: x.mean((-1, -2))).eval(), (_x(0, X4),))
    (op,) = art.report.outside_ops
    assert op.kind == "pool" and op.input_shape == X4 and "keepdim=True" in op.reason
    with pytest.raises(errors.NotDelegated, match="aten.mean.dim"):
        assert_all_compute_delegated(art)


# ------------------------------------------------------------------ 5-D ops: refused with the fix


@requires_et
def test_runtime_really_fails_on_conv3d():
    """Why to_pte refuses: lowered as is, a Conv3d program fails when executed."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    model, x = nn.Conv3d(C, C, 3, padding=1).eval(), _x(0, X5)
    edge = to_edge_transform_and_lower(torch.export.export(model, (x,)), partitioner=[XnnpackPartitioner()])
    assert delegation_report(edge).outside["conv"] == 1
    with pytest.raises(RuntimeError):
        load_pte(edge.to_executorch().buffer)(x)


@requires_et
@pytest.mark.parametrize("module, op", [
    (nn.Sequential(nn.Conv3d(C, C, 3, padding=1), nn.ReLU()), "aten.convolution.default"),
    (nn.AvgPool3d((1, 2, 2)), "aten.avg_pool3d.default"),
])
def test_5d_ops_are_refused_with_the_deploy_fix(module, op):
    with pytest.raises(errors.UnsupportedOps) as info:
        to_pte(module.eval(), (_x(0, X5),))
    assert op in info.value.ops
    assert op in str(info.value) and 'target="mobile_cpu"' in str(info.value)


# ------------------------------------------------------------------ int8 (pt2e, XNNPACK quantizer)


def _quantize_pt2e(model, x, seed=0):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(model.eval(), (x,)).module(), quantizer)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(4):
        prepared(torch.randn(x.shape, generator=gen))
    return convert_pt2e(prepared)


@requires_et
def test_int8_pt2e_model_lowers_fully_delegated_within_sqnr_floor():
    model, x = TinyFolded().eval(), _x()
    art = to_pte(_quantize_pt2e(model, x), (x,), sqnr_floor=20.0, reference=model)
    assert art.check["metric"] == "sqnr_db" and art.check["value"] >= 20.0
    assert art.report.inside["quant"] > 0 and art.report.inside["conv"] == 6
    assert_all_compute_delegated(art.report)


@requires_et
def test_int8_needs_an_sqnr_floor_and_fails_below_it():
    model, x = _small().eval(), torch.randn(2, 4, 8, 8)
    quantized = _quantize_pt2e(model, x)
    with pytest.raises(ValueError, match="sqnr_floor"):
        to_pte(quantized, (x,))
    with pytest.raises(errors.ExportMismatch, match="SQNR"):
        to_pte(quantized, (x,), sqnr_floor=200.0, reference=model)
