"""The front end opens whatever eager torch runs: inputs and outputs as pytrees, optional arguments
kept optional, opaque modules rewritten inside, and every output tensor verified.

Small models that each spell one mechanism the library models of ``tests/corpus`` rely on, plus
hypothesis properties over random input / output structures.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn

import fxaccel
from fxaccel.inputs import as_input_tuple, clone_inputs, output_leaves, verify_outputs
from fxaccel.report import Report
from fxaccel.testing import assert_equivalent, randomize_bn
from fxaccel.testing.ops import ops_not_on_mobile, record_aten_ops


def _clip(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- verifying any output


@dataclasses.dataclass
class _Output(OrderedDict):
    """Shaped like transformers' ``ModelOutput``: a dataclass that is also an ordered dict."""
    logits: torch.Tensor = None

    def __post_init__(self):
        self["logits"] = self.logits


class _Returns(nn.Module):
    def __init__(self, make):
        super().__init__()
        self.make = make

    def forward(self, x):
        return self.make(x)


def test_verify_catches_a_wrong_model_output_and_a_wrong_tensor_deep_in_a_dict():
    x, report = _clip(2, 3), Report("test", "x86")
    right = _Returns(lambda x: _Output(logits=x))
    verify_outputs("stage", right, _Returns(lambda x: _Output(logits=x.clone())), (x,), report)
    assert report.extra["max_relative_error"] == 0.0
    with pytest.raises(AssertionError, match=r"output\['logits'\]"):
        verify_outputs("stage", right, _Returns(lambda x: _Output(logits=-5 * x)), (x,), report)
    nested = _Returns(lambda x: {"a": [x, {"b": (x, 2 * x)}]})
    wrong = _Returns(lambda x: {"a": [x, {"b": (x, 2 * x + 1)}]})
    with pytest.raises(AssertionError, match=r"output\['a'\]\[1\]\['b'\]\[1\]"):
        verify_outputs("stage", nested, wrong, (x,), report)
    with pytest.raises(AssertionError, match="structure"):
        verify_outputs("stage", nested, _Returns(lambda x: {"a": [x]}), (x,), report)


def test_verify_refuses_to_report_an_error_when_nothing_was_compared():
    with pytest.raises(ValueError, match="holds no tensor"):
        verify_outputs("stage", _Returns(lambda x: None), _Returns(lambda x: None), (_clip(2),), Report("t", "x86"))


def test_transformers_model_output_is_walked_field_by_field():
    transformers = pytest.importorskip("transformers")
    out = transformers.modeling_outputs.ImageClassifierOutput(logits=_clip(1, 4), hidden_states=(_clip(1, 2),))
    assert [p for p, _ in output_leaves(out)] == ["output['logits']", "output['hidden_states'][0]"]


# ------------------------------------------------------------------------------- inputs as pytrees


class _TwoPathways(nn.Module):
    """SlowFast-like: a *list* of clips, ``len``-ed, iterated, and written back into (in place)."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv3d(3, 4, (1, 3, 3), padding=(0, 1, 1)),
                                    nn.Conv3d(3, 4, (3, 1, 1), padding=(1, 0, 0))])
        self.fc = nn.Linear(8, 2)

    def forward(self, x: list):
        for i in range(len(x)):
            x[i] = F.relu(self.convs[i](x[i])).mean((2, 3, 4))
        return self.fc(torch.cat(x, 1))


def test_a_list_of_pathways_is_one_argument_everywhere():
    model, call = _TwoPathways().eval(), ([_clip(1, 3, 2, 8, 8), _clip(1, 3, 8, 8, 8, seed=1)],)
    for target in ("x86", "mobile_cpu"):
        fast = fxaccel.deploy(model, call, target=target)
        assert_equivalent(fast, model, clone_inputs(call), rtol=1e-5)
        assert fast(*clone_inputs(call)).shape == (1, 2)
    assert len(call[0]) == 2 and call[0][0].dim() == 5  # the caller's list is never written into
    with pytest.raises(TypeError, match=r"takes it as one argument: pass \(\[slow, fast\],\)"):
        fxaccel.transmute(model, call[0])


class _Keywords(nn.Module):
    """transformers-like: ``forward(pixel_values, mask=None, labels=None, return_dict=True)`` whose
    optional arguments change what runs (``if mask is not None``)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, (2, 3, 3), stride=(2, 1, 1), padding=(0, 1, 1))
        self.embed = _Embed(self.conv)

    def forward(self, pixel_values, mask=None, labels=None, return_dict=True):
        h = self.embed(pixel_values.permute(0, 2, 1, 3, 4), mask)
        if labels is not None:
            return h.sum() * 0 + labels.float().mean()
        return {"logits": h.mean((2, 3, 4))} if return_dict else h


class _Embed(nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.proj = conv

    def forward(self, x, mask=None):
        if x.shape[1] != self.proj.in_channels:  # shape checks: no symbolic trace of this module
            raise ValueError("channels")
        dtype = self.proj.weight.dtype  # reads the layer's attributes (transformers' V-JEPA 2 does)
        h = self.proj(x.to(dtype))
        if mask is not None:
            h = h * ~mask
        return h


def test_optional_arguments_stay_optional_and_keyword_inputs_bind():
    model, x = _Keywords().eval(), _clip(1, 4, 3, 8, 8)
    for example in ((x,), {"pixel_values": x}, {"pixel_values": x, "return_dict": True}):
        for target in ("x86", "mobile_cpu"):
            fast = fxaccel.deploy(model, example, target=target)
            assert_equivalent(fast, model, (x,), rtol=1e-5)
            assert set(fast(x)) == {"logits"}
    with pytest.raises(TypeError, match="no positional parameter 'mask_'"):
        fxaccel.transmute(model, {"pixel_values": x, "mask_": None})


def test_a_conv_inside_untraceable_code_is_rewritten_and_its_attributes_still_read():
    model, x = _Keywords().eval(), _clip(1, 4, 3, 8, 8)
    gm = fxaccel.transmute(model, x)
    assert fxaccel.report_of(gm).coverage == 1.0
    fast = fxaccel.deploy(gm, x, target="mobile_cpu")
    with torch.no_grad():
        assert not ops_not_on_mobile(record_aten_ops(fast, x))
    assert_equivalent(fast, model, (x,), rtol=1e-5)


def test_as_input_tuple_names_what_it_cannot_take():
    with pytest.raises(TypeError, match="may hold tensors"):
        as_input_tuple((_clip(1), object()))
    with pytest.raises(ValueError, match="holds no tensor"):
        as_input_tuple((None, 3))
    assert as_input_tuple([_clip(1), _clip(2)])[1].shape == (2,)  # a list of tensors: positional, as before


# ----------------------------------------------------------------- properties over random structures


def _structures(depth=2):
    leaf = st.just("t")
    return st.recursive(leaf, lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3), st.tuples(inner, inner),
        st.dictionaries(st.sampled_from("abc"), inner, min_size=1, max_size=2)), max_leaves=5)


def _fill(structure, gen):
    if structure == "t":
        return torch.randn(1, 3, 2, 6, 6, generator=gen)
    if isinstance(structure, dict):
        return {k: _fill(v, gen) for k, v in structure.items()}
    return type(structure)(_fill(v, gen) for v in structure)


class _AnyTree(nn.Module):
    """Convolves every tensor of its one input, wherever it sits, and returns them in the same tree."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm3d(3)

    def forward(self, tree):
        if isinstance(tree, torch.Tensor):
            return F.relu(self.bn(self.conv(tree)))
        if isinstance(tree, dict):
            return {k: self(v) for k, v in tree.items()}
        return type(tree)(self(v) for v in tree)


@settings(max_examples=15, deadline=None)
@given(structure=_structures(), seed=st.integers(0, 2**16), target=st.sampled_from(["x86", "mobile_cpu"]))
def test_any_input_and_output_tree_deploys_exactly_and_every_leaf_is_checked(structure, seed, target):
    torch.manual_seed(seed)
    model = _AnyTree()
    randomize_bn(model.bn, seed)
    model.eval()
    call = (_fill(structure, torch.Generator().manual_seed(seed)),)
    fast = fxaccel.deploy(model, call, target=target, op_counts=False)
    with torch.no_grad():
        want, got = model(*clone_inputs(call)), fast(*clone_inputs(call))
    assert [p for p, _ in output_leaves(got)] == [p for p, _ in output_leaves(want)]
    assert_equivalent(lambda *_: got, lambda *_: want, call, rtol=1e-5)
    # the stage's check compares every leaf: spoil any one and it fails
    paths = [p for p, _ in output_leaves(want)]
    spoil = paths[seed % len(paths)]

    class Spoilt(nn.Module):
        def forward(self, tree):
            out = fast(tree)
            leaves, spec = torch.utils._pytree.tree_flatten(out)
            i = paths.index(spoil)
            leaves[i] = leaves[i] + 1
            return torch.utils._pytree.tree_unflatten(leaves, spec)

    with pytest.raises(AssertionError, match=spoil.replace("[", r"\[").replace("]", r"\]")):
        verify_outputs("spoilt", model, Spoilt(), call, Report("t", target))


@pytest.mark.parametrize("backend", ["qnnpack", "xnnpack"])
def test_int8_calibrates_on_calls_with_a_list_of_pathways(backend):
    if backend == "xnnpack":
        pytest.importorskip("executorch")
    model, call = _TwoPathways().eval(), ([_clip(1, 3, 2, 8, 8), _clip(1, 3, 8, 8, 8, seed=1)],)
    calib = [([_clip(1, 3, 2, 8, 8, seed=i), _clip(1, 3, 8, 8, 8, seed=i + 9)],) for i in range(4)]
    q = fxaccel.quantize(fxaccel.deploy(model, call, target="mobile_cpu"), calib, backend=backend)
    assert fxaccel.provenance_of(q).output_sqnr_db >= 25.0  # a 2-conv net: int8 noise stays small
    assert q(*clone_inputs(call)).shape == (1, 2)


def test_a_pass_that_fails_inside_is_named_with_the_way_round_it():
    def buggy(gm, ctx):
        return gm.no_such_attribute

    fxaccel.register_pass(buggy, stage="transmute", name="buggy_pass")
    try:
        with pytest.raises(fxaccel.errors.PassError, match=r"pass 'buggy_pass' failed on graph <root>.*"
                                                           r"AttributeError.*skip=\['buggy_pass'\]"):
            fxaccel.transmute(nn.Sequential(nn.Conv3d(3, 3, 1)), _clip(1, 3, 2, 4, 4))
        fxaccel.transmute(nn.Sequential(nn.Conv3d(3, 3, 1)), _clip(1, 3, 2, 4, 4), skip=["buggy_pass"])
    finally:
        fxaccel.unregister_pass("buggy_pass", stage="transmute")


def test_without_example_inputs_optional_arguments_are_traced_at_their_defaults():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 3, 1)

        def forward(self, x, mask=None):
            y = self.conv(x)
            return y if mask is None else y * mask     # a proxy would take the second branch

    model, x = Masked().eval(), _clip(1, 3, 2, 4, 4)
    gm = fxaccel.trace(model)
    assert torch.equal(gm(x), model(x))
    with pytest.raises(AssertionError, match="mask has been specialized to have value None"):
        gm(x, torch.ones(1))
