"""Helpers shared by the transmute rules: canonical activations, module swaps, block placement."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import fx, nn

from fxaccel.rules import unique_name

# canonical activation call (after passes/canonicalize) -> activation block name
ACTIVATIONS = {torch.relu: "relu", F.silu: "swish", F.hardswish: "hardswish"}



def swap_in(gm: fx.GraphModule, consumed: list[fx.Node], last: fx.Node, path: str, block: nn.Module,
            args: tuple) -> fx.Node:
    """Install ``block`` at module path ``path``; one call to it replaces the ``consumed`` nodes.

    The call goes before the earliest consumed node, takes over ``last``'s users and meta, and the
    consumed nodes are erased (the rules check that nothing else reads them). The block usually
    takes the path of the module it grew from (a conv's ``blocks.0.conv_a``), so the transmuted
    model reads like the user's.
    """
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    consumed = sorted(set(consumed), key=order.__getitem__)
    gm.add_submodule(path, block)
    with gm.graph.inserting_before(consumed[0]):
        new = gm.graph.call_module(path, args)
    new.meta.update(last.meta)
    last.replace_all_uses_with(new)
    for node in reversed(consumed):
        gm.graph.erase_node(node)
    return new


def block_path(gm: fx.GraphModule, consumed: list[fx.Node], hint: str) -> str:
    """Where a block that replaces ``consumed`` nodes lives in the module tree.

    When the consumed modules share a parent module (the user's ``Bottleneck``, ``SE``) and no
    other node calls anything under that parent, the block takes the parent's place, so names
    read like the user's (``layer1.0.conv_a.conv.weight``). Otherwise it becomes a new child
    ``hint`` of the common parent (or of the root).
    """
    # parameter-free modules (activations we created at the root) do not say where a block lives
    paths = [n.target for n in consumed if n.op == "call_module"
             and next(iter(gm.get_submodule(n.target).parameters()), None) is not None]
    parts = [p.split(".")[:-1] for p in paths]
    common: list[str] = []
    for level in zip(*parts) if parts else ():
        if len(set(level)) != 1:
            break
        common.append(level[0])
    parent = ".".join(common)
    ids = {id(n) for n in consumed}
    if parent:
        others = [n for n in gm.graph.nodes if n.op in ("call_module", "get_attr") and id(n) not in ids
                  and (n.target == parent or str(n.target).startswith(parent + "."))]
        if not others:
            return parent
    owner = gm.get_submodule(parent) if parent else gm
    return (parent + "." if parent else "") + unique_name(owner, hint)
