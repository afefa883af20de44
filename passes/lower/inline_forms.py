"""Trace through the deploy-form modules so the lower fixes see every op (ExecuTorch, LiteRT, NNAPI).

A deploy graph calls its blocks as ``call_module`` nodes; the ops a backend refuses (a 3-D mean,
a ``view``, a ``hardswish``) sit inside them. Tracing through every module (parameters become
``get_attr`` nodes of the same tensors) gives one flat graph of functional ops with the same
numerics. A submodule that cannot be traced through (or whose traced code fails on the example
inputs) stays a call, with the reason noted; if the root itself cannot, the graph is kept as it is:
the later fixes then act on what they can see.
"""
from __future__ import annotations

import torch
from torch import fx, nn

from fxaccel.pipeline import When, register_pass
from fxaccel.tracing import FailureTracer, first_failure, traced_through


class _ThroughTracer(FailureTracer):
    """Leaves are modules without a Python forward to trace (scripted ones) and ``leaves``: torch.nn
    modules are traced through too."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, torch.jit.ScriptModule) or qualname in self.leaves


def inline(gm: fx.GraphModule, example_inputs: tuple | None = None, kept: list | None = None) -> fx.GraphModule:
    """A flat GraphModule computing ``gm`` with every submodule inlined where that works.

    A submodule stays a call (``(path, why)`` appended to ``kept``) when tracing through it fails, or, given
    ``example_inputs``, when the flat graph fails inside it on them: Swin3D's window attention hands
    a list to a wrapped function that writes into it, and the traced graph holds that list frozen.
    """
    leaves: set[str] = set()
    while True:
        tracer = _ThroughTracer(leaves)
        try:
            flat = fx.GraphModule(gm, tracer.trace(gm), class_name=type(gm).__name__)
        except Exception as exc:
            if not tracer.failed or tracer.failed in leaves:
                raise
            bad, why = tracer.failed, f"tracing through it fails ({type(exc).__name__})"
        else:
            failure = None if example_inputs is None else first_failure(flat, example_inputs)
            if failure is None:
                flat.meta.update(gm.meta)
                return flat
            node, err = failure
            bad = traced_through(node)
            if not bad or bad in leaves:
                raise err
            why = f"its traced code fails on the example inputs ({type(err).__name__}: {str(err)[:80]})"
        leaves.add(bad)
        if kept is not None:
            kept.append((bad, why))


def inline_forms(gm: fx.GraphModule, ctx) -> fx.GraphModule | None:
    """The flat graph (a graph pass: it re-traces the whole model), or ``None`` to keep ``gm``."""
    modules = sum(n.op == "call_module" for n in gm.graph.nodes)
    if not modules:
        return None
    ctx.record.matched += modules
    kept: list[tuple[str, str]] = []
    try:
        flat = inline(gm, ctx.example_inputs, kept)
    except Exception as exc:  # e.g. data-dependent control flow in the root's own code
        ctx.record.skip(type(gm).__name__, f"cannot trace through the modules ({type(exc).__name__}: {exc})")
        return None
    for path, why in kept:
        ctx.record.skip(path, f"kept as a call: {why}")
    ctx.record.rewritten += modules
    return flat


register_pass(inline_forms, stage="lower", name="inline_forms", when=When(formats=("executorch", "litert", "nnapi")))
