"""Tiny factories for the command-line tests (``tests/cli/_models.py:tiny`` as a MODEL spec).

Inputs are ``(1, 3, 4, 16, 16)``: every command finishes in seconds on them.
"""
import torch
from torch import nn

from fxaccel import zoo

SHAPE = "1,3,4,16,16"


def tiny() -> nn.Module:
    """conv3d-BN-ReLU, a depthwise 3x3x3 conv-BN-swish, global pool, linear; realistic BN."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1), bias=False), nn.BatchNorm3d(8), nn.ReLU(),
        nn.Conv3d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm3d(8), nn.SiLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 5),
    )
    return zoo.realistic_bn(model, [zoo.random_clips((2, 3, 4, 16, 16), seed=1)])


def tiny_with(width: int = 8, classes: int = 5) -> nn.Module:
    """A factory with keyword arguments (``_models.py:tiny_with(width=6)`` on the command line)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, width, (1, 3, 3), padding=(0, 1, 1), bias=False), nn.BatchNorm3d(width), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(width, classes),
    ).eval()


def undeployable() -> nn.Module:
    """A 3-D max pool with ceil_mode=True: no 2-D form, so mobile_cpu deploy refuses it."""
    return nn.Sequential(nn.Conv3d(3, 4, 1), nn.MaxPool3d(3, stride=2, ceil_mode=True)).eval()


def broken():
    """A factory that fails."""
    raise RuntimeError("weights not found")


not_a_model = 42


class _TwoUsers(nn.Module):
    """The conv's output feeds BN *and* the residual add, so conv+BN must not fuse (a reported skip)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 1)
        self.bn = nn.BatchNorm3d(4)

    def forward(self, x):
        y = self.conv(x)
        return torch.relu(self.bn(y)) + y


def two_users() -> nn.Module:
    return zoo.realistic_bn(_TwoUsers(), [zoo.random_clips((2, 3, 4, 16, 16), seed=2)])


class _TwoPathways(nn.Module):
    """SlowFast-shaped: ``forward`` takes one *list* of two clips (slow, fast) and writes into it."""

    def __init__(self):
        super().__init__()
        self.slow = nn.Sequential(nn.Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(8), nn.ReLU())
        self.fast = nn.Sequential(nn.Conv3d(3, 4, (3, 1, 1), padding=(1, 0, 0)), nn.BatchNorm3d(4), nn.ReLU())
        self.fc = nn.Linear(12, 5)

    def forward(self, x: list):
        x[0], x[1] = self.slow(x[0]).mean((2, 3, 4)), self.fast(x[1]).mean((2, 3, 4))
        return self.fc(torch.cat(x, 1))


PATHWAYS = "[1,3,2,16,16;1,3,8,16,16]"


def two_pathways() -> nn.Module:
    torch.manual_seed(0)
    return zoo.realistic_bn(_TwoPathways(), [([zoo.random_clips((2, 3, 2, 16, 16), seed=1),
                                               zoo.random_clips((2, 3, 8, 16, 16), seed=2)],)]).eval()
