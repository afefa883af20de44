"""ATen ops: which ones a module really runs, and by kind, the vocabulary in which targets say
what they run and reports say what ran.

:func:`record_aten_ops` sees ops at the dispatcher, below autograd and below
``torch.nn.functional``, so nothing hides inside a module or a Python helper: ``check_target``
proves a deploy form runs only what its target has kernels for, deploy's report counts ops per
layer, and tests check a rewrite is the one meant (``kT`` convolution calls, not ``T * kT``).

An op is named by its base name, without namespace or overload (``aten.convolution.default`` ->
``"convolution"``). Its *kind* (:data:`KINDS`) groups the spellings one runtime kernel family
covers: every convolution is ``"conv"``, means, sums and pools are ``"pool"``. A target's
op-legality table (:class:`fxaccel.targets.NoKernel`) and ExecuTorch's delegation report
(:mod:`fxaccel.lowering.executorch`) both speak in these kinds, so the two cannot drift apart.

Stability: public (``AtenOpRecorder``, ``record_aten_ops``, ``KINDS``, ``COMPUTE_KINDS``,
``OP_KINDS``, ``op_kind``, ``base_name``, ``macs``).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

OpKey = tuple[str, "int | None"]

KINDS = ("conv", "linear", "pool", "activation", "elementwise", "reshape", "quant", "other")
# The kinds whose slow fallback kernels make a model slow (the rest move or rescale data).
COMPUTE_KINDS = ("conv", "linear", "pool", "activation")

OP_KINDS: dict[str, frozenset[str]] = {
    "conv": frozenset({
        "convolution", "_convolution", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
        "conv_transpose3d", "mkldnn_convolution", "slow_conv3d", "slow_conv3d_forward",
        "slow_conv_dilated3d", "_slow_conv2d_forward"}),
    "linear": frozenset({"linear", "addmm", "mm", "bmm", "matmul", "baddbmm"}),
    "pool": frozenset({
        "mean", "sum", "amax", "amin", "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool2d", "max_pool3d",
        "max_pool2d_with_indices", "max_pool3d_with_indices", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
        "adaptive_avg_pool3d", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_max_pool2d",
        "adaptive_max_pool3d"}),
    "activation": frozenset({
        "relu", "relu6", "sigmoid", "hardswish", "hardsigmoid", "hardtanh", "clamp", "gelu", "tanh", "silu",
        "leaky_relu", "elu", "_softmax", "softmax", "prelu", "_prelu_kernel"}),
    "elementwise": frozenset({
        "add", "sub", "mul", "div", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "pow", "maximum", "minimum",
        "floor", "ceil", "reciprocal", "where", "rsub", "square",
        # per-channel affine (when a backend does not fuse it into the conv before it)
        "_native_batch_norm_legit_no_training", "native_batch_norm", "batch_norm"}),
    "reshape": frozenset({
        "view_copy", "view", "_unsafe_view", "reshape", "permute_copy", "permute", "transpose",
        "transpose_copy", "t_copy", "slice_copy", "slice", "select_copy", "select", "unsqueeze_copy",
        "unsqueeze", "squeeze_copy", "squeeze", "expand_copy", "expand", "cat", "clone", "_to_copy",
        "_to_dim_order_copy", "_clone_dim_order", "constant_pad_nd", "split_with_sizes_copy", "split_copy",
        "split", "index", "flatten", "contiguous", "alias_copy", "stack"}),
    "quant": frozenset({
        "quantize_per_tensor", "dequantize_per_tensor", "quantize_per_channel", "dequantize_per_channel",
        "quantize_per_token", "dequantize_per_token", "choose_qparams", "choose_qparams_per_token_asymmetric"}),
}
_KIND = {base: kind for kind, bases in OP_KINDS.items() for base in bases}


def base_name(op: str) -> str:
    """``aten.convolution.default`` -> ``convolution``; a plain name is its own base."""
    parts = op.split(".")
    return parts[1] if len(parts) >= 3 else parts[-1]


def op_kind(op: str) -> str:
    """Kind of an op named like ``aten.convolution.default`` (or just ``convolution``): one of :data:`KINDS`.

    >>> op_kind("aten.mean.dim"), op_kind("aten.view_copy.default"), op_kind("aten.foo.default")
    ('pool', 'reshape', 'other')
    """
    base = base_name(op)
    if op.startswith("quantized_decomposed.") or base.startswith(("quantize_", "dequantize_")):
        return "quant"
    return _KIND.get(base, "other")


def macs(op: str, args: tuple, out: Any) -> int:
    """Multiply-accumulates of one conv / linear / matmul op from its arguments and output
    (tensors, or anything with ``.shape``: FakeTensors of an exported graph's ``meta["val"]``);
    0 for every other op. What "share of the work" means in a report: elementwise ops, pools and
    data movement are cheap next to these in a video CNN or transformer.

    >>> import torch
    >>> x, w = torch.empty(1, 4, 8, 8), torch.empty(6, 2, 3, 3)   # groups=2: 2 input channels per output
    >>> macs("aten.convolution.default", (x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 2), torch.empty(1, 6, 8, 8))
    6912
    >>> macs("aten.mm.default", (torch.empty(5, 3), torch.empty(3, 7)), torch.empty(5, 7))
    105
    """
    base = base_name(op)
    shape = getattr(out, "shape", None)
    if shape is None or base not in OP_KINDS["conv"] | OP_KINDS["linear"]:
        return 0
    numel = 1
    for s in shape:
        numel *= int(s)
    tensors = [a for a in args if hasattr(a, "shape")]
    if base in OP_KINDS["conv"]:
        if len(tensors) < 2:
            return 0
        x, w = tensors[0], tensors[1]
        per = 1
        for s in w.shape[1:]:
            per *= int(s)
        transposed = len(args) > 6 and args[6] is True or base.startswith("conv_transpose")
        if transposed:  # weight (C_in, C_out/groups, k...): every input value meets C_out/groups * k outputs
            n = 1
            for s in x.shape:
                n *= int(s)
            return n * per
        return numel * per
    if base == "linear" and len(tensors) >= 2:
        return numel * int(tensors[1].shape[-1])
    inner = {"addmm": 1, "baddbmm": 1}.get(base, 0)  # the left operand after the added bias
    if len(tensors) <= inner:
        return 0
    return numel * int(tensors[inner].shape[-1])


class AtenOpRecorder(TorchDispatchMode):
    """A dispatch mode counting the ATen ops run inside it in ``ops``, keyed like
    :func:`record_aten_ops`; use it where one recording spans code you do not call yourself
    (an ``fx.Interpreter`` node by node)."""

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
    >>> ops = record_aten_ops(torch.nn.Conv3d(2, 2, 3), torch.randn(1, 2, 4, 4, 4))
    >>> ops[("convolution", 5)]
    1
    """
    rec = AtenOpRecorder()
    with rec:
        fn(*inputs, **kwargs)
    return rec.ops
