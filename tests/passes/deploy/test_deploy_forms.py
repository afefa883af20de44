"""Deploy passes one by one: leftover convs, BN folding, pools, means, views (properties + negatives)."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import fxaccel
from fxaccel.deploying import DeployError, deploy
from fxaccel.testing import conv3d_configs, randomize_bn, seeds
from fxaccel.testing.ops import count_ops, record_aten_ops

from _deploy_helpers import RTOL, as_transmuted, mobile_violations, rel_err
from graph_helpers import Call


def _x(shape, seed):
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed)) * 2 + 0.5



# --------------------------------------------------------------------------- leftover convs
@settings(deadline=None, max_examples=30)
@given(cfg=conv3d_configs(), bn=st.booleans(), relu=st.booleans(), seed=seeds,
       target=st.sampled_from(["mobile_cpu", "x86"]))
def test_any_leftover_conv3d_deploys_exactly(cfg, bn, relu, seed, target):
    """Whatever the Conv3d config (stride, dilation, groups, padding modes), a conv the transmute
    rules left vanilla is exact after deploy, and on mobile no 5-D op runs."""
    layers = [cfg.make(seed)]
    if bn:
        layers.append(randomize_bn(nn.BatchNorm3d(cfg.out_channels), seed))
    if relu:
        layers.append(nn.ReLU())
    model = nn.Sequential(*layers).eval()
    x = cfg.example_input(seed)
    fast = deploy(as_transmuted(model, target), x, target=target, op_counts=False)
    assert rel_err(fast, model, x) < RTOL
    assert not any(isinstance(m, nn.BatchNorm3d) for m in fast.modules())
    if target == "mobile_cpu":
        assert mobile_violations(fast, x) == []
        assert count_ops(record_aten_ops(fast, x), "convolution", rank=4) >= 1


class _MyConv(nn.Conv3d):
    pass


def test_conv3d_subclass_kept_as_a_leaf_cannot_go_mobile():
    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, _MyConv) or super().is_leaf_module(m, qualname)

    model = nn.Sequential(_MyConv(2, 3, 3, padding=1)).eval()
    gm = torch.fx.GraphModule(model, Tracer().trace(model))
    fxaccel.report.attach(gm, fxaccel.Report("transmute", "mobile_cpu"))
    with pytest.raises(DeployError, match=r"layer '0'.*_MyConv.*Conv3d subclass"):
        deploy(gm, torch.randn(1, 2, 3, 5, 5))


@pytest.mark.parametrize("bias", [True, False])
def test_functional_conv3d_on_constant_weights_is_lowered(bias):
    """Traced through, a Conv3d subclass is a functional conv3d on its parameters: lowered."""
    model = nn.Sequential(_MyConv(2, 3, (3, 1, 3), stride=(2, 1, 1), padding=(1, 0, 1), bias=bias)).eval()
    x = torch.randn(3, 2, 5, 4, 6)
    fast = deploy(as_transmuted(model), x)
    assert rel_err(fast, model, x) < RTOL
    assert mobile_violations(fast, x) == []


# --------------------------------------------------------------------------- BN folding
def test_bn_is_not_folded_when_the_conv_output_has_another_user():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv3d(2, 2, 1), randomize_bn(nn.BatchNorm3d(2), 3)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y

    model = Net().eval()
    x = torch.randn(2, 2, 3, 4, 4)
    fast = deploy(as_transmuted(model, "x86"), x, target="x86")
    rec = next(p for p in fxaccel.report_of(fast).passes if p.name == "fold_bn")
    assert rec.rewritten == 0 and "2 users" in rec.skipped[0].reason
    assert rel_err(fast, model, x) < RTOL


def test_bn_without_running_stats_is_not_folded():
    model = nn.Sequential(nn.Conv3d(2, 4, 1), nn.BatchNorm3d(4, track_running_stats=False)).eval()
    x = torch.randn(3, 2, 3, 4, 4)
    for target in ("x86", "mobile_cpu"):
        fast = deploy(as_transmuted(model, target), x, target=target)
        rec = next(p for p in fxaccel.report_of(fast).passes if p.name == "fold_bn")
        assert rec.rewritten == 0 and "running stats" in rec.skipped[0].reason
        assert rel_err(fast, model, x) < RTOL  # batch statistics, per frame or not


def test_linear_bn_folds():
    model = nn.Sequential(nn.Linear(6, 4), randomize_bn(nn.BatchNorm1d(4), 1)).eval()
    x = torch.randn(5, 6)
    fast = deploy(as_transmuted(model, "x86"), x, target="x86")
    assert not any(isinstance(m, nn.BatchNorm1d) for m in fast.modules())
    assert rel_err(fast, model, x) < RTOL


# --------------------------------------------------------------------------- pools
@st.composite
def pool_configs(draw):
    kind = draw(st.sampled_from(["avg", "max"]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3)) if kind == "max" else (1, 1, 1)
    dims = tuple(draw(st.integers((k - 1) * d + 1, 7)) for k, d in zip(kernel, dilation))
    shape = (draw(st.sampled_from([1, 3])), draw(st.integers(1, 4)), *dims)
    if kind == "avg":
        pool = nn.AvgPool3d(kernel, stride, padding, count_include_pad=draw(st.booleans()))
    else:
        pool = nn.MaxPool3d(kernel, stride, padding, dilation)
    return pool, shape


@settings(deadline=None, max_examples=40)
@given(cfg=pool_configs(), seed=seeds)
def test_3d_pools_go_folded_and_exact_on_mobile(cfg, seed):
    pool, shape = cfg
    model = nn.Sequential(pool)
    x = _x(shape, seed)
    fast = deploy(as_transmuted(model), x, op_counts=False)
    assert rel_err(fast, model, x) < RTOL
    assert mobile_violations(fast, x) == []


def test_functional_pool_goes_folded():
    model = Call(lambda x: torch.nn.functional.max_pool3d(x, (3, 3, 3), (2, 2, 2), 1))
    x = _x((2, 3, 5, 8, 8), 0)
    fast = deploy(as_transmuted(model), x)
    assert rel_err(fast, model, x) < RTOL and mobile_violations(fast, x) == []


def test_ceil_mode_pool_cannot_go_mobile():
    model = nn.Sequential(nn.MaxPool3d(2, ceil_mode=True))
    with pytest.raises(DeployError, match=r"layer '0'.*ceil_mode"):
        deploy(as_transmuted(model), torch.randn(1, 2, 5, 5, 5))


@pytest.mark.parametrize("target", ["mobile_cpu", "x86"])
def test_adaptive_pool_is_fixed_to_the_propagated_size(target):
    model = nn.Sequential(nn.AdaptiveAvgPool3d((2, 2, 2)), nn.AdaptiveMaxPool3d((1, 2, 1)))
    x = _x((2, 3, 4, 8, 6), 1)
    fast = deploy(as_transmuted(model, target), x, target=target)
    assert not any(isinstance(m, (nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d)) for m in fast.modules())
    assert rel_err(fast, model, x) < RTOL
    if target == "mobile_cpu":
        assert mobile_violations(fast, x) == []


def test_adaptive_pool_with_uneven_windows_is_kept_on_x86_and_refused_on_mobile():
    model = nn.Sequential(nn.AdaptiveAvgPool3d((2, 3, 3)))
    x = _x((1, 2, 3, 7, 7), 2)
    fast = deploy(as_transmuted(model, "x86"), x, target="x86")
    rec = next(p for p in fxaccel.report_of(fast).passes if p.name == "fix_pools")
    assert "does not divide" in rec.skipped[0].reason
    with pytest.raises(DeployError, match="adaptive_avg_pool3d"):
        deploy(as_transmuted(model), x)


# --------------------------------------------------------------------------- means
@settings(deadline=None, max_examples=30)
@given(dims=st.sets(st.sampled_from([1, 2, 3, 4]), min_size=1), keepdim=st.booleans(), neg=st.booleans(),
       seed=seeds, target=st.sampled_from(["mobile_cpu", "x86"]))
def test_5d_means_become_4d_or_less(dims, keepdim, neg, seed, target):
    dims = tuple(sorted(d - 5 if neg else d for d in dims))
    model = Call(lambda x: x.mean(dims, keepdim=keepdim))
    x = _x((3, 4, 3, 5, 6), seed)
    fast = deploy(as_transmuted(model, target), x, target=target)
    assert rel_err(fast, model, x) < RTOL
    if target == "mobile_cpu" or sorted(d % 5 for d in dims) == list(range(min(d % 5 for d in dims), 5)):
        assert mobile_violations(fast, x) == []  # x86 rewrites trailing-dim means only


# --------------------------------------------------------------------------- views
def test_consecutive_reshapes_and_permutes_collapse():
    def fn(x):
        y = x.permute(0, 2, 1, 3, 4).permute(0, 2, 1, 3, 4)  # identity
        z = y.reshape(x.shape[0], -1, 5).view(-1, 60)
        return z.permute(1, 0).permute(1, 0) + 1

    model = Call(fn)
    x = _x((2, 3, 4, 5, 1), 0)
    fast = deploy(as_transmuted(model, "x86"), x, target="x86")
    methods = [n.target for n in fast.graph.nodes if n.op == "call_method"]
    assert "permute" not in methods and methods.count("reshape") + methods.count("view") == 1
    assert rel_err(fast, model, x) < RTOL


def test_dropout_and_identity_are_removed():
    model = nn.Sequential(nn.Conv3d(2, 2, 1), nn.Dropout3d(0.5), nn.Identity(), nn.Dropout(0.2)).eval()
    x = _x((1, 2, 2, 3, 3), 0)
    fast = deploy(as_transmuted(model, "x86"), x, target="x86")
    assert not any(isinstance(m, (nn.Dropout, nn.Dropout3d, nn.Identity)) for m in fast.modules())
    assert rel_err(fast, model, x) < RTOL


# --------------------------------------------------------------------------- layout
def test_inplace_op_between_blocks_reads_the_unfolded_view_and_stays_exact():
    """An in-place op must keep writing through the unfolded view (other readers see it)."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv3d(3, 3, 1), nn.Conv3d(3, 3, (3, 1, 1), padding=(1, 0, 0))

        def forward(self, x):
            y = self.a(x)
            z = self.b(y)
            y.mul_(2.0)
            return z + y

    model = Net().eval()
    x = _x((2, 3, 4, 5, 5), 3)
    fast = deploy(as_transmuted(model), x)
    assert rel_err(fast, model, x) < RTOL
    assert mobile_violations(fast, x) == []


def test_input_written_in_place_is_folded_again_after_the_write():
    """Two folds of the same input with an in-place write between: the copy made before the write
    must not stand in for the one after it."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv3d(3, 3, 1), nn.Conv3d(3, 3, 1)

        def forward(self, x):
            y = self.a(x)
            x.add_(1.0)
            return y + self.b(x)

    model = Net().eval()
    x = _x((2, 3, 4, 5, 5), 4)
    fast = deploy(as_transmuted(model), x.clone())
    assert rel_err(lambda v: fast(v.clone()), lambda v: model(v.clone()), x) < RTOL
