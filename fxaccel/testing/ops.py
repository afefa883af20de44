"""Record which ATen ops a module really runs, for structural tests of deploy forms.

Numerics say a rewrite is right; these say it is *the rewrite we meant*: e.g. a ``mobile_cpu``
deploy form must run no 5-D convolution (XNNPACK has none), and a temporal decomposition must make
``kT`` convolution calls, not ``T * kT``. The recorder itself is core (:mod:`fxaccel.aten_ops`,
re-exported here): deploy uses it too.

Stability: public.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from ..aten_ops import OpKey, record_aten_ops
from ..targets import TARGETS


def count_ops(ops: Counter, names: str | Iterable[str], rank: int | None = None) -> int:
    """How many recorded calls have one of ``names`` (and, if given, first-argument ``rank``).

    >>> from collections import Counter
    >>> count_ops(Counter({("convolution", 4): 3, ("add", 4): 2}), "convolution")
    3
    """
    wanted = {names} if isinstance(names, str) else set(names)
    return sum(n for (name, r), n in ops.items() if name in wanted and (rank is None or r == rank))


def ops_not_on_mobile(ops: Counter) -> list[OpKey]:
    """The recorded ops a ``mobile_cpu`` runtime has no kernel for, sorted; empty when all is well.

    Read from the target's op-legality table (``fxaccel.targets.TARGETS["mobile_cpu"].no_kernel``):
    any convolution on a 5-D input, any 3-D pooling op (``avg_pool3d``,
    ``max_pool3d_with_indices``, ``adaptive_*_pool3d``, ...), and means, sums and pools of a 5-D
    input. Reshapes and transposes of 5-D tensors are allowed (they fold time at a network's entry).

    >>> import torch
    >>> ops_not_on_mobile(record_aten_ops(torch.nn.Conv3d(2, 2, 1), torch.randn(1, 2, 2, 2, 2)))
    [('convolution', 5)]
    """
    return TARGETS["mobile_cpu"].unsupported(ops)


__all__ = ["count_ops", "ops_not_on_mobile", "record_aten_ops"]
