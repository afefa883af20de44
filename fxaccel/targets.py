"""Target profiles: what a device runs well, so deploy passes ask instead of hard-coding a device.

Stability: public (``Target``, ``get_target``, ``TARGETS``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A deploy target.

    ``conv3d``: the runtime has a fast native 3-D convolution (oneDNN does; XNNPACK and NNAPI
    have none, and ExecuTorch rejects a 5-D conv). When False, deploy forms fold time into the
    batch dimension and run only 4-D ops (see ``fxaccel.blocks.layout``).
    """

    name: str
    conv3d: bool
    description: str


TARGETS: dict[str, Target] = {
    "mobile_cpu": Target(
        "mobile_cpu",
        conv3d=False,
        description="XNNPACK / NNAPI (ExecuTorch, TorchScript mobile): 2-D convs only, no 5-D mean or pool",
    ),
    "x86": Target(
        "x86",
        conv3d=True,
        description="oneDNN on x86 CPUs: fast Conv3d, so keep it and only fold BN and fuse",
    ),
}


def get_target(target: str | Target) -> Target:
    """Return the profile for ``target`` (a name or a ``Target``); a clear error lists known names."""
    if isinstance(target, Target):
        return target
    try:
        return TARGETS[target]
    except KeyError:
        known = ", ".join(sorted(TARGETS))
        raise ValueError(f"unknown target {target!r}; known targets: {known}") from None
