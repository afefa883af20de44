"""Decide which ops run int8 and put ``QuantStub`` / ``DeQuantStub`` where the domain changes.

Eager-mode quantization converts modules one by one; every tensor between two modules must already
be in the right domain (an int8 conv refuses a float tensor, ``silu`` refuses an int8 one). This
pass walks the graph in order and gives each value a domain, ``q`` (int8) or ``f`` (fp32):

* *int8 ops*: modules with an eager int8 form (conv, linear, their fused forms, BN, hardswish,
  the FloatFunctional wrappers, ...), unless ``skip`` names them: their inputs are quantized;
* *transparent ops*: shape ops, slices, ``mean``, ``relu``, ``sigmoid``, pools, zero ``pad``
  (measured to run on quantized tensors): they stay in their input's domain, so a reshape never
  costs a dequantize;
* everything else (``softmax``, ``silu`` left over, opaque leaves, layers in ``skip``) is a
  *float island*: quantized inputs are dequantized, the output is fp32.

A stub is inserted lazily, once per value, right before its first consumer that needs the other
domain, so the model's input is quantized after the time fold (not before), and graph outputs are
dequantized. Each call_module node gets ``meta["fxaccel_quant"]`` (``"int8"``, ``"float"``,
``"transparent"``, ``"stub"``) for ``set_qconfig``.
"""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.ao.quantization import DeQuantStub, QuantStub
from torch.fx.passes.shape_prop import TensorMetadata
from torch.ao.quantization.quantization_mappings import get_default_static_quant_module_mappings

from fxaccel.blocks.layout import FoldTime, UnfoldTime
from fxaccel.pipeline import PassContext, register_pass

from ._common import EAGER, add_module_near, finish, is_skipped, scope_of
from .float_functional import Functional

_TRANSPARENT_MODULES = (
    nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.GELU, nn.Identity, nn.Flatten, nn.Unflatten,
    nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool2d,
    nn.AvgPool3d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.Upsample, QuantStub, DeQuantStub,
    FoldTime, UnfoldTime,  # a shape check, a transpose and a reshape: measured to work on int8 tensors
)
_TRANSPARENT_FUNCTIONS = {
    torch.reshape, torch.flatten, torch.transpose, torch.permute, torch.squeeze, torch.unsqueeze,
    torch.mean, torch.relu, F.relu, torch.sigmoid, torch.tanh, F.hardtanh, F.relu6, torch.clamp,
    F.max_pool2d, F.max_pool3d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool2d,
    F.adaptive_avg_pool3d, F.interpolate, F.dropout, F.gelu, torch.chunk, torch.split, torch.narrow,
    torch.select, operator.getitem, getattr,
}
_TRANSPARENT_METHODS = {
    "reshape", "view", "flatten", "transpose", "permute", "contiguous", "squeeze", "unsqueeze", "mean",
    "relu", "sigmoid", "tanh", "clamp", "repeat", "expand", "expand_as", "chunk", "split", "narrow",
    "select", "size", "dim", "dequantize",
}
# fxaccel's shape guards (``torch.fx.wrap``-ped, they return their input): they only read shapes.
_SHAPE_GUARDS = {"_checked", "checked_folded", "check_shape"}


def _int8_module_types() -> tuple[type, ...]:
    keys = set(get_default_static_quant_module_mappings())
    return tuple(t for t in keys if t not in _TRANSPARENT_MODULES) + (Functional,)


def _classify(gm: fx.GraphModule, node: fx.Node, int8_types) -> tuple[str, str]:
    """``(kind, what)``: kind is ``int8``, ``transparent`` or ``float``; ``what`` names the op."""
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        what = f"{node.target} ({type(mod).__name__})"
        if isinstance(mod, _TRANSPARENT_MODULES) and type(mod) in _TRANSPARENT_MODULES:
            return "transparent", what
        return ("int8" if isinstance(mod, int8_types) else "float"), what
    name = getattr(node.target, "__name__", str(node.target))
    what = f"{scope_of(node) or '<root>'}: {name}"
    if node.op == "call_function":
        if node.target is F.pad:
            mode = node.kwargs.get("mode", node.args[2] if len(node.args) > 2 else "constant")
            value = node.kwargs.get("value", node.args[3] if len(node.args) > 3 else None)
            return ("transparent" if mode == "constant" and not value else "float"), what
        if node.target in _TRANSPARENT_FUNCTIONS or name in _SHAPE_GUARDS:
            return "transparent", what
    if node.op == "call_method" and node.target in _TRANSPARENT_METHODS:
        return "transparent", what
    return "float", what


def _holds_tensor(node: fx.Node) -> bool:
    """Whether ``node``'s value is a tensor or a tuple/list of tensors (not a size, not a number)."""
    meta = node.meta.get("tensor_meta")
    if isinstance(meta, TensorMetadata):  # a NamedTuple: test it before tuples
        return True
    if isinstance(meta, (tuple, list)):
        return any(isinstance(m, TensorMetadata) for m in meta)
    return isinstance(meta, TensorMetadata)


class _Domains:
    """Domain of each value and the stubs that convert it, created once per value."""

    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.of: dict[fx.Node, str] = {}
        self._stubs: dict[tuple[fx.Node, str], fx.Node] = {}
        self.inserted = 0

    def convert(self, value, want: str, user: fx.Node):
        """``value`` (any nested args) with every tensor node converted to domain ``want``."""
        def one(v: fx.Node):
            have = self.of.get(v)
            if have is None or have == want:
                return v
            key = (v, want)
            if key not in self._stubs:
                stub = QuantStub() if want == "q" else DeQuantStub()
                path = add_module_near(self.gm, user, stub, "quant" if want == "q" else "dequant")
                with self.gm.graph.inserting_before(user):
                    new = self.gm.graph.call_module(path, (v,))
                new.meta.update({k: val for k, val in v.meta.items() if k == "tensor_meta"})
                new.meta["nn_module_stack"] = user.meta.get("nn_module_stack", {})
                new.meta["fxaccel_quant"] = "stub"
                self.of[new] = want
                self._stubs[key] = new
                self.inserted += 1
            return self._stubs[key]
        return fx.map_arg(value, one)

    def inputs(self, node: fx.Node) -> set[str]:
        seen: set[str] = set()
        fx.map_arg((node.args, node.kwargs), lambda v: seen.add(self.of[v]) if v in self.of else None)
        return seen


def quant_stubs(gm: fx.GraphModule, ctx: PassContext) -> None:
    """Assign int8 / fp32 domains and insert the stubs between them (see the module docstring)."""
    skip = ctx.options.skip
    int8_types = _int8_module_types()
    dom = _Domains(gm)
    for node in list(gm.graph.nodes):
        if node.op in ("placeholder", "get_attr"):
            if _holds_tensor(node) or node.op == "get_attr":
                dom.of[node] = "f"
            continue
        if node.op == "output":
            node.args = dom.convert(node.args, "f", node)
            continue
        if node.meta.get("fxaccel_quant") == "stub":
            continue
        kind, what = _classify(gm, node, int8_types)
        if kind == "int8" and is_skipped(node.target, skip):
            kind = "float"
            reason = next((r for s, r in skip.items() if is_skipped(node.target, [s])), "skip=")
            ctx.record.skip(node.target, f"kept in fp32: {reason}")
        ins = dom.inputs(node)
        if kind == "transparent":
            out = ins.pop() if len(ins) == 1 else "f"
        else:
            out = "q" if kind == "int8" else "f"
            if kind == "float" and "q" in ins and node.op != "call_module":
                ctx.record.note(f"{what}: no int8 kernel, runs in fp32 between dequantize and quantize")
            elif kind == "float" and "q" in ins and not is_skipped(node.target, skip):
                ctx.record.note(f"{what}: no eager int8 form, runs in fp32 between dequantize and quantize")
        if kind == "int8":
            ctx.record.matched += 1
        node.args = dom.convert(node.args, out, node)
        node.kwargs = dom.convert(node.kwargs, out, node)
        if _holds_tensor(node):
            dom.of[node] = out
        if node.op == "call_module":
            node.meta["fxaccel_quant"] = kind
    ctx.record.rewritten += dom.inserted
    ctx.record.note(f"{dom.inserted} quant/dequant stubs inserted")
    finish(gm)


register_pass(quant_stubs, stage="quantize", name="quant_stubs", after="float_functional", when=EAGER)
