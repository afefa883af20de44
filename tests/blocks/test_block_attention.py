"""SqueezeExcite3d: original form == vanilla SE (forward and backward), deploy forms == original."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fxaccel.blocks.act import make_activation
from fxaccel.blocks.attention import SqueezeExcite3d
from fxaccel.blocks.layout import TimeFolded
from fxaccel.targets import get_target
from fxaccel.testing import assert_equivalent, seeds
from fxaccel.testing.ops import count_ops, ops_not_on_mobile, record_aten_ops

# Original form vs vanilla: the same ops, only the pooling spelling differs (mean vs adaptive
# pool sum order), so agreement is at fp32 rounding, far below 1e-6 of the output's scale.
ORIGINAL_RTOL = 1e-6
# Deploy forms reorder sums (flattened mean, mean folded into the first layer's weight / T).
DEPLOY_RTOL = 1e-5

PLAIN_ACTS = {"relu": nn.ReLU, "swish": nn.SiLU, "hardswish": nn.Hardswish}


class VanillaConvSE(nn.Module):
    """The pytorchvideo / fvcore spelling: adaptive pool, 1x1x1 convs, modules throughout."""

    def __init__(self, c, s, act):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc1 = nn.Conv3d(c, s, 1)
        self.act = act
        self.fc2 = nn.Conv3d(s, c, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class VanillaLinearSE(nn.Module):
    """The functional, Linear-based spelling."""

    def __init__(self, c, s, act):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(c, s), act, nn.Linear(s, c)

    def forward(self, x):
        s = torch.sigmoid(self.fc2(self.act(self.fc1(x.mean((2, 3, 4))))))
        return x * s[:, :, None, None, None]


def _randomize(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.7)
    return module


def _input(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1)) * 2 + 0.3


se_cases = st.fixed_dictionaries({
    "c": st.integers(1, 12), "s": st.integers(1, 6), "t": st.integers(1, 6),
    "h": st.sampled_from((1, 3, 5, 7)), "w": st.sampled_from((1, 3, 5, 7, 8)),
    "n": st.sampled_from((1, 3)), "act": st.sampled_from(tuple(PLAIN_ACTS)), "seed": seeds,
})


def _block(case):
    se = SqueezeExcite3d(case["c"], case["s"], act=case["act"])
    return _randomize(se, case["seed"]).eval()


def _shape(case):
    return (case["n"], case["c"], case["t"], case["h"], case["w"])


@settings(deadline=None, max_examples=40)
@given(case=se_cases)
def test_original_equals_vanilla_conv_se(case):
    vanilla = _randomize(VanillaConvSE(case["c"], case["s"], PLAIN_ACTS[case["act"]]()), case["seed"])
    se = SqueezeExcite3d.from_modules(vanilla.fc1, vanilla.act, vanilla.fc2)
    assert_equivalent(se, vanilla, _input(_shape(case), case["seed"]), rtol=ORIGINAL_RTOL, grads=True)


@settings(deadline=None, max_examples=40)
@given(case=se_cases)
def test_from_linear_equals_vanilla_linear_se(case):
    vanilla = _randomize(VanillaLinearSE(case["c"], case["s"], PLAIN_ACTS[case["act"]]()), case["seed"])
    se = SqueezeExcite3d.from_linear(vanilla.fc1, vanilla.act, vanilla.fc2)
    assert_equivalent(se, vanilla, _input(_shape(case), case["seed"]), rtol=ORIGINAL_RTOL, grads=True)


def test_from_linear_without_bias_is_exact():
    fc1, fc2 = nn.Linear(6, 2, bias=False), nn.Linear(2, 6, bias=False)
    vanilla = _randomize(VanillaLinearSE(6, 2, nn.ReLU()), 3)
    vanilla.fc1, vanilla.fc2 = _randomize(fc1, 4), _randomize(fc2, 5)
    se = SqueezeExcite3d.from_linear(fc1, vanilla.act, fc2)
    assert_equivalent(se, vanilla, _input((2, 6, 3, 5, 5), 0), rtol=ORIGINAL_RTOL)


def test_from_modules_reuses_the_given_modules():
    a, act, b = nn.Conv3d(8, 2, 1), nn.ReLU(), nn.Conv3d(2, 8, 1)
    se = SqueezeExcite3d.from_modules(a, act, b)
    assert se.reduce is a and se.act is act and se.expand is b
    assert set(dict(se.named_parameters())) == {"reduce.weight", "reduce.bias", "expand.weight", "expand.bias"}


@pytest.mark.parametrize("reduce, expand", [
    (nn.Conv3d(8, 2, 3), nn.Conv3d(2, 8, 1)),
    (nn.Conv3d(8, 2, 1, stride=2), nn.Conv3d(2, 8, 1)),
    (nn.Conv3d(8, 2, 1), nn.Conv3d(2, 6, 1)),
    (nn.Linear(8, 2), nn.Conv3d(2, 8, 1)),
])
def test_from_modules_refuses_non_se_convs(reduce, expand):
    with pytest.raises(ValueError, match="SqueezeExcite3d"):
        SqueezeExcite3d.from_modules(reduce, nn.ReLU(), expand)


def test_from_linear_refuses_mismatched_layers():
    with pytest.raises(ValueError, match="expected fc2 2->8"):
        SqueezeExcite3d.from_linear(nn.Linear(8, 2), nn.ReLU(), nn.Linear(2, 6))


def test_string_activation_builds_an_activation_block():
    assert type(SqueezeExcite3d(8, 2, act="swish").act) is type(make_activation("swish"))
    with pytest.raises(ValueError, match="unknown activation"):
        SqueezeExcite3d(8, 2, act="gelu")


@settings(deadline=None, max_examples=40)
@given(case=se_cases, target=st.sampled_from(("x86", "mobile_cpu")))
def test_deploy_equals_original(case, target):
    se = _block(case)
    x = _input(_shape(case), case["seed"])
    fast = se.deploy(x.shape, get_target(target))
    assert_equivalent(fast, se, x, rtol=DEPLOY_RTOL)
    # Any batch size: the form is built for a clip shape, not a batch.
    x2 = _input((2, *x.shape[1:]), case["seed"] + 7)
    assert_equivalent(fast, se, x2, rtol=DEPLOY_RTOL)


def test_deploy_leaves_the_block_untouched():
    se = _block({"c": 6, "s": 2, "act": "relu", "seed": 1})
    before = {k: v.clone() for k, v in se.state_dict().items()}
    for target in ("x86", "mobile_cpu"):
        se.deploy((1, 6, 4, 5, 5), get_target(target))
    assert all(torch.equal(before[k], v) for k, v in se.state_dict().items())


def test_deploy_uses_the_plain_activation_module():
    se = _block({"c": 6, "s": 2, "act": "swish", "seed": 1})
    assert isinstance(se.deploy((1, 6, 4, 5, 5), get_target("x86")).act, nn.SiLU)
    assert isinstance(se.deploy((1, 6, 4, 5, 5), get_target("mobile_cpu")).inner.act, nn.SiLU)


@pytest.mark.parametrize("t", [1, 4])
def test_mobile_form_runs_no_5d_mean_and_is_folded(t):
    se = _block({"c": 6, "s": 2, "act": "relu", "seed": 2})
    x = _input((2, 6, t, 5, 5), 0)
    # Positive control: the original form does run a 5-D mean, so the check below can fail.
    assert count_ops(record_aten_ops(se, x), "mean", rank=5) == 1
    fast = se.deploy(x.shape, get_target("mobile_cpu"))
    assert isinstance(fast, TimeFolded)
    with torch.no_grad():
        assert ops_not_on_mobile(record_aten_ops(fast, x)) == []
        ops = record_aten_ops(fast.inner, x.transpose(1, 2).reshape(2 * t, 6, 5, 5))
    assert count_ops(ops, "mean", rank=4) == 1
    assert count_ops(ops, "convolution") == 0
    assert max(rank for _, rank in ops if rank is not None) == 4


def test_x86_form_has_no_5d_mean_or_conv():
    se = _block({"c": 6, "s": 2, "act": "relu", "seed": 2})
    x = _input((2, 6, 3, 5, 5), 0)
    with torch.no_grad():
        ops = record_aten_ops(se.deploy(x.shape, get_target("x86")), x)
    assert count_ops(ops, "mean", rank=5) == 0 and count_ops(ops, "convolution") == 0
    assert count_ops(ops, "mean", rank=3) == 1


@pytest.mark.parametrize("target", ["x86", "mobile_cpu"])
def test_deploy_forms_trace_and_export(target):
    se = _block({"c": 6, "s": 2, "act": "hardswish", "seed": 3})
    x = _input((2, 6, 3, 5, 5), 0)
    fast = se.deploy(x.shape, get_target(target))
    traced_part = fast if target == "x86" else fast.inner
    traced_in = x if target == "x86" else x.transpose(1, 2).reshape(6, 6, 5, 5)
    gm = torch.fx.symbolic_trace(traced_part)
    assert_equivalent(gm, traced_part, traced_in, rtol=0.0)
    if target == "x86":  # the shape guard survives dead-code elimination in a trace
        gm = torch.fx.symbolic_trace(fast)
        gm.graph.eliminate_dead_code()
        gm.recompile()
        with pytest.raises(ValueError, match="deploy form was built for"):
            gm(torch.randn(2, 6, 3, 5, 6))
    exported = torch.export.export(fast, (x,), dynamic_shapes=({0: torch.export.Dim("n")},))
    assert_equivalent(exported.module(), se, _input((3, 6, 3, 5, 5), 1), rtol=DEPLOY_RTOL)


@pytest.mark.parametrize("target", ["x86", "mobile_cpu"])
@pytest.mark.parametrize("bad", [(2, 6, 4, 5, 5), (2, 6, 3, 5, 7), (2, 5, 3, 5, 5), (2, 6, 3, 5)])
def test_wrong_input_shape_raises(target, bad):
    se = _block({"c": 6, "s": 2, "act": "relu", "seed": 0})
    fast = se.deploy((1, 6, 3, 5, 5), get_target(target))
    with pytest.raises(ValueError) as err:
        fast(torch.randn(bad))
    assert "(N, 6, 3, 5, 5)" in str(err.value) and str(bad) in str(err.value)


def test_deploy_refuses_a_shape_it_cannot_serve():
    se = _block({"c": 6, "s": 2, "act": "relu", "seed": 0})
    with pytest.raises(ValueError, match=r"expected an input shape \(N, 6, T, H, W\), got \(1, 5, 3, 5, 5\)"):
        se.deploy((1, 5, 3, 5, 5), get_target("x86"))
    with pytest.raises(ValueError, match="unknown target"):
        se.deploy((1, 6, 3, 5, 5), "gpu9000")
