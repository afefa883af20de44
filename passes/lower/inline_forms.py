"""Trace through the deploy-form modules so the lower fixes see every op (ExecuTorch, NNAPI).

A deploy graph calls its blocks as ``call_module`` nodes; the ops a backend refuses (a 3-D mean,
a ``view``, a ``hardswish``) sit inside them. Tracing through every module (parameters become
``get_attr`` nodes of the same tensors) gives one flat graph of functional ops with the same
numerics. If the model cannot be traced through, the graph is kept as it is and the reason noted:
the later fixes then act on what they can see.
"""
from __future__ import annotations

import torch
from torch import fx, nn

from fxaccel.pipeline import When, register_pass


class _ThroughTracer(fx.Tracer):
    """Leaves are only modules without a Python forward to trace (scripted ones)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, torch.jit.ScriptModule)


def inline(gm: fx.GraphModule) -> fx.GraphModule:
    """A flat GraphModule computing ``gm`` with every traceable submodule inlined."""
    graph = _ThroughTracer().trace(gm)
    flat = fx.GraphModule(gm, graph, class_name=type(gm).__name__)
    flat.meta.update(gm.meta)
    return flat


def inline_forms(gm: fx.GraphModule, ctx) -> fx.GraphModule | None:
    """The flat graph (a graph pass: it re-traces the whole model), or ``None`` to keep ``gm``."""
    modules = sum(n.op == "call_module" for n in gm.graph.nodes)
    if not modules:
        return None
    ctx.record.matched += modules
    try:
        flat = inline(gm)
    except Exception as exc:  # e.g. data-dependent control flow in a user module
        ctx.record.skip(type(gm).__name__, f"cannot trace through the modules ({type(exc).__name__}: {exc})")
        return None
    ctx.record.rewritten += modules
    return flat


register_pass(inline_forms, stage="lower", name="inline_forms", when=When(formats=("executorch", "nnapi")))
