"""Small hand-made models in the flavour of ``fxaccel.deploy``'s output, for the quantize tests.

Built from efficient blocks' own deploy forms (``block.deploy(shape, target)``): time-folded
Conv2d forms, temporal taps, SE as mean/Linear/sigmoid/mul, a residual ``+`` with ReLU, a swish,
a global pool and a Linear head; ``x86`` keeps Conv3d. BN statistics and affine parameters are
random (never defaults) and folded by the blocks' deploy.
"""
from __future__ import annotations

import torch
from torch import nn

from fxaccel.blocks.attention import SqueezeExcite3d
from fxaccel.blocks.conv import Conv3dBnAct
from fxaccel.blocks.pool import GlobalAvgPool3d
from fxaccel.targets import get_target
from fxaccel.testing import randomize_bn
from graph_helpers import Call2

SHAPE = (2, 3, 4, 12, 12)


class DeployFormNet(nn.Module):
    """stem conv -> depthwise 3x3x3 -> SE -> swish -> pointwise, residual add + ReLU, pool, Linear."""

    def __init__(self, target: str, shape=SHAPE, seed: int = 0, width: int = 8, classes: int = 5):
        super().__init__()
        torch.manual_seed(seed)
        blocks = [Conv3dBnAct(shape[1], width, (1, 3, 3), padding=(0, 1, 1)),
                  Conv3dBnAct(width, width, 3, padding=1, groups=width, activation=None),
                  Conv3dBnAct(width, width, 1, activation=None)]
        for i, b in enumerate(blocks):
            randomize_bn(b.bn, seed * 10 + i)
            b.eval()
        se = SqueezeExcite3d(width, width // 2).eval()
        t = get_target(target)
        inner = (shape[0], width, *shape[2:])
        self.stem = blocks[0].deploy(shape, t)
        self.conv_b = blocks[1].deploy(inner, t)
        self.se = se.deploy(inner, t)
        self.swish = nn.SiLU()
        self.conv_c = blocks[2].deploy(inner, t)
        self.pool = GlobalAvgPool3d().deploy(inner, t)
        self.fc = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.conv_c(self.swish(self.se(self.conv_b(x))))
        y = torch.relu(x + y)
        return self.fc(self.pool(y).flatten(1))


def clips(n: int = 4, shape=SHAPE, seed: int = 100) -> list[torch.Tensor]:
    """``n`` reproducible random clips (torch.Generator), standard normal like normalised frames."""
    return [torch.randn(shape, generator=torch.Generator().manual_seed(seed + i)) for i in range(n)]


def layer_names(report) -> list[str]:
    return [lay["name"] for lay in report.layers]


def traced(fn, *inputs: torch.Tensor):
    """``fn`` (a function of two tensors, or a module) traced, with the shapes of ``inputs`` on every node (the
    quantize rules read ``tensor_meta``, as after ``fxaccel.quantize``'s own ShapeProp)."""
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp

    gm = fx.symbolic_trace(fn if isinstance(fn, nn.Module) else Call2(fn))
    ShapeProp(gm).propagate(*inputs)
    return gm


def apply(rules, gm):
    """``rules`` (a Rule or RuleSet) applied to ``gm`` to a fixed point, as the pipeline runs them."""
    from fxaccel.report import PassRecord
    from fxaccel.rules import apply_rules

    record = PassRecord("rules", "quantize")
    apply_rules(rules, gm, record)
    return record


def calls(gm) -> list:
    """The call nodes' targets in order: module types for modules, else the function / method."""
    return [type(gm.get_submodule(n.target)) if n.op == "call_module" else n.target
            for n in gm.graph.nodes if n.op in ("call_function", "call_method", "call_module")]


