"""Load any artifact we write and time it the same way, whatever its runtime.

``load_artifact`` picks the runtime from the suffix: ExecuTorch for ``.pte``, LiteRT for ``.tflite``, the lite
interpreter for ``.ptl``, ``torch.jit.load`` for ``.pt``. ``time_artifact`` reports the median of
repeated runs with the thread count and ``os.getloadavg()`` beside it, because a timing taken on a
busy machine is meaningless (shared/DESIGN.md: 44 ms became 2,500 ms under load) and the reader
must be able to see that.

Stability: public (``load_artifact``, ``time_artifact``, ``TimingResult``).

>>> import torch
>>> from fxaccel.lowering.runner import time_artifact
>>> r = time_artifact(torch.nn.ReLU(), (torch.randn(8),), warmup=1, repeats=3)
>>> len(r.all_ms)
3
"""
from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from ..inputs import clone_inputs


def load_artifact(path: str | Path) -> Callable:
    """A callable running the artifact at ``path``: ``.pte`` (ExecuTorch), ``.tflite`` (LiteRT), ``.ptl`` (lite), ``.pt``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no artifact at {path}")
    if path.suffix == ".pte":
        from .executorch import load_pte

        return load_pte(path)
    if path.suffix == ".tflite":
        from .litert import load_tflite

        return load_tflite(path)
    if path.suffix in (".ptl", ".pt"):
        from .torchscript import load_torchscript

        return load_torchscript(path)
    raise ValueError(f"unknown artifact type {path.suffix!r} ({path.name}); expected .pte, .tflite, .ptl or .pt")


@dataclass(frozen=True)
class TimingResult:
    """Median and every run in milliseconds, the threads used, and the 1/5/15-min load average."""

    median_ms: float
    all_ms: tuple[float, ...]
    threads: int
    loadavg: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["all_ms"], d["loadavg"] = list(self.all_ms), list(self.loadavg)
        return d

    def __str__(self) -> str:
        return (f"median {self.median_ms:.2f} ms over {len(self.all_ms)} runs, {self.threads} thread(s), "
                f"loadavg {self.loadavg[0]:.2f}")


@contextlib.contextmanager
def thread_count(n: int | None) -> Iterator[int]:
    """Set torch's and ExecuTorch's thread counts to ``n`` for the block; restore them after.

    ExecuTorch programs loaded with :func:`~fxaccel.lowering.load_pte` re-initialise their
    delegates on their next call after the pool changed (a delegate keeps the pool it was built
    with; see ``executorch.set_threadpool_size``).
    """
    from .executorch import set_threadpool_size, threadpool_size

    saved = torch.get_num_threads()
    et_saved = threadpool_size()
    if n is not None:
        torch.set_num_threads(n)
        set_threadpool_size(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(saved)
        if n is not None and et_saved:
            set_threadpool_size(et_saved)


def time_artifact(
    artifact: Callable | str | Path,
    inputs: Any,
    *,
    warmup: int = 3,
    repeats: int = 10,
    threads: int | None = None,
) -> TimingResult:
    """Run ``artifact`` (a callable or a path for :func:`load_artifact`) and time it.

    ``warmup`` untimed runs, then ``repeats`` timed ones; ``threads`` sets torch's (and
    ExecuTorch's) thread count for the measurement and restores it afterwards. Read the result
    next to ``loadavg``: compare only timings taken under the same (idle) load.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    run = load_artifact(artifact) if isinstance(artifact, (str, Path)) else artifact
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    times: list[float] = []
    with thread_count(threads) as used, torch.no_grad():
        for _ in range(warmup):
            run(*clone_inputs(inputs))
        for _ in range(repeats):
            args = clone_inputs(inputs)  # outside the timed call: a model may write into its inputs
            start = time.perf_counter()
            run(*args)
            times.append((time.perf_counter() - start) * 1e3)
    return TimingResult(statistics.median(times), tuple(times), used, tuple(os.getloadavg()))
