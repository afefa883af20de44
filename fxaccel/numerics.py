"""Numerical equivalence checks with tolerances scaled to the output's magnitude.

Core, not test-only: every stage checks its outputs with these, and export checks the artifact it
wrote. ``fxaccel.testing`` re-exports them for users' tests.

Stability: public (``assert_equivalent``, ``relative_error``, ``sqnr_db``).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from .inputs import input_tensors, map_tensors, output_leaves


def _as_tuple(inputs: Any) -> tuple:
    return inputs if isinstance(inputs, tuple) else (inputs,)


def _flatten(out: Any) -> list[torch.Tensor]:
    leaves = [t for _, t in output_leaves(out)]
    if not leaves:
        raise TypeError(f"output of type {type(out).__name__} holds no tensor: nothing to compare")
    return leaves


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max|a - b| / max(max|b|, tiny)``: error relative to the reference's largest magnitude.

    Elementwise relative error is meaningless near zero (ReLU outputs, residual sums that cancel),
    so the error is measured against the scale of the whole output.
    """
    a, b = a.detach().double(), b.detach().double()
    scale = b.abs().max().item() if b.numel() else 0.0
    diff = (a - b).abs().max().item() if b.numel() else 0.0
    return diff / max(scale, 1e-12)


def sqnr_db(signal: torch.Tensor, approx: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB: ``10 log10(|signal|^2 / |signal - approx|^2)``."""
    s = signal.detach().double()
    noise = (s - approx.detach().double()).pow(2).sum().item()
    power = s.pow(2).sum().item()
    if noise == 0.0:
        return float("inf")
    return 10.0 * torch.log10(torch.tensor(power / noise)).item()


def assert_equivalent(
    a: Callable,
    b: Callable,
    inputs: Any,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    grads: bool = False,
) -> None:
    """Assert that callables ``a`` and ``b`` give the same outputs (and input gradients) on ``inputs``.

    ``b`` is the reference. Each output tensor must satisfy
    ``max|a - b| <= rtol * max|b| + atol``: the tolerance scales with the output's magnitude, so one
    setting works for logits and for raw feature maps. fp32 rewrites that only reorder sums
    (folded BN, decomposed convs) stay around 1e-6 relative; 1e-5 leaves room for longer sums.

    With ``grads=True`` the gradients of ``sum(out * w)`` (a fixed random ``w``) with respect to
    each floating-point input are compared with the same rule: "same math, forward and backward".

    >>> import torch
    >>> from fxaccel.testing import assert_equivalent
    >>> assert_equivalent(torch.nn.ReLU(), torch.relu, torch.randn(4))
    """
    inputs = _as_tuple(inputs)
    if grads:
        ins_a = map_tensors(lambda x: x.detach().clone().requires_grad_(x.is_floating_point()), inputs)
        ins_b = map_tensors(lambda x: x.detach().clone().requires_grad_(x.is_floating_point()), inputs)
    else:
        ins_a = ins_b = inputs
    with torch.set_grad_enabled(grads):
        out_a, out_b = _flatten(a(*ins_a)), _flatten(b(*ins_b))
    if len(out_a) != len(out_b):
        raise AssertionError(f"output count differs: {len(out_a)} vs reference {len(out_b)}")
    for i, (x, y) in enumerate(zip(out_a, out_b)):
        if x.shape != y.shape:
            raise AssertionError(f"output {i}: shape {tuple(x.shape)} vs reference {tuple(y.shape)}")
        _check_close(f"output {i}", x, y, rtol, atol)
    if grads:
        gen = torch.Generator().manual_seed(0)
        weights = [torch.randn(y.shape, generator=gen, dtype=y.dtype) for y in out_b]
        sum(((x * w).sum() for x, w in zip(out_a, weights))).backward()
        sum(((y * w).sum() for y, w in zip(out_b, weights))).backward()
        for i, (xa, xb) in enumerate(zip(input_tensors(ins_a), input_tensors(ins_b))):
            if xb.grad is not None:
                _check_close(f"gradient of input {i}", xa.grad, xb.grad, rtol, atol)


def _check_close(what: str, x: torch.Tensor, y: torch.Tensor, rtol: float, atol: float) -> None:
    scale = y.detach().abs().max().item() if y.numel() else 0.0
    diff = (x.detach().double() - y.detach().double()).abs().max().item() if y.numel() else 0.0
    if not diff <= rtol * scale + atol:
        raise AssertionError(
            f"{what}: max abs difference {diff:.3e} exceeds rtol*max|ref| + atol = "
            f"{rtol:.1e}*{scale:.3e} + {atol:.1e} (relative error {diff / max(scale, 1e-12):.3e})"
        )
