"""deploy()'s contract: inputs required, input never mutated, train mode, layouts, traceable result."""
import pytest
import torch
from torch import nn

import fxaccel
from fxaccel.blocks.layout import TimeFolded
from fxaccel.deploying import deploy
from fxaccel.testing import randomize_bn

from _deploy_helpers import RTOL, assert_unchanged, mobile_violations, rel_err, snapshot


def _tiny(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv3d(3, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False), nn.BatchNorm3d(8), nn.ReLU(),
        nn.Conv3d(8, 8, (3, 1, 1), padding=(1, 0, 0), bias=False), nn.BatchNorm3d(8), nn.SiLU(),
        nn.Dropout(0.3), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 5),
    )
    for i, m in enumerate(model.modules()):
        if isinstance(m, nn.BatchNorm3d):
            randomize_bn(m, seed + i)
    x = torch.randn((2, 3, 4, 12, 12), generator=torch.Generator().manual_seed(seed))
    return model.eval(), x


def test_example_inputs_are_required():
    model, _ = _tiny()
    with pytest.raises(ValueError, match="example_inputs is required"):
        deploy(model, None)


def test_unknown_target_and_layout_are_clear_errors():
    model, x = _tiny()
    with pytest.raises(ValueError, match="unknown target 'gpu'"):
        deploy(model, x, target="gpu")
    with pytest.raises(ValueError, match="unknown layout 'per_frame'"):
        deploy(model, x, layout="per_frame")


def test_wrong_input_rank_is_a_clear_error():
    model, _ = _tiny()
    with pytest.raises(ValueError, match=r"running Sequential on example inputs of shape \(2, 3, 12, 12\)"):
        deploy(model, torch.randn(2, 3, 12, 12))


@pytest.mark.parametrize("target", ["mobile_cpu", "x86"])
def test_train_mode_model_deploys_its_eval_semantics_and_says_so(target):
    model, x = _tiny()
    model.train()
    snap = snapshot(model)
    fast = deploy(model, x, target=target, op_counts=False)
    assert_unchanged(model, snap)  # still in train mode, BN statistics untouched
    assert model.training
    assert "train mode" in fxaccel.report_of(fast).extra["train_mode"]
    model.eval()
    assert rel_err(fast, model, x) < RTOL
    assert not any(isinstance(m, nn.Dropout) for m in fast.modules())


def test_eval_model_has_no_train_mode_note():
    model, x = _tiny()
    assert "train_mode" not in fxaccel.report_of(deploy(model, x, op_counts=False)).extra


def test_vanilla_and_transmuted_inputs_give_the_same_model():
    model, x = _tiny()
    gm = fxaccel.transmute(model, x)
    snap = snapshot(gm)
    a, b = deploy(model, x, op_counts=False), deploy(gm, x, op_counts=False)
    assert_unchanged(gm, snap)
    assert torch.equal(a(x), b(x))
    assert fxaccel.report_of(b).previous is fxaccel.report_of(gm)


def test_block_layout_keeps_per_block_wrappers_and_is_still_exact():
    model, x = _tiny()
    net, blk = deploy(model, x, op_counts=False), deploy(model, x, layout="block", op_counts=False)
    assert sum(isinstance(m, TimeFolded) for m in blk.modules()) >= 3
    assert not any(isinstance(m, TimeFolded) for m in net.modules())
    for fast in (net, blk):
        assert rel_err(fast, model, x) < RTOL
        assert mobile_violations(fast, x) == []


def test_x86_fuses_relu_into_leftover_convs():
    """A conv the rules did not take (the transmuted graph keeps it vanilla) gets BN folded and
    ReLU fused into one module."""
    from torch.ao.nn.intrinsic import ConvReLU3d

    from _deploy_helpers import as_transmuted

    model, x = _tiny()
    fast = deploy(as_transmuted(model[:3], "x86"), x, target="x86")
    assert [type(m) for m in fast.children()].count(ConvReLU3d) == 1
    assert not any(isinstance(m, nn.BatchNorm3d) for m in fast.modules())
    assert rel_err(fast, model[:3], x) < RTOL


def test_verify_catches_a_wrong_pass():
    """The safety net fails loudly when a registered pass breaks the numbers."""
    model, x = _tiny()

    def break_it(gm, ctx):
        for node in gm.graph.nodes:
            if node.op == "output":
                with gm.graph.inserting_before(node):
                    wrong = gm.graph.call_function(torch.mul, (node.args[0], 1.01))
                node.args = (wrong,)
        gm.recompile()

    fxaccel.register_pass(break_it, stage="deploy", name="test_break_it", after="dce")
    try:
        with pytest.raises(AssertionError, match="deploy changed the model's output"):
            deploy(model, x, op_counts=False)
        deploy(model, x, op_counts=False, skip=["test_break_it"])
    finally:
        fxaccel.unregister_pass("test_break_it", stage="deploy")


@pytest.mark.parametrize("target", ["mobile_cpu", "x86"])
def test_deployed_model_traces_with_jit_and_export(target):
    model, x = _tiny()
    fast = deploy(model, x, target=target, op_counts=False)
    traced = torch.jit.trace(fast, (x,))
    assert rel_err(traced, model, x) < RTOL
    exported = torch.export.export(fast, (x,))
    assert rel_err(exported.module(), model, x) < RTOL


def test_deployed_model_compiles_without_graph_breaks():
    """fullgraph: dynamo takes the whole deployed model; aot_eager keeps the test quick (inductor's
    code generation is torch's business, see the slow test)."""
    model, x = _tiny()
    fast = deploy(model, x, op_counts=False)
    compiled = torch.compile(fast, fullgraph=True, backend="aot_eager")
    assert rel_err(compiled, model, x) < RTOL


@pytest.mark.slow
def test_deployed_model_compiles_with_inductor():
    model, x = _tiny()
    fast = deploy(model, x, target="x86", op_counts=False)
    assert rel_err(torch.compile(fast), model, x) < RTOL


def test_x86_channels_last_hook_is_exact():
    """The channels_last_3d hook (on by default for x86: measured faster) changes strides, not values."""
    model, x = _tiny()
    for forced, rewrites in ((None, 1), (True, 1), (False, 0)):
        fast = deploy(model, x, target="x86", channels_last=forced, op_counts=False)
        rec = next(p for p in fxaccel.report_of(fast).passes if p.name == "channels_last")
        assert rec.rewritten == rewrites
        assert rel_err(fast, model, x) < RTOL
