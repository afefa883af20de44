"""The x86 deploy form in bf16: ``deploy(..., target="x86", dtype=torch.bfloat16)``.

Why: on CPUs with AVX512-BF16 or AMX, oneDNN's bf16 convolutions and GEMMs (fp32 accumulation)
run X3D-XS/S/M's x86 form 1.2x/1.5x/1.9x faster than fp32 under torch.compile (AMD Zen 4, 2
threads, docs/benchmarks.md, section peers), which is what OpenVINO does at its default precision.
The form casts weights and buffers to bf16 and the inputs on entry, and gives fp32 outputs back,
so it is a drop-in swap.

Stability: public through ``deploy``; ``BF16_SQNR_FLOOR`` public.
"""
from __future__ import annotations

import torch
from torch import fx

from .errors import DeployError

BF16_SQNR_FLOOR = 15.0
"""dB a bf16 form must reach against the model on the example inputs. bf16 keeps 8 significant
bits (each rounding ~48 dB below the signal; oneDNN accumulates in fp32), and a network amplifies
that with depth as it amplifies int8 noise: random-weight X3D-XS/S/M measured 20/25/28 dB against
vanilla fp32 here. A wrong cast or layout gives < 5 dB."""


def bf16_supported() -> bool:
    """Whether oneDNN has bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def require_bf16() -> None:
    if not bf16_supported():
        raise DeployError("dtype=torch.bfloat16 needs a CPU with AVX512-BF16 or AMX (oneDNN's bf16 kernels); "
                          "this one has neither, where bf16 would run slower than fp32. Fix: deploy in fp32 "
                          "(the default)")


def _fp32(value):
    """Floating outputs back to fp32; everything else as it is (a graph-level call, so fx keeps it)."""
    return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


def to_bfloat16(gm: fx.GraphModule, inputs: tuple) -> fx.GraphModule:
    """Cast ``gm`` (in place) to bf16: floating parameters and buffers, the floating inputs on entry
    (matched to ``inputs`` by position), floating outputs back to fp32."""
    gm.to(torch.bfloat16)
    graph = gm.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    for node, example in zip(placeholders, inputs):
        if not (isinstance(example, torch.Tensor) and example.is_floating_point()):
            continue
        with graph.inserting_after(node):
            cast = graph.call_method("to", (node, torch.bfloat16))
        node.replace_all_uses_with(cast, delete_user_cb=lambda user: user is not cast)
    output = next(n for n in graph.nodes if n.op == "output")
    with graph.inserting_before(output):
        result = fx.node.map_arg(output.args[0], lambda n: graph.call_function(_fp32, (n,)))
    output.args = (result,)
    graph.lint()
    gm.recompile()
    return gm
