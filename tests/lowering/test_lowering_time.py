"""Lowering work that cannot change the ``.pte`` is not done (fxaccel.lowering.lowering_time).

The proof is byte equality: the same model lowered with and without the speed-ups gives the same
``.pte``, on the mini X3D (where every guarded pass has nothing to do and is skipped) and on
models built to give the guarded passes work (where they must run).
"""
import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.lowering import lowering_time

pytest.importorskip("executorch")


class EveryPassHasWork(nn.Module):
    """dim-order copy, bilinear upsample, attention (bmm + softmax), unfused batch norms (2-D and
    1-D), a 6-way cat, max pool, a 1-D conv, PReLU; a Python scalar added to a tensor, an int
    tensor added to a float one, a mean XNNPACK leaves to the portable kernel."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.bn1d = nn.BatchNorm1d(6)
        self.conv1d = nn.Conv1d(6, 6, 3, padding=1)
        self.prelu = nn.PReLU(6)
        self.register_buffer("steps", torch.arange(6).view(1, 6, 1))
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
        seq = self.conv1d(self.bn1d(torch.bmm(q, attn))) + self.steps
        return seq, seq.mean(1)


def _bytes(model, x, fast: bool) -> bytes:
    from fxaccel.lowering.executorch import to_pte

    with pytest.MonkeyPatch.context() as mp:
        if not fast:
            mp.setattr(lowering_time, "faster", contextlib.nullcontext)
            mp.setattr(lowering_time, "decide_up_front", lambda answer, graph: answer)
        return to_pte(model, (x,), verify=False).buffer


def _decisions(monkeypatch) -> dict[str, list[bool]]:
    seen: dict[str, list[bool]] = {}
    for name, live in list(lowering_time.LIVE_WHEN.items()):
        def record(graph, name=name, live=live):
            seen.setdefault(name, []).append(live(graph))
            return seen[name][-1]
        monkeypatch.setitem(lowering_time.LIVE_WHEN, name, record)
    return seen


def test_mini_x3d_program_is_the_same_and_every_guarded_pass_skips(mini, monkeypatch):
    """fp32 here (an int8 export takes 3x as long); the int8 programs lowered this way are checked
    for accuracy and int8-ness in test_xnnpack_int8.py."""
    _, fast, x = mini
    from fxaccel.exporting import lower

    one_clip = lower(fast, (x,), "executorch")
    slow = _bytes(one_clip, x, fast=False)
    seen = _decisions(monkeypatch)
    assert _bytes(one_clip, x, fast=True) == slow
    assert set(seen) == set(lowering_time.LIVE_WHEN), "a guarded pass never ran"
    assert not any(any(calls) for calls in seen.values()), seen


def test_a_model_that_gives_the_guarded_passes_work_skips_them_not_and_is_the_same(monkeypatch):
    torch.manual_seed(0)
    model, x = EveryPassHasWork().eval(), torch.randn(1, 3, 8, 8)
    slow = _bytes(model, x, fast=False)
    seen = _decisions(monkeypatch)
    assert _bytes(model, x, fast=True) == slow
    # no work for these in any graph we could build: "custom" meta comes only from user-tagged
    # quantized graphs; ExecuTorch 1.5.1 keeps max_pool2d whole in a partition (no getitem);
    # SymInts need dynamic shapes (fxaccel exports static ones); decomposition leaves neither
    # aten.t nor a view op (views become view_copy first); constants reach XNNPACK's partitions
    # lifted, as placeholders, not as the get_attr tensors ConstPropPass folds (its rule is
    # checked on its own below)
    never = {"PropagateCustomMetaPass", "RemoveGetItemPass", "SymToTensorPass", "NormalizeTransposePass",
             "ReplaceBrokenOpsWithFunctionalOpsPass", "ConstPropPass"}
    assert {name for name, calls in seen.items() if any(calls)} >= set(lowering_time.LIVE_WHEN) - never, seen


def test_const_prop_has_work_exactly_where_a_call_reads_only_constants():
    """Its ``call_operator`` folds a call whose arguments are all real tensors or plain values."""
    from executorch.exir.passes.const_prop_pass import ConstPropPass

    class Model(nn.Module):
        def __init__(self, constant: bool):
            super().__init__()
            self.constant = constant
            self.register_buffer("w", torch.randn(4))

        def forward(self, x):
            w = self.w * 2 if self.constant else x * 2
            return x + w

    live = lowering_time.LIVE_WHEN["ConstPropPass"]
    for constant in (True, False):
        gm = torch.export.export(Model(constant), (torch.randn(4),)).module(check_guards=False)  # buffer: get_attr
        calls = lambda g: sum(n.op == "call_function" for n in g.graph.nodes)  # noqa: E731
        folded = ConstPropPass()(copy.deepcopy(gm)).graph_module
        assert live(gm.graph) == constant == (calls(folded) < calls(gm)), constant


def test_the_pattern_passes_triggers_occur_in_every_pattern():
    """If ExecuTorch adds a pattern without these ops, the guard would skip a pass with work."""
    from executorch.backends.xnnpack.partition.graphs import bilinear_2d, sdpa

    for patterns, pass_name in ((bilinear_2d.get_graphs(), "ConvertToUpsampleBilinear2d"),
                                (sdpa.get_graphs(), "ConvertToSDPAPass")):
        assert patterns
        for pattern in patterns:
            assert lowering_time.LIVE_WHEN[pass_name](pattern.graph), pass_name


def test_every_guarded_pass_exists_and_is_restored_after():
    classes = lowering_time.pass_classes()
    assert set(classes) == set(lowering_time.LIVE_WHEN)  # a rename in ExecuTorch would drop a guard
    before = {cls: cls.__dict__.get("call") for cls in classes.values()}
    with lowering_time.faster():
        assert all(cls.__dict__.get("call") is not before[cls] for cls in classes.values())
    assert {cls: cls.__dict__.get("call") for cls in classes.values()} == before


class TwoLinears(nn.Module):
    """One linear XNNPACK keeps whole (static weight) and, with ``dynamic``, one it does not."""

    def __init__(self, dynamic: bool):
        super().__init__()
        self.fc, self.dynamic = nn.Linear(8, 8), dynamic

    def forward(self, x, w):
        y = self.fc(x)
        return F.linear(y, w) if self.dynamic else y * w.sum()


@pytest.mark.parametrize("dynamic", [False, True])
def test_decompositions_are_decided_up_front_only_when_nothing_is_left_to_decide(dynamic):
    from fxaccel.lowering import xnnpack_rank
    from fxaccel.lowering.executorch import to_pte

    model, inputs = TwoLinears(dynamic).eval(), (torch.randn(2, 8), torch.randn(8, 8))
    ep = torch.export.export(model, inputs).run_decompositions({})
    ops, keeps = xnnpack_rank.partitioner().ops_to_not_decompose(ep)
    assert torch.ops.aten.linear.default in ops
    assert (keeps is not None) == dynamic          # the dynamic-weight linear fails XNNPACK's filter
    art = to_pte(model, inputs)                    # both paths lower, run and match
    assert art.check["value"] <= 1e-5
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lowering_time, "decide_up_front", lambda answer, graph: answer)
        assert to_pte(model, inputs, verify=False).buffer == art.buffer


def test_node_sources_are_shared_inside_and_copied_outside():
    from torch.fx.traceback import NodeSource

    gm = torch.fx.symbolic_trace(nn.ReLU())
    source = NodeSource(next(iter(gm.graph.nodes)), "p")
    copied = copy.deepcopy(source)
    assert copied is not source and copied == source
    with lowering_time.shared_node_sources():
        assert copy.deepcopy([source])[0] is source
    assert copy.deepcopy(source) is not source
    assert "__deepcopy__" not in NodeSource.__dict__
