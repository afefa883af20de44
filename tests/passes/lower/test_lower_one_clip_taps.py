"""``one_clip_taps``: a one-clip ExecuTorch export sums temporal taps along the batch dim.

Exactness: ``OneClipTaps`` runs the same conv2d calls on the same frames and adds the same terms
in the same order as ``TemporalTaps``; only the views differ, so outputs are compared with
``torch.equal`` where the whole sum is identical, and to 1e-6 of the output's largest magnitude
where convolving a slice of frames instead of all of them may pick another conv2d algorithm.
The ETDump check counts XNNPACK's transposes in a lowered program: what the rewrite is for.
"""
import importlib.util

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import fxaccel
from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.forms.folded import TemporalTaps
from fxaccel.forms.one_clip import OneClipTaps, one_clip_form
from fxaccel.exporting import lower
from fxaccel.passes.lower.one_clip_taps import one_clip_taps
from fxaccel.pipeline import When
from fxaccel.targets import get_target
from fxaccel.testing import relative_error


def _taps(block, x):
    deployed = block.deploy(x.shape, get_target("mobile_cpu"))
    return [m for m in deployed.modules() if isinstance(m, TemporalTaps)]


def _folded(x):
    n, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(n * t, c, h, w)


@settings(deadline=None, max_examples=60)
@given(kt=st.integers(2, 5), pad=st.integers(0, 3), stride=st.integers(1, 3), t=st.integers(1, 9),
       mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]), dilation=st.integers(1, 2),
       depthwise=st.booleans(), spatial_stride=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_one_clip_form_matches_the_taps_it_replaces(kt, pad, stride, t, mode, dilation, depthwise, spatial_stride,
                                                    seed):
    torch.manual_seed(seed)
    c = 4
    try:
        block = Conv3dBnAct(c, c, (kt, 3, 3), stride=(stride, spatial_stride, spatial_stride), padding=(pad, 1, 1),
                            dilation=(dilation, 1, 1), groups=c if depthwise else 1,
                            padding_mode=mode).eval()
        x = torch.randn(1, c, t, 5, 5)
        block(x)
    except (RuntimeError, ValueError):  # padding larger than the clip for reflect, kernel > clip
        return
    for taps in _taps(block, x):
        one = one_clip_form(taps)
        strided = any(s != 1 and len(range(a, b, s)) > 1 for _, runs, _ in taps.plans for a, b, s in runs)
        assert (one is None) == strided
        if one is not None:
            with torch.no_grad():
                ref, got = taps(_folded(x)), one(_folded(x))
            assert got.shape == ref.shape
            assert relative_error(ref, got) < 1e-6


@pytest.mark.parametrize("groups, spatial_stride, expected", [
    (8, 2, True),    # depthwise, frames shrink 4x: slice the output
    (8, 1, False),   # depthwise, same size: slice the input (fewer frames to convolve)
    (1, 2, False),   # full conv: its extra frames cost more than the copy saved
])
def test_a_tap_slices_the_smaller_side_only_for_shrinking_depthwise_convs(groups, spatial_stride, expected):
    block = Conv3dBnAct(8, 8, (3, 3, 3), stride=(1, spatial_stride, spatial_stride), padding=1, groups=groups).eval()
    x = torch.randn(1, 8, 5, 8, 8)
    taps = _taps(block, x)[0]
    one = one_clip_form(taps)
    shifted = [s for s, (_, runs, _) in zip(one.slice_output, one.plans) if runs[0][:2] != (0, 5)]
    assert shifted == [expected, expected]
    with torch.no_grad():
        assert relative_error(taps(_folded(x)), one(_folded(x))) < 1e-6


def test_one_clip_form_refuses_two_clips_with_a_clear_error():
    block = Conv3dBnAct(4, 4, (3, 3, 3), padding=1).eval()
    x = torch.randn(1, 4, 4, 5, 5)
    one = one_clip_form(_taps(block, x)[0])
    with pytest.raises(ValueError, match="one clip of 4 frames.*received 2 clips"):
        one(_folded(torch.randn(2, 4, 4, 5, 5)))


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(8), nn.ReLU(),
        nn.Conv3d(8, 8, (3, 3, 3), padding=1, groups=8), nn.BatchNorm3d(8), nn.ReLU(),
        nn.Conv3d(8, 8, (5, 1, 1), padding=(2, 0, 0)), nn.ReLU(),
        nn.Conv3d(8, 8, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 4)).eval()


def _record(gm):
    return {p.name: p for p in fxaccel.report_of(gm).passes}["one_clip_taps"]


def _one_clip_forms(gm):
    """One-clip taps in ``gm``: ``OneClipTaps`` modules, or their shape check once inlined."""
    inlined = sum(n.op == "call_function" and getattr(n.target, "__name__", "") == "_checked_one_clip"
                  for n in gm.graph.nodes)
    return inlined + sum(isinstance(m, OneClipTaps) for m in gm.modules())


def test_pass_swaps_taps_of_a_one_clip_export_and_keeps_the_strided_one():
    x = torch.randn(1, 3, 6, 8, 8)
    deployed = fxaccel.deploy(_net(), x, target="mobile_cpu")
    n_taps = sum(isinstance(m, TemporalTaps) for m in deployed.modules())
    low = lower(deployed, (x,), "executorch")
    record = _record(low)
    assert record.matched == n_taps == 3
    assert record.rewritten == 2  # the (3, 1, 1) conv with temporal stride 2 keeps its form
    (skip,) = record.skipped
    assert "temporal stride" in skip.reason
    assert _one_clip_forms(low) == 2  # the structure the pass creates (inlined by inline_forms)
    with torch.no_grad():
        assert relative_error(deployed(x), low(x)) < 1e-6
    assert deployed is not low and _one_clip_forms(deployed) == 0


@pytest.mark.parametrize("fmt, batch", [("executorch", 2), ("torchscript_lite", 1), ("nnapi", 1)])
def test_pass_leaves_other_batches_and_formats_alone(fmt, batch):
    x = torch.randn(batch, 3, 6, 8, 8)
    deployed = fxaccel.deploy(_net(), x, target="mobile_cpu")
    low = lower(deployed, (x,), fmt)
    assert _one_clip_forms(low) == 0
    if fmt == "executorch":  # every one of the three taps is named, with its reason
        record = _record(low)
        assert record.rewritten == 0 and record.matched == len(record.skipped) == 3
        assert all("more than one clip" in s.reason for s in record.skipped)
    else:  # control: the same deployed net, exported for ExecuTorch, does get the one-clip form
        assert _one_clip_forms(lower(deployed, (x,), "executorch")) == 2


@pytest.mark.executorch
@pytest.mark.skipif(importlib.util.find_spec("executorch") is None, reason="needs the executorch extra")
def test_lowered_one_clip_taps_need_no_transposes(tmp_path):
    """XNNPACK's own op list (ETDump) for a temporal conv net: only the entry/exit layout changes."""
    from executorch.devtools import Inspector
    from executorch.extension.pybindings import portable_lib

    net = nn.Sequential(nn.Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1)), nn.ReLU(),
                        nn.Conv3d(8, 8, (3, 3, 3), padding=1, groups=8), nn.ReLU(),
                        nn.Conv3d(8, 8, (3, 3, 3), padding=1, groups=8), nn.ReLU()).eval()
    x = torch.randn(1, 3, 4, 8, 8)
    deployed = fxaccel.deploy(net, x, target="mobile_cpu")

    def transposes(name):
        path = fxaccel.export(deployed, x, tmp_path / f"{name}.pte")
        module = portable_lib._load_for_executorch(str(path), enable_etdump=True)
        module.forward([x])
        module.write_etdump_result_to_file(str(tmp_path / f"{name}.etdp"))
        events = Inspector(etdump_path=str(tmp_path / f"{name}.etdp")).to_dataframe().event_name
        return int(events.str.startswith("Transpose").sum())

    with_pass = transposes("one_clip")
    fxaccel.unregister_pass("one_clip_taps", stage="lower")
    try:
        without = transposes("view")
    finally:
        fxaccel.register_pass(one_clip_taps, stage="lower", name="one_clip_taps", before="inline_forms",
                              when=When(formats=("executorch",), inputs=True))
    # 4 = into and out of the folded NHWC layout at the entry and the exit (measured: 4 vs 10)
    assert with_pass <= 4 and without >= with_pass + 2 * 2  # >= 2 per temporal conv without the pass
