"""The options of each stage, typed: what its passes read as ``ctx.options``.

A stage function (``deploy``, ``quantize``, ``export``) builds one from its arguments; a pass reads
attributes, and ``When(options={...})`` compares them, so a misspelt option is an error, not a
silent ``None``.

Stability: public (``DeployOptions``, ``QuantizeOptions``, ``LowerOptions``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class DeployOptions:
    """``fxaccel.deploy``'s choices (see its docstring)."""

    tuner: Any = None  # a fxaccel.choices.Tuner that times candidate forms; None: the built-in choice
    layout: str = "network"  # mobile_cpu: "network" strips per-block fold/unfold pairs, "block" keeps them
    op_counts: bool = True  # per-layer ATen op counts in the report
    channels_last: bool = False  # x86: run the network in channels_last_3d


@dataclass(frozen=True)
class QuantizeOptions:
    """What ``fxaccel.quantize`` hands its eager-flow passes."""

    flow: str  # "eager" (torch.ao, TorchScript backends) or "pt2e" (ExecuTorch)
    qconfig: Any = None  # the backend's torch.ao QConfig (eager flow)
    skip: Mapping[str, str] = field(default_factory=dict)  # layer path -> why it stays fp32


@dataclass(frozen=True)
class LowerOptions:
    """What ``fxaccel.export`` hands the lower passes."""

    format: str  # "executorch", "litert", "torchscript", "torchscript_lite" or "nnapi"
    dtype: str = "float32"  # "float16": an fp16 program (executorch)
