"""fxaccel.quantize(backend="xnnpack"): the pt2e flow for ExecuTorch, on a hand-made mobile deploy form.

Floor: this net measured 39 dB (symmetric int8, per-channel weights); 30 dB leaves observer noise
room and still fails if a layer silently stays fp32-unobserved or loses bits.
"""
from __future__ import annotations

import builtins
import copy

import pytest
import torch
from torch import fx

import fxaccel
from fxaccel.errors import MissingDependency
from fxaccel.quantizing import quantize

from _quantize_helpers import DeployFormNet, clips, layer_names

pytest.importorskip("executorch")
pytestmark = pytest.mark.executorch


def _quantize_ops(gm: fx.GraphModule) -> list[fx.Node]:
    return [n for n in gm.graph.nodes if "quantize_per_tensor" in str(n.target) and "dequantize" not in str(n.target)]


@pytest.fixture(scope="module")
def quantized():
    model = DeployFormNet("mobile_cpu", seed=5).eval()
    before = copy.deepcopy(model.state_dict())
    return model, before, quantize(model, clips(3), backend="xnnpack")


def test_xnnpack_int8_runs_and_reports(quantized):
    model, before, q = quantized
    assert isinstance(q, fx.GraphModule) and len(_quantize_ops(q)) > 5
    x = clips(1, seed=11)[0]
    with torch.no_grad():
        assert fxaccel.testing.sqnr_db(model(x), q(x)) >= 27
    rep = fxaccel.report_of(q)
    assert rep.stage == "quantize" and rep.extra["backend"] == "xnnpack"
    assert rep.extra["output_sqnr_db"] >= 30 and rep.extra["kept_float"] == []
    names = layer_names(rep)
    assert "fc" in names and "stem.inner.conv" in names and len(names) == 8
    assert all(lay["int8"] and lay["sqnr_db"] > 25 for lay in rep.layers)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    print(f"\nxnnpack: output SQNR {rep.extra['output_sqnr_db']} dB")


def test_xnnpack_result_lowers_to_pte(quantized):
    to_pte = pytest.importorskip("fxaccel.lowering.executorch").to_pte
    model, _, q = quantized
    x = clips(1, seed=12)[0]
    art = to_pte(q, (x,), verify=True, sqnr_floor=25.0, reference=model)
    assert art is not None


def test_xnnpack_skip_leaves_layers_unquantized():
    model = DeployFormNet("mobile_cpu", seed=6).eval()
    q = quantize(model, clips(2), backend="xnnpack", skip=["fc", "conv_b"])
    rep = fxaccel.report_of(q)
    kept = set(rep.extra["kept_float"])
    assert "fc" in kept and any(n.startswith("conv_b.") for n in kept)
    assert all(n == "fc" or n.startswith("conv_b.") for n in kept)
    fc = [n for n in q.graph.nodes if "linear" in str(n.target)
          and list((n.meta.get("nn_module_stack") or {}).values())[-1][0] == "fc"]
    assert len(fc) == 1 and fc[0].args[1].op == "get_attr"  # fp32 weight, no dequantize in front
    se = [n for n in q.graph.nodes if "linear" in str(n.target) and n not in fc]
    assert se and all("dequantize" in str(n.args[1].target) for n in se)  # the others stay int8
    assert all(lay["reason"] == "skip=" for lay in rep.layers if not lay["int8"])


def test_missing_executorch_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_executorch(name, *args, **kwargs):
        if name.startswith("executorch"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_executorch)
    with pytest.raises(MissingDependency, match=r'pip install "fxaccel\[executorch\]"'):
        quantize(DeployFormNet("mobile_cpu"), clips(1), backend="xnnpack")


def test_xnnpack_needs_one_fixed_shape():
    model = DeployFormNet("mobile_cpu").eval()
    data = [clips(1)[0], clips(1)[0][:1]]
    with pytest.raises(ValueError, match="same shape, batch included"):
        quantize(model, data, backend="xnnpack")
