"""Which deploy form a layer gets: the built-in choice of the target's form registry, and
``tune=True`` measurements.

Some layers have several exact deploy forms, and which is fastest depends on the runtime, the
layer and its input shape, not on belief (``shared/DESIGN.md``). The candidates per layer kind and
the built-in choice among them are the target's form registry (``Target.layers``,
:mod:`fxaccel.forms`, where the measurements behind each default are noted):

* ``mobile_cpu`` ``temporal_conv``: a ``kT x 1 x 1`` Conv3d (spatial stride 1, no spatial
  padding) as ``"taps"`` (``kT`` conv2d calls + slice-adds, stays in the folded layout) or
  ``"time_as_height"`` (one conv2d with a ``(kT, 1)`` kernel, two transposes).
* ``x86`` ``pointwise_conv``: a 1x1x1 unpadded ungrouped Conv3d as ``"linear"`` (one GEMM on the
  ``(N, T, H, W, C)`` view, free in channels_last_3d), ``"conv3d"`` or, at stride 1, ``"conv2d"``
  (one 1x1 conv2d on the ``(N, C, T*H, W)`` view).
* ``x86`` ``spatial_conv``: a ``1 x kh x kw`` Conv3d without temporal padding as ``"frames2d"``
  (one conv2d over the ``(N*T, C, H, W)`` frames) or ``"conv3d"``.
* ``x86`` ``temporal_depthwise``: a per-channel ``kT x 1 x 1`` Conv3d as ``"conv3d"`` or
  ``"taps"`` (``kT`` multiply-adds of frame slices); the built-in choice depends on the thread
  count.

Without tuning, :func:`builtin_choice` reads the kind's default and the target's per-signature
overrides (``Target.measured``). With ``deploy(..., tune=True)`` a :class:`Tuner` times every
candidate on the target's runtime (``Target.runtime``: eager for ``x86``; ExecuTorch+XNNPACK for
``mobile_cpu`` when it is installed, else eager) and keeps the fastest; results are cached by layer
signature in memory and on disk (``$FXACCEL_CACHE_DIR`` or ``~/.cache/fxaccel``), so a second
deploy measures nothing.

>>> from fxaccel.choices import builtin_choice
>>> builtin_choice("mobile_cpu", "temporal_conv", "any-signature")
'taps'

Stability: experimental (``Tuner``, ``builtin_choice``, ``signature``).
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .targets import Target, get_target


def signature(kind: str, conv: nn.Module, in_shape: Sequence[int], act: str = "") -> str:
    """A batch-free key for a layer: its kind, conv hyper-parameters, input ``(C, T, H, W)``.

    >>> signature("pointwise_conv", torch.nn.Conv3d(4, 8, 1), (1, 4, 2, 5, 5), "relu")
    'pointwise_conv|4->8|k(1, 1, 1)|s(1, 1, 1)|p(0, 0, 0)|d(1, 1, 1)|g1|zeros|bias|relu|in(4, 2, 5, 5)'
    """
    c = conv
    bias = "bias" if getattr(c, "bias", None) is not None else "nobias"
    return (f"{kind}|{c.in_channels}->{c.out_channels}|k{tuple(c.kernel_size)}|s{tuple(c.stride)}|"
            f"p{c.padding if isinstance(c.padding, str) else tuple(c.padding)}|d{tuple(c.dilation)}|"
            f"g{c.groups}|{c.padding_mode}|{bias}|{act}|in{tuple(int(s) for s in in_shape[1:])}")


def builtin_choice(target: str | Target, kind: str, sig: str) -> str:
    """The form the target's registry picks for a layer of ``kind`` (no measurement): a
    per-signature override (``Target.measured``), else the kind's default. The x86 temporal
    depthwise default reads the thread count at deploy time: deploy under the thread count you run."""
    target = get_target(target)
    kinds = {k.name: k for k in target.layers if len(k.forms) > 1}
    if kind not in kinds:
        raise KeyError(f"no built-in choice for kind {kind!r} on target {target.name!r}; known: {sorted(kinds)}")
    return target.measured.get(sig) or kinds[kind].builtin()


# --------------------------------------------------------------------------- timing
Timer = Callable[[nn.Module, tuple], float]
Candidates = "dict[str, tuple[nn.Module, tuple]] | Callable[[], dict[str, tuple[nn.Module, tuple]]]"


def time_eager(module: nn.Module, inputs: tuple, *, repeats: int = 7, warmup: int = 2) -> float:
    """Median milliseconds of ``module(*inputs)`` in eager PyTorch (eval, no grad)."""
    module.eval()
    with torch.no_grad():
        for _ in range(warmup):
            module(*inputs)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            module(*inputs)
            samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def time_executorch(module: nn.Module, inputs: tuple, *, repeats: int = 7, warmup: int = 2) -> float:
    """Median milliseconds of ``module`` lowered to ExecuTorch+XNNPACK (the mobile runtime)."""
    from fxaccel.lowering.executorch import load_pte, to_pte

    program = load_pte(to_pte(module, inputs, verify=False).buffer)
    for _ in range(warmup):
        program(*inputs)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        program(*inputs)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def _executorch_available() -> bool:
    try:
        import executorch  # noqa: F401

        from fxaccel.lowering import executorch as _et  # noqa: F401
    except Exception:
        return False
    return True


def default_runtime(target: str | Target) -> str:
    """The target's tuning runtime (``Target.runtime``); ``"eager"`` when that is ExecuTorch and
    it is not installed."""
    runtime = get_target(target).runtime
    return "eager" if runtime == "executorch" and not _executorch_available() else runtime


def default_cache_dir() -> Path:
    return Path(os.environ.get("FXACCEL_CACHE_DIR") or Path.home() / ".cache" / "fxaccel")


class Tuner:
    """Times candidate forms per layer signature and remembers the fastest (memory and disk).

    ``timer(module, inputs) -> ms`` replaces the runtime's timer (tests inject a fake one);
    ``runtime`` is ``"eager"``, ``"executorch"`` or ``None`` (the target's default). The disk cache
    is one JSON file per machine/torch/thread-count under ``cache_dir``; entries are never trusted
    across those (a number measured with 4 threads says nothing about 1).

    >>> import tempfile
    >>> tuner = Tuner(cache_dir=tempfile.mkdtemp(), timer=lambda m, x: 1.0 if m is a else 2.0)
    >>> a, b = torch.nn.Identity(), torch.nn.ReLU()
    >>> tuner.choose("x86", "sig", {"a": (a, (torch.ones(1),)), "b": (b, (torch.ones(1),))})
    ('a', {'a': 1.0, 'b': 2.0}, False)
    >>> tuner.choose("x86", "sig", {})[2]   # cached: nothing is built or timed
    True
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, timer: Timer | None = None,
                 runtime: str | None = None, repeats: int = 7, warmup: int = 2):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.timer = timer
        self.runtime = runtime
        self.repeats, self.warmup = repeats, warmup
        self._memory: dict[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    # -- cache
    @property
    def path(self) -> Path:
        host = f"{platform.machine()}-torch{torch.__version__.split('+')[0]}-t{torch.get_num_threads()}"
        return self.cache_dir / f"choices-{host}.json"

    def _entries(self) -> dict[str, dict[str, Any]]:
        if self._memory is None:
            try:
                self._memory = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self._memory = {}
        return self._memory

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._entries(), indent=1, sort_keys=True))
            tmp.replace(self.path)
        except OSError:  # a read-only home must not break deploy; the memory cache still works
            pass

    def runtime_for(self, target: str) -> str:
        """The runtime this tuner times ``target``'s candidates on (``"eager"`` or ``"executorch"``)."""
        return self.runtime or default_runtime(target)

    def key(self, target: str, sig: str) -> str:
        return f"{target}|{self.runtime_for(target)}|{sig}"

    # -- choose
    def choose(self, target: str, sig: str, candidates: Candidates) -> tuple[str, dict[str, float], bool]:
        """``(fastest form, {form: ms}, was_cached)``.

        ``candidates`` maps form -> ``(module, inputs)``, or is a callable returning that mapping
        (built only on a cache miss).
        """
        with self._lock:
            hit = self._entries().get(self.key(target, sig))
        if hit is not None:
            return hit["form"], dict(hit["ms"]), True
        if callable(candidates):
            candidates = candidates()
        if not candidates:
            raise ValueError(f"no cached choice and no candidates for layer {sig!r}")
        timer = self.timer or self._default_timer(target)
        ms = {form: float(timer(mod, inputs)) for form, (mod, inputs) in candidates.items()}
        best = min(ms, key=ms.__getitem__)
        with self._lock:
            self._entries()[self.key(target, sig)] = {"form": best, "ms": ms}
            self._save()
        return best, ms, False

    def _default_timer(self, target: str) -> Timer:
        fn = time_executorch if self.runtime_for(target) == "executorch" else time_eager
        return lambda m, x: fn(m, x, repeats=self.repeats, warmup=self.warmup)


_DEFAULT: dict[Path, Tuner] = {}


def default_tuner() -> Tuner:
    """The process-wide tuner for the default cache dir (its memory cache is shared by deploys)."""
    path = default_cache_dir()
    if path not in _DEFAULT:
        _DEFAULT[path] = Tuner(path)
    return _DEFAULT[path]


__all__ = [
    "Tuner", "builtin_choice", "default_cache_dir",
    "default_runtime", "default_tuner", "signature", "time_eager", "time_executorch",
]
