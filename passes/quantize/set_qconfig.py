"""Give the backend's qconfig to exactly the modules that run int8, and ``None`` to the rest.

Eager ``prepare`` observes and ``convert`` swaps every module that has a qconfig; the root and all
other modules must have none, or a conv inside a float island (``skip=``) would become int8 and
receive an fp32 tensor. So the qconfig goes only on call_module nodes ``quant_stubs`` marked
``int8`` or ``stub``; their children (a wrapper's ``FloatFunctional``, a fused module's parts)
inherit it. ``ctx.options.qconfig`` is set by ``fxaccel.quantize`` for the chosen backend.
"""
from __future__ import annotations

from torch import fx

from fxaccel.pipeline import PassContext, register_pass

from ._common import EAGER


def set_qconfig(gm: fx.GraphModule, ctx: PassContext) -> None:
    """Set ``module.qconfig`` on int8 modules and stubs; clear it everywhere else."""
    qconfig = ctx.options.qconfig
    if qconfig is None:
        raise ValueError("set_qconfig needs ctx.options.qconfig (fxaccel.quantize sets it per backend)")
    for module in gm.modules():
        module.qconfig = None
    for node in gm.graph.nodes:
        if node.op == "call_module" and node.meta.get("fxaccel_quant") in ("int8", "stub"):
            ctx.record.matched += 1
            mod = gm.get_submodule(node.target)
            for sub in mod.modules():
                sub.qconfig = qconfig
            ctx.record.rewritten += 1


register_pass(set_qconfig, stage="quantize", name="set_qconfig", after="quant_stubs", when=EAGER)
