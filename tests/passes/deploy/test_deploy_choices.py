"""Form choices: the built-in table, and tune=True (fastest candidate, cached by layer signature)."""
import json

import pytest
import torch
from torch import nn

import fxaccel
from fxaccel.forms.folded import TemporalTaps, TimeAsHeight
from fxaccel.forms.x86 import Conv3dAct, FrameTaps, PointwiseConv2dAct, PointwiseLinear
from fxaccel.choices import Tuner, builtin_choice, signature
from fxaccel.deploying import deploy
from fxaccel.targets import get_target
from fxaccel.testing import randomize_bn

from _deploy_helpers import RTOL, mobile_violations, rel_err


class _FakeTimer:
    """Deterministic 'timings': ``favourite`` form modules are fast; counts calls."""

    def __init__(self, favourite):
        self.favourite, self.calls = favourite, 0

    def __call__(self, module, inputs):
        self.calls += 1
        return 1.0 if isinstance(module, self.favourite) else 5.0


def _model(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv3d(3, 6, 1, bias=False), nn.BatchNorm3d(6), nn.ReLU(),          # pointwise
        nn.Conv3d(6, 6, (3, 1, 1), padding=(1, 0, 0), groups=6, bias=False),   # temporal
        nn.BatchNorm3d(6), nn.ReLU(),
    )
    for i, m in enumerate(model):
        if isinstance(m, nn.BatchNorm3d):
            randomize_bn(m, seed + i)
    return model.eval(), torch.randn(2, 3, 4, 6, 6, generator=torch.Generator().manual_seed(seed))


def test_builtin_table_defaults_and_unknown_kind():
    assert builtin_choice("mobile_cpu", "temporal_conv", "x") == "taps"
    assert builtin_choice("x86", "pointwise_conv", "x") == "linear"
    assert builtin_choice("x86", "spatial_conv", "x") == "frames2d"
    with pytest.raises(KeyError, match="no built-in choice for kind 'dense'"):
        builtin_choice("x86", "dense", "x")


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_x86_temporal_depthwise_choice_follows_the_thread_count(threads):
    """With one thread PyTorch runs this conv on its slow kernel: deploy picks frame taps then."""
    model, x = _model()
    for n, form in ((1, FrameTaps), (2, Conv3dAct)):
        threads(n)
        fast = deploy(model, x, target="x86", op_counts=False)
        kinds = [type(m) for m in fast.modules()]
        assert form in kinds and PointwiseLinear in kinds
        assert rel_err(fast, model, x) < RTOL
        rows = [r for r in fxaccel.report_of(fast).layers if "choices" in r]
        assert sorted(c for r in rows for c in r["choices"].values()) == \
            sorted(["linear", "taps" if n == 1 else "conv3d"])


def test_measured_entry_overrides_the_default(monkeypatch):
    model, x = _model()
    gm = fxaccel.transmute(model, x)
    conv_t = gm.get_submodule("3").conv
    sig = signature("temporal_conv", conv_t, (2, 6, 4, 6, 6), "relu")
    monkeypatch.setitem(get_target("mobile_cpu").measured, sig, "time_as_height")
    fast = deploy(gm, x, target="mobile_cpu")
    assert any(isinstance(m, TimeAsHeight) for m in fast.modules())
    assert rel_err(fast, model, x) < RTOL


def test_signature_is_batch_free():
    conv = nn.Conv3d(4, 4, (3, 1, 1))
    assert signature("temporal_conv", conv, (1, 4, 5, 6, 6)) == signature("temporal_conv", conv, (7, 4, 5, 6, 6))
    assert signature("temporal_conv", conv, (1, 4, 5, 6, 6)) != signature("temporal_conv", conv, (1, 4, 6, 6, 6))


def test_tune_on_mobile_keeps_the_fastest_and_caches_it(tmp_path):
    model, x = _model()
    timer = _FakeTimer(TimeAsHeight)
    tuner = Tuner(tmp_path, timer=timer, runtime="eager")
    fast = deploy(model, x, target="mobile_cpu", tune=tuner)
    assert any(isinstance(m, TimeAsHeight) for m in fast.modules())
    assert not any(isinstance(m, TemporalTaps) for m in fast.modules())
    assert rel_err(fast, model, x) < RTOL and mobile_violations(fast, x) == []
    assert timer.calls == 2  # one temporal layer, two candidates
    rows = [r for r in fxaccel.report_of(fast).layers if "ms" in r]
    assert rows and rows[0]["ms"][""] == {"taps": 5.0, "time_as_height": 1.0}
    assert rows[0]["choices"] == {"": "time_as_height"}

    again = deploy(model, x, target="mobile_cpu", tune=tuner)  # memory cache: nothing timed
    assert timer.calls == 2 and any(isinstance(m, TimeAsHeight) for m in again.modules())

    fresh = Tuner(tmp_path, timer=timer, runtime="eager")  # disk cache: nothing timed either
    deploy(model, x, target="mobile_cpu", tune=fresh)
    assert timer.calls == 2
    (cache,) = tmp_path.glob("choices-*.json")
    entry = next(iter(json.loads(cache.read_text()).values()))
    assert entry["form"] == "time_as_height"


def test_tuning_on_executorch_times_the_taps_a_one_clip_program_runs(tmp_path):
    """A .pte of one clip runs OneClipTaps (the one_clip_taps lower pass), so that is what is timed."""
    model, x = _model()
    seen = []
    timer = lambda module, inputs: seen.append(type(module)) or 1.0  # noqa: E731
    deploy(model, x[:1], target="mobile_cpu", tune=Tuner(tmp_path, timer=timer, runtime="executorch"))
    assert sorted(t.__name__ for t in seen) == ["OneClipTaps", "TimeAsHeight"]
    seen.clear()
    deploy(model, x[:1], target="mobile_cpu", tune=Tuner(tmp_path, timer=timer, runtime="eager"))
    assert sorted(t.__name__ for t in seen) == ["TemporalTaps", "TimeAsHeight"]  # eager runs the deploy form
    keys = sorted(json.loads(next(tmp_path.glob("choices-*.json")).read_text()))
    assert [k.split("|")[1] for k in keys] == ["eager", "executorch"] and keys[1].endswith("|one_clip")


def test_tune_on_x86_can_pick_the_conv2d_pointwise_form(tmp_path):

    model, x = _model()
    timer = _FakeTimer(PointwiseConv2dAct)
    fast = deploy(model, x, target="x86", tune=Tuner(tmp_path, timer=timer))
    assert sum(isinstance(m, PointwiseConv2dAct) for m in fast.modules()) == 1
    assert rel_err(fast, model, x) < RTOL
    slow = deploy(model, x, target="x86", tune=Tuner(tmp_path / "other", timer=_FakeTimer(Conv3dAct)))
    assert not any(isinstance(m, PointwiseConv2dAct) for m in slow.modules())


def test_tune_inside_a_composite_block_replaces_the_part(tmp_path):
    """X3dBottleneck builds its parts' default forms; a tuned choice for a part replaces it."""
    from fxaccel.blocks.bottleneck import X3dBottleneck

    block = X3dBottleneck.build(8, 12, 8, temporal_kernel=3).eval()
    for m in block.modules():
        if isinstance(m, nn.BatchNorm3d):
            randomize_bn(m, 5)
    model = nn.Sequential(block)
    x = torch.randn(2, 8, 3, 5, 5)
    fast = deploy(model, x, target="x86", tune=Tuner(tmp_path, timer=_FakeTimer(PointwiseConv2dAct)))
    assert sum(isinstance(m, PointwiseConv2dAct) for m in fast.modules()) == 2  # conv_a and conv_c
    assert rel_err(fast, model, x) < RTOL


def test_real_eager_timer_runs(tmp_path):
    """The default eager timer on a tiny layer (one repeat: this proves it runs, not a benchmark)."""
    model, x = _model()
    fast = deploy(model, x, target="x86", tune=Tuner(tmp_path, runtime="eager", repeats=1, warmup=0))
    assert rel_err(fast, model, x) < RTOL
    timings = [v for r in fxaccel.report_of(fast).layers for ms in r.get("ms", {}).values() for v in ms.values()]
    assert timings and all(v > 0 for v in timings)


def test_real_executorch_timer_runs_on_mobile(tmp_path):
    """The ExecuTorch timer lowers and runs each candidate (one repeat: this proves it runs, not a
    benchmark). It failed on every temporal conv while the candidates were exported with the strided
    batch-1 view that fold_time returns: ExecuTorch then refused the contiguous input (error 0x1)."""
    pytest.importorskip("executorch")
    model, x = _model()
    fast = deploy(model, x[:1], target="mobile_cpu",
                  tune=Tuner(tmp_path, runtime="executorch", repeats=1, warmup=0))
    assert rel_err(fast, model, x[:1]) < RTOL
    (row,) = [r for r in fxaccel.report_of(fast).layers if "ms" in r]
    assert sorted(row["ms"][""]) == ["taps", "time_as_height"] and all(v > 0 for v in row["ms"][""].values())
