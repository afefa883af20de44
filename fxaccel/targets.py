"""Target profiles: what a device runs well, so deploy passes ask instead of hard-coding a device.

A :class:`Target` is data: which ATen ops it has no kernel for (:class:`NoKernel`, in the op kinds
of :mod:`fxaccel.aten_ops`), the memory format its deploy forms run in, and the quantization
backends that produce int8 kernels it runs. ``check_target``, ``fxaccel.testing.ops_not_on_mobile``
and ExecuTorch's refusal of unrunnable programs all read the table, so adding a target (a ``cuda``
profile, a ``litert`` or ``fp16`` variant) is one entry in :data:`TARGETS` plus its deploy forms.

Stability: public (``Target``, ``NoKernel``, ``get_target``, ``TARGETS``).

>>> mobile = get_target("mobile_cpu")
>>> mobile.conv3d, mobile.runs("convolution", 4), mobile.runs("avg_pool3d", 4)
(False, True, False)
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from .aten_ops import OpKey, op_kind


@dataclass(frozen=True)
class NoKernel:
    """Ops a target has no kernel for: those of ``kind`` (``None``: any) called on a tensor of
    ``rank`` (``None``: any) whose base name contains ``name``.

    ``fallback``: the runtime's non-delegated (portable) kernels still run them, slowly (a 5-D
    mean on ExecuTorch does); when ``False`` a program that contains one fails (a 5-D convolution:
    the portable kernel takes 3-D/4-D inputs only), so lowering refuses it up front.
    """

    kind: str | None = None
    rank: int | None = None
    name: str = ""
    fallback: bool = True

    def covers(self, op: str, rank: int | None) -> bool:
        return ((self.kind is None or op_kind(op) == self.kind) and (self.rank is None or rank == self.rank)
                and self.name in op)


@dataclass(frozen=True)
class Target:
    """A deploy target.

    ``no_kernel``: the op-legality table (what the target cannot run; everything else it can).
    ``memory_format``: the format deploy converts the network to (x86: ``channels_last_3d``,
    where oneDNN's conv3d is fastest and the GEMM forms' views are free). ``quant_backends``: the
    ``fxaccel.quantize`` backends whose int8 kernels run here, preferred first.
    """

    name: str
    description: str
    no_kernel: tuple[NoKernel, ...] = ()
    memory_format: torch.memory_format = torch.contiguous_format
    quant_backends: tuple[str, ...] = ()

    def no_kernel_for(self, op: str, rank: int | None) -> NoKernel | None:
        """The table entry that rules out ``op`` on a rank-``rank`` input, or ``None``."""
        return next((e for e in self.no_kernel if e.covers(op, rank)), None)

    def runs(self, op: str, rank: int | None) -> bool:
        return self.no_kernel_for(op, rank) is None

    def unsupported(self, ops: Counter | dict) -> list[OpKey]:
        """The ``(op, rank)`` keys of recorded ``ops`` (:func:`fxaccel.aten_ops.record_aten_ops`)
        this target has no kernel for, sorted; empty when all is well."""
        return sorted({(op, rank) for op, rank in ops if not self.runs(op, rank)}, key=repr)

    @property
    def conv3d(self) -> bool:
        """The runtime has a 3-D convolution. When False, deploy forms fold time into the batch
        dimension and run only 4-D ops (see ``fxaccel.blocks.layout``)."""
        return self.runs("convolution", 5)


TARGETS: dict[str, Target] = {
    "mobile_cpu": Target(
        "mobile_cpu",
        description="XNNPACK / NNAPI (ExecuTorch, TorchScript mobile): 2-D convs only, no 5-D mean or pool",
        # XNNPACK: 2-D convolution only, means and pools of 4-D tensors only, no 3-D pooling at all.
        no_kernel=(NoKernel("conv", rank=5, fallback=False), NoKernel("pool", rank=5),
                   NoKernel(name="pool3d", fallback=False)),
        quant_backends=("xnnpack", "qnnpack"),
    ),
    "x86": Target(
        "x86",
        description="oneDNN on x86 CPUs: fast Conv3d, so keep it and only fold BN and fuse",
        memory_format=torch.channels_last_3d,
        quant_backends=("x86",),
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
