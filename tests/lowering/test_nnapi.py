"""NNAPI writer: conversion succeeds and the file loads for the ops NNAPI accepts; refused ops give
UnsupportedByNNAPI naming them; the three interfaces (float, quant core with float IO, quant).

NNAPI models run only on Android, so nothing here compares numbers: these tests pin down what the
converter accepts (the facts in fxaccel.lowering.nnapi's docstring), which decides how deploy forms
for NNAPI are written.
"""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn

from fxaccel import errors
from fxaccel.lowering.nnapi import supported_ops, to_nnapi
from fxaccel.testing import randomize_bn, seeds

N, C, T, H, W = 2, 4, 3, 6, 6
X4 = (N * T, C, H, W)


class _Op(nn.Module):
    """A depthwise conv + BN feeding the op under test ``fn(self, x)``; (1,1,1,1) constants at hand."""

    def __init__(self, fn, seed=0):
        super().__init__()
        self.conv = nn.Conv2d(C, C, 3, padding=1, groups=C)
        self.bn = randomize_bn(nn.BatchNorm2d(C), seed)
        self.fc = nn.Linear(C, 3)
        self.register_buffer("three", torch.full((1, 1, 1, 1), 3.0))
        self.register_buffer("sixth", torch.full((1, 1, 1, 1), 1 / 6))
        self.fn = fn

    def forward(self, x):
        return self.fn(self, self.bn(self.conv(x)))


def _x(shape=X4, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


ACCEPTED = [
    ("relu", lambda s, x: torch.relu(x), "aten::relu"),
    ("sigmoid", lambda s, x: torch.sigmoid(x), "aten::sigmoid"),
    ("hardtanh 0..6", lambda s, x: F.hardtanh(x, 0.0, 6.0), "aten::hardtanh"),
    ("hardswish from hardtanh and buffers", lambda s, x: x * F.hardtanh(x + s.three, 0.0, 6.0) * s.sixth,
     "aten::hardtanh"),
    ("SE: mean keepdim, sigmoid, broadcast mul", lambda s, x: x * torch.sigmoid(x.mean((-1, -2), keepdim=True)),
     "aten::mul"),
    ("avg_pool2d with stride", lambda s, x: F.avg_pool2d(x, 2, 2), "aten::avg_pool2d"),
    ("adaptive_avg_pool2d", lambda s, x: F.adaptive_avg_pool2d(x, 1), "aten::adaptive_avg_pool2d"),
    ("slice-add along dim 0", lambda s, x: x[1:] + x[:-1], "aten::slice"),
    ("cat", lambda s, x: torch.cat([x, x], 1), "aten::cat"),
    ("head: mean without keepdim, linear", lambda s, x: s.fc(x.mean((-1, -2))), "aten::linear"),
    ("head with time mean", lambda s, x: s.fc(x.mean((-1, -2)).reshape(N, T, C).mean(1)), "aten::reshape"),
]


@pytest.mark.parametrize("case, fn, op", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_ops_convert_and_load(tmp_path, case, fn, op):
    info = to_nnapi(_Op(fn).eval(), (_x(),), tmp_path / "m.pt")
    assert op in info.ops and info.path.exists()
    assert info.interface == "float" and info.nhwc
    torch.jit.load(str(info.path))  # to_nnapi loads it too; a test that does not trust that


REFUSED = [
    ("hardswish", lambda s, x: F.hardswish(x), "aten::hardswish"),
    ("relu6", lambda s, x: F.relu6(x), "aten::relu6"),
    ("transpose", lambda s, x: x.transpose(2, 3), "aten::transpose"),
]


@pytest.mark.parametrize("case, fn, op", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_ops_are_named(tmp_path, case, fn, op):
    with pytest.raises(errors.UnsupportedByNNAPI) as info:
        to_nnapi(_Op(fn).eval(), (_x(),), tmp_path / "m.pt")
    assert op in info.value.ops and op in str(info.value)
    assert not (tmp_path / "m.pt").exists()


def test_view_needs_reshape_and_nchw(tmp_path):
    with pytest.raises(errors.UnsupportedByNNAPI, match="aten::view"):
        to_nnapi(_Op(lambda s, x: x.view(N * T, -1)).eval(), (_x(),), tmp_path / "m.pt", nhwc=False)
    # reshape of an NHWC operand: a handler exists but refuses this shape; the error says so.
    with pytest.raises(errors.UnsupportedByNNAPI, match="reshape"):
        to_nnapi(_Op(lambda s, x: x.reshape(N, T, -1)).eval(), (_x(),), tmp_path / "m.pt")
    info = to_nnapi(_Op(lambda s, x: x.reshape(N, T, -1)).eval(), (_x(),), tmp_path / "m.pt", nhwc=False)
    assert "aten::reshape" in info.ops


def test_python_scalar_operand_is_refused_with_hint(tmp_path):
    with pytest.raises(errors.UnsupportedByNNAPI, match="scalar"):
        to_nnapi(_Op(lambda s, x: torch.relu(x) * 2.0).eval(), (_x(),), tmp_path / "m.pt")


def test_conv3d_and_the_5d_fold_are_refused_with_the_deploy_fix(tmp_path):
    with pytest.raises(errors.UnsupportedByNNAPI) as info:
        to_nnapi(nn.Conv3d(C, C, 3).eval(), (_x((N, C, T, H, W)),), tmp_path / "m.pt")
    assert "aten::_convolution" in info.value.ops and 'target="mobile_cpu"' in str(info.value)

    class Fold(nn.Module):
        def forward(self, x):
            return torch.relu(x.transpose(1, 2).reshape(N * T, C, H, W))

    with pytest.raises(errors.UnsupportedByNNAPI, match="aten::transpose"):
        to_nnapi(Fold(), (_x((N, C, T, H, W)),), tmp_path / "m.pt")


def test_supported_ops_is_the_converters_table():
    ops = supported_ops()
    assert {"aten::conv2d", "aten::_convolution", "aten::mean", "aten::linear"} <= ops
    assert "aten::hardswish" not in ops


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="interface"):
        to_nnapi(_Op(lambda s, x: x).eval(), (_x(),), tmp_path / "m.pt", interface="int8")
    with pytest.raises(ValueError, match=".pt"):
        to_nnapi(_Op(lambda s, x: x).eval(), (_x(),), tmp_path / "m.ptl")
    with pytest.raises(ValueError, match="Quantize"):
        to_nnapi(_Op(lambda s, x: x).eval(), (_x(),), tmp_path / "m.pt", interface="quant")


# ------------------------------------------------------------------ quantized interfaces


class _QuantNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv = nn.Conv2d(C, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.conv2(self.relu(self.conv(self.quant(x)))))


@pytest.fixture
def qnnpack_int8(monkeypatch):
    if "qnnpack" not in torch.backends.quantized.supported_engines:
        pytest.skip("no qnnpack engine in this torch build")
    monkeypatch.setattr(torch.backends.quantized, "engine", "qnnpack")
    torch.manual_seed(0)
    model = _QuantNet().eval()
    model.qconfig = torch.ao.quantization.get_default_qconfig("qnnpack")
    prepared = torch.ao.quantization.prepare(torch.ao.quantization.fuse_modules(model, [["conv", "relu"]]))
    for seed in range(3):
        prepared(_x(seed=seed))
    return torch.ao.quantization.convert(prepared)


@pytest.mark.parametrize("interface", ["quant_core_float_io", "quant"])
def test_quantized_interfaces_convert_and_load(tmp_path, qnnpack_int8, interface):
    info = to_nnapi(qnnpack_int8, (_x(),), tmp_path / "q.pt", interface=interface)
    assert info.interface == interface
    assert "quantized::conv2d_relu" in info.ops and "quantized::conv2d" in info.ops
    loaded = torch.jit.load(str(info.path))
    # float IO keeps quantize/dequantize in TorchScript around the NNAPI core; "quant" has neither.
    assert hasattr(loaded, "quant") is (interface == "quant_core_float_io")
    if interface == "quant":  # the caller quantizes, so it is told how
        assert info.input_qparams == (float(qnnpack_int8.quant.scale), int(qnnpack_int8.quant.zero_point))
    else:
        assert info.input_qparams is None


# ------------------------------------------------------------------ property


@settings(deadline=None, max_examples=5)
@given(c=st.integers(1, 6), hw=st.integers(3, 8), seed=seeds, nhwc=st.booleans())
def test_random_conv_se_nets_convert(tmp_path_factory, c, hw, seed, nhwc):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(c, c + 1, 3, padding=1), randomize_bn(nn.BatchNorm2d(c + 1), seed), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c + 1, 2)).eval()
    # flatten of an NHWC (N, C, 1, 1) is the one NHWC flatten the converter allows (H == W == 1).
    info = to_nnapi(model, (_x((2, c, hw, hw), seed),), tmp_path_factory.mktemp("nn") / "m.pt", nhwc=nhwc)
    assert info.ops["aten::linear"] == 1
