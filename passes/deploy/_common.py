"""Helpers shared by the deploy passes: module swaps, op counts, stand-in inputs."""
from __future__ import annotations

import operator
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn

from fxaccel.rules import unique_name

# Eval-mode no-ops: deploy always has eval semantics, where these return their input.
DROPOUT_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                   nn.FeatureAlphaDropout)
DROPOUT_FNS = (F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout,
               F.feature_alpha_dropout, torch.dropout)




def install(gm: fx.GraphModule, module: nn.Module, hint: str) -> str:
    """Add ``module`` to ``gm`` under a fresh name derived from ``hint``; return the name."""
    name = unique_name(gm, hint)
    gm.add_submodule(name, module)
    return name


def swap_module_call(gm: fx.GraphModule, node: fx.Node, module: nn.Module, hint: str,
                     args: tuple | None = None, also_erase: Sequence[fx.Node] = ()) -> fx.Node:
    """Replace ``node`` by a call of ``module`` (a new submodule) on ``args`` (default: its args).

    ``also_erase``: nodes of a chain ending at ``node`` that the new call replaces too (a conv
    whose BN or ReLU was folded in); they must have no other users.
    """
    name = install(gm, module, hint)
    with gm.graph.inserting_after(node):
        new = gm.graph.call_module(name, tuple(node.args) if args is None else args)
    new.meta.update(node.meta)
    node.replace_all_uses_with(new)
    gm.graph.erase_node(node)
    for dead in also_erase:
        gm.graph.erase_node(dead)
    return new


def wrap_input(gm: fx.GraphModule, node: fx.Node, module: nn.Module, hint: str) -> fx.Node:
    """Route every user of placeholder ``node`` through a call of ``module`` (a new submodule)."""
    users = list(node.users)
    name = install(gm, module, hint)
    with gm.graph.inserting_after(node):
        new = gm.graph.call_module(name, (node,))
    new.meta.update(node.meta)
    for user in users:
        user.replace_input_with(node, new)
    return new


def count_aten_ops(module: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """How many ATen ops one call of ``module`` runs (the report's op count before/after)."""
    from fxaccel.aten_ops import record_aten_ops

    with torch.no_grad():
        return sum(record_aten_ops(module, *inputs).values())


def example_for(shape: Sequence[int], dtype=torch.float32) -> torch.Tensor:
    """A deterministic stand-in input of ``shape`` for op counts and timings (values don't matter)."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn(tuple(shape), generator=gen, dtype=dtype)


BINARY_FNS = (operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul,
              torch.sub, torch.div)
