"""torchvision's video models for the tests: imported with the CPU-torch workaround, built by name,
with the smallest inputs each architecture takes (a unique module name: tests import it top-level).
"""
from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch

from fxaccel.testing import randomize_bn

# name -> (the CI-sized input shape, the design-size input shape). The CNNs take any clip; S3D
# needs 8 frames and 112 pixels for its fixed pools; MViT's position tables fix 16x224²; Swin3D's
# windows shrink to the clip, so a 2-frame, 32-pixel clip still runs every block kind.
VIDEO_MODELS = {
    "r3d_18": ((1, 3, 4, 64, 64), (1, 3, 16, 112, 112)),
    "mc3_18": ((1, 3, 4, 64, 64), (1, 3, 16, 112, 112)),
    "r2plus1d_18": ((1, 3, 4, 64, 64), (1, 3, 16, 112, 112)),
    "s3d": ((1, 3, 16, 224, 224), (1, 3, 16, 224, 224)),
    "mvit_v1_b": ((1, 3, 16, 224, 224), (1, 3, 16, 224, 224)),
    "mvit_v2_s": ((1, 3, 16, 224, 224), (1, 3, 16, 224, 224)),
    "swin3d_t": ((1, 3, 4, 64, 64), (1, 3, 16, 224, 224)),
    "swin3d_s": ((1, 3, 4, 64, 64), (1, 3, 16, 224, 224)),
    "swin3d_b": ((1, 3, 4, 64, 64), (1, 3, 16, 224, 224)),
}
CNNS = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d")


def video_models():
    """``torchvision.models.video``, or skip the test when torchvision is not installed."""
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("needs torchvision (the test extra)")
    # torchvision's PyPI wheel is built against CUDA torch: beside the CPU torch these machines use,
    # importing torchvision._meta_registrations fails ("operator torchvision::nms does not exist").
    # Only the detection ops need it, so an empty stand-in lets every video model build. Tests only:
    # users with a matching torch / torchvision pair need nothing.
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    from torchvision.models import video

    return video


def build(name: str, seed: int = 0, num_classes: int = 10) -> torch.nn.Module:
    """A randomly initialised model in eval mode, with BN statistics that are not the identity."""
    torch.manual_seed(seed)
    model = getattr(video_models(), name)(num_classes=num_classes).eval()
    for i, m in enumerate(model.modules()):
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            randomize_bn(m, seed + i)
    return model


def clip(shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))
