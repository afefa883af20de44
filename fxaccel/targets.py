"""Target profiles: what a device runs well, so deploy passes ask instead of hard-coding a device.

A :class:`Target` is data: which ATen ops it has no kernel for (:class:`NoKernel`, in the op kinds
of :mod:`fxaccel.aten_ops`), its conv form registry (:mod:`fxaccel.forms`: per layer kind, the
candidate deploy forms), the memory format its deploy forms run in, the runtime the tuner times
forms on, and the quantization backends that produce int8 kernels it runs. ``check_target``,
``fxaccel.testing.ops_not_on_mobile`` and ExecuTorch's refusal of unrunnable programs read the
op table; ``Conv3dBnAct.deploy``, ``lower_blocks`` and the tuner read the form registry. So adding
a target (a ``cuda`` profile, a ``litert`` or ``fp16`` variant) is one entry in :data:`TARGETS`
plus its forms.

Stability: public (``Target``, ``NoKernel``, ``get_target``, ``TARGETS``).

>>> mobile = get_target("mobile_cpu")
>>> mobile.conv3d, mobile.runs("convolution", 4), mobile.runs("avg_pool3d", 4)
(False, True, False)
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn

from . import forms
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
    ``layers``: the conv form registry, kinds in the order a conv is matched (the last takes any
    conv). ``fallback_form``: what a requested form that does not apply to a conv gives instead
    (``None``: an error). ``measured``: per-layer-signature overrides of the built-in choice
    (:func:`fxaccel.choices.signature` -> form). ``memory_format``: the format deploy converts the
    network to (x86: ``channels_last_3d``, where oneDNN's conv3d is fastest and the GEMM forms'
    views are free). ``runtime``: what ``deploy(..., tune=True)`` times forms on (``"executorch"``
    falls back to eager when ExecuTorch is not installed). ``quant_backends``: the
    ``fxaccel.quantize`` backends whose int8 kernels run here, preferred first.
    """

    name: str
    description: str
    layers: tuple[forms.LayerKind, ...]
    no_kernel: tuple[NoKernel, ...] = ()
    fallback_form: str | None = None
    measured: dict[str, str] = field(default_factory=dict, compare=False)
    memory_format: torch.memory_format = torch.contiguous_format
    runtime: str = "eager"
    quant_backends: tuple[str, ...] = ()

    def no_kernel_for(self, op: str, rank: int | None) -> NoKernel | None:
        """The table entry that rules out ``op`` on a rank-``rank`` input, or ``None``; where several
        do, one without a fallback (the op cannot run at all) comes first."""
        entries = sorted((e for e in self.no_kernel if e.covers(op, rank)), key=lambda e: e.fallback)
        return entries[0] if entries else None

    def runs(self, op: str, rank: int | None) -> bool:
        return self.no_kernel_for(op, rank) is None

    def unsupported(self, ops: Counter | dict) -> list[OpKey]:
        """The ``(op, rank)`` keys of recorded ``ops`` (:func:`fxaccel.aten_ops.record_aten_ops`)
        this target has no kernel for, sorted; empty when all is well."""
        return sorted({(op, rank) for op, rank in ops if not self.runs(op, rank)}, key=repr)

    # ------------------------------------------------------------------ forms
    def layer_kind(self, conv: nn.Conv3d) -> forms.LayerKind:
        """The first kind of :attr:`layers` that ``conv`` belongs to."""
        return next(k for k in self.layers if k.applies(conv))

    @property
    def form_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.name for k in self.layers for f in k.forms))

    def form_for(self, conv: nn.Conv3d, name: str | None = None) -> forms.Form:
        """The form ``conv`` gets when ``name`` is asked for (``None``: its kind's own first form).

        A ``fixed`` kind keeps its form; a form that does not apply to ``conv`` gives
        :attr:`fallback_form`, or an error saying what the form needs.
        """
        if name is not None and name not in self.form_names:
            raise ValueError(f"unknown form {name!r} for target {self.name!r}; known forms: {', '.join(self.form_names)}")
        kind = self.layer_kind(conv)
        if name is None or kind.fixed:
            return kind.forms[0]
        form = next(f for k in self.layers for f in k.forms if f.name == name)
        if form.applies(conv):
            return form
        if self.fallback_form is not None:
            return self.form_for(conv, self.fallback_form)
        raise ValueError(f"form {name!r} needs {form.needs}, got {conv}; use form={kind.forms[0].name!r}")

    def form_modules(self) -> tuple[type, ...]:
        """The module types this target's conv forms build (for passes that recognise them)."""
        return tuple(dict.fromkeys(f.module for k in self.layers for f in k.forms))

    @property
    def conv3d(self) -> bool:
        """The runtime has a 3-D convolution. When False, deploy forms fold time into the batch
        dimension and run only 4-D ops (see ``fxaccel.blocks.layout``)."""
        return self.runs("convolution", 5)


TARGETS: dict[str, Target] = {
    "mobile_cpu": Target(
        "mobile_cpu",
        description="XNNPACK / NNAPI (ExecuTorch, TorchScript mobile): 2-D convs only, no 3-D pool, 4-D means",
        layers=forms.MOBILE_CPU,
        # XNNPACK: 2-D convolution only, means and pools of 4-D tensors only, no 3-D pooling at all.
        no_kernel=(NoKernel("conv", rank=5, fallback=False), NoKernel("pool", rank=5),
                   NoKernel(name="pool3d", fallback=False)),
        runtime="executorch",
        quant_backends=("xnnpack", "qnnpack", "litert"),
    ),
    "x86": Target(
        "x86",
        description="oneDNN on x86 CPUs: fast Conv3d, so keep it and only fold BN and fuse",
        layers=forms.X86,
        fallback_form="conv3d",
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
