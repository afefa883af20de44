"""Dead-code elimination that keeps side effects.

FX's own ``eliminate_dead_code`` treats method calls as pure, so it would delete ``y.mul_(2)``
whose result nobody reads but whose effect everybody does. Every fxaccel pass uses this one.
"""
from __future__ import annotations

from torch import fx


def mutates(node: fx.Node) -> bool:
    """Whether a call may write into its arguments (in-place method / function, ``inplace=True``)."""
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if node.kwargs.get("inplace", False) or (name.endswith("_") and not name.endswith("__")):
        return True
    return name.startswith("__i") or name in ("iadd", "isub", "imul", "itruediv", "copy_")


# Modules whose functions are pure unless `mutates` says otherwise (the `_` suffix convention).
_PURE_ORIGINS = ("torch", "operator", "_operator", "builtins", "math", "fxaccel")


def _foreign(origin: str | None) -> bool:
    return not origin or origin.split(".")[0] not in _PURE_ORIGINS


def is_impure(node: fx.Node) -> bool:
    """FX's purity check, plus what it misses: in-place methods (``y.mul_(2)``, whose result nobody
    reads but whose effect everybody does), in-place functions, in-place modules, and user code
    fxaccel cannot see into: opaque modules and ``torch.fx.wrap``-ed functions may write into their
    arguments (torchvision's MViT adds its shortcut in place inside a wrapped function whose result
    nobody reads)."""
    if node.is_impure() or (node.op in ("call_method", "call_function") and mutates(node)):
        return True
    if node.op == "call_function":
        return _foreign(getattr(node.target, "__module__", None))
    if node.op == "call_module":
        mod = node.graph.owning_module.get_submodule(node.target)
        if getattr(mod, "inplace", False):
            return True
        return _foreign(type(mod).__module__) and not isinstance(mod, fx.GraphModule)
    return False


def eliminate_dead_code(gm: fx.GraphModule) -> None:
    """Dead-code elimination that keeps side effects (see :func:`is_impure`)."""
    gm.graph.eliminate_dead_code(is_impure_node=is_impure)
