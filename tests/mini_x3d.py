"""X3D in miniature, built from the zoo's own blocks (so the same transmute/deploy forms apply): stem,
a bottleneck with SE and one without, head; realistic BN statistics. Every X3D deploy form (stem,
depthwise 3x3x3 as temporal taps, SE, swish, global pool, head) at a size that lowers in seconds."""
import torch
from torch import nn

import fxaccel
from fxaccel.zoo import realistic_bn
from fxaccel.zoo.x3d import Bottleneck, Head, Stem

SHAPE = (1, 3, 4, 32, 32)


class MiniX3D(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = Stem(24)
        self.stages = nn.Sequential(Bottleneck(24, 54, 24, stride=2, use_se=True),
                                    Bottleneck(24, 54, 24, stride=1, use_se=False))
        self.head = Head(24, 54, classes)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


def clip(seed: int, shape=SHAPE) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def mini_x3d(shape=SHAPE):
    """(vanilla eval model, its mobile_cpu deploy form, an example clip)."""
    torch.manual_seed(0)
    model = realistic_bn(MiniX3D().eval(), [clip(s, (2, *shape[1:])) for s in (10, 11)], seed=0).eval()
    x = clip(0, shape)
    return model, fxaccel.deploy(model, x, target="mobile_cpu"), x
