"""Write Android NNAPI models with torch's (prototype) NNAPI converter.

The artifact is a TorchScript file whose ``forward`` hands a serialized NNAPI model to Android's
Neural Networks runtime. It cannot run off Android (no ``libneuralnetworks.so``), so off-device we
check only that conversion succeeds and that the file loads. The converter walks the frozen,
traced graph and knows a fixed op list; anything else makes it fail with a bare exception, so
:func:`to_nnapi` first lists every op the converter has no handler for and raises
:class:`~fxaccel.errors.UnsupportedByNNAPI` naming them all at once.

What the converter accepts (torch 2.13, NHWC inputs unless noted; tests in
``tests/lowering/test_nnapi.py``):

* accepted: ``conv2d`` (incl. depthwise), ``linear``, ``relu``, ``sigmoid``, ``hardtanh(x, 0, 6)``,
  ``add``/``mul`` of two tensors (with broadcast, e.g. the SE scale ``(N*T, C, 1, 1)``),
  ``mean`` over ``(-1, -2)``, ``avg_pool2d`` **with an explicit stride** (``stride=None`` trips the
  converter), ``adaptive_avg_pool2d``, ``cat``, ``slice`` along dim 0 (temporal taps),
  ``quantized::conv2d``/``conv2d_relu``/``linear``/``add``/``mul``.
* head: ``linear(x.mean((-1, -2)))`` converts; ``x.mean((-1, -2), keepdim=True).flatten(1)`` does
  **not** (a converter bug: the opposite of what XNNPACK wants, which needs keepdim=True).
  The time mean ``mean.reshape(N, T, C).mean(1)`` converts.
* ``reshape``/``flatten`` of an NHWC 4-D operand only to ``[X, -1]`` (or when C == 1 or
  H == W == 1); with ``nhwc=False`` any reshape works. ``view`` has no handler (use ``reshape``).
* refused: ``hardswish`` and ``relu6`` (no handler; write ``hardtanh(x, 0, 6)``, and hardswish as
  ``x * hardtanh(x + three, 0, 6) * sixth`` with ``three``/``sixth`` as ``(1, 1, 1, 1)`` tensor
  buffers), any binary op with a Python scalar (``x * 2.0``, ``x + 3``) or a 0-d tensor
  operand, ``transpose``/``permute`` (so the 5-D entry fold must stay outside NNAPI), and every
  5-D operand (``conv3d``, 5-D ``mean``).

NHWC: NNAPI prefers channels-last. With ``nhwc=True`` (default) every 4-D input is passed
channels-last and flagged ``nnapi_nhwc = True`` for the converter, as torch's converter requires.

Interfaces (``interface=``):

* ``"float"``: a float model; float in, float out.
* ``"quant_core_float_io"``: an eager-mode quantized model (``torch.ao.quantization`` convert) with
  one ``Quantize`` and one ``DeQuantize`` module. The core between them goes to NNAPI; quantize
  and dequantize stay in TorchScript around it, so callers still pass and get float tensors.
* ``"quant"``: the same model with quantize/dequantize removed: NNAPI takes and returns quantized
  tensors (the caller quantizes with the model's input scale and zero point).

Stability: experimental (torch's converter is a prototype).

>>> import torch
>>> from fxaccel.lowering.nnapi import to_nnapi
>>> m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
>>> info = to_nnapi(m, (torch.randn(1, 3, 8, 8),), "/tmp/m_nnapi.pt")  # doctest: +SKIP
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..inputs import eval_mode
from ..errors import DEPLOY_HINT, LoweringError, UnsupportedByNNAPI

log = logging.getLogger(__name__)

Interface = Literal["float", "quant_core_float_io", "quant"]
_INTERFACES = ("float", "quant_core_float_io", "quant")


@dataclass
class NnapiInfo:
    """What :func:`to_nnapi` wrote: path, interface, layout, op counts of the converted graph.

    ``input_qparams``: ``(scale, zero_point)`` the caller must quantize inputs with under the
    ``"quant"`` interface (``torch.quantize_per_tensor(x, scale, zp, torch.quint8)``); else None.
    """

    path: Path
    interface: str
    nhwc: bool
    ops: dict[str, int] = field(default_factory=dict)
    input_qparams: tuple[float, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "interface": self.interface, "nhwc": self.nhwc, "ops": self.ops,
                "input_qparams": list(self.input_qparams) if self.input_qparams else None}


def supported_ops() -> set[str]:
    """TorchScript node kinds torch's NNAPI converter has a handler for (``aten::conv2d``, ...)."""
    from torch.backends._nnapi.serializer import _NnapiSerializer

    return set(_NnapiSerializer.ADDER_MAP)


def _find_single(model: nn.Module, cls: type) -> str:
    names = [name for name, m in model.named_modules() if isinstance(m, cls)]
    if len(names) != 1:
        raise ValueError(
            f"a quantized NNAPI interface needs an eager-quantized model with exactly one "
            f"{cls.__name__} module (QuantStub/DeQuantStub after torch.ao.quantization.convert); "
            f"found {len(names)}: {names}"
        )
    return names[0]


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def _split_quant(model: nn.Module) -> tuple[nn.Module, nn.Module, nn.Module]:
    """``(quantize, core, dequantize)``: the core is a copy with both stubs made identities."""
    from torch.ao.nn.quantized import DeQuantize, Quantize

    q_name, dq_name = _find_single(model, Quantize), _find_single(model, DeQuantize)
    core = copy.deepcopy(model)
    quant, dequant = core.get_submodule(q_name), core.get_submodule(dq_name)
    _set_submodule(core, q_name, nn.Identity())
    _set_submodule(core, dq_name, nn.Identity())
    return quant, core, dequant


def _nnapi_inputs(inputs: tuple, nhwc: bool) -> tuple:
    out = []
    for x in inputs:
        if nhwc and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
            x.nnapi_nhwc = True
        out.append(x)
    return tuple(out)


def _node_kinds(frozen: torch.jit.ScriptModule) -> tuple[dict[str, int], list[str]]:
    """Op kind counts of the frozen graph, and the kinds that receive a 5-D tensor."""
    kinds: dict[str, int] = {}
    five_d: list[str] = []
    for node in frozen.graph.nodes():
        kinds[node.kind()] = kinds.get(node.kind(), 0) + 1
        for value in node.inputs():
            t = value.type()
            if isinstance(t, torch._C.TensorType) and t.dim() == 5 and node.kind() not in five_d:
                five_d.append(node.kind())
    return kinds, five_d


def _refuse_unsupported(kinds: dict[str, int], five_d: list[str], shapes: str) -> None:
    missing = sorted(k for k in kinds if k not in supported_ops())
    if not missing and not five_d:
        return
    lines = []
    if missing:
        lines.append(f"no handler for {len(missing)} op kind(s): {', '.join(missing)}")
    if five_d:
        lines.append(f"5-D operands (NNAPI has 4-D ops only) in: {', '.join(five_d)}")
    hint = (f"\nFor a video model: {DEPLOY_HINT}; keep the 5-D -> 4-D fold outside NNAPI."
            if five_d or "aten::transpose" in missing or "aten::permute" in missing else "")
    raise UnsupportedByNNAPI(
        f"torch's NNAPI converter cannot convert this model (inputs {shapes}): "
        f"{'; '.join(lines)}. Rewrite them with supported ops "
        f"(see fxaccel.lowering.nnapi's docstring: hardswish -> x * hardtanh(x + three, 0, 6) * sixth with (1, 1, 1, 1) buffers; relu6 -> hardtanh(x, 0, 6); view -> reshape; scalar operands -> tensor buffers).{hint}",
        sorted(set(missing) | set(five_d)),
    )


class _FloatIO(nn.Module):
    """quantize -> NNAPI core -> dequantize, so the artifact keeps a float interface."""

    def __init__(self, quant: nn.Module, core: nn.Module, dequant: nn.Module):
        super().__init__()
        self.quant, self.core, self.dequant = quant, core, dequant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.core(self.quant(x)))


def to_nnapi(
    model: nn.Module,
    example_inputs: Any,
    path: str | Path,
    *,
    interface: Interface = "float",
    nhwc: bool = True,
) -> NnapiInfo:
    """Convert ``model`` for Android NNAPI and save the TorchScript artifact at ``path`` (``.pt``).

    ``example_inputs`` are float tensors for every interface (for ``"quant"`` they are quantized
    here with the model's own ``Quantize`` module). The artifact is loaded back with
    ``torch.jit.load`` to prove it is a valid file; it runs only on Android.
    Raises :class:`UnsupportedByNNAPI` listing the ops the converter refuses.
    """
    from torch.backends._nnapi.prepare import convert_model_to_nnapi

    if interface not in _INTERFACES:
        raise ValueError(f"interface must be one of {_INTERFACES}, got {interface!r}")
    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"NNAPI artifacts are full TorchScript files: use a .pt path, got {path.name!r}")
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    shapes = ", ".join(f"{'5-D ' if x.dim() == 5 else ''}{list(x.shape)}" for x in inputs)

    with eval_mode(model), torch.no_grad():
        quant = dequant = None
        core = model
        if interface != "float":
            if len(inputs) != 1:
                raise ValueError("quantized NNAPI interfaces take exactly one input tensor")
            quant, core, dequant = _split_quant(model)
            inputs = (quant(inputs[0]),)
        nn_inputs = _nnapi_inputs(inputs, nhwc)
        traced = torch.jit.trace(core.eval(), nn_inputs)
        kinds, five_d = _node_kinds(torch.jit.freeze(traced))
        _refuse_unsupported(kinds, five_d, shapes)
        try:
            converted = convert_model_to_nnapi(traced, list(nn_inputs))
        except Exception as exc:  # the converter raises bare Exceptions/AssertionErrors
                raise UnsupportedByNNAPI(
                f"torch's NNAPI converter refused the model: {exc}. Every op kind has a handler, "
                f"so an argument is unsupported (e.g. a Python-scalar operand, reshape/flatten of "
                f"an NHWC operand, mean keepdim=True followed by flatten, avg_pool2d without an "
                f"explicit stride); see fxaccel.lowering.nnapi's docstring, or try nhwc=False",
                [],
            ) from exc
        artifact = _FloatIO(quant, converted, dequant) if interface == "quant_core_float_io" else converted
        scripted = torch.jit.script(artifact)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted, str(path))
    try:
        torch.jit.load(str(path))
    except Exception as exc:
        raise LoweringError(f"the NNAPI artifact {path} was written but does not load: {exc}") from exc
    op_counts = {k: v for k, v in sorted(kinds.items()) if not k.startswith("prim::")}
    log.info("wrote NNAPI model %s (%s interface)", path, interface)
    qparams = (float(quant.scale), int(quant.zero_point)) if interface == "quant" else None
    return NnapiInfo(path, interface, nhwc, op_counts, qparams)
