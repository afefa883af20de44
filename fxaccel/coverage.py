"""Coverage: the share of Conv3d multiply-accumulates that run inside efficient blocks."""
from __future__ import annotations

from torch import nn

from .blocks.base import EfficientBlock
from .inputs import run


def conv3d_macs(model: nn.Module, inputs: tuple) -> dict[str, tuple[int, bool]]:
    """Per Conv3d module path: (MACs for ``inputs``, whether it sits inside an efficient block)."""
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
        run(model, inputs)
    finally:
        for h in hooks:
            h.remove()
    return macs


def coverage(model: nn.Module, inputs: tuple) -> float | None:
    """Share of Conv3d MACs inside efficient blocks; ``None`` when the model runs no Conv3d."""
    macs = conv3d_macs(model, inputs)
    total = sum(m for m, _ in macs.values())
    return None if total == 0 else sum(m for m, ok in macs.values() if ok) / total


