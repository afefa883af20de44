"""Zero pads stay int8 in an XNNPACK program: a quantizer annotation and the partitioner config it needs.

Why: every temporal tap of the mobile deploy form pads its output with zero frames. ExecuTorch
1.5.1's XNNPACK quantizer leaves ``aten.pad`` unannotated and its partitioner takes
``constant_pad_nd`` in fp32 only, so an int8 program converted each of X3D-XS's 56 pads to fp32
and back (196 ``Convert`` ops, 8% of X3D-S's int8 time in docs/profiles.md). A zero pad is exact in
symmetric int8 (zero is a code), so its output can share its input's scale: with that annotation
and a pad config that accepts static-quant, XNNPACK runs the pads as ``Constant Pad (ND, X8)``.

A pad whose output is not quantized with its input's scale (a pt2e model from another quantizer)
stays the fp32 pad ExecuTorch makes by default: XNNPACK's pad cannot requantize, and a program that
asked it to would not load.

Stability: internal.
"""
from __future__ import annotations

import torch
from torch import fx

_PADS = (torch.ops.aten.pad.default, torch.ops.aten.constant_pad_nd.default)
_KEY = "quantization_annotation"


def _zero_constant_pad(node: fx.Node) -> bool:
    if node.target is torch.ops.aten.constant_pad_nd.default:
        return float(node.args[2] if len(node.args) > 2 else node.kwargs.get("value", 0.0)) == 0.0
    mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")
    value = node.args[3] if len(node.args) > 3 else node.kwargs.get("value", None)
    return mode == "constant" and float(value or 0.0) == 0.0


def share_pad_qparams(model: fx.GraphModule) -> int:
    """Annotate every zero constant pad whose input is quantized to share that input's qparams;
    returns how many. Runs after the XNNPACK quantizer's own annotation."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    count = 0
    for node in model.graph.nodes:
        if node.op != "call_function" or node.target not in _PADS or _KEY in node.meta:
            continue
        src = node.args[0]
        ann = src.meta.get(_KEY) if isinstance(src, fx.Node) else None
        if ann is None or ann.output_qspec is None or not _zero_constant_pad(node):
            continue
        shared = SharedQuantizationSpec(src)
        node.meta[_KEY] = QuantizationAnnotation(input_qspec_map={src: shared}, output_qspec=shared,
                                                 _annotated=True)
        count += 1
    return count


def quantizer_class():
    """ExecuTorch's ``XNNPACKQuantizer`` plus :func:`share_pad_qparams`."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    class PadSharingXNNPACKQuantizer(XNNPACKQuantizer):
        def annotate(self, model: fx.GraphModule) -> fx.GraphModule:
            model = super().annotate(model)
            share_pad_qparams(model)
            return model

    return PadSharingXNNPACKQuantizer


def partitioner_configs() -> list:
    """ExecuTorch's XNNPACK partitioner configs with ``constant_pad_nd`` also taken in static-quant
    (when its output keeps its input's scale, as :func:`share_pad_qparams` makes it)."""
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.config.generic_node_configs import ConstantPadConfig
    from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType
    from executorch.backends.xnnpack.utils.quant_utils import is_dequant, is_quant

    class Int8ConstantPadConfig(ConstantPadConfig):
        def supported_precision_types(self):
            return [ConfigPrecisionType.FP32, ConfigPrecisionType.STATIC_QUANT]

        def get_node_and_deps(self, node: fx.Node, ep) -> list:
            """int8 only for dq -> pad -> q with one scale (XNNPACK's pad cannot requantize; such a
            program would not load); anything else is the fp32 pad ExecuTorch makes by default."""
            src, users = node.args[0], list(node.users)
            if isinstance(src, fx.Node) and is_dequant(src) and len(users) == 1 and is_quant(users[0]) \
                    and tuple(users[0].args[1:]) == tuple(src.args[1:]):
                return super().get_node_and_deps(node, ep)
            return [node]

    return [Int8ConstantPadConfig if c is ConstantPadConfig else c for c in ALL_PARTITIONER_CONFIGS]
