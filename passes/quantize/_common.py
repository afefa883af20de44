"""Shared helpers of the eager-mode quantize passes: node scopes, naming, skip matching.

The eager passes run on a *flat* GraphModule (``fxaccel.quantize`` re-traces the deploy model down
to ``torch.nn`` leaves), so every functional op of every deploy form is a node they can see.
"""
from __future__ import annotations

from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata

from fxaccel.pipeline import When

EAGER = When(flows=("eager",))
"""Where every quantize pass applies: the eager-mode backends (qnnpack, x86); pt2e has its own quantizer."""


def scope_of(node: fx.Node) -> str:
    """Qualified name of the innermost module ``node`` was traced in ("" at the root)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    return str(list(stack.values())[-1][0])


def is_tensor(node) -> bool:
    """Whether ``node`` produces a tensor (per the ``tensor_meta`` ShapeProp recorded)."""
    return isinstance(node, fx.Node) and isinstance(node.meta.get("tensor_meta"), TensorMetadata)


def add_module_near(gm: fx.GraphModule, node: fx.Node, module: nn.Module, hint: str) -> str:
    """Add ``module`` under the scope ``node`` was traced in, with a fresh name; return its path.

    Keeping inserted modules under their block's path makes ``skip=["blocks.3"]`` reach them and
    makes report names say where they are.
    """
    scope = scope_of(node)
    if node.op == "call_module" and scope == node.target:  # the module itself: use its parent
        scope = scope.rpartition(".")[0]
    while scope and not _resolves(gm, scope):  # a module a pass removed (a respelled nn.SiLU)
        scope = scope.rpartition(".")[0]
    parent = gm.get_submodule(scope) if scope else gm
    name, i = hint, 1
    while hasattr(parent, name):
        name, i = f"{hint}_{i}", i + 1
    path = f"{scope}.{name}" if scope else name
    gm.add_submodule(path, module)
    return path


def _resolves(gm: nn.Module, path: str) -> bool:
    try:
        gm.get_submodule(path)
    except AttributeError:
        return False
    return True


def set_submodule(gm: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at dotted ``path`` by ``module``."""
    parent, _, leaf = path.rpartition(".")
    setattr(gm.get_submodule(parent) if parent else gm, leaf, module)


def is_skipped(name: str, skip) -> bool:
    """``name`` is in ``skip`` or inside a module named there (``"blocks.3"`` covers ``"blocks.3.conv"``)."""
    return any(name == s or name.startswith(s + ".") for s in skip)


def one_user(node: fx.Node, gm: fx.GraphModule) -> bool:
    """``node``'s value is read once (by the node above it in a pattern): it may fuse into it."""
    return len(node.users) == 1


def finish(gm: fx.GraphModule) -> None:
    """Clean up after a graph edit: lint, drop unused submodules, regenerate code."""
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
