"""Small vanilla video models written the way *other people* write them (test-only, not installed).

fxaccel must work on models nobody wrote for it. Each model here is tiny (channels <= 16, T <= 6,
H, W <= 16) and spells a common idiom (or a trap) differently from ``fxaccel.zoo``: nested
``nn.Sequential``s, ``nn.ModuleList`` loops, functional SE, SE over ``nn.Linear``, every swish
spelling, residual adds as lambdas / ``torch.add`` / ``+=``, tensor-dependent control flow, a conv
called twice, a conv output with two users, BN without running stats, and activations that must
NOT be taken for swish.

Every factory takes ``seed`` and returns ``(model.eval(), example_input)`` with realistic BN (mild
random affine params, running stats from random clips; see ``fxaccel.zoo.realistic_bn``).

    from models_in_the_wild import ALL_MODELS, UNTRACEABLE
    model, x = ALL_MODELS["functional_se"](seed=3)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fxaccel.zoo import random_clips, realistic_bn

SHAPE = (1, 3, 4, 16, 16)


def _ready(make, seed: int, shape=SHAPE):
    """Build ``make()`` under ``seed``, calibrate its BN on random clips, return (model, input)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make()
    clips = [random_clips((2,) + tuple(shape[1:]), seed=seed * 100 + i + 1) for i in range(3)]
    realistic_bn(model, clips, seed=seed)
    return model.eval(), random_clips(shape, seed=seed)


def _cbr(cin, cout, k=3, stride=1, groups=1):
    """Conv3d -> BN -> ReLU as an ``nn.Sequential`` (torchvision style)."""
    pad = tuple(kk // 2 for kk in k) if isinstance(k, tuple) else k // 2
    return nn.Sequential(nn.Conv3d(cin, cout, k, stride, pad, groups=groups, bias=False),
                         nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


# --- nested Sequentials ---------------------------------------------------------------------------

def nested_sequential(seed: int = 0):
    """Everything is ``nn.Sequential`` inside ``nn.Sequential`` (no custom forward at all):
    module paths like ``1.0.1``; 1x3x3 / 3x1x1 / depthwise convs; AdaptiveAvgPool3d + Flatten."""
    def make():
        return nn.Sequential(
            _cbr(3, 8, (1, 3, 3), stride=(1, 2, 2)),
            nn.Sequential(
                nn.Sequential(_cbr(8, 8, (3, 1, 1)), _cbr(8, 8, 3, groups=8)),
                nn.Sequential(_cbr(8, 16, 1), _cbr(16, 16, (1, 3, 3), stride=(1, 2, 2))),
            ),
            nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(16, 5)),
        )
    return _ready(make, seed)


# --- ModuleList stages, SiLU, mean pool, += residual ----------------------------------------------

class _SiLUBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv3d(c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(c)
        self.act = nn.SiLU()
        self.conv2 = nn.Conv3d(c, c, 3, padding=1, groups=c, bias=False)
        self.bn2 = nn.BatchNorm3d(c)

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return F.relu(out)


class _ModuleListNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(3, 12, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.stages = nn.ModuleList([_SiLUBlock(12) for _ in range(3)])
        self.fc = nn.Linear(12, 6)

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = x.mean((2, 3, 4), keepdim=True)
        return self.fc(x.flatten(1))


def modulelist_stages(seed: int = 0):
    """``nn.ModuleList`` iterated in ``forward``; ``nn.SiLU`` swish; in-place ``+=`` residual;
    ``x.mean((2, 3, 4), keepdim=True)`` pool; a biased stem conv with no BN after it."""
    return _ready(_ModuleListNet, seed)


# --- functional SE, F.silu, torch.add -------------------------------------------------------------

class _FunctionalSE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.fc1 = nn.Conv3d(c, r, 1)
        self.fc2 = nn.Conv3d(r, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool3d(x, 1)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class _FunctionalSENet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 16, (3, 3, 3), stride=(1, 2, 2), padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(16)
        self.dw = nn.Conv3d(16, 16, 3, padding=1, groups=16, bias=False)
        self.bn2 = nn.BatchNorm3d(16)
        self.se = _FunctionalSE(16, 8)
        self.pw = nn.Conv3d(16, 16, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(16)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        y = F.silu(self.se(self.bn2(self.dw(x))))
        x = torch.add(x, self.bn3(self.pw(y)))
        return self.fc(torch.flatten(F.adaptive_avg_pool3d(x, 1), 1))


def functional_se(seed: int = 0):
    """SE written functionally: ``F.adaptive_avg_pool3d(x, 1)``, module convs called inside
    ``torch.sigmoid(self.fc2(F.relu(self.fc1(s))))``; ``F.silu`` swish; ``torch.add`` residual."""
    return _ready(_FunctionalSENet, seed)


# --- SE over nn.Linear on a flattened view --------------------------------------------------------

class _LinearSE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.fc1 = nn.Linear(c, r)
        self.fc2 = nn.Linear(r, c)

    def forward(self, x):
        n, c = x.shape[:2]
        s = x.mean((2, 3, 4))
        s = self.fc2(F.relu(self.fc1(s))).sigmoid()
        return x * s.view(n, c, 1, 1, 1)


class _LinearSENet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 16, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.bn = nn.BatchNorm3d(16)
        self.conv_t = nn.Conv3d(16, 16, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.bn_t = nn.BatchNorm3d(16)
        self.se = _LinearSE(16, 4)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        x = self.bn(self.conv(x))
        x = x * torch.sigmoid(x)
        x = self.se(self.bn_t(self.conv_t(x)))
        return self.head(x.mean((2, 3, 4)))


def linear_se(seed: int = 0):
    """SE with ``nn.Linear`` over ``x.mean((2, 3, 4))`` and ``x * s.view(n, c, 1, 1, 1)`` where
    ``n, c = x.shape[:2]`` (shape-dependent view); swish spelt ``x * torch.sigmoid(x)``."""
    return _ready(_LinearSENet, seed)


# --- gate-first torch.mul SE, sigmoid(x) * x, lambda residual -------------------------------------

class _TorchMulNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv3d(3, 12, 1, bias=False)
        self.bn_a = nn.BatchNorm3d(12)
        self.conv_b = nn.Conv3d(12, 12, 3, padding=1, groups=12, bias=False)
        self.bn_b = nn.BatchNorm3d(12)
        self.squeeze = nn.AdaptiveAvgPool3d(1)
        self.reduce = nn.Conv3d(12, 8, 1)
        self.expand = nn.Conv3d(8, 12, 1)
        self.merge = lambda a, b: a + b
        self.proj = nn.Conv3d(12, 12, 1, bias=False)
        self.bn_p = nn.BatchNorm3d(12)
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        x = F.relu(self.bn_a(self.conv_a(x)))
        y = self.bn_b(self.conv_b(x))
        s = torch.sigmoid(self.expand(F.relu(self.reduce(self.squeeze(y)))))
        y = torch.mul(s, y)
        y = torch.sigmoid(y) * y
        x = F.relu(self.merge(x, self.bn_p(self.proj(y))))
        return self.fc(x.mean((2, 3, 4)))


def torch_mul_se(seed: int = 0):
    """SE applied gate-first with ``torch.mul(s, x)``; swish spelt ``torch.sigmoid(x) * x``
    (operands swapped); residual merged by a lambda stored on the module."""
    return _ready(_TorchMulNet, seed)


# --- x.mul(s) SE, custom activation module --------------------------------------------------------

class MySwish(nn.Module):
    """A user's own activation class (not ``nn.SiLU``): ``x * x.sigmoid()``."""

    def forward(self, x):
        return x * x.sigmoid()


class _MethodMulNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 16, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(16), MySwish(),
            nn.Conv3d(16, 16, 3, padding=1, groups=16, bias=False),
            nn.BatchNorm3d(16),
        )
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.gate = nn.Sequential(nn.Conv3d(16, 8, 1), nn.ReLU(), nn.Conv3d(8, 16, 1), nn.Sigmoid())
        self.act = MySwish()
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = self.features(x)
        x = self.act(x.mul(self.gate(self.pool(x))))
        return self.fc(self.pool(x).flatten(1))


def method_mul_se(seed: int = 0):
    """SE applied with the tensor method ``x.mul(s)`` after an ``nn.Sequential`` gate; swish as a
    user-defined module class whose forward is ``x * x.sigmoid()``; one pool module used twice."""
    return _ready(_MethodMulNet, seed)


# --- custom autograd.Function swish ---------------------------------------------------------------

class SwishFunction(torch.autograd.Function):
    """Memory-saving swish with a hand-written backward (as in several X3D/EfficientNet repos)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad * (s * (1 + x * (1 - s)))


class _AutogradSwishNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 12, 3, stride=(1, 2, 2), padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(12)
        self.conv2 = nn.Conv3d(12, 12, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(12)
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        x = SwishFunction.apply(self.bn1(self.conv1(x)))
        x = SwishFunction.apply(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3, 4)))


def autograd_swish(seed: int = 0):
    """Swish as a custom ``torch.autograd.Function`` with its own backward. Trap: FX traces
    *through* ``apply`` (the graph holds ``x * sigmoid(x)``), so the custom backward is lost."""
    return _ready(_AutogradSwishNet, seed)


# --- PyTorchVideo-style permute head --------------------------------------------------------------

class _PermuteHeadNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(_cbr(3, 8, (1, 3, 3), stride=(1, 2, 2)), _cbr(8, 16, (3, 1, 1)))
        self.pool = nn.AvgPool3d((4, 8, 8), stride=1)
        self.proj = nn.Linear(16, 7)

    def forward(self, x):
        x = self.pool(self.body(x))
        x = x.permute((0, 2, 3, 4, 1))
        x = self.proj(x)
        x = x.permute((0, 4, 1, 2, 3))
        return x.view(x.shape[0], -1)


def permute_head(seed: int = 0):
    """PyTorchVideo's head spelling: a fixed-size ``nn.AvgPool3d`` (equal to a global pool only at
    this input size), ``permute`` to channels-last, ``nn.Linear``, permute back, ``view``."""
    return _ready(_PermuteHeadNet, seed)


# --- tensor-dependent control flow ----------------------------------------------------------------

class DynamicGate(nn.Module):
    """Data-dependent branch: symbolic tracing cannot follow ``if x.sum() > 0``."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv3d(c, c, 1)

    def forward(self, x):
        if x.sum() > 0:
            return F.relu(self.conv(x))
        return x * 0.5


class _ControlFlowNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = _cbr(3, 8, (1, 3, 3), stride=(1, 2, 2))
        self.block = _cbr(8, 8, 3, groups=8)
        self.gate = DynamicGate(8)
        self.tail = _cbr(8, 16, 1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = self.tail(self.gate(self.block(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool3d(x, 1), 1))


def control_flow(seed: int = 0):
    """One submodule (``gate``, a ``DynamicGate``) branches on ``x.sum() > 0``: the model as a whole
    does not symbolically trace, the rest of it does (the opaque-leaf tracing test)."""
    return _ready(_ControlFlowNet, seed)


# --- one conv module called twice -----------------------------------------------------------------

class _SharedConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = _cbr(3, 8, (1, 3, 3), stride=(1, 2, 2))
        self.shared = nn.Conv3d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(8)
        self.bn2 = nn.BatchNorm3d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu(self.bn1(self.shared(x)))
        x = F.relu(self.bn2(self.shared(x)))
        return self.fc(x.mean((2, 3, 4)))


def shared_conv(seed: int = 0):
    """The same ``nn.Conv3d`` (``shared``) called twice, followed by two *different* BNs: folding
    either BN into the shared weights would corrupt the other call."""
    return _ready(_SharedConvNet, seed)


# --- a conv output with two users -----------------------------------------------------------------

class _TwoUsersNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.bn = nn.BatchNorm3d(8)
        self.conv2 = nn.Conv3d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = self.conv(x)
        a = F.relu(self.bn(y))
        z = self.bn2(self.conv2(a)) + y
        return self.fc(F.relu(z).mean((2, 3, 4)))


def two_users(seed: int = 0):
    """``conv``'s output feeds its BN *and* a residual add: the raw conv output must survive, so
    folding that BN into the conv is wrong here."""
    return _ready(_TwoUsersNet, seed)


# --- BN without running stats ---------------------------------------------------------------------

class _BatchStatsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.bn1 = nn.BatchNorm3d(8, track_running_stats=False)
        self.conv2 = nn.Conv3d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3, 4)))


def bn_batch_stats(seed: int = 0):
    """``bn1`` has ``track_running_stats=False``: it normalises with the batch's own statistics even
    in eval mode, so it is not a constant affine map and must not be folded."""
    return _ready(_BatchStatsNet, seed)


# --- Hardswish / GELU -----------------------------------------------------------------------------

def hardswish(seed: int = 0):
    """MobileNetV3-style 3-D net with ``nn.Hardswish`` (and ``F.hardsigmoid`` gating): not swish."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv3d(3, 16, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
            self.bn1 = nn.BatchNorm3d(16)
            self.act = nn.Hardswish()
            self.dw = nn.Conv3d(16, 16, 3, padding=1, groups=16, bias=False)
            self.bn2 = nn.BatchNorm3d(16)
            self.fc_se = nn.Conv3d(16, 16, 1)
            self.fc = nn.Linear(16, 4)

        def forward(self, x):
            x = self.act(self.bn1(self.conv1(x)))
            x = self.act(self.bn2(self.dw(x)))
            x = x * F.hardsigmoid(self.fc_se(F.adaptive_avg_pool3d(x, 1)))
            return self.fc(x.mean((2, 3, 4)))
    return _ready(Net, seed)


def gelu(seed: int = 0):
    """``nn.GELU`` and ``F.gelu(approximate="tanh")`` after conv-BN: not ReLU, not swish."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv3d(3, 8, 3, stride=(1, 2, 2), padding=1, bias=False)
            self.bn1 = nn.BatchNorm3d(8)
            self.act = nn.GELU()
            self.conv2 = nn.Conv3d(8, 8, 1, bias=False)
            self.bn2 = nn.BatchNorm3d(8)
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            x = self.act(self.bn1(self.conv1(x)))
            x = F.gelu(self.bn2(self.conv2(x)), approximate="tanh")
            return self.fc(x.mean((2, 3, 4)))
    return _ready(Net, seed)


# --- x * sigmoid(y), y != x -----------------------------------------------------------------------

class _CrossGateNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.bn = nn.BatchNorm3d(8)
        self.gate_conv = nn.Conv3d(8, 8, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.gate_bn = nn.BatchNorm3d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.bn(self.conv(x))
        y = self.gate_bn(self.gate_conv(x))
        x = x * torch.sigmoid(y)
        return self.fc(x.mean((2, 3, 4)))


def cross_gate(seed: int = 0):
    """A gated unit ``x * torch.sigmoid(y)`` with ``y`` computed from ``x``: it looks like swish
    but is not (``y is not x``); a swish rewrite must not fire."""
    return _ready(_CrossGateNet, seed)


ALL_MODELS = {
    f.__name__: f
    for f in (
        nested_sequential, modulelist_stages, functional_se, linear_se, torch_mul_se,
        method_mul_se, autograd_swish, permute_head, control_flow, shared_conv, two_users,
        bn_batch_stats, hardswish, gelu, cross_gate,
    )
}
"""name -> factory(seed=0) returning ``(model.eval(), example_input)``."""

UNTRACEABLE = frozenset({"control_flow"})
"""Models that ``torch.fx.symbolic_trace`` cannot trace as a whole (by design)."""
