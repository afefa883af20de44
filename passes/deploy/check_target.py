"""Refuse a deploy form that runs an op its target cannot run at all (``Target.no_kernel``).

On ``mobile_cpu`` those are 5-D convolutions and 3-D pools (ExecuTorch's portable kernels take 4-D
at most). The rewrites are meant to leave none; this pass proves it on the example inputs, node by
node (ops are recorded at the ATen dispatcher, below every module and Python helper), so a layer
that could not be lowered (an opaque module, a functional ``F.conv3d``, a Conv3d subclass inside an
untraceable block) fails deploy with its name and the op, never silently.

Ops the target's fast library lacks but its runtime still runs (``NoKernel.fallback``: a 5-D
``sum`` in a user's ``if x.sum() > 0``, a 5-D mean the rewrites could not reach) do not fail
deploy: they are listed as notes, since refusing a model that runs would help nobody.
"""
from __future__ import annotations

import torch
from torch import fx

from fxaccel.aten_ops import AtenOpRecorder
from fxaccel.errors import DeployError
from fxaccel.inputs import clone_inputs
from fxaccel.pipeline import When, register_pass


class _PerNode(fx.Interpreter):
    def __init__(self, gm, target):
        super().__init__(gm)
        self.target = target
        self.bad: list[tuple[fx.Node, list]] = []

    def run_node(self, n):
        rec = AtenOpRecorder()
        with rec:
            out = super().run_node(n)
        bad = self.target.unsupported(rec.ops)
        if bad:
            self.bad.append((n, bad))
        return out

    def fatal(self, ops) -> list:
        return [(op, rank) for op, rank in ops if not self.target.no_kernel_for(op, rank).fallback]


def check_target(gm: fx.GraphModule, ctx) -> None:
    if not ctx.target.no_kernel:
        return
    interp = _PerNode(gm, ctx.target)
    with torch.no_grad():
        interp.run(*clone_inputs(ctx.example_inputs))
    ctx.record.matched = len(gm.graph.nodes)
    lines = []
    for node, ops in interp.bad:
        fatal = interp.fatal(ops)
        if not fatal:
            ctx.record.note(f"{_layer(gm, ctx, node)} runs {_ops(ops)} outside {ctx.target.name}'s fast kernels "
                            "(the runtime's portable kernels run it, slowly)")
        else:
            lines.append(f"{_layer(gm, ctx, node)} runs {_ops(fatal)}")
    if lines:
        raise DeployError(
            f"cannot deploy for {ctx.target.name!r} ({ctx.target.description}): "
            + "; ".join(lines) + ". Rewrite those layers with Conv3d/pool modules fxaccel can lower, make "
            "them traceable, or deploy for x86")


def _ops(ops) -> str:
    return ", ".join(f"{n}({r}-D)" for n, r in ops)


def _layer(gm, ctx, node) -> str:
    what = node.target if node.op in ("call_module", "call_method") else getattr(node.target, "__name__", node.target)
    mod = gm.get_submodule(node.target) if node.op == "call_module" else None
    kind = f" ({type(mod).__name__})" if mod is not None else ""
    opaque = " - an untraceable (opaque) module: fxaccel cannot see inside it" if any(
        o.path == node.target for o in _opaque(ctx)) else ""
    return f"layer {what!r}{kind}{opaque}"


def _opaque(ctx):
    prev = ctx.report.previous
    return prev.opaque if prev is not None else []


register_pass(check_target, stage="deploy", name="check_target", after="dce", when=When(root=True, inputs=True))
