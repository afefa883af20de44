"""The model zoo and the models in the wild: they build, run, trace, and carry realistic BN.

X3D forward passes are limited to XS and S (M and L only build and count parameters) to keep the
file fast on a loaded 2-core machine.
"""
import doctest

import pytest
import torch
import torch.fx as fx
from torch import nn

import fxaccel.zoo as zoo
from fxaccel.zoo import csn, r2plus1d, resnet3d
from fxaccel.zoo import x3d as x3d_factory
from fxaccel.zoo.x3d import SIZES, X3D, round_repeats, round_width
from models_in_the_wild import ALL_MODELS, UNTRACEABLE, DynamicGate

# random-weight models (a trained one has its own classes: tests/passes/quantize/test_quantize_trained.py)
RUNNABLE = [n for n in zoo.names() if n not in ("x3d_m", "x3d_l") and zoo.get(n).task is None]
REQUIRED = {"x3d_xs", "x3d_s", "x3d_m", "x3d_l", "resnet3d_18", "r2plus1d_18", "csn_26"}


def _assert_sane(y: torch.Tensor):
    """Finite and neither collapsed nor exploded: random-weight logits should have std ~0.01..10."""
    assert torch.isfinite(y).all()
    assert 1e-2 < y.std().item() < 1e1, y.std().item()


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a shared, loaded machine two OpenMP threads wait on each other
    (X3D-XS goes from ~0.05 s to seconds); one thread degrades gracefully."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def xs():
    return zoo.create("x3d_xs")


# --- registry -------------------------------------------------------------------------------------

def test_registry_has_the_required_models_with_descriptions():
    assert REQUIRED <= set(zoo.names())
    assert zoo.names() == sorted(zoo.MODELS)
    for name in zoo.names():
        entry = zoo.get(name)
        assert callable(entry.factory) and callable(entry.example_input)
        assert entry.description


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown zoo model 'x3d_xxl'.*csn_26.*x3d_xs"):
        zoo.get("x3d_xxl")
    with pytest.raises(KeyError, match="known:"):
        zoo.create("resnet99")


def test_unknown_x3d_size_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown X3D size 'XL'.*XS, S, M, L"):
        x3d_factory("XL")


def test_package_level_exports():
    assert zoo.x3d is x3d_factory and callable(zoo.x3d)
    assert zoo.example_input("XS").shape == zoo.example_input("x3d_xs").shape == (1, 3, 4, 160, 160)
    assert zoo.example_input("x3d_s", batch=2).shape == (2, 3, 13, 160, 160)
    assert zoo.example_input("x3d_m").shape == (1, 3, 16, 224, 224)
    assert zoo.example_input("x3d_l").shape == (1, 3, 16, 312, 312)
    assert torch.equal(zoo.example_input("csn_26", seed=4), zoo.example_input("csn_26", seed=4))
    assert not torch.equal(zoo.example_input("csn_26", seed=4), zoo.example_input("csn_26", seed=5))


def test_docstring_examples_run():
    for module in (zoo, zoo._x3d, resnet3d, r2plus1d, csn):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# --- every zoo model builds, runs and traces ------------------------------------------------------

@pytest.mark.parametrize("name", RUNNABLE)
def test_zoo_model_runs_traces_and_depends_on_its_input(name):
    model = zoo.create(name, num_classes=11)
    assert not model.training
    x = zoo.example_input(name, batch=2)
    with torch.no_grad():
        y = model(x)
        traced = fx.symbolic_trace(model)
        y_traced = traced(x)
    assert y.shape == (2, 11)
    _assert_sane(y)
    torch.testing.assert_close(y_traced, y, rtol=0, atol=0)  # same ops in the same order
    # Clips differ -> logits differ (a model that ignores its input would hide rewrite bugs).
    assert (y[0] - y[1]).abs().max() > 1e-4 * y.abs().max()


def test_trained_entry_loads_its_checkpoint_and_takes_real_clips():
    entry = zoo.get("x3d_xs_synthetic")
    assert entry.task == "synthetic"
    x = entry.example_input(batch=2)
    assert tuple(x.shape) == (2, 3, 4, 64, 64)
    with torch.no_grad():
        y = zoo.create("x3d_xs_synthetic")(x)
    assert y.shape == (2, 10) and y.argmax(-1).tolist() == [0, 1]  # test clips 0 and 1 are classes 0 and 1


@pytest.mark.parametrize("name", ["resnet3d_18", "csn_26"])
def test_seed_makes_weights_deterministic_and_leaves_global_rng_alone(name):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = zoo.create(name, seed=7)
    assert torch.equal(torch.rand(3), expected_next)  # building did not consume the global RNG
    b, c = zoo.create(name, seed=7), zoo.create(name, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


# --- X3D architecture -----------------------------------------------------------------------------

def test_x3d_rounding_rules():
    assert [round_repeats(d, 2.2) for d in (1, 2, 5, 3)] == [3, 5, 11, 7]
    assert [round_repeats(d, 5.0) for d in (1, 2, 5, 3)] == [5, 10, 25, 15]
    assert [round_width(w, 2.0) for w in (12, 24, 48, 96)] == [24, 48, 96, 192]
    # SE reduce widths: 54*1/16 etc., rounded to 8 and never more than 10% below exact.
    assert [round_width(c, 0.0625) for c in (54, 108, 216, 432)] == [8, 8, 16, 32]


@pytest.mark.parametrize("size, depths", [("XS", (3, 5, 11, 7)), ("L", (5, 10, 25, 15))])
def test_x3d_structure(size, depths):
    model = X3D(SIZES[size].depth_factor)
    assert tuple(len(stage) for stage in model.stages) == depths
    for stage, width in zip(model.stages, (24, 48, 96, 192)):
        first = stage[0]
        assert first.conv_b.stride == (1, 2, 2) and first.shortcut is not None
        assert first.conv_c.out_channels == width and first.conv_b.groups == int(2.25 * width)
        assert all(b.shortcut is None and b.conv_b.stride == (1, 1, 1) for b in stage[1:])
        has_se = [not isinstance(b.se, nn.Identity) for b in stage]
        assert has_se == [i % 2 == 0 for i in range(len(stage))]  # SE on every other block
    assert model.stem.conv_xy.kernel_size == (1, 3, 3) and model.stem.conv_t.kernel_size == (5, 1, 1)
    assert model.head.post_conv.out_channels == 2048 and model.head.post_conv.bias is None


@pytest.mark.parametrize("size, published", [("XS", 3.79e6), ("S", 3.79e6), ("M", 3.79e6),
                                             ("L", 6.15e6)])
def test_x3d_parameter_counts_match_published(size, published):
    # Published (PyTorchVideo model zoo) counts are for 400 classes; allow 10% for rounding.
    # M and L are built by the factory (no forward pass of their own); XS/S via the class is enough.
    model = x3d_factory(size) if size in ("M", "L") else X3D(SIZES[size].depth_factor)
    assert abs(_params(model) - published) < 0.1 * published, _params(model)
    assert isinstance(model, X3D)


def test_x3d_dropout_only_in_training(xs):
    x = zoo.example_input("XS", batch=2)
    with torch.no_grad():
        assert torch.equal(xs(x), xs(x))  # eval: deterministic
        xs.head.train()
        try:
            torch.manual_seed(0)
            a = xs(x)
            torch.manual_seed(1)
            b = xs(x)
        finally:
            xs.head.eval()
    assert not torch.equal(a, b)


# --- realistic BN ---------------------------------------------------------------------------------

def _normalised_stats(model: nn.Module, x: torch.Tensor):
    """Mean |mean| and mean std of every tracked BN's *normalised* output (x - mu) / sigma."""
    means, stds = [], []

    def hook(bn, inputs, output):
        z = (inputs[0] - bn.running_mean[:, None, None, None]) / torch.sqrt(
            bn.running_var[:, None, None, None] + bn.eps)
        z = z.transpose(0, 1).flatten(1)  # channels first
        means.append(z.mean(1).abs().mean().item())
        stds.append(z.std(1).mean().item())

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.BatchNorm3d) and m.track_running_stats]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return sum(means) / len(means), sum(stds) / len(stds)


@pytest.mark.parametrize("name", ["x3d_xs", "resnet3d_18", "resnet3d_50", "r2plus1d_18", "csn_26"])
def test_bn_statistics_are_realistic(name):
    """On a fresh clip, every BN sees roughly zero-mean unit-variance inputs after normalisation."""
    model = zoo.create(name)
    x = zoo.example_input(name, batch=2, seed=99)  # not a calibration clip
    mean, std = _normalised_stats(model, x)
    assert mean < 0.3 and 0.8 < std < 1.25, (mean, std)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm3d)):
        assert bn.momentum == 0.1  # restored after cumulative calibration
        assert not torch.allclose(bn.weight, torch.ones_like(bn.weight))
        assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))


def test_default_bn_fails_the_realism_check():
    """The check above can fail: the same X3D with BN at its defaults is far from normalised."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        raw = X3D(2.2).eval()
    mean, std = _normalised_stats(raw, zoo.example_input("XS", batch=2, seed=99))
    assert not (mean < 0.3 and 0.8 < std < 1.25), (mean, std)


def test_realistic_bn_restores_momentum_and_eval_when_a_forward_fails():
    model = nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4, momentum=0.3))
    with pytest.raises(RuntimeError):
        zoo.realistic_bn(model, [torch.randn(1, 5, 2, 4, 4)])  # wrong channel count
    assert model[1].momentum == 0.3 and not model.training


def test_realistic_bn_uses_the_cumulative_average_of_all_clips():
    bn = nn.BatchNorm3d(2)
    clips = [torch.randn(2, 2, 3, 4, 4) * s + s for s in (1.0, 3.0)]
    zoo.realistic_bn(bn, clips)
    expected_mean = torch.stack([c.mean((0, 2, 3, 4)) for c in clips]).mean(0)
    torch.testing.assert_close(bn.running_mean, expected_mean)
    assert bn.num_batches_tracked == 2


# --- checkpoints ----------------------------------------------------------------------------------

def test_checkpoint_round_trip(tmp_path, xs):
    path = tmp_path / "x3d_xs.pt"
    torch.save(xs.state_dict(), path)
    loaded = x3d_factory("XS", weights=path, seed=1)
    other = x3d_factory("XS", seed=1)
    x = zoo.example_input("XS")
    with torch.no_grad():
        assert torch.equal(loaded(x), xs(x))
        assert not torch.allclose(other(x), xs(x))  # the seed alone would have given other weights
    assert not loaded.training


def test_wrapped_checkpoint_round_trip(tmp_path):
    model = zoo.create("csn_26", num_classes=3)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, path)
    loaded = zoo.create("csn_26", num_classes=3, weights=str(path), seed=5)
    x = zoo.example_input("csn_26")
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_checkpoint_with_wrong_keys_is_a_clear_error(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save(zoo.create("resnet3d_18").state_dict(), path)
    with pytest.raises(ValueError, match=r"does not fit X3D: missing \d+ key\(s\).*unexpected"):
        x3d_factory("XS", weights=path)


def test_checkpoint_with_wrong_shapes_is_a_clear_error(tmp_path):
    path = tmp_path / "r2p1d_10.pt"
    torch.save(zoo.create("r2plus1d_18", num_classes=10).state_dict(), path)
    with pytest.raises(ValueError, match=r"shape mismatch.*fc\.(weight|bias).*\(10.*num_classes"):
        zoo.create("r2plus1d_18", num_classes=400, weights=path)


def test_checkpoint_that_is_not_a_state_dict_is_a_clear_error(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match="not a state dict"):
        zoo.create("csn_26", weights=path)


# --- models in the wild ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_wild_model_runs_with_realistic_bn(name):
    factory = ALL_MODELS[name]
    assert factory.__doc__ and len(factory.__doc__.split()) > 5, "say what style/trap it represents"
    model, x = factory()
    assert not model.training
    assert x.dim() == 5 and x.shape[2] <= 6 and max(x.shape[3:]) <= 16
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            assert m.in_channels <= 16 and m.out_channels <= 16
        if isinstance(m, nn.BatchNorm3d) and m.track_running_stats:
            assert not torch.allclose(m.running_var, torch.ones_like(m.running_var))
    with torch.no_grad():
        y = model(x)
    _assert_sane(y)
    other, _ = factory(seed=1)
    with torch.no_grad():
        assert not torch.allclose(other(x), y)  # the seed matters


@pytest.mark.parametrize("name", sorted(set(ALL_MODELS) - UNTRACEABLE))
def test_wild_model_traces_whole(name):
    model, x = ALL_MODELS[name]()
    traced = fx.symbolic_trace(model)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)


def test_control_flow_model_does_not_trace_whole_but_does_with_the_gate_as_leaf():
    model, x = ALL_MODELS["control_flow"]()
    with pytest.raises(fx.proxy.TraceError):
        fx.symbolic_trace(model)

    class GateAsLeaf(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, DynamicGate) or super().is_leaf_module(m, qualname)

    graph = GateAsLeaf().trace(model)
    traced = fx.GraphModule(model, graph)
    assert [n.target for n in graph.nodes if n.op == "call_module"].count("gate") == 1
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)


def test_shared_conv_is_called_twice_in_the_trace():
    model, _ = ALL_MODELS["shared_conv"]()
    targets = [n.target for n in fx.symbolic_trace(model).graph.nodes if n.op == "call_module"]
    assert targets.count("shared") == 2


def test_two_users_conv_output_has_two_users():
    model, _ = ALL_MODELS["two_users"]()
    node = next(n for n in fx.symbolic_trace(model).graph.nodes if n.target == "conv")
    assert len(node.users) == 2


def test_bn_batch_stats_model_normalises_with_the_batch_in_eval():
    model, x = ALL_MODELS["bn_batch_stats"]()
    assert model.bn1.running_mean is None and not model.training
    with torch.no_grad():
        z = model.bn1(model.conv1(torch.cat([x, x * 3 + 1])))
    # Batch statistics: the shifted/scaled copy changes the normalisation of the first clip.
    with torch.no_grad():
        alone = model.bn1(model.conv1(x))
    assert not torch.allclose(z[:1], alone)


def test_autograd_swish_backward_is_the_true_swish_gradient():
    """The hand-written backward must be right, or the model would be a bad oracle for training."""
    from models_in_the_wild import SwishFunction

    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64,
                    requires_grad=True)
    assert torch.autograd.gradcheck(SwishFunction.apply, (x,))
