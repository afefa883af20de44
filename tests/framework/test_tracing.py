"""Tracing: untraceable parts become opaque leaves, their children are still traced."""
import pytest
import torch
from torch import fx, nn

import fxaccel
from fxaccel.testing import assert_equivalent


class Branchy(nn.Module):
    """Tensor-dependent control flow: symbolic tracing of this forward must fail."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(nn.Conv3d(4, 4, 1), nn.BatchNorm3d(4), nn.ReLU())
        self.other = nn.Conv3d(4, 4, 1)

    def forward(self, x):
        x = self.inner(x)
        if x.sum() > 0:
            return self.other(x)
        return x


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(3, 4, 1)
        self.branchy = Branchy()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.branchy(self.stem(x)).mean((2, 3, 4)))


def test_untraceable_submodule_is_opaque_and_reported():
    model, x = Net().eval(), torch.randn(2, 3, 2, 4, 4)
    with pytest.raises(Exception):
        fx.symbolic_trace(model)
    gm = fxaccel.transmute(model, x)
    report = fxaccel.report_of(gm)
    assert [o.path for o in report.opaque] == ["branchy"]
    assert "control flow" in report.opaque[0].error
    assert isinstance(gm.branchy.inner, fx.GraphModule)     # its children were traced
    assert_equivalent(gm, model, x, rtol=1e-6)


def test_untraceable_root_is_wrapped_whole():
    model, x = Branchy().eval(), torch.randn(1, 4, 2, 3, 3)
    gm = fxaccel.trace(model)
    assert [n.op for n in gm.graph.nodes] == ["placeholder", "call_module", "output"]
    assert_equivalent(gm, model, x, rtol=0)


def test_trace_never_mutates_and_leaves_are_respected():
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gm = fxaccel.trace(model, leaves=["stem", Branchy])
    assert {n.target for n in gm.graph.nodes if n.op == "call_module"} >= {"stem", "branchy"}
    assert gm.stem is not model.stem
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_inputs_are_clear_errors():
    model = Net()
    with pytest.raises(ValueError, match=r"example inputs of shape \(1, 3, 4, 4\).*pytorchvideo clips are "
                                         r"\(N, C, T, H, W\), transformers' \(N, T, C, H, W\)"):
        fxaccel.transmute(model, torch.randn(1, 3, 4, 4))
    with pytest.raises(TypeError, match="a tensor, a tuple of positional arguments or a dict of keyword"):
        fxaccel.transmute(model, [1, 2])
    with pytest.raises(TypeError, match=r"do not fit Net.forward\(x\)"):
        fxaccel.transmute(model, (torch.randn(1, 3, 2, 4, 4), torch.randn(1)))
    with pytest.raises(TypeError, match="nn.Module"):
        fxaccel.transmute(lambda x: x, torch.randn(1))
    with pytest.raises(ValueError, match="unknown target 'gpu'.*mobile_cpu"):
        fxaccel.transmute(model, torch.randn(1, 3, 2, 4, 4), target="gpu")


# ------------------------------------------------------------------ traced graphs that do not run


@fx.wrap
def _pad_to(sizes, x):
    """Mutates its list argument, as torchvision's Swin3D does: FX freezes the list into the node's
    arguments as an ``immutable_list``, so running the graph node by node fails although the eager
    model runs."""
    sizes[0] = max(sizes[0], x.shape[2])
    return x[:, :, : sizes[0]]


@fx.wrap
def _add_into(out, x):
    """Adds in place and returns nothing anyone reads, as torchvision's MViT's ``_add_shortcut``."""
    out.add_(x)
    return out


class ListMutator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv3d(4, 4, 1), nn.BatchNorm3d(4), nn.ReLU())

    def forward(self, x):
        return _pad_to([1], self.conv(x))


class Swinish(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, 4, 1, bias=False), nn.BatchNorm3d(4), nn.ReLU())
        self.attn = ListMutator()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.attn(self.stem(x)).mean((2, 3, 4)))


def test_traced_graph_that_fails_on_the_inputs_makes_its_submodule_opaque():
    model, x = Swinish().eval(), torch.randn(2, 3, 3, 4, 4)
    with pytest.raises(TypeError, match="immutable_list"):
        fx.Interpreter(fx.symbolic_trace(model)).run(x)  # FX traces it, but the graph cannot run
    gm = fxaccel.transmute(model, x)
    report = fxaccel.report_of(gm)
    assert [o.path for o in report.opaque] == ["attn"]
    assert "traced graph fails on the example inputs" in report.opaque[0].error
    assert "immutable_list" in report.opaque[0].error
    assert isinstance(gm.attn.conv, fx.GraphModule)  # the opaque block's children are still traced
    assert report.record("conv_bn_act").rewritten >= 2  # the stem and the opaque block's conv
    assert_equivalent(gm, model, x, rtol=1e-5)


def test_root_whose_traced_graph_fails_is_wrapped_whole():
    model, x = ListMutator().eval(), torch.randn(1, 4, 3, 4, 4)
    gm = fxaccel.transmute(model, x)
    assert [o.path for o in fxaccel.report_of(gm).opaque][:1] == [""]
    assert_equivalent(gm, model, x, rtol=1e-5)


@fx.wrap
def _graph_only(x):
    raise RuntimeError("a call only the traced graph makes")


class TraceDiffers(nn.Module):
    """Code that asks ``is_fx_tracing()`` (some libraries do): its graph makes a call eager never
    makes, and that call fails when the graph runs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv3d(4, 4, 1), nn.BatchNorm3d(4), nn.ReLU())

    def forward(self, x):
        y = self.conv(x)
        if torch.fx._symbolic_trace.is_fx_tracing():
            return _graph_only(y)
        return y


class Differs(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, 4, 1, bias=False), nn.BatchNorm3d(4), nn.ReLU())
        self.attn = TraceDiffers()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.attn(self.stem(x)).mean((2, 3, 4)))


def test_a_graph_that_makes_a_call_eager_does_not_makes_its_submodule_opaque():
    model, x = Differs().eval(), torch.randn(2, 3, 3, 4, 4)
    gm = fxaccel.transmute(model, x)
    report = fxaccel.report_of(gm)
    assert [o.path for o in report.opaque] == ["attn"]
    assert "traced graph fails on the example inputs" in report.opaque[0].error
    assert "a call only the traced graph makes" in report.opaque[0].error
    assert isinstance(gm.attn.conv, fx.GraphModule)  # the opaque block's children are still traced
    assert report.record("conv_bn_act").rewritten >= 2  # the stem and the opaque block's conv
    assert_equivalent(gm, model, x, rtol=1e-5)


class InPlaceShortcut(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv3d(4, 4, 1, bias=False), nn.BatchNorm3d(4))

    def forward(self, x):
        y = self.proj(x)
        _add_into(y, x)                              # result unused: only the mutation matters
        return y


def test_dead_code_elimination_keeps_a_wrapped_function_that_writes_into_its_argument():
    model, x = InPlaceShortcut().eval(), torch.randn(2, 4, 2, 3, 3)
    gm = fxaccel.transmute(model, x)                 # a rewrite fires, so DCE runs
    assert any(n.target is _add_into for n in gm.graph.nodes)
    assert_equivalent(gm, model, x, rtol=1e-5)


class RandomDrop(nn.Module):
    """A train-only op spelled by hand (as torchvision's StochasticDepth): a trace in eval mode
    would drop it for good."""

    def forward(self, x):
        if not self.training:
            return x
        return x * (torch.rand(x.shape[0], 1, 1, 1, 1) > 0.5)


class WithDrop(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv3d(3, 4, 1, bias=False), nn.BatchNorm3d(4), nn.ReLU())
        self.drop = RandomDrop()

    def forward(self, x):
        return self.drop(self.conv(x))


@pytest.mark.parametrize("make", [WithDrop, lambda: nn.Sequential(WithDrop())])
def test_module_reading_self_training_stays_a_leaf_and_trains_like_the_original(make):
    model, x = make().eval(), torch.randn(4, 3, 2, 3, 3)
    gm = fxaccel.transmute(model, x)
    report = fxaccel.report_of(gm)
    assert any("reads self.training" in o.error for o in report.opaque)
    assert report.record("conv_bn_act").rewritten == 1      # its convs are still rewritten
    model.train(), gm.train()
    torch.manual_seed(0)
    want = model(x)
    torch.manual_seed(0)
    assert torch.allclose(gm(x), want, rtol=1e-5, atol=1e-6)
    assert (want == 0).all(dim=(1, 2, 3, 4)).any()           # the drop really ran in train mode
