"""Shape guards of deploy forms: a form is built for one input shape (the batch is free) and
refuses any other with a clear error, where a silent mismatch would give wrong numbers.

Each module that calls a guard wraps it with ``torch.fx.wrap`` (the wrap is per calling module),
so it is one call node under symbolic tracing that dead-code elimination keeps (it returns ``x``).

Stability: public.
"""
from __future__ import annotations

from typing import Sequence

import torch


def check_shape(name: str, x: torch.Tensor, expected: Sequence[int], skip: int = 1) -> None:
    """Raise a clear error when ``x``'s shape (beyond the first ``skip`` dims) is not ``expected``.

    Deploy forms are built for one input shape (clip length, crop); the batch is free. A silent
    mismatch would give wrong numbers (the reference system does), so we refuse instead.
    """
    got = tuple(x.shape[skip:])
    want = tuple(expected[skip:])
    if x.dim() != len(expected) or got != want:
        raise ValueError(
            f"{name}: deploy form was built for input shape (N, {', '.join(map(str, want))}) "
            f"but received {tuple(x.shape)}; deploy again with an example input of the new shape"
        )


def checked(name: str, x: torch.Tensor, expected: Sequence[int]) -> torch.Tensor:
    """:func:`check_shape`, returning ``x``: one opaque call node under symbolic tracing (it
    iterates over the shape) that dead-code elimination keeps, because its result is used."""
    check_shape(name, x, expected)
    return x


def checked_folded(name: str, x: torch.Tensor, t: int, chw: Sequence[int]) -> torch.Tensor:
    """``x``, after checking it is the folded layout a form was built for: ``(N*t, C, H, W)``
    with ``chw == (C, H, W)``; a clear error otherwise (the batch is free)."""
    if x.dim() != 4 or tuple(x.shape[1:]) != tuple(chw) or x.shape[0] % t != 0:
        c, h, w = chw
        raise ValueError(
            f"{name}: deploy form was built for folded input (N*{t}, {c}, {h}, {w}) (clips of "
            f"T={t} frames folded into the batch) but received {tuple(x.shape)}; deploy again with "
            f"an example input of the new shape"
        )
    return x
