"""int8 on the *trained* X3D-XS (``zoo.x3d("XS", weights="synthetic")``), judged by accuracy.

Random-weight figures say little (a random X3D's logits hardly depend on the input); this network
was trained on :mod:`fxaccel.zoo.synthetic` (tools/train_zoo.py) and is scored on that task's test
clips, never seen in training or calibration. The budget of the issue: int8 top-1 within 1 point
of fp32 and logits SQNR >= 20 dB vs fp32. The fast tests use 100 test clips (one clip is 1 point
of top-1, so the fast floor allows 2 flips); the slow ones the full 1,000 of docs/int8.md.
"""
from __future__ import annotations

import pytest
import torch

import fxaccel
from fxaccel.zoo import synthetic
from fxaccel.zoo.x3d import SHIPPED_WEIGHTS, shipped_weights, x3d

SQNR_FLOOR_DB = 20.0


@pytest.fixture(scope="module")
def trained():
    model = x3d("XS", weights="synthetic")
    x = synthetic.example_input()
    return model, x, fxaccel.deploy(model, x, target="mobile_cpu"), fxaccel.deploy(model, x, target="x86")


def _calib(n: int = 8):
    return synthetic.clips("train", n=n, batch=1)  # (clips, labels): quantize ignores the labels


def test_shipped_checkpoint_is_small_checked_and_accurate(trained):
    model = trained[0]
    path = shipped_weights("XS", "synthetic")
    assert path.stat().st_size <= 8_000_000
    right = sum((model(c).argmax(-1) == y).sum().item() for c, y in synthetic.clips("test", n=200, batch=50))
    assert right / 200 >= 0.95, f"fp32 top-1 {right / 200:.3f} on 200 test clips"


def test_a_damaged_checkpoint_is_refused(monkeypatch):
    monkeypatch.setitem(SHIPPED_WEIGHTS, ("XS", "synthetic"), ("x3d_xs_synthetic.pt", "0" * 64))
    with pytest.raises(ValueError, match="damaged or was replaced"):
        x3d("XS", weights="synthetic")
    with pytest.raises(ValueError, match="no shipped weights 'synthetic' for X3D-S"):
        x3d("S", weights="synthetic")


@pytest.mark.parametrize("backend", ["qnnpack", "x86"])
def test_int8_keeps_top1_and_sqnr_on_test_clips(trained, backend):
    _, _, mobile, x86 = trained
    q = fxaccel.quantize(x86 if backend == "x86" else mobile, _calib(), backend=backend,
                         eval_data=synthetic.clips("test", n=100, batch=50))
    extra = fxaccel.report_of(q).extra
    print(f"\n{backend}: fp32 {extra['fp32_top1']}, int8 {extra['int8_top1']}, SQNR {extra['eval_sqnr_db']} dB")
    assert extra["fp32_top1"] >= 0.95
    assert extra["int8_top1"] >= extra["fp32_top1"] - 0.02
    assert extra["eval_sqnr_db"] >= SQNR_FLOOR_DB


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["qnnpack", "x86", "xnnpack"])
def test_int8_on_the_full_test_split(trained, backend, tmp_path):
    """1,000 test clips; for xnnpack the .pte itself, run on the ExecuTorch runtime."""
    _, x, mobile, x86 = trained
    labelled = synthetic.clips("test", n=1000, batch=50)
    q = fxaccel.quantize(x86 if backend == "x86" else mobile, _calib(32), backend=backend, eval_data=labelled)
    extra = fxaccel.report_of(q).extra
    assert extra["int8_top1"] >= extra["fp32_top1"] - 0.01 and extra["eval_sqnr_db"] >= SQNR_FLOOR_DB, extra
    if backend == "xnnpack":
        pytest.importorskip("executorch")
        from fxaccel.lowering.executorch import load_pte

        program = load_pte(fxaccel.export(q, x, tmp_path / "int8.pte"))
        with torch.no_grad():
            refs = torch.cat([mobile(c) for c, _ in labelled])
        outs = torch.cat([program(c[i:i + 1]) for c, _ in labelled for i in range(len(c))])
        labels = torch.cat([y for _, y in labelled])
        top1 = (outs.argmax(-1) == labels).float().mean().item()
        assert top1 >= extra["fp32_top1"] - 0.01
        assert fxaccel.testing.sqnr_db(refs, outs) >= SQNR_FLOOR_DB
