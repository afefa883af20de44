"""Lowering work that cannot change the ``.pte`` is not done.

Why: exporting X3D-XS's 946-node deploy graph took ~30 s here with ExecuTorch 1.5.1 as it is,
most of it re-tracing a program that came out the same. :func:`faster` (what ``to_pte`` runs
under) removes three such costs; ``tests/lowering/test_lowering_time.py`` checks that programs
are byte-identical with and without each, on graphs where the work is needed and where it is not.

* **Idle passes.** ExecuTorch re-traces the whole program in every pass: the aten-to-edge passes
  once each (~0.4 s apiece on X3D-XS), the 17 XNNPACK delegate passes once each plus a
  re-verification (~1 s apiece), and the two XNNPACK pattern passes (bilinear upsample,
  attention) first build their pattern graphs with ``to_edge`` (seconds, once per process). Most
  rewrite ops a video CNN's deploy form never has. A pass in :data:`LIVE_WHEN` is skipped when
  the ops it rewrites are absent from the graph it is about to see (checked just before it runs,
  so ops an earlier pass makes count); it then says ``modified=False``, as it would have.
* **Node-by-node decomposition decisions** (:func:`decide_up_front`). For a partitioner that
  filters the ops it keeps whole (XNNPACK keeps ``aten.linear`` whole only where its weight is
  static, etc.), ExecuTorch re-traces twice more to decide node by node (its
  ``EDGE_DO_NOT_DECOMP`` path), ~2.4 s on X3D-XS. When every node of every such op passes the
  filter there is nothing to decide, and ExecuTorch takes its one-pass path.
* **Provenance copies** (:func:`shared_node_sources`). Every pass gives each new node a
  ``NodeSource`` whose ``from_node`` is a *deep copy* of the old node's provenance chain
  (torch 2.13), and the chain grows one level per pass: quadratic in the number of passes, 2.9
  million ``deepcopy`` calls on X3D-XS. A ``NodeSource`` is never changed once built (passes make
  new lists of them), so sharing it is the same as copying it; ExecuTorch only reads the chains
  (debug handles).

Stability: internal.
"""
from __future__ import annotations

import operator
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator

import torch
from torch import fx

OpsToKeep = tuple[list, "Callable[[fx.Node], bool] | None"]


def _name(node: fx.Node) -> str:
    return getattr(node.target, "__name__", str(node.target))


def _calls(graph: fx.Graph) -> Iterator[fx.Node]:
    return (n for n in graph.nodes if n.op == "call_function")


def _has(*fragments: str) -> Callable[[fx.Graph], bool]:
    """Live when every fragment occurs in some op name of the graph (edge op names: ``aten.cat.default``)."""
    def live(graph: fx.Graph) -> bool:
        names = {_name(n) for n in _calls(graph)}
        return all(any(f in name for name in names) for f in fragments)
    return live


def _targets(*ops) -> Callable[[fx.Graph], bool]:
    """Live when some node calls one of ``ops`` (exactly)."""
    wanted = set(ops)
    return lambda graph: any(n.target in wanted for n in _calls(graph))


def _val(node) -> object:
    return node.meta.get("val") if isinstance(node, fx.Node) else None


def _rank(node) -> int | None:
    return getattr(_val(node), "ndim", None)


def _conv1d_or_batch_norm(graph: fx.Graph) -> bool:
    """Conv1dUnsqueezePass rewrites 1-D convolutions; DecomposeBatchNorm, earlier, can make one."""
    for n in _calls(graph):
        name = _name(n)
        if "batch_norm" in name or ("convolution" in name and _rank(n.args[0]) == 3):
            return True
    return False


def _getitem(graph: fx.Graph) -> bool:
    return any(n.target is operator.getitem for n in _calls(graph))


def _custom_meta(graph: fx.Graph) -> bool:
    return any("custom" in n.meta for n in graph.nodes)


def _symbolic(graph: fx.Graph) -> bool:
    """SymToTensorPass wraps SymInt/SymFloat/SymBool values; a static-shape graph has none."""
    return any(isinstance(_val(n), (torch.SymInt, torch.SymFloat, torch.SymBool)) for n in graph.nodes)


def _scalar_for_tensor(graph: fx.Graph) -> bool:
    """ScalarToTensorPass turns a Python number passed where the schema wants a Tensor into one."""
    for n in _calls(graph):
        schema = getattr(n.target, "_schema", None)
        if schema is None:
            continue
        for i, arg in enumerate(schema.arguments):
            value = n.kwargs[arg.name] if arg.name in n.kwargs else (
                n.args[i] if not arg.kwarg_only and i < len(n.args) else None)
            if isinstance(value, (bool, int, float)) and isinstance(arg.type, torch.TensorType):
                return True
    return False


def _view_op(graph: fx.Graph) -> bool:
    """ReplaceBrokenOpsWithFunctionalOpsPass swaps view ops for their ``_copy`` variants."""
    return any(getattr(n.target, "is_view", False) for n in _calls(graph))


_PROMOTING = ("add.Tensor", "mul.Tensor", "sub.Tensor", "div.Tensor", "div.Tensor_mode", "minimum.default")


def _mixed_types(graph: fx.Graph) -> bool:
    """RemoveMixedTypeOperators casts the inputs of these binary ops to their promoted dtype; it has
    nothing to do when every input is a tensor of one dtype (anything else counts as work)."""
    for n in _calls(graph):
        if not str(n.target).endswith(_PROMOTING) or len(n.args) <= 1:
            continue
        dtypes = {getattr(_val(a), "dtype", None) for a in n.args}
        if len(dtypes) != 1 or None in dtypes or n.kwargs:
            return True
    return False


def _dim_order_map(graph: fx.Graph) -> bool:
    from executorch.exir.passes.dim_order_ops_registry import DimOrderOpsMap

    return any(n.target in DimOrderOpsMap for n in _calls(graph))


def _portable_layout_op(graph: fx.Graph) -> bool:
    from executorch.exir.passes.legalize_portable_dim_order_pass import LegalizePortableDimOrderPass

    return _targets(*LegalizePortableDimOrderPass._target_ops)(graph)


def _constant_inputs_only(graph: fx.Graph) -> bool:
    """ConstPropPass folds a call whose inputs are all real tensors: in a lifted program those are
    ``get_attr`` constants (parameters and buffers are placeholders), or no tensor at all."""
    return any(all(a.op == "get_attr" for a in n.all_input_nodes) for n in _calls(graph))


# pass class name -> is there work for it in this graph (by the ops its ``call`` looks for)
LIVE_WHEN: dict[str, Callable[[fx.Graph], bool]] = {
    # XNNPACK delegate passes
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
    "ConstPropPass": _constant_inputs_only,
    # aten-to-edge passes (aten op targets) and edge-to-executorch passes
    "NormalizeTransposePass": _targets(torch.ops.aten.t.default),
    "ReplaceBrokenOpsWithFunctionalOpsPass": _view_op,
    "ScalarToTensorPass": _scalar_for_tensor,
    "SymToTensorPass": _symbolic,
    "RemoveMixedTypeOperators": _mixed_types,
    "MemoryFormatOpsPass": _dim_order_map,
    "LegalizePortableDimOrderPass": _portable_layout_op,
}


def pass_classes() -> dict[str, type]:
    """The ExecuTorch pass classes named in :data:`LIVE_WHEN` (a name ExecuTorch no longer has is left out)."""
    from executorch.backends.xnnpack import _passes as xnnpack
    from executorch.exir import passes as exir
    from executorch.exir.passes import remove_mixed_type_operators

    found = {name: obj for module in (xnnpack, exir, remove_mixed_type_operators)
             for name, obj in vars(module).items() if isinstance(obj, type)}
    return {name: found[name] for name in LIVE_WHEN if name in found}


@contextmanager
def skip_idle_passes() -> Iterator[None]:
    """While active, each pass of :data:`LIVE_WHEN` skips a graph it has no work in (see module doc)."""
    from torch.fx.passes.infra.pass_base import PassResult

    classes = pass_classes()
    originals = {cls: (cls.__dict__.get("call"), cls.call) for cls in classes.values()}  # before any patch

    def guarded(name: str, run: Callable) -> Callable:
        def call(self, graph_module: fx.GraphModule):
            if LIVE_WHEN[name](graph_module.graph):
                return run(self, graph_module)
            return PassResult(graph_module, False)
        return call

    for name, cls in classes.items():
        cls.call = guarded(name, originals[cls][1])
    try:
        yield
    finally:
        for cls, (own, _) in originals.items():
            if own is None:
                del cls.call
            else:
                cls.call = own


def decide_up_front(ops_and_filter: OpsToKeep, graph: fx.Graph) -> OpsToKeep:
    """A partitioner's ``ops_to_not_decompose`` answer without its node filter when the filter
    would keep every node of those ops in ``graph`` anyway (then nothing is left to decide later);
    unchanged when some node fails it."""
    ops, keeps = ops_and_filter
    if keeps is None:
        return ops_and_filter
    wanted = set(ops)
    if all(keeps(n) for n in _calls(graph) if n.target in wanted):
        return ops, None
    return ops_and_filter


_MISSING = object()


@contextmanager
def shared_node_sources() -> Iterator[None]:
    """While active, ``copy.deepcopy`` of a ``NodeSource`` returns the same record (see module doc)."""
    from torch.fx.traceback import NodeSource

    saved = NodeSource.__dict__.get("__deepcopy__", _MISSING)
    NodeSource.__deepcopy__ = lambda self, memo: self
    try:
        yield
    finally:
        if saved is _MISSING:
            del NodeSource.__deepcopy__
        else:
            NodeSource.__deepcopy__ = saved


@contextmanager
def faster() -> Iterator[None]:
    """Idle passes skipped and provenance shared (decide_up_front is the partitioner's own)."""
    with ExitStack() as stack:
        stack.enter_context(skip_idle_passes())
        stack.enter_context(shared_node_sources())
        yield
