"""Skipping XNNPACK passes that have no work changes no program (fxaccel.lowering.xnnpack_passes).

The proof is byte equality: the same model lowered with and without the guard gives the same
``.pte``, both on the mini X3D (where most guarded passes have nothing to do and are skipped) and
on a model built to give every guarded pass work (where none may be skipped).
"""
import contextlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.lowering import xnnpack_passes

pytest.importorskip("executorch")


class EveryPassHasWork(nn.Module):
    """dim-order copy, bilinear upsample, attention (bmm + softmax), unfused batch norms (2-D and
    1-D), a 6-way cat, max pool, a 1-D conv, PReLU."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.bn1d = nn.BatchNorm1d(6)
        self.conv1d = nn.Conv1d(6, 6, 3, padding=1)
        self.prelu = nn.PReLU(6)
        for bn in (self.bn, self.bn1d):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)

    def forward(self, x):
        y = F.max_pool2d(self.prelu(self.bn(self.conv(x))), 2)
        y = y.to(memory_format=torch.channels_last).contiguous()
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        y = torch.cat([y, y * 2, y + 1, y - 1, y * 3, y / 2], 1)[:, :6]
        q = y.flatten(2)  # (N, C, L)
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), q) / 4, -1)
        seq = torch.bmm(q, attn)
        return self.conv1d(self.bn1d(seq))


def _bytes(model, x, guard: bool) -> bytes:
    from fxaccel.lowering.executorch import to_pte

    ctx = contextlib.nullcontext if not guard else xnnpack_passes.live_passes_only
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(xnnpack_passes, "live_passes_only", ctx)
        return to_pte(model, (x,), verify=False).buffer


def _decisions(monkeypatch) -> dict[str, list[bool]]:
    seen: dict[str, list[bool]] = {}
    for name, live in list(xnnpack_passes.LIVE_WHEN.items()):
        def record(graph, name=name, live=live):
            seen.setdefault(name, []).append(live(graph))
            return seen[name][-1]
        monkeypatch.setitem(xnnpack_passes.LIVE_WHEN, name, record)
    return seen


def test_mini_x3d_program_is_the_same_and_most_guarded_passes_skip(mini, monkeypatch):
    """fp32 here (an int8 export takes 3x as long); the int8 programs with the guard are checked
    for accuracy and int8-ness in test_xnnpack_int8.py."""
    _, fast, x = mini
    from fxaccel.exporting import lower

    one_clip = lower(fast, (x,), "executorch")
    unguarded = _bytes(one_clip, x, guard=False)
    seen = _decisions(monkeypatch)
    assert _bytes(one_clip, x, guard=True) == unguarded
    skipped = {name for name, calls in seen.items() if not any(calls)}
    assert {"ConvertToUpsampleBilinear2d", "ConvertToSDPAPass", "FuseBatchNormPass",
            "DecomposeBatchNorm", "PReLUReshapePass", "Conv1dUnsqueezePass"} <= skipped, seen


def test_a_model_that_gives_every_guarded_pass_work_skips_none_and_is_the_same(monkeypatch):
    torch.manual_seed(0)
    model, x = EveryPassHasWork().eval(), torch.randn(1, 3, 8, 8)
    unguarded = _bytes(model, x, guard=False)
    seen = _decisions(monkeypatch)
    assert _bytes(model, x, guard=True) == unguarded
    # no work for two of them in any partition we could build: "custom" meta comes only from
    # user-tagged quantized graphs, and ExecuTorch 1.5.1 keeps max_pool2d whole in a partition (no
    # getitem) while leaving max_pool2d_with_indices outside
    expected_live = set(xnnpack_passes.LIVE_WHEN) - {"PropagateCustomMetaPass", "RemoveGetItemPass"}
    assert {name for name, calls in seen.items() if any(calls)} >= expected_live, seen


def test_the_pattern_passes_triggers_occur_in_every_pattern():
    """If ExecuTorch adds a pattern without these ops, the guard would skip a pass with work."""
    from executorch.backends.xnnpack.partition.graphs import bilinear_2d, sdpa

    for patterns, pass_name in ((bilinear_2d.get_graphs(), "ConvertToUpsampleBilinear2d"),
                                (sdpa.get_graphs(), "ConvertToSDPAPass")):
        assert patterns
        for pattern in patterns:
            assert xnnpack_passes.LIVE_WHEN[pass_name](pattern.graph), pass_name
