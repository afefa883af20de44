"""Zero pads and sigmoids stay int8 in an XNNPACK program: quantizer annotations and the partitioner
configs they need.

Why: every temporal tap of the mobile deploy form pads its output with zero frames. ExecuTorch
1.5.1's XNNPACK quantizer leaves ``aten.pad`` unannotated and its partitioner takes
``constant_pad_nd`` in fp32 only, so an int8 program converted each of X3D-XS's 56 pads to fp32
and back (196 ``Convert`` ops, 8% of X3D-S's int8 time in docs/profiles.md). A zero pad is exact in
symmetric int8 (zero is a code), so its output can share its input's scale: with that annotation
and a pad config that accepts static-quant, XNNPACK runs the pads as ``Constant Pad (ND, X8)``.

A pad whose output is not quantized with its input's scale (a pt2e model from another quantizer)
stays the fp32 pad ExecuTorch makes by default: XNNPACK's pad cannot requantize, and a program that
asked it to would not load.

Sigmoids (squeeze-excite gates, swish): the stock quantizer leaves them unannotated and the
partitioner takes them in fp32 only, so each one converted its input to fp32 and its output back
(the 84 ``Convert`` ops X3D-XS kept after the pads went int8). A sigmoid's output lies in (0, 1),
so it gets fixed qparams, scale 1/256 and zero point -128 (every int8 code spans [0, 1); the most a
value moves is 1/512), its input shares its producer's, and its consumers read that output as is.

Stability: internal.
"""
from __future__ import annotations

import torch
from torch import fx

_PADS = (torch.ops.aten.pad.default, torch.ops.aten.constant_pad_nd.default)
_SIGMOID = torch.ops.aten.sigmoid.default
_SHAPE_OPS = (torch.ops.aten.reshape.default, torch.ops.aten.view.default, torch.ops.aten.flatten.using_ints,
              torch.ops.aten.squeeze.dim, torch.ops.aten.squeeze.dims, torch.ops.aten.unsqueeze.default)
_KEY = "quantization_annotation"
SIGMOID_SCALE, SIGMOID_ZERO_POINT = 1.0 / 256, -128  # int8 codes -128..127 -> [0, 255/256]


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
        if not _quantized_output(src) or not _zero_constant_pad(node):
            continue
        shared = SharedQuantizationSpec(src)
        node.meta[_KEY] = QuantizationAnnotation(input_qspec_map={src: shared}, output_qspec=shared,
                                                 _annotated=True)
        count += 1
    return count


def _quantized_output(node) -> bool:
    ann = node.meta.get(_KEY) if isinstance(node, fx.Node) else None
    return ann is not None and ann.output_qspec is not None


def fix_sigmoid_qparams(model: fx.GraphModule) -> int:
    """Annotate every sigmoid whose input is quantized: input shares its producer's qparams,
    output fixed to scale 1/256, zero point -128, read as is by the consumers that quantize their
    inputs. Returns how many. Runs after the XNNPACK quantizer's own annotation."""
    from torchao.quantization.pt2e.quantizer import (
        FixedQParamsQuantizationSpec, QuantizationAnnotation, SharedQuantizationSpec,
    )

    fixed = FixedQParamsQuantizationSpec(dtype=torch.int8, scale=SIGMOID_SCALE, zero_point=SIGMOID_ZERO_POINT,
                                         quant_min=-128, quant_max=127)
    count = 0
    for node in model.graph.nodes:
        if node.op != "call_function" or node.target is not _SIGMOID or _KEY in node.meta:
            continue
        src = node.args[0]
        if not _quantized_output(src):
            continue
        node.meta[_KEY] = QuantizationAnnotation(input_qspec_map={src: SharedQuantizationSpec(src)},
                                                 output_qspec=fixed, _annotated=True)
        _read_as_is(node)
        count += 1
    return count


def _read_as_is(node: fx.Node) -> None:
    """``node``'s consumers read its qparams as is, through shape-only ops (an SE gate is reshaped
    before its multiply). Another observer on those edges would requantize, and XNNPACK's reshape
    cannot: ExecuTorch lowers a dq -> reshape -> q of two scales to a program that fails to load."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    shared = SharedQuantizationSpec(node)
    for user in list(node.users):
        if user.op == "call_function" and user.target in _SHAPE_OPS and user.args[0] is node:
            user.meta[_KEY] = QuantizationAnnotation(input_qspec_map={node: shared}, output_qspec=shared,
                                                     _annotated=True)
            _read_as_is(user)
            continue
        ann = user.meta.get(_KEY)
        if ann is not None and node in ann.input_qspec_map and not _shares(ann):
            ann.input_qspec_map[node] = shared


def _shares(ann) -> bool:
    """Whether an annotation ties qparams together (a cat: all inputs and the output share the
    first input's). Such a consumer keeps its own observer: fixing it to the sigmoid's [0, 1)
    would clip its other inputs."""
    from torchao.quantization.pt2e.quantizer import SharedQuantizationSpec

    specs = [*ann.input_qspec_map.values(), ann.output_qspec]
    return any(isinstance(spec, SharedQuantizationSpec) for spec in specs)


def split_silu(model: fx.GraphModule) -> int:
    """Rewrite every ``silu(x)`` as ``x * sigmoid(x)`` (the same function); returns how many.

    Why: quantized as one op, ExecuTorch decomposes it after quantization into an fp32 sigmoid and
    multiply between two ``Convert`` ops; split first, each part gets int8 qparams of its own.
    """
    count = 0
    for node in list(model.graph.nodes):
        if node.op != "call_function" or node.target is not torch.ops.aten.silu.default:
            continue
        x = node.args[0]
        with model.graph.inserting_before(node):
            gate = model.graph.call_function(_SIGMOID, (x,))
            out = model.graph.call_function(torch.ops.aten.mul.Tensor, (x, gate))
        for new in (gate, out):  # same shape, dtype and source as the silu
            new.meta = dict(node.meta)
        node.replace_all_uses_with(out)
        model.graph.erase_node(node)
        count += 1
    if count:
        model.recompile()
    return count


def quantizer_class():
    """ExecuTorch's ``XNNPACKQuantizer`` plus :func:`share_pad_qparams` and :func:`fix_sigmoid_qparams`."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    class PadSharingXNNPACKQuantizer(XNNPACKQuantizer):
        def transform_for_annotation(self, model: fx.GraphModule) -> fx.GraphModule:
            model = super().transform_for_annotation(model)
            split_silu(model)
            return model

        def annotate(self, model: fx.GraphModule) -> fx.GraphModule:
            model = super().annotate(model)
            share_pad_qparams(model)
            fix_sigmoid_qparams(model)
            return model

    return PadSharingXNNPACKQuantizer


def partitioner_configs() -> list:
    """ExecuTorch's XNNPACK partitioner configs with ``constant_pad_nd`` also taken in static-quant
    (when its output keeps its input's scale, as :func:`share_pad_qparams` makes it), and
    ``sigmoid`` too (when its output has the fixed qparams of :func:`fix_sigmoid_qparams`)."""
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.config.generic_node_configs import ConstantPadConfig, SigmoidConfig
    from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType
    from executorch.backends.xnnpack.utils.quant_utils import is_dequant, is_quant

    def int8_when(config: type, ok) -> type:
        """``config`` also taken in static-quant, but only for dq -> op -> q where ``ok(dq, qs)``;
        any other node is the fp32 op ExecuTorch makes by default."""
        class Int8Config(config):
            def supported_precision_types(self):
                return [ConfigPrecisionType.FP32, ConfigPrecisionType.STATIC_QUANT]

            def get_node_and_deps(self, node: fx.Node, ep) -> list:
                src, users = node.args[0], list(node.users)
                if isinstance(src, fx.Node) and is_dequant(src) and users and all(map(is_quant, users)) \
                        and ok(src, users):
                    return super().get_node_and_deps(node, ep)
                return [node]

        Int8Config.__name__ = f"Int8{config.__name__}"
        return Int8Config

    swap = {
        # one consumer, one scale: XNNPACK's pad cannot requantize (such a program would not load)
        ConstantPadConfig: int8_when(ConstantPadConfig, lambda dq, qs: len(qs) == 1
                                     and tuple(qs[0].args[1:]) == tuple(dq.args[1:])),
        # the fixed output qparams this module annotates and tests
        SigmoidConfig: int8_when(SigmoidConfig, lambda dq, qs: all(
            tuple(q.args[1:3]) == (SIGMOID_SCALE, SIGMOID_ZERO_POINT) for q in qs)),
    }
    return [swap.get(c, c) for c in ALL_PARTITIONER_CONFIGS]
