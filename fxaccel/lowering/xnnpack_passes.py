"""XNNPACK delegate passes that cannot change a graph are not run on it.

Why: ExecuTorch 1.5.1 runs the same 17 passes on every XNNPACK partition, and each reports the
graph as modified, so each is followed by a full re-trace and verification of the program. On
X3D-XS's 946-node deploy graph that is about 1 s per pass, and the two pattern passes (bilinear
upsample, attention) first build their pattern graphs with ``to_edge`` (several seconds, once per
process). Most of them rewrite ops a video CNN's deploy form never has.

A pass is skipped only when the ops it rewrites are absent from the graph it is about to see (the
check runs just before the pass, so ops an earlier pass makes count): then it would return the
same graph, and it now says so (``modified=False``), which lets ExecuTorch keep the program as it
is. ``tests/lowering/test_xnnpack_passes.py`` checks that programs are byte-identical with and
without this, on graphs where each guarded pass has work and where it has none.

Stability: internal.
"""
from __future__ import annotations

import operator
from contextlib import contextmanager
from typing import Callable, Iterator

from torch import fx


def _name(node: fx.Node) -> str:
    return getattr(node.target, "__name__", str(node.target))


def _names(graph: fx.Graph) -> set[str]:
    return {_name(n) for n in graph.nodes if n.op == "call_function"}


def _has(*fragments: str) -> Callable[[fx.Graph], bool]:
    """Live when every fragment occurs in some op name of the graph."""
    def live(graph: fx.Graph) -> bool:
        names = _names(graph)
        return all(any(f in name for name in names) for f in fragments)
    return live


def _rank(node) -> int | None:
    val = node.meta.get("val") if isinstance(node, fx.Node) else None
    return getattr(val, "ndim", None)


def _conv1d_or_batch_norm(graph: fx.Graph) -> bool:
    """Conv1dUnsqueezePass rewrites 1-D convolutions; DecomposeBatchNorm, earlier, can make one."""
    for n in graph.nodes:
        if n.op != "call_function":
            continue
        name = _name(n)
        if "batch_norm" in name or ("convolution" in name and _rank(n.args[0]) == 3):
            return True
    return False


def _getitem(graph: fx.Graph) -> bool:
    return any(n.op == "call_function" and n.target is operator.getitem for n in graph.nodes)


def _custom_meta(graph: fx.Graph) -> bool:
    return any("custom" in n.meta for n in graph.nodes)


# pass class name -> is there work for it in this graph (by the ops its ``call`` looks for)
LIVE_WHEN: dict[str, Callable[[fx.Graph], bool]] = {
    "DimOrderOpsRevertPass": _has("dim_order"),
    "ConvertToUpsampleBilinear2d": _has("upsample_bilinear2d"),  # in each of its 4 patterns
    "ConvertToSDPAPass": _has("_softmax", "bmm"),  # both in each of its 2 patterns
    "PropagateCustomMetaPass": _custom_meta,
    "FuseBatchNormPass": _has("batch_norm"),
    "DecomposeBatchNorm": _has("batch_norm"),
    "DecomposeConcatenate": _has("aten.cat"),
    "RemoveGetItemPass": _getitem,
    "Conv1dUnsqueezePass": _conv1d_or_batch_norm,
    "PReLUReshapePass": _has("prelu"),
}


def _guarded(pass_cls: type) -> type:
    live = LIVE_WHEN[pass_cls.__name__]

    def call(self, graph_module: fx.GraphModule):
        if live(graph_module.graph):
            return pass_cls.call(self, graph_module)
        from torch.fx.passes.infra.pass_base import PassResult

        return PassResult(graph_module, False)

    return type(pass_cls.__name__, (pass_cls,), {"call": call, "__doc__": pass_cls.__doc__})


@contextmanager
def live_passes_only() -> Iterator[None]:
    """While active, XNNPACK's pass manager skips each guarded pass that has no work (see module doc)."""
    from executorch.backends.xnnpack._passes import XNNPACKPassManager

    original = XNNPACKPassManager.transform

    def transform(self):
        self.passes = [_guarded(p) if p.__name__ in LIVE_WHEN else p for p in self.passes]
        return original(self)

    XNNPACKPassManager.transform = transform
    try:
        yield
    finally:
        XNNPACKPassManager.transform = original
