"""fxaccel.quantize, eager-mode backends (qnnpack, x86), on hand-made deploy-form models.

SQNR floors: 8-bit activations give ~40 dB per op at best; this 6-layer net measured 38 dB
(qnnpack) and 31 dB (x86, whose default qconfig keeps activations to 7 bits). Floors sit several
dB below, so a regression that loses a few bits (a float island quantized twice, per-tensor
depthwise weights, a wrong zero point) fails while observer noise does not.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import fx, nn
from torch.utils.data import DataLoader, TensorDataset

import fxaccel
from fxaccel.quantizing import quantize

from _quantize_helpers import SHAPE, DeployFormNet, clips, layer_names

FLOOR_DB = {"qnnpack": 30.0, "x86": 25.0}
TARGET = {"qnnpack": "mobile_cpu", "x86": "x86"}


@pytest.fixture(scope="module", params=["qnnpack", "x86"])
def quantized(request):
    backend = request.param
    model = DeployFormNet(TARGET[backend]).eval()
    before = copy.deepcopy(model.state_dict())
    q = quantize(model, clips(), backend=backend)
    return backend, model, before, q


def _quantized_types(q: nn.Module) -> set[str]:
    return {type(m).__name__ for m in q.modules() if type(m).__module__.startswith("torch.ao.nn.")}


def test_int8_runs_and_is_close(quantized):
    backend, model, _, q = quantized
    x = clips(1, seed=7)[0]  # not a calibration clip
    with torch.no_grad():
        ref, out = model(x), q(x)
    assert out.dtype == torch.float32 and not out.is_quantized  # dequantized at the boundary
    assert fxaccel.testing.sqnr_db(ref, out) >= FLOOR_DB[backend] - 3
    rep = fxaccel.report_of(q)
    assert rep.stage == "quantize" and rep.extra["backend"] == backend
    assert rep.extra["output_sqnr_db"] >= FLOOR_DB[backend]
    assert rep.extra["top1_agreement"] >= 0.75
    print(f"\n{backend}: output SQNR {rep.extra['output_sqnr_db']} dB, top-1 {rep.extra['top1_agreement']}")


def test_every_layer_is_int8_with_sqnr(quantized):
    backend, _, _, q = quantized
    rep = fxaccel.report_of(q)
    assert rep.extra["kept_float"] == []
    assert all(lay["int8"] and lay["sqnr_db"] is not None and lay["sqnr_db"] > 25 for lay in rep.layers)
    assert "fc" in layer_names(rep)
    # structure: the weighted layers really are int8 modules, no float conv/linear is left
    float_layers = [n for n, m in q.named_modules() if type(m) in (nn.Conv2d, nn.Conv3d, nn.Linear)]
    assert float_layers == []
    kinds = _quantized_types(q)
    assert {"Quantize", "DeQuantize", "QFunctional", "Linear"} <= kinds
    assert "ConvReLU2d" in kinds  # stem conv + ReLU fused; both targets run a 1x3x3 conv as conv2d over frames
    assert ("Conv2d" if backend == "qnnpack" else "Conv3d") in kinds  # the depthwise 3x3x3: x86 keeps conv3d


def test_input_model_untouched(quantized):
    _, model, before, _ = quantized
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not any(hasattr(m, "activation_post_process") or getattr(m, "qconfig", None) for m in model.modules())


def test_torchscript_trace(quantized):
    backend, _, _, q = quantized
    x = clips(1, seed=8)[0]
    ts = torch.jit.trace(q, (x,), check_trace=False)
    with torch.no_grad():
        assert torch.equal(ts(x), q(x))


def test_graph_module_input_and_previous_report():
    model = DeployFormNet("mobile_cpu", seed=1).eval()
    gm = fx.symbolic_trace(model)  # a GraphModule like deploy's output; no report on it
    q = quantize(gm, clips(2), backend="qnnpack")
    assert fxaccel.report_of(q).previous is None
    rep = fxaccel.Report("deploy", "mobile_cpu")
    from fxaccel.report import attach
    attach(gm, rep)
    q2 = quantize(gm, clips(2), backend="qnnpack")
    assert fxaccel.report_of(q2).previous is rep


def test_skip_keeps_named_layers_and_blocks_float():
    model = DeployFormNet("mobile_cpu", seed=2).eval()
    q = quantize(model, clips(2), backend="qnnpack", skip=["fc", "conv_b"])
    rep = fxaccel.report_of(q)
    kept = set(rep.extra["kept_float"])
    assert "fc" in kept and {n for n in layer_names(rep) if n.startswith("conv_b.")} <= kept
    assert kept and all(n == "fc" or n.startswith("conv_b.") for n in kept)
    assert type(q.fc) is nn.Linear  # still fp32
    taps = [m for n, m in q.named_modules() if n.startswith("conv_b.inner.taps.") and n[-1].isdigit()]
    assert len(taps) == 3 and all(type(m) is nn.Conv2d for m in taps)
    assert all(lay["reason"] == "skip=" for lay in rep.layers if not lay["int8"])
    with torch.no_grad():
        assert q(clips(1, seed=9)[0]).shape == (2, 5)


def test_keep_float_drops_the_worst_layers():
    model = DeployFormNet("mobile_cpu", seed=3).eval()
    data = clips(2)
    plain = fxaccel.report_of(quantize(model, data, backend="qnnpack"))
    worst = min((lay for lay in plain.layers), key=lambda lay: lay["sqnr_db"])["name"]
    q = quantize(model, data, backend="qnnpack", keep_float=1)
    rep = fxaccel.report_of(q)
    assert rep.extra["kept_float"] == [worst]
    assert "keep_float" in next(lay for lay in rep.layers if lay["name"] == worst)["reason"]


def test_dataloader_with_labels_and_progress():
    xs = torch.cat(clips(2))
    loader = DataLoader(TensorDataset(xs, torch.zeros(len(xs), dtype=torch.long)), batch_size=2)
    model = DeployFormNet("mobile_cpu", seed=4).eval()
    q = quantize(model, loader, backend="qnnpack", progress=True)
    assert fxaccel.report_of(q).extra["calibration_items"] == 2


def test_functional_ops_without_int8_kernel_become_float_islands():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1)
            self.conv2 = nn.Conv2d(6, 6, 1)

        def forward(self, x):
            y = torch.softmax(self.conv(x), 1) * 4.0 - 1.0   # softmax: no int8 kernel
            y = torch.nn.functional.hardswish(y) + y / 2      # functional hardswish, add, div
            return self.conv2(torch.cat([y, y], 0)).mean((2, 3))

    model = Odd().eval()
    data = [torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    q = quantize(model, data, backend="qnnpack")
    rep = fxaccel.report_of(q)
    notes = [n for p in rep.passes for n in p.notes]
    assert any("softmax" in n and "fp32" in n for n in notes)
    assert rep.extra["output_sqnr_db"] > 20
    assert type(q.conv) is not nn.Conv2d and type(q.conv2) is not nn.Conv2d


@pytest.mark.parametrize("bad, error, match", [
    (None, ValueError, "calibration_data is required"),
    ([], ValueError, "empty"),
    (iter(()), ValueError, "empty"),
    (42, TypeError, "iterable"),
    (["clip"], TypeError, "item 0"),
])
def test_calibration_data_errors(bad, error, match):
    with pytest.raises(error, match=match):
        quantize(DeployFormNet("mobile_cpu"), bad)


def test_wrong_input_shape_errors():
    model = DeployFormNet("mobile_cpu").eval()
    with pytest.raises(ValueError, match="item 1 has shape"):
        quantize(model, [torch.randn(SHAPE), torch.randn(2, 3, 6, 12, 12)])
    with pytest.raises(ValueError, match=r"Check the input rank|deploy again"):
        quantize(model, [torch.randn(2, 3, 6, 12, 12)])


def test_backend_and_option_errors():
    model = DeployFormNet("mobile_cpu")
    with pytest.raises(ValueError, match="unknown backend 'fbgemm'.*qnnpack, x86, xnnpack"):
        quantize(model, clips(1), backend="fbgemm")
    with pytest.raises(ValueError, match="keep_float"):
        quantize(model, clips(1), keep_float=-1)
    with pytest.raises(TypeError, match="nn.Module"):
        quantize(lambda x: x, clips(1))
