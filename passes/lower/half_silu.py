"""fp16 programs: ``silu(x)`` -> ``x * sigmoid(x)``, so the swish stays in half precision.

ExecuTorch's edge decomposition of ``silu`` upcasts half tensors to fp32 and back (torch's
``pw_cast_for_opmath``), and XNNPACK delegates no dtype conversion: measured on X3D-XS, the fp16
``.pte`` split into 53 delegate calls around 52 portable casts. Spelled as ``x * sigmoid(x)`` the
swish decomposes to the same two ops without casts; the only difference is one more fp16 rounding
(of ``sigmoid(x)``), which is what an fp16 program means.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import fx

from fxaccel.pipeline import When, register_pass

_SILU = (F.silu, torch.ops.aten.silu.default)


def half_silu(gm: fx.GraphModule, ctx) -> None:
    for node in list(gm.graph.nodes):
        is_module = node.op == "call_module" and isinstance(gm.get_submodule(node.target), torch.nn.SiLU)
        if not (node.op == "call_function" and node.target in _SILU) and not is_module:
            continue
        ctx.record.matched += 1
        x = node.args[0] if node.args else node.kwargs.get("input")
        with gm.graph.inserting_after(node):
            sig = gm.graph.call_function(torch.sigmoid, (x,))
        with gm.graph.inserting_after(sig):
            mul = gm.graph.call_function(torch.mul, (x, sig))
        node.replace_all_uses_with(mul)
        gm.graph.erase_node(node)
        ctx.record.rewritten += 1
    if ctx.record.rewritten:
        gm.graph.lint()
        gm.recompile()


register_pass(half_silu, stage="lower", name="half_silu", after="inline_forms", before="propagate_shapes",
              when=When(formats=("executorch",), options={"dtype": "float16"}))
