"""Coverage: the share of Conv3d multiply-accumulates that run inside efficient blocks."""
from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn

from .blocks.base import EfficientBlock


@contextlib.contextmanager
def conv3d_macs(model: nn.Module) -> Iterator[dict[str, tuple[int, bool]]]:
    """While active, record per Conv3d module path: (MACs run, whether it is inside a block).

    A context manager, so the measurement rides on a forward pass the caller runs anyway.
    """
    inside: set[str] = set()
    for path, m in model.named_modules():
        if isinstance(m, EfficientBlock):
            inside.update(f"{path}.{p}" if p else path for p, _ in m.named_modules())
    macs: dict[str, tuple[int, bool]] = {}
    hooks = []
    for path, m in model.named_modules():
        if isinstance(m, nn.Conv3d):
            def hook(mod, args, out, path=path):
                per_out = mod.weight[0].numel()  # (Cin/groups) * kT * kH * kW
                prev = macs.get(path, (0, False))[0]
                macs[path] = (prev + out.numel() * per_out, path in inside)
            hooks.append(m.register_forward_hook(hook))
    try:
        yield macs
    finally:
        for h in hooks:
            h.remove()


def share_inside(macs: dict[str, tuple[int, bool]]) -> float | None:
    """Share of the recorded MACs inside blocks; ``None`` when no Conv3d ran."""
    total = sum(m for m, _ in macs.values())
    return None if total == 0 else sum(m for m, ok in macs.values() if ok) / total
