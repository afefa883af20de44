"""GlobalAvgPool3d and the Linear head: original == vanilla, deploy forms == original."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fxaccel.blocks.layout import TimeFolded, fold_time
from fxaccel.blocks.pool import GlobalAvgPool3d, Linear
from fxaccel.targets import get_target
from fxaccel.testing import assert_equivalent, seeds
from fxaccel.testing.ops import count_ops, ops_not_on_mobile, record_aten_ops

# Original vs vanilla: a mean is a mean; only the reduction order may differ from the pooling
# kernel: fp32 rounding of a <= 6*12*8-term sum of values ~ 3*N(0,1) + 1, relative to a mean near 1:
# up to ~sqrt(576) * 3 * 6e-8 ~ 4e-6 (hypothesis found 1.09e-6 against an earlier 1e-6 bound).
ORIGINAL_RTOL = 1e-5
# Deploy forms average in two stages (spatial, then frames): rounding only.
DEPLOY_RTOL = 1e-5

pool_shapes = st.tuples(
    st.sampled_from((1, 3)), st.integers(1, 12), st.integers(1, 6),
    st.sampled_from((1, 3, 5, 7, 9, 12)), st.sampled_from((1, 3, 5, 7, 8)),
)


def _input(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 3 + 1


@settings(deadline=None, max_examples=40)
@given(shape=pool_shapes, seed=seeds)
def test_original_equals_vanilla_pools(shape, seed):
    x = _input(shape, seed)
    pool = GlobalAvgPool3d()
    assert_equivalent(pool, nn.AdaptiveAvgPool3d(1), x, rtol=ORIGINAL_RTOL, grads=True)
    assert_equivalent(pool, lambda v: v.mean((2, 3, 4), keepdim=True), x, rtol=ORIGINAL_RTOL, grads=True)
    assert_equivalent(pool, nn.AvgPool3d(shape[2:]), x, rtol=ORIGINAL_RTOL, grads=True)


@settings(deadline=None, max_examples=40)
@given(shape=pool_shapes, seed=seeds, target=st.sampled_from(("x86", "mobile_cpu")))
def test_deploy_equals_original(shape, seed, target):
    pool, x = GlobalAvgPool3d(), _input(shape, seed)
    fast = pool.deploy(shape, get_target(target))
    assert_equivalent(fast, pool, x, rtol=DEPLOY_RTOL)
    x2 = _input((2, *shape[1:]), seed + 1)
    assert_equivalent(fast, pool, x2, rtol=DEPLOY_RTOL)


@pytest.mark.parametrize("t", [1, 5])
def test_mobile_form_is_folded_4d_and_outputs_a_t1_folded_tensor(t):
    pool = GlobalAvgPool3d()
    x = _input((3, 4, t, 7, 5), 0)
    assert count_ops(record_aten_ops(pool, x), "mean", rank=5) == 1  # positive control
    fast = pool.deploy(x.shape, get_target("mobile_cpu"))
    assert isinstance(fast, TimeFolded) and fast.unfold.t == 1
    assert ops_not_on_mobile(record_aten_ops(fast, x)) == []
    folded = fold_time(x)
    assert fast.inner(folded).shape == (3, 4, 1, 1)
    ops = record_aten_ops(fast.inner, folded)
    assert count_ops(ops, "mean", rank=4) == 1
    assert max(rank for _, rank in ops if rank is not None) <= 4


def test_x86_form_has_no_5d_mean():
    pool, x = GlobalAvgPool3d(), _input((2, 4, 3, 5, 5), 0)
    ops = record_aten_ops(pool.deploy(x.shape, get_target("x86")), x)
    assert count_ops(ops, "mean", rank=5) == 0 and count_ops(ops, "mean", rank=3) == 1


@pytest.mark.parametrize("target", ["x86", "mobile_cpu"])
def test_deploy_forms_trace_and_export(target):
    pool, x = GlobalAvgPool3d(), _input((2, 4, 3, 5, 5), 0)
    fast = pool.deploy(x.shape, get_target(target))
    part, part_in = (fast, x) if target == "x86" else (fast.inner, fold_time(x))
    assert_equivalent(torch.fx.symbolic_trace(part), part, part_in, rtol=0.0)
    if target == "x86":  # the shape guard survives dead-code elimination in a trace
        gm = torch.fx.symbolic_trace(fast)
        gm.graph.eliminate_dead_code()
        gm.recompile()
        with pytest.raises(ValueError, match="deploy form was built for"):
            gm(torch.randn(2, 4, 3, 5, 6))
    exported = torch.export.export(fast, (x,), dynamic_shapes=({0: torch.export.Dim("n")},))
    assert_equivalent(exported.module(), pool, _input((3, 4, 3, 5, 5), 1), rtol=DEPLOY_RTOL)


@pytest.mark.parametrize("target", ["x86", "mobile_cpu"])
@pytest.mark.parametrize("bad", [(2, 4, 2, 5, 5), (2, 4, 3, 5, 6), (2, 3, 3, 5, 5), (2, 4, 3, 5)])
def test_wrong_input_shape_raises(target, bad):
    fast = GlobalAvgPool3d().deploy((1, 4, 3, 5, 5), get_target(target))
    with pytest.raises(ValueError) as err:
        fast(torch.randn(bad))
    assert "(N, 4, 3, 5, 5)" in str(err.value) and str(bad) in str(err.value)


def test_deploy_refuses_non_video_shapes():
    with pytest.raises(ValueError, match=r"\(N, C, T, H, W\), got \(1, 4, 5, 5\)"):
        GlobalAvgPool3d().deploy((1, 4, 5, 5), get_target("mobile_cpu"))


def _linear(i, o, bias, seed):
    lin = nn.Linear(i, o, bias=bias)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lin.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return lin


@settings(deadline=None, max_examples=20)
@given(i=st.integers(1, 12), o=st.integers(1, 12), bias=st.booleans(), seed=seeds,
       lead=st.sampled_from(((1,), (3,), (3, 1, 1, 1))), target=st.sampled_from(("x86", "mobile_cpu")))
def test_linear_head_original_and_deploy(i, o, bias, seed, lead, target):
    vanilla = _linear(i, o, bias, seed)
    head = Linear.from_module(vanilla)
    assert head.linear is vanilla
    x = _input((*lead, i), seed)
    assert_equivalent(head, vanilla, x, rtol=0.0, grads=True)
    fast = head.deploy(x.shape, get_target(target))
    assert type(fast) is nn.Linear and fast is not vanilla
    assert_equivalent(fast, head, x, rtol=0.0)


def test_linear_head_parameter_names_and_errors():
    head = Linear(6, 3)
    assert set(dict(head.named_parameters())) == {"linear.weight", "linear.bias"}
    with pytest.raises(ValueError, match=r"\(\.\.\., 6\), got \(2, 5\)"):
        head.deploy((2, 5), get_target("x86"))
