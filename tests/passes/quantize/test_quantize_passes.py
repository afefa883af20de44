"""The quantize-stage passes one by one: structure, and fp32 numerics unchanged before calibration.

Every pass must leave the float model computing the same function (the int8 error comes only from
calibration/convert). FloatFunctional in float mode runs the same torch op, so the arithmetic
rewrites are exact; conv-BN folding reorders sums (rtol 1e-5, see assert_equivalent).
"""
from __future__ import annotations

import operator

import torch
from hypothesis import given, settings, strategies as st
from torch import fx, nn
from torch.ao.quantization import DeQuantStub, QuantStub, get_default_qconfig
from torch.fx.passes.shape_prop import ShapeProp

from fxaccel.passes.quantize.float_functional import QAdd, QAddReLU, QAddScalar, QCat, QMul, QMulScalar
from fxaccel.options import QuantizeOptions
from fxaccel.pipeline import PassContext, list_passes, run_stage
from fxaccel.report import Report
from fxaccel.targets import get_target
from fxaccel.testing import assert_equivalent, randomize_bn, seeds


def _run(model: nn.Module, x: torch.Tensor, names: list[str], skip=None, flow="eager") -> tuple[fx.GraphModule, Report]:
    """Trace ``model``, propagate shapes, run the named quantize passes in registry order."""
    gm = fx.symbolic_trace(model)
    ShapeProp(gm).propagate(x)
    report = Report("quantize")
    ctx = PassContext("quantize", get_target("mobile_cpu"), (x,), report, options=QuantizeOptions(
        flow, qconfig=get_default_qconfig("qnnpack"), skip=skip or {}))
    gm = run_stage("quantize", gm, ctx, skip=[n for n in list_passes("quantize") if n not in names])
    return gm, report


def _modules(gm: fx.GraphModule) -> list[type]:
    return [type(gm.get_submodule(n.target)) for n in gm.graph.nodes if n.op == "call_module"]


def _functions(gm: fx.GraphModule) -> list:
    return [n.target for n in gm.graph.nodes if n.op in ("call_function", "call_method")]


class Arith(nn.Module):
    def __init__(self, c: float):
        super().__init__()
        self.c = c
        self.bias = nn.Parameter(torch.randn(4, 1, 1))

    def forward(self, a):
        b = a.flip(0)
        s = torch.relu(a + b)             # -> QAddReLU
        d = a - b                          # -> QAdd(a, QMulScalar(b, -1))
        m = s * d.mean((2, 3), keepdim=True)  # broadcast mul -> QMul
        k = m / self.c + self.c            # -> QMulScalar, QAddScalar
        y = self.c * k + self.bias         # -> QMulScalar, QAdd with a constant
        return torch.cat([y, a], 1)        # -> QCat


@settings(deadline=None, max_examples=15)
@given(seed=seeds, c=st.floats(0.25, 4.0), n=st.integers(1, 3), hw=st.integers(1, 5))
def test_float_functional_is_exact_in_fp32(seed, c, n, hw):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = Arith(c)
    x = torch.randn(n, 4, hw, hw, generator=gen)
    gm, rep = _run(model, x, ["float_functional"])
    kinds = _modules(gm)
    for cls in (QAddReLU, QAdd, QMul, QMulScalar, QAddScalar, QCat):
        assert cls in kinds, cls
    left = [f for f in _functions(gm) if f in (operator.add, operator.sub, operator.mul, operator.truediv, torch.cat)]
    assert left == []
    # same torch ops in the same order, except x / c -> x * (1 / c): one rounding (~1.2e-7 relative)
    # per element, so 1e-6 relative to the output scale; anything else would be a wrong rewrite
    assert_equivalent(gm, model, x, rtol=1e-6)


def test_float_functional_negative_cases():
    class Keep(nn.Module):
        def forward(self, a):
            return torch.add(a, a, alpha=2.0) + 0 * a.size(0), a / a.abs().add(1.0)

    x = torch.randn(2, 3)
    gm, rep = _run(Keep(), x, ["float_functional"])
    reasons = [s.reason for s in rep.record("float_functional").skipped]
    assert any("alpha" in r for r in reasons) and any("division by a tensor" in r for r in reasons)
    assert torch.add in _functions(gm) and operator.truediv in _functions(gm)
    assert_equivalent(gm, Keep(), x, rtol=0.0)
    # not the eager flow (xnnpack): nothing happens
    gm2, rep2 = _run(Arith(2.0), torch.randn(1, 4, 2, 2), ["float_functional"], flow="pt2e")
    assert rep2.record("float_functional").matched == 0 and operator.add in _functions(gm2)


class ConvBnRelu(nn.Module):
    def __init__(self, dims: int, relu: str):
        super().__init__()
        conv, bn = {2: (nn.Conv2d, nn.BatchNorm2d), 3: (nn.Conv3d, nn.BatchNorm3d)}[dims]
        self.conv, self.bn = conv(3, 6, 3, padding=1), bn(6)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(6, 4)
        self.kind = relu

    def forward(self, x):
        y = self.bn(self.conv(x))
        y = self.relu(y) if self.kind == "module" else torch.relu(y)
        return torch.relu(self.fc(y.flatten(2).mean(-1)))


@settings(deadline=None, max_examples=10)
@given(seed=seeds, dims=st.sampled_from([2, 3]), relu=st.sampled_from(["module", "function"]))
def test_fuse_modules_folds_bn_and_relu(seed, dims, relu):
    torch.manual_seed(seed)
    model = ConvBnRelu(dims, relu).eval()
    randomize_bn(model.bn, seed)
    x = torch.randn((2, 3, 4, 5, 5)[: dims + 2], generator=torch.Generator().manual_seed(seed))
    gm, rep = _run(model, x, ["fuse_modules"])
    names = [t.__name__ for t in _modules(gm)]
    assert names == [f"ConvReLU{dims}d", "LinearReLU"]
    assert rep.record("fuse_modules").rewritten == 2
    # The final ReLU can zero nearly every logit, leaving max|out| far below the values whose
    # rounding the fold changes; the error bound is 1e-5 of the fc's pre-activation scale.
    with torch.no_grad():
        y = torch.relu(model.bn(model.conv(x)))
        scale = model.fc(y.flatten(2).mean(-1)).abs().max().item()
    assert_equivalent(gm, model, x, rtol=1e-5, atol=1e-5 * scale)


def test_fuse_modules_leaves_shared_values_alone():
    class Branch(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y  # the conv output has two users: BN cannot be folded into it

    model = Branch().eval()
    randomize_bn(model.bn, 1)
    gm, rep = _run(model, torch.randn(1, 3, 4, 4), ["fuse_modules"])
    assert _modules(gm) == [nn.Conv2d, nn.BatchNorm2d] and rep.record("fuse_modules").rewritten == 0


def test_quantizable_activations_respell_swish_and_hardswish():
    class Acts(nn.Module):
        def __init__(self):
            super().__init__()
            self.silu = nn.SiLU()

        def forward(self, x):
            return torch.nn.functional.hardswish(self.silu(x)) + torch.nn.functional.silu(x)

    x = torch.randn(2, 3, 4, 4)
    gm, rep = _run(Acts(), x, ["quantizable_activations"])
    assert nn.SiLU not in _modules(gm) and nn.Hardswish in _modules(gm)
    assert torch.nn.functional.silu not in _functions(gm) and _functions(gm).count(torch.sigmoid) == 2
    assert rep.record("quantizable_activations").rewritten == 3
    assert_equivalent(gm, Acts(), x, rtol=1e-6)


class Islands(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.soft = nn.Softmax(1)
        self.conv2 = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.conv(x.reshape(x.shape[0], 3, 4, 4))  # reshape stays in the input's domain (float)
        y = self.soft(y)                               # float island
        return self.conv2(y).flatten(1), y.shape[0]


def test_quant_stubs_places_stubs_at_domain_changes():
    x = torch.randn(2, 48)
    gm, rep = _run(Islands(), x, ["float_functional", "quant_stubs", "set_qconfig"])
    order = [t.__name__ for t in _modules(gm)]
    assert order == ["QuantStub", "Conv2d", "DeQuantStub", "Softmax", "QuantStub", "Conv2d", "DeQuantStub"]
    reshape = next(n for n in gm.graph.nodes if n.target == "reshape")
    assert reshape.args[0].op == "placeholder"  # quantized after the reshape, not before
    assert any("soft (Softmax)" in note for note in rep.record("quant_stubs").notes)
    # qconfig only on the int8 modules and stubs
    with_qconfig = {n for n, m in gm.named_modules() if getattr(m, "qconfig", None) is not None}
    assert "soft" not in with_qconfig and {"conv", "conv2"} <= with_qconfig and gm.qconfig is None
    out = gm(x)
    assert out[1] == 2 and torch.allclose(out[0], Islands.forward(gm, x)[0])


def test_quant_stubs_skip_keeps_a_layer_float():
    x = torch.randn(2, 48)
    gm, rep = _run(Islands(), x, ["quant_stubs", "set_qconfig"], skip={"conv2": "skip="})
    assert getattr(gm.conv2, "qconfig", None) is None and gm.conv.qconfig is not None
    assert [s.where for s in rep.record("quant_stubs").skipped] == ["conv2"]
    assert sum(t is QuantStub for t in _modules(gm)) == 1 and sum(t is DeQuantStub for t in _modules(gm)) == 1
