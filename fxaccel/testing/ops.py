"""Record which ATen ops a module really runs, for structural tests of deploy forms.

Numerics say a rewrite is right; these say it is *the rewrite we meant*: e.g. a ``mobile_cpu``
deploy form must run no 5-D convolution (XNNPACK has none), and a temporal decomposition must make
``kT`` convolution calls, not ``T * kT``. Ops are seen at the dispatcher, below autograd and below
``torch.nn.functional``, so nothing hides inside a module or a Python helper.

Stability: public.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ..targets import TARGETS

OpKey = tuple[str, "int | None"]


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        first = next((a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)), None)
        self.ops[(str(func.overloadpacket.__name__), None if first is None else first.dim())] += 1
        return func(*args, **kwargs)


def record_aten_ops(fn: Callable, *inputs: Any, **kwargs: Any) -> Counter:
    """Run ``fn(*inputs, **kwargs)`` and count the ATen ops it executed.

    Keys are ``(op_name, rank)``: the op's name without namespace or overload (``"convolution"``,
    ``"avg_pool3d"``, ``"add"``) and the rank of its first tensor argument (``None`` if it has
    none). Run under ``torch.no_grad()`` if you want to keep autograd bookkeeping out (the ops
    recorded are the same; they are seen below autograd).

    >>> import torch
    >>> from fxaccel.testing.ops import record_aten_ops
    >>> ops = record_aten_ops(torch.nn.Conv3d(2, 2, 3), torch.randn(1, 2, 4, 4, 4))
    >>> ops[("convolution", 5)]
    1
    """
    rec = _Recorder()
    with rec:
        fn(*inputs, **kwargs)
    return rec.ops


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
