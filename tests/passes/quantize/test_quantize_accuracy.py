"""quantize(eval_data=...): top-1 of fp32 and int8 on labelled data; keep_float="auto"; observers.

The labels here are made so that fp32 top-1 is known exactly: the first half of the clips are
labelled with the fp32 model's own arg-max, the second half with another class.
"""
from __future__ import annotations

import pytest
import torch

import fxaccel
from fxaccel.quantizing import quantize

from _quantize_helpers import SHAPE, DeployFormNet, clips


def _labelled(model, n: int = 6):
    """``n`` batches (clips, labels); fp32 top-1 on them is exactly 0.5."""
    out = []
    for i, x in enumerate(clips(n, seed=300)):
        with torch.no_grad():
            pred = model(x).argmax(-1)
        out.append((x, pred if i < n // 2 else (pred + 1) % 5))
    return out


@pytest.fixture(scope="module")
def model():
    return DeployFormNet("mobile_cpu", seed=6).eval()


@pytest.mark.parametrize("backend", ["qnnpack", "x86"])
def test_eval_data_reports_top1_of_fp32_and_int8(model, backend):
    q = quantize(model, clips(3), backend=backend, eval_data=_labelled(model))
    extra = fxaccel.report_of(q).extra
    assert extra["fp32_top1"] == 0.5 and extra["eval_clips"] == 6 * SHAPE[0]
    # int8 (>= 25 dB here) flips few arg-maxes: within 2 of the 12 clips of fp32's 0.5
    assert abs(extra["int8_top1"] - 0.5) <= 2 / 12, extra
    assert extra["eval_sqnr_db"] > 20 and extra["observer"] == "histogram"


def test_auto_with_a_budget_int8_meets_keeps_every_layer_int8(model):
    q = quantize(model, clips(3), eval_data=_labelled(model), keep_float="auto", min_sqnr_db=0.0, max_top1_drop=1.0)
    extra = fxaccel.report_of(q).extra
    assert extra["auto_keep_float"]["kept"] == 0 and extra["kept_float"] == []
    assert [t["kept"] for t in extra["auto_keep_float"]["tries"]] == [0]


class _FakeFlow:
    """Stands in for a quantize flow: the model is the set of layers kept fp32."""

    def __init__(self, n_layers: int):
        self.n, self.calls = n_layers, 0

    def quantize(self, model, items, skips, target, show):
        self.calls += 1
        layers = [{"name": f"l{i}", "int8": f"l{i}" not in skips, "sqnr_db": float(i), "reason": None}
                  for i in range(self.n)]
        return frozenset(skips), None, layers


class _FakeEvaluation:
    """Top-1 drops by 0.1 per int8 layer among the ``harmful`` worst ones."""

    def __init__(self, harmful: int):
        self.harmful = harmful

    def measure(self, kept):
        missing = sum(1 for i in range(self.harmful) if f"l{i}" not in kept)
        return {"fp32_top1": 0.9, "int8_top1": 0.9 - 0.1 * missing, "eval_sqnr_db": 30.0}


@pytest.mark.parametrize("n_layers, harmful", [(12, 0), (12, 1), (12, 5), (12, 12), (3, 2)])
def test_auto_search_finds_the_fewest_layers_with_few_tries(n_layers, harmful):
    from fxaccel.quantizing import _auto_keep_float

    flow = _FakeFlow(n_layers)
    first = flow.quantize(None, None, {}, None, False)
    kept, _, _, searched = _auto_keep_float(flow, None, None, {}, None, False, first, _FakeEvaluation(harmful),
                                            0.01, 20.0)
    assert searched["kept"] == harmful and kept == {f"l{i}" for i in range(harmful)}  # worst first
    verdicts = {t["kept"]: t["meets"] for t in searched["tries"]}
    assert verdicts[harmful] and (harmful == 0 or not verdicts[harmful - 1])
    assert flow.calls <= 2 * n_layers.bit_length() + 2  # doubling then bisection, not one try per layer


def test_auto_says_so_when_no_mix_meets_the_budget():
    from fxaccel.quantizing import _auto_keep_float

    flow = _FakeFlow(4)

    class Never(_FakeEvaluation):
        def measure(self, kept):
            return {"fp32_top1": 0.9, "int8_top1": 0.5, "eval_sqnr_db": 10.0}

    with pytest.raises(ValueError, match="even with all 4 layers in fp32"):
        _auto_keep_float(flow, None, None, {}, None, False, flow.quantize(None, None, {}, None, False), Never(0),
                         0.01, 20.0)


def test_minmax_observer_is_an_option(model):
    q = quantize(model, clips(3), observer="minmax", eval_data=_labelled(model))
    extra = fxaccel.report_of(q).extra
    assert extra["observer"] == "minmax" and extra["eval_sqnr_db"] > 20


def test_xnnpack_evaluates_in_chunks_of_its_exported_batch(model):
    pytest.importorskip("executorch")
    labelled = [(torch.cat([a, b]), torch.cat([la, lb])) for (a, la), (b, lb) in zip(*[iter(_labelled(model))] * 2)]
    q = quantize(model, clips(2), backend="xnnpack", eval_data=labelled)  # exported for batch 2, eval batch 4
    extra = fxaccel.report_of(q).extra
    assert extra["fp32_top1"] == 0.5 and extra["eval_clips"] == 12 and extra["eval_sqnr_db"] > 20
    with pytest.raises(ValueError, match="multiple of it"):
        quantize(model, clips(2), backend="xnnpack", eval_data=[(torch.cat(clips(2))[:3], torch.zeros(3, dtype=torch.long))])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"keep_float": "auto"}, ValueError, "needs eval_data"),
    ({"keep_float": "most"}, ValueError, "or 'auto'"),
    ({"observer": "percentile"}, ValueError, "unknown observer"),
    ({"eval_data": torch.randn(SHAPE)}, TypeError, "without labels"),
    ({"eval_data": [(torch.randn(SHAPE), torch.rand(2))]}, TypeError, "integer class"),
    ({"eval_data": []}, ValueError, "empty"),
])
def test_bad_evaluation_arguments_say_the_fix(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        quantize(model, clips(1), **kwargs)
