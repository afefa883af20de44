"""Validation of example inputs and of running a model on them, with errors that say the fix."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn


def as_input_tuple(example_inputs: Any, *, required: bool = False, what: str = "example_inputs") -> tuple | None:
    """Normalise ``example_inputs`` (a tensor or a tuple/list of tensors) to a tuple."""
    if example_inputs is None:
        if required:
            raise ValueError(f"{what} is required: pass a tensor (or tuple of tensors) shaped like the "
                             "model's real input, e.g. fxaccel.zoo.example_input('XS')")
        return None
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in example_inputs):
        return tuple(example_inputs)
    raise TypeError(f"{what} must be a tensor or a tuple of tensors, got {type(example_inputs).__name__}")


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put modules in eval mode and restore every submodule's own ``training`` flag afterwards.

    Running a model in train mode would update BN running statistics: a stage must not touch them.
    Exported (pt2e) GraphModules refuse ``.eval()``; they are traced already and are left as they are.
    """
    flags = [(m, m.training) for root in modules for m in root.modules()]
    try:
        for root in modules:
            with contextlib.suppress(NotImplementedError):
                root.eval()
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def run(model: nn.Module, inputs: tuple, *, what: str = "the model") -> Any:
    """Run ``model`` on copies of ``inputs`` (a model may write into its input) in eval mode without
    gradients; a failure names the input shapes."""
    with torch.no_grad(), eval_mode(model):
        try:
            return model(*(t.clone() for t in inputs))
        except Exception as err:
            raise bad_inputs(what, inputs, err) from err


def bad_inputs(what: str, inputs: tuple, err: Exception) -> ValueError:
    """The error for a model that fails on its example inputs, naming their shapes."""
    while err.__cause__ is not None:  # ShapeProp wraps the model's own error
        err = err.__cause__
    shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
    first = (str(err).strip().splitlines() or [""])[0]
    return ValueError(
        f"running {what} on example inputs of shape {shapes} failed: {type(err).__name__}: {first}. "
        "Check the input rank and sizes (video models take (N, C, T, H, W))"
    )


def verify_outputs(stage: str, model: nn.Module, result: nn.Module, inputs: tuple, report, rtol: float = 1e-5,
                   sqnr_floor: float | None = None) -> None:
    """Compare ``result`` against ``model`` on the example inputs; record the error in ``report``.

    A safety net under the per-pass proofs: a stage that changed the numbers fails loudly. With
    ``sqnr_floor`` (a reduced-precision result: rounding is not a bug) the worst output SQNR must
    reach it instead of the relative error staying within ``rtol``.
    """
    from .numerics import relative_error, sqnr_db

    ref, out = run(model, inputs), run(result, inputs)
    refs = ref if isinstance(ref, (tuple, list)) else (ref,)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    pairs = [(o, r) for o, r in zip(outs, refs) if isinstance(r, torch.Tensor)]
    if sqnr_floor is not None:
        db = min((sqnr_db(o, r) for o, r in pairs), default=float("inf"))
        report.extra["output_sqnr_db"] = round(float(db), 2)
        if db < sqnr_floor:
            raise AssertionError(f"{stage}'s output is {db:.1f} dB from the model's, below the {sqnr_floor} dB "
                                 "floor: please report it")
        return
    err = max((relative_error(o, r) for o, r in pairs), default=0.0)
    report.extra["max_relative_error"] = float(f"{err:.3g}")
    if err > rtol:
        raise AssertionError(
            f"{stage} changed the model's output (relative error {err:.2e} > {rtol:g}): a pass is wrong. "
            "Rerun with skip=[...] to find it and please report it"
        )
