"""Conv / Linear followed by ReLU -> one fused module (``torch.ao.nn.intrinsic.ConvReLU3d`` & co.).

Only when the ReLU is the conv's single user (the raw output is needed otherwise). The fused
modules are what quantization and oneDNN graph fusion look for; the ReLU runs in place on the
fresh conv output (exact: nothing else reads it), saving a pass over memory.
"""
from __future__ import annotations

import copy

from torch import fx, nn
from torch.ao.nn import intrinsic as nni

from fxaccel.pipeline import register_pass

from ._common import is_relu, single_user, swap_module_call

_FUSED = {nn.Conv1d: nni.ConvReLU1d, nn.Conv2d: nni.ConvReLU2d, nn.Conv3d: nni.ConvReLU3d, nn.Linear: nni.LinearReLU}


def fuse_relu(gm: fx.GraphModule, ctx) -> None:
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or type(gm.get_submodule(node.target)) not in _FUSED:
            continue
        relu = single_user(node)
        if relu is None or not is_relu(relu, gm):
            continue
        ctx.record.matched += 1
        if len(node.args) != 1 or node.kwargs:
            ctx.record.skip(str(node.target), "called with extra arguments")
            continue
        layer = copy.deepcopy(gm.get_submodule(node.target))
        swap_module_call(gm, relu, _FUSED[type(layer)](layer, nn.ReLU(inplace=True)), f"{node.target}_relu",
                         tuple(node.args), also_erase=(node,))
        ctx.record.rewritten += 1
    gm.delete_all_unused_submodules()
    gm.recompile()


register_pass(fuse_relu, stage="deploy", name="fuse_relu", after="lower_convs")
