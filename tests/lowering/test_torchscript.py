"""TorchScript writer: .pt and .ptl round trips match eager, int8 eager-quantized models save,
optimize_for_mobile is skipped (not crashed) where torch has no XNNPACK, bad requests are refused.

Tolerances: freezing folds BN into conv weights and the JIT may fuse ops, which reorders fp32 sums:
~1e-6 relative to the output's largest magnitude; the default bound 1e-5 (10x margin) still
catches any wrong weight (errors of order 1). int8 eager models run the same quantized kernels
traced or not, so they must agree to the same bound after dequantizing.
"""
import logging

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn

from fxaccel import errors
from fxaccel.lowering.torchscript import load_torchscript, to_torchscript
from fxaccel.testing import assert_equivalent, randomize_bn, seeds


class TinyFolded(nn.Module):
    """Time-folded 4-D video net: fold, conv+BN+ReLU, hardswish, SE, time slice-add, head."""

    def __init__(self, c_in=3, c=6, classes=4, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.stem = nn.Conv2d(c_in, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.se1, self.se2 = nn.Conv2d(c, 3, 1), nn.Conv2d(3, c, 1)
        self.fc = nn.Linear(c, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        randomize_bn(self.bn, seed)

    def forward(self, x):
        n, c, t, h, w = x.shape
        y = torch.relu(self.bn(self.stem(x.transpose(1, 2).reshape(n * t, c, h, w))))
        z = F.hardswish(self.dw(y))
        z = z * torch.sigmoid(self.se2(torch.relu(self.se1(z.mean((-1, -2), keepdim=True)))))
        v = z.reshape(n, t, -1)
        z = torch.cat([v[:, :1], v[:, 1:] + v[:, :-1]], 1).reshape(n * t, -1, h, w)
        m = (y + z).mean((-1, -2), keepdim=True).reshape(n, t, -1).mean(1)
        return self.fc(m)


def _x(seed=0, shape=(2, 3, 3, 6, 6)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("suffix, lite", [(".pt", False), (".ptl", True)])
def test_round_trip_matches_and_reports(tmp_path, suffix, lite, caplog):
    model, x = TinyFolded().eval(), _x()
    with caplog.at_level(logging.WARNING, logger="fxaccel.lowering.torchscript"):
        info = to_torchscript(model, (x,), tmp_path / f"m{suffix}")
    assert info.lite is lite and info.frozen and info.path.exists()
    assert info.check["metric"] == "rel_err" and info.check["value"] < 1e-5
    # Loaded back on new data it computes the model, not just the example it was traced on.
    assert_equivalent(load_torchscript(info.path), model, (_x(1),), rtol=1e-5)
    if lite and not torch._C._is_xnnpack_enabled():
        assert not info.optimized_for_mobile
        assert any("optimize_for_mobile" in s for s in info.skipped)
        assert "optimize_for_mobile" in caplog.text
    if not lite:
        assert info.skipped == [] and not info.optimized_for_mobile  # .pt is not optimized by default
    assert info.to_dict()["path"] == str(info.path)


@pytest.mark.parametrize("suffix, has_bytecode", [(".pt", False), (".ptl", True)])
def test_lite_file_carries_mobile_bytecode(tmp_path, suffix, has_bytecode):
    import zipfile

    info = to_torchscript(TinyFolded().eval(), (_x(),), tmp_path / f"m{suffix}")
    names = zipfile.ZipFile(info.path).namelist()
    assert any(n.endswith("bytecode.pkl") for n in names) is has_bytecode


def test_training_flags_restored(tmp_path):
    model = TinyFolded().train()
    before = model.bn.running_mean.clone()
    to_torchscript(model, (_x(),), tmp_path / "m.pt")
    assert model.training and model.bn.training
    assert torch.equal(model.bn.running_mean, before)


@pytest.mark.parametrize("suffix", [".pt", ".ptl"])
def test_bundled_inputs(tmp_path, suffix):
    x = _x()
    info = to_torchscript(TinyFolded().eval(), (x,), tmp_path / f"m{suffix}", bundled_inputs=True)
    loaded = load_torchscript(info.path)
    get = loaded.get_all_bundled_inputs if suffix == ".pt" else lambda: loaded.run_method("get_all_bundled_inputs")
    (bundled,) = get()
    assert torch.equal(bundled[0], x)
    assert info.bundled_inputs


def test_format_must_be_clear(tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        to_torchscript(nn.ReLU(), (torch.randn(2),), tmp_path / "m.bin")
    with pytest.raises(ValueError, match="contradicts"):
        to_torchscript(nn.ReLU(), (torch.randn(2),), tmp_path / "m.pt", lite=True)
    info = to_torchscript(nn.ReLU(), (torch.randn(2),), tmp_path / "m.bin", lite=False)
    assert not info.lite and info.path.exists()


class _BakesACounter(nn.Module):
    """Tracing records Python values as constants: here a call counter, so the trace is wrong."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * self.calls


def test_wrong_trace_raises_export_mismatch(tmp_path):
    with pytest.raises(errors.ExportMismatch, match="does not match"):
        to_torchscript(_BakesACounter(), (torch.ones(3),), tmp_path / "m.pt")


def test_xnnpack_build_runs_optimize_for_mobile(tmp_path, monkeypatch):
    """Where torch has XNNPACK the optimizer runs (faked here: this x86 wheel has none)."""
    import torch.utils.mobile_optimizer as mo

    calls = []
    monkeypatch.setattr(torch._C, "_is_xnnpack_enabled", lambda: True)
    monkeypatch.setattr(mo, "optimize_for_mobile", lambda m: calls.append(m) or m)
    info = to_torchscript(TinyFolded().eval(), (_x(),), tmp_path / "m.ptl")
    assert info.optimized_for_mobile and info.skipped == [] and len(calls) == 1


# ------------------------------------------------------------------ int8 (eager mode)


class _QuantConvRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.relu(self.conv(self.quant(x))))


def _eager_int8(engine: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = _QuantConvRelu().eval()
    model.qconfig = torch.ao.quantization.get_default_qconfig(engine)
    fused = torch.ao.quantization.fuse_modules(model, [["conv", "relu"]])
    prepared = torch.ao.quantization.prepare(fused)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(4):
        prepared(torch.randn(2, 3, 8, 8, generator=gen))
    return torch.ao.quantization.convert(prepared)


@pytest.mark.parametrize("engine", ["qnnpack", "x86"])
@pytest.mark.parametrize("suffix", [".pt", ".ptl"])
def test_eager_int8_traces_saves_and_matches(tmp_path, engine, suffix, monkeypatch):
    if engine not in torch.backends.quantized.supported_engines:
        pytest.skip(f"quantized engine {engine} not in this torch build")
    monkeypatch.setattr(torch.backends.quantized, "engine", engine)
    model, x = _eager_int8(engine), torch.randn(2, 3, 8, 8)
    info = to_torchscript(model, (x,), tmp_path / f"q{suffix}")
    assert info.check["value"] < 1e-5
    assert_equivalent(load_torchscript(info.path), model, (torch.randn(2, 3, 8, 8),), rtol=1e-5)


# ------------------------------------------------------------------ property


@settings(deadline=None, max_examples=5)
@given(c=st.integers(1, 4), width=st.integers(2, 8), t=st.integers(2, 4), hw=st.integers(3, 7), seed=seeds,
       lite=st.booleans())
def test_random_tiny_nets_round_trip(tmp_path_factory, c, width, t, hw, seed, lite):
    model = TinyFolded(c_in=c, c=width, seed=seed).eval()
    path = tmp_path_factory.mktemp("ts") / ("m.ptl" if lite else "m.pt")
    info = to_torchscript(model, (_x(seed, (2, c, t, hw, hw)),), path)
    assert info.check["value"] < 1e-5
