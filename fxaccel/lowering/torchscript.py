"""Write TorchScript artifacts: ``.pt`` (full JIT) and ``.ptl`` (mobile lite interpreter).

Trace, freeze (constants folded, BN folded into conv by the JIT), optionally optimize for mobile,
save, then load the file back and compare with the model: an artifact nobody re-ran is a guess.

``optimize_for_mobile`` rewrites convs into XNNPACK prepacked ops, so it only exists where torch
was built with XNNPACK (``torch._C._is_xnnpack_enabled()``: False on the x86 CPU wheel). There it
is skipped with a logged notice and recorded in the returned :class:`TorchScriptInfo`, never a
crash. Eager-mode int8 models (``torch.ao.quantization`` convert, qnnpack or x86 engine) trace
and save like float ones.

Stability: public (``to_torchscript``, ``TorchScriptInfo``, ``load_torchscript``).

>>> import torch
>>> from fxaccel.lowering.torchscript import to_torchscript
>>> m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
>>> info = to_torchscript(m, (torch.randn(1, 3, 8, 8),), "/tmp/fxaccel_doc.ptl")
>>> info.lite, info.check["metric"]
(True, 'rel_err')
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..inputs import clone_inputs, eval_mode
from ..errors import LoweringError
from .checking import compare_outputs

log = logging.getLogger(__name__)

_SUFFIX_LITE = {".ptl": True, ".pt": False}


@dataclass
class TorchScriptInfo:
    """What :func:`to_torchscript` did: format, which steps ran, which were skipped and why."""

    path: Path
    lite: bool
    frozen: bool
    optimized_for_mobile: bool
    bundled_inputs: bool
    skipped: list[str] = field(default_factory=list)
    check: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self), path=str(self.path))


def _lite_from(path: Path, lite: bool | None) -> bool:
    by_suffix = _SUFFIX_LITE.get(path.suffix)
    if lite is None:
        if by_suffix is None:
            raise ValueError(f"cannot tell the format from {path.name!r}: use a .pt (TorchScript) or "
                             f".ptl (lite interpreter) suffix, or pass lite=True/False")
        return by_suffix
    if by_suffix is not None and by_suffix != lite:
        raise ValueError(f"lite={lite} contradicts the suffix of {path.name!r} "
                         f"(.ptl is the lite format, .pt the full one)")
    return lite


def load_torchscript(path: str | Path) -> Callable:
    """Load a ``.ptl`` with the lite interpreter, anything else with ``torch.jit.load``."""
    path = Path(path)
    if path.suffix == ".ptl":
        from torch.jit.mobile import _load_for_lite_interpreter

        return _load_for_lite_interpreter(str(path))
    return torch.jit.load(str(path))


def _trace(model: torch.nn.Module, inputs: tuple) -> torch.jit.ScriptModule:
    try:
        return torch.jit.trace(model, inputs, check_trace=False)
    except RuntimeError as first:
        # Outputs as lists/dicts need strict=False; retry only then, so other errors surface as is.
        if "strict" not in str(first):
            raise
        return torch.jit.trace(model, inputs, check_trace=False, strict=False)


def _optimize(module: torch.jit.ScriptModule, skipped: list[str]) -> tuple[torch.jit.ScriptModule, bool]:
    if not torch._C._is_xnnpack_enabled():
        notice = "optimize_for_mobile: skipped, this torch build has no XNNPACK (torch._C._is_xnnpack_enabled() is False)"
        log.warning(notice)
        skipped.append(notice)
        return module, False
    from torch.utils.mobile_optimizer import optimize_for_mobile

    return optimize_for_mobile(module), True


def _with_bundled_inputs(module: torch.jit.ScriptModule, inputs: tuple) -> torch.jit.ScriptModule:
    """Store ``inputs`` in the module (``get_all_bundled_inputs()``).

    A frozen module lacks the type information ``augment_model_with_bundled_inputs`` needs, so
    round-trip it through an in-memory save first. The real example tensors are stored (size check
    off), not a random stand-in: benchmark tools should see real data.
    """
    import io

    from torch.utils.bundled_inputs import augment_model_with_bundled_inputs

    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    buffer.seek(0)
    module = torch.jit.load(buffer)
    augment_model_with_bundled_inputs(module, [inputs], skip_size_check=True)
    return module


def to_torchscript(
    model: torch.nn.Module,
    example_inputs: Any,
    path: str | Path,
    *,
    lite: bool | None = None,
    bundled_inputs: bool = False,
    optimize: bool | None = None,
    verify: bool = True,
    rtol: float = 1e-5,
    sqnr_floor: float | None = None,
) -> TorchScriptInfo:
    """Trace, freeze and save ``model``; load the file back and compare it with the model.

    ``lite``: lite-interpreter format (``.ptl``); default from the suffix. ``optimize``: run
    ``optimize_for_mobile`` (default: for lite artifacts); skipped with a notice where torch has no
    XNNPACK. ``bundled_inputs``: store ``example_inputs`` in the file, so benchmark tools can run it
    without data (``m.get_all_bundled_inputs()``; lite: ``m.run_method("get_all_bundled_inputs")``).

    Verification compares the reloaded artifact with eager ``model`` on ``example_inputs``:
    within ``rtol`` of each output's largest magnitude (freezing folds BN into conv weights, which
    reorders fp32 sums: ~1e-6), or at least ``sqnr_floor`` dB when given. Mismatch raises
    :class:`ExportMismatch`.
    """
    path = Path(path)
    lite = _lite_from(path, lite)
    optimize = lite if optimize is None else optimize
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    skipped: list[str] = []
    with eval_mode(model), torch.no_grad():
        expected = model(*clone_inputs(inputs))
        module = torch.jit.freeze(_trace(model, inputs))
        optimized = False
        if optimize:
            module, optimized = _optimize(module, skipped)
        if bundled_inputs:
            module = _with_bundled_inputs(module, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    if lite:
        module._save_for_lite_interpreter(str(path))
    else:
        torch.jit.save(module, str(path))
    info = TorchScriptInfo(path, lite, True, optimized, bundled_inputs, skipped)
    if verify:
        info.check = _verify(load_torchscript(path), expected, inputs, rtol=rtol, sqnr_floor=sqnr_floor)
    log.info("wrote %s (%s)", path, "lite" if lite else "TorchScript")
    return info


def _verify(loaded: Callable, expected: Any, inputs: tuple, *, rtol: float, sqnr_floor: float | None) -> dict:
    try:
        with torch.no_grad():
            got = loaded(*inputs)
    except Exception as exc:
        raise LoweringError(f"the saved TorchScript artifact failed to run after loading: {exc}") from exc
    return compare_outputs(expected, got, inputs, rtol=rtol, sqnr_floor=sqnr_floor, what="TorchScript artifact")
