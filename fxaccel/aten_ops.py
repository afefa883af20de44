"""ATen ops by kind: the vocabulary in which targets say what they run and reports say what ran.

An op is named by its base name, without namespace or overload (``aten.convolution.default`` ->
``"convolution"``). Its *kind* (:data:`KINDS`) groups the spellings one runtime kernel family
covers: every convolution is ``"conv"``, means, sums and pools are ``"pool"``. A target's
op-legality table (:class:`fxaccel.targets.NoKernel`) and ExecuTorch's delegation report
(:mod:`fxaccel.lowering.executorch`) both speak in these kinds, so the two cannot drift apart.

Stability: public (``KINDS``, ``COMPUTE_KINDS``, ``OP_KINDS``, ``op_kind``, ``base_name``).
"""
from __future__ import annotations

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
