"""Write ExecuTorch ``.pte`` programs with the XNNPACK delegate, report what was delegated, verify.

ExecuTorch is an optional dependency (``pip install "fxaccel[executorch]"``): it is imported
inside the functions, so ``import fxaccel`` works without it.

Why a delegation report: an op left outside the XNNPACK delegate runs on ExecuTorch's portable
kernels, which are slow (and reject 5-D convolutions outright). "It exported" says little;
"every conv, linear, mean/pool and activation is inside a delegate" is what makes a fast program.

What XNNPACK delegates (measured on executorch 1.5.1, fp32 unless noted; each fact has a test in
``tests/lowering/test_executorch.py``):

* ``conv2d`` (incl. depthwise, fp32 and int8), ``linear`` (fp32 and int8), ``relu``, ``add``:
  delegated.
* ``mean`` over ``(-1, -2)`` on a 4-D tensor: delegated **only with** ``keepdim=True``
  (XNNPACK lowers it to global average pooling). ``x.mean((-1, -2))`` without keepdim stays
  outside. Write ``x.mean((-1, -2), keepdim=True).flatten(1)`` in deploy forms.
  Any mean over a 5-D tensor, or over other dims (e.g. the time mean ``(N, T, C).mean(1)``), stays
  outside; it runs on the portable kernel correctly but slowly.
* ``avg_pool2d``: delegated when ``ceil_mode=False`` and no zero padding is counted in the
  average (``padding=0``, or ``count_include_pad=False``); ``avg_pool2d(x, 3, 1, 1)`` stays outside.
* ``hardswish`` and ``sigmoid``: delegated (fp32).
* int8 (``XNNPACKQuantizer`` + pt2e): conv, linear, add, mul, mean(keepdim), views and slices
  run quantized in the delegate; hardswish, sigmoid and avg_pool2d are not annotated by the
  quantizer, so they run in fp32 *inside the same delegate* between dequantize and quantize
  nodes: still delegated, no portable fallback.
* ``mul`` with broadcast: ``(N*T, C, H, W) * (N*T, C, 1, 1)`` (SE scale in the folded layout) and
  ``(N, T, C, H*W) * (N, 1, C, 1)`` (per-clip SE scale) are both delegated. But the per-clip
  mean producing that scale, ``(N, T, C, H*W).mean((1, 3))``, is not (XNNPACK means only over
  the two innermost dims of a 4-D tensor). Fully delegated spellings of the per-clip mean:
  per-frame ``mean((-1, -2), keepdim=True)`` -> ``reshape(N, T, C, 1)`` -> ``permute(0, 2, 1, 3)``
  -> ``mean((-1, -2), keepdim=True)`` (permutes only N*T*C values), or
  ``reshape(N, T, C, H*W).permute(0, 2, 1, 3).mean((-1, -2), keepdim=True)``.
* The entry fold ``(N, C, T, H, W) -> transpose(1, 2) -> reshape(N*T, C, H, W)``: delegated
  (``permute_copy`` and ``view_copy`` accept any rank, 5-D included). The head's
  ``reshape(N, T, C)`` view is delegated too.
* 3-D views and slices: ``view`` to 3-D, and ``slice`` with step 1 along dim 0 (the batch of
  folded frames: temporal taps as slice-adds) or dim 1 of a 4-D or 3-D tensor are delegated.
  A ``slice`` with step != 1 is not. ``torch.zeros_like`` (``full_like``) stays outside
  (a constant fill: cheap, but prefer a zero-padded conv or a constant buffer).
* ``Conv3d`` (any 5-D convolution): not delegated, and the program fails at run time (the
  portable ``convolution`` kernel accepts 3-D/4-D inputs only). ``avg_pool3d`` has no ExecuTorch
  kernel at all (the program does not load). A 5-D ``mean`` is not delegated but runs (slowly)
  on the portable kernel. :func:`to_pte` refuses the first two up front with
  :class:`~fxaccel.errors.UnsupportedOps` and points at
  ``fxaccel.deploy(..., target="mobile_cpu")``.

Stability: public (``to_pte``, ``PteArtifact``, ``load_pte``, ``delegation_report``,
``DelegationReport``, ``assert_all_compute_delegated``, ``op_kind``); experimental report format.

>>> import torch
>>> from fxaccel.lowering.executorch import to_pte, assert_all_compute_delegated
>>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
>>> art = to_pte(model, (torch.randn(1, 3, 16, 16),))       # doctest: +SKIP
>>> assert_all_compute_delegated(art.report)                 # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import gc
import logging
import weakref
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.fx.experimental.symbolic_shapes import is_concrete_int

from ..aten_ops import COMPUTE_KINDS, KINDS, base_name, macs, op_kind
from ..inputs import clone_inputs, eval_mode, map_tensors
from ..targets import TARGETS
from .checking import compare_outputs
from . import lowering_time, xnnpack_rank
from ..errors import DEPLOY_HINT, LoweringError, MissingDependency, NotDelegated, UnsupportedOps

log = logging.getLogger(__name__)

# Bookkeeping nodes that are neither compute nor data movement.
_IGNORED = {"getitem", "executorch_call_delegate", "alloc", "sym_size", "_local_scalar_dense"}
# ExecuTorch+XNNPACK is the mobile_cpu runtime: its op-legality table says what cannot run at all.
_TARGET = TARGETS["mobile_cpu"]


def _import_executorch():
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    except ImportError as exc:  # the optional extra is not installed
        raise MissingDependency("executorch", "executorch", exc) from exc
    return to_edge_transform_and_lower, XnnpackPartitioner


def _runtime():
    try:
        from executorch.runtime import Runtime
    except ImportError as exc:
        raise MissingDependency("executorch", "executorch", exc) from exc
    return Runtime.get()


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class OutsideOp:
    """One compute/data op left outside every delegate (it runs on a portable kernel)."""

    node: str
    op: str
    kind: str
    input_shape: tuple[int, ...] | None
    reason: str | None = None

    def __str__(self) -> str:
        shape = f" on {list(self.input_shape)}" if self.input_shape is not None else ""
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.node}: {self.op}{shape}{why}"


@dataclass
class DelegationReport:
    """What went inside XNNPACK delegates and what stayed outside, counted by kind.

    ``inside``/``outside``: kind -> op count. ``inside`` is empty when the delegates' original
    programs are not reachable (then only ``delegates``, the number of delegate calls, is known).
    ``outside_ops`` lists every outside op with its input shape and, when XNNPACK's partitioner
    said why, the reason. ``inside_macs``/``outside_macs``: multiply-accumulates of the conv,
    linear and matmul ops on each side (:func:`fxaccel.aten_ops.macs`), so ``mac_share`` says how
    much of the arithmetic the fast kernels run, which op counts do not.
    """

    delegates: int
    inside: dict[str, int] = field(default_factory=dict)
    outside: dict[str, int] = field(default_factory=dict)
    inside_ops: dict[str, int] = field(default_factory=dict)
    outside_ops: list[OutsideOp] = field(default_factory=list)
    inside_macs: int = 0
    outside_macs: int = 0

    @property
    def mac_share(self) -> float | None:
        """Share of conv/linear/matmul MACs inside XNNPACK delegates; ``None`` when there are none
        (or the delegates' programs are not reachable)."""
        total = self.inside_macs + self.outside_macs
        return None if total == 0 or (self.delegates and not self.inside) else self.inside_macs / total

    @property
    def compute_outside(self) -> list[OutsideOp]:
        """Outside ops of a compute kind (conv, linear, mean/pool, activation)."""
        return [o for o in self.outside_ops if o.kind in COMPUTE_KINDS]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mac_share"] = self.mac_share
        d["outside_ops"] = [dict(asdict(o), input_shape=list(o.input_shape) if o.input_shape else None)
                            for o in self.outside_ops]
        return d

    def __str__(self) -> str:
        lines = [f"{self.delegates} XNNPACK delegate call(s)"]
        lines.append("inside:  " + (", ".join(f"{k}={v}" for k, v in self.inside.items()) or "-"))
        lines.append("outside: " + (", ".join(f"{k}={v}" for k, v in self.outside.items()) or "-"))
        if self.mac_share is not None:
            lines.append(f"MACs inside delegates: {self.mac_share:.1%} of {self.inside_macs + self.outside_macs:,}")
        lines += [f"  {o}" for o in self.outside_ops]
        return "\n".join(lines)


def _op_name(node: torch.fx.Node) -> str:
    """``namespace.op.overload`` for aten/edge ops alike (an OpOverload's ``__name__`` drops the namespace)."""
    if isinstance(node.target, torch._ops.OpOverload):
        return str(node.target)
    return getattr(node.target, "__name__", str(node.target))


def _input_shape(node: torch.fx.Node) -> tuple[int, ...] | None:
    for arg in node.args:
        val = arg.meta.get("val") if isinstance(arg, torch.fx.Node) else None
        if isinstance(val, torch.Tensor):  # a data-dependent size (a mask's nonzero count) has no value
            return tuple(int(s) if is_concrete_int(s) else -1 for s in val.shape)
    return None


def _macs(node: torch.fx.Node) -> int:
    val = lambda a: a.meta.get("val") if isinstance(a, torch.fx.Node) else a  # noqa: E731
    return macs(_op_name(node), tuple(val(a) for a in node.args), node.meta.get("val"))


def _by_kind(ops: Counter) -> dict[str, int]:
    kinds: Counter = Counter()
    for op, n in ops.items():
        kinds[op_kind(op)] += n
    return {k: kinds[k] for k in KINDS if kinds[k]}


def _delegated_graph(gm: torch.fx.GraphModule, call: torch.fx.Node) -> torch.fx.GraphModule | None:
    """The edge graph a delegate call runs, from its lowered module's original program (or None)."""
    lowered = getattr(gm, call.args[0].target, None) if isinstance(call.args[0], torch.fx.Node) else None
    original = getattr(lowered, "original_module", None)
    return None if original is None else original.graph_module


def _report_from_graph(gm: torch.fx.GraphModule, reasons: dict[str, str] | None = None) -> DelegationReport:
    reasons = reasons or {}
    inside: Counter = Counter()
    outside: Counter = Counter()
    outside_ops: list[OutsideOp] = []
    delegates = 0
    inside_macs = outside_macs = 0
    reachable = True
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        name = _op_name(node)
        if name == "executorch_call_delegate":
            delegates += 1
            original = _delegated_graph(gm, node)
            if original is None:
                reachable = False
                continue
            for inner in original.graph.nodes:
                if inner.op == "call_function" and base_name(_op_name(inner)) not in _IGNORED:
                    inside[_op_name(inner)] += 1
                    inside_macs += _macs(inner)
            continue
        if base_name(name) in _IGNORED:
            continue
        outside[name] += 1
        outside_macs += _macs(node)
        outside_ops.append(OutsideOp(node.name, name, op_kind(name), _input_shape(node), reasons.get(node.name)))
    return DelegationReport(
        delegates=delegates,
        inside=_by_kind(inside) if reachable else {},
        outside=_by_kind(outside),
        inside_ops=dict(sorted(inside.items())) if reachable else {},
        outside_ops=outside_ops,
        inside_macs=inside_macs,
        outside_macs=outside_macs,
    )


def delegation_report(program: Any) -> DelegationReport:
    """Count ops inside XNNPACK delegates and outside them, by kind.

    ``program``: a :class:`PteArtifact` (its report), an ExecuTorch ``EdgeProgramManager`` (the
    result of ``to_edge_transform_and_lower``), an ``ExportedProgram`` or a ``GraphModule`` of
    edge ops. Non-delegated ops are the ``call_function`` nodes other than
    ``executorch_call_delegate`` (and ``getitem``); delegated ops are read from each lowered
    module's original program.
    """
    if isinstance(program, PteArtifact):
        return program.report
    if hasattr(program, "exported_program"):
        program = program.exported_program()
    if hasattr(program, "graph_module"):
        program = program.graph_module
    if not isinstance(program, torch.fx.GraphModule):
        raise TypeError(
            f"delegation_report expects a PteArtifact, EdgeProgramManager, ExportedProgram or "
            f"GraphModule, got {type(program).__name__}"
        )
    return _report_from_graph(program)


def assert_all_compute_delegated(report: DelegationReport | Any, kinds: Sequence[str] = COMPUTE_KINDS) -> None:
    """Raise :class:`NotDelegated` listing every op of ``kinds`` that stayed outside a delegate.

    Default kinds: conv, linear, mean/pool, activation: the ops whose portable kernels are slow.
    Data movement and elementwise ops outside a delegate cost copies, not arithmetic; check them
    with ``kinds=(..., "reshape", "elementwise")`` when you want a fully delegated program.
    """
    if not isinstance(report, DelegationReport):
        report = delegation_report(report)
    bad = [o for o in report.outside_ops if o.kind in kinds]
    if bad:
        listed = "\n  ".join(str(o) for o in bad)
        raise NotDelegated(
            f"{len(bad)} compute op(s) outside the XNNPACK delegate (they run on slow portable "
            f"kernels):\n  {listed}\nWrite them in a form XNNPACK accepts (4-D tensors; mean over "
            f"(-1, -2) with keepdim=True; avg_pool2d without counted padding); see the docstring "
            f"of fxaccel.lowering.executorch",
            [o.op for o in bad],
        )


@contextlib.contextmanager
def _why_not_partitioned() -> Iterator[dict[str, str]]:
    """Collect XNNPACK's "why not partitioned" debug messages: node name -> reason."""
    reasons: dict[str, str] = {}

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            why = record.msg
            node, reason = getattr(why, "node", None), getattr(why, "reason", None)
            if node is not None and reason:
                reasons.setdefault(str(node), str(reason).rstrip("."))

    logger = logging.getLogger("executorch.backends.xnnpack.partition")
    handler = _Collect(logging.DEBUG)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # debug chatter stays out of the user's logs
    try:
        yield reasons
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


# --------------------------------------------------------------------------- export


def _is_quantized(gm: Any) -> bool:
    graph = getattr(gm, "graph", None)
    if graph is None:
        return False
    return any(n.op == "call_function" and op_kind(_op_name(n)) == "quant" for n in graph.nodes)


def _export(model: Any, inputs: tuple) -> tuple[Any, Callable]:
    """``ExportedProgram`` and an eval-mode reference callable for ``model``."""
    from torch.export import ExportedProgram

    if isinstance(model, ExportedProgram):
        return model, model.module()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"to_pte expects an nn.Module or ExportedProgram, got {type(model).__name__}")
    with eval_mode(model), torch.no_grad():
        return torch.export.export(model, inputs), model


def _expected(reference: Callable, inputs: tuple) -> Any:
    with contextlib.ExitStack() as stack, torch.no_grad():
        if isinstance(reference, torch.nn.Module):
            stack.enter_context(eval_mode(reference))
        return reference(*clone_inputs(inputs))


def _registered_kernels() -> set[str]:
    """``namespace::op`` of every kernel the ExecuTorch runtime has (overloads dropped)."""
    names = _runtime().operator_registry.operator_names
    return {n.split(".")[0] for n in names}


def _kernel_key(op: str) -> str:
    parts = op.split(".")
    return f"{parts[0]}::{parts[1]}" if len(parts) >= 3 else op


def _refuse_unrunnable(report: DelegationReport) -> None:
    """Fail at export, not on the phone: ops outside the delegate that no kernel can run."""
    kernels = _registered_kernels()
    bad: list[tuple[OutsideOp, str]] = []
    for o in report.outside_ops:
        rule = _TARGET.no_kernel_for(base_name(o.op), _rank(o))
        if _kernel_key(o.op) not in kernels:
            bad.append((o, f"no ExecuTorch kernel for {_kernel_key(o.op)}"))
        elif rule is not None and not rule.fallback:
            bad.append((o, f"XNNPACK has no {_rank(o)}-D {o.kind}; the portable kernel rejects {_rank(o)}-D inputs"))
    if bad:
        listed = "\n  ".join(f"{o} -- {why}" for o, why in bad)
        five_d = any(_rank(o) == 5 for o, _ in bad)
        fix = DEPLOY_HINT if five_d else "rewrite these ops with ones XNNPACK delegates"
        raise UnsupportedOps(
            f"ExecuTorch cannot run {len(bad)} op(s) of this model:\n  {listed}\nFix: {fix}",
            [o.op for o, _ in bad],
        )


def _refuse_high_rank(gm: torch.fx.GraphModule) -> None:
    """XNNPACK cannot load a delegate holding a tensor of more than 6 dims: say which, at export."""
    bad = [n for call in gm.graph.nodes if call.op == "call_function" and _op_name(call) == "executorch_call_delegate"
           for n in xnnpack_rank.high_rank_nodes(_delegated_graph(gm, call))]
    if bad:
        shown = [f"{n.name}: {_op_name(n)} -> {list(n.meta['val'].shape)}" for n in bad[:10]]
        listed = "\n  ".join(shown) + (f"\n  ... ({len(bad) - 10} more)" if len(bad) > 10 else "")
        raise UnsupportedOps(
            f"XNNPACK tensors have at most {xnnpack_rank.MAX_DIMS} dims, and {len(bad)} delegated op(s) make "
            f"more:\n  {listed}\nFix: reshape to at most {xnnpack_rank.MAX_DIMS} dims (merge neighbouring dims "
            "that move together)", [_op_name(n) for n in bad])


def _rank(o: OutsideOp) -> int | None:
    return None if o.input_shape is None else len(o.input_shape)


@dataclass
class PteArtifact:
    """A written ExecuTorch program: the ``.pte`` bytes, where they were written, what was delegated.

    ``check``: how it was verified (``{"metric": "rel_err" | "sqnr_db", "value": ..., "bound": ...}``),
    ``None`` when ``verify=False``. ``edge``: the ``EdgeProgramManager``, for inspection.
    """

    buffer: bytes
    path: Path | None
    report: DelegationReport
    check: dict[str, Any] | None = None
    edge: Any = field(default=None, repr=False, compare=False)

    def __bytes__(self) -> bytes:
        return self.buffer

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "bytes": len(self.buffer),
                "report": self.report.to_dict(), "check": self.check}


def to_pte(
    model: Any,
    example_inputs: Any,
    path: str | Path | None = None,
    *,
    verify: bool = True,
    rtol: float = 1e-4,
    sqnr_floor: float | None = None,
    reference: Callable | None = None,
) -> PteArtifact:
    """Lower ``model`` to an ExecuTorch program with the XNNPACK delegate; optionally write it to ``path``.

    ``model``: an ``nn.Module`` (exported in eval mode; its flags are restored), an
    ``ExportedProgram``, or a pt2e-quantized ``GraphModule`` (``convert_pt2e``'s result).

    With ``verify`` (default) the program is loaded in the ExecuTorch runtime, run on
    ``example_inputs`` and compared with ``reference`` (default: ``model`` itself):
    fp32 programs must match within ``rtol`` relative to each output's largest magnitude
    (XNNPACK reorders sums; 1e-4 leaves room for that and nothing more); quantized programs
    must reach ``sqnr_floor`` dB (required for them: int8 rounding is not a bug, but its size is
    the caller's call). A mismatch raises :class:`ExportMismatch`.

    Raises :class:`UnsupportedOps` when the program could not run (5-D convolutions), and
    :class:`MissingDependency` when executorch is not installed.

    >>> import torch
    >>> m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    >>> art = to_pte(m, (torch.randn(1, 3, 8, 8),))     # doctest: +SKIP
    >>> art.report.outside                              # doctest: +SKIP
    {}
    """
    lower, _ = _import_executorch()  # the partitioner: xnnpack_rank.partitioner()
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    # a program takes its inputs' dim order from the example, and is run on contiguous tensors
    # (PteModule): a strided example (a transposed view) would give a program that refuses them
    inputs = map_tensors(torch.Tensor.contiguous, inputs)
    exported, own_reference = _export(model, inputs)
    quantized = _is_quantized(exported.graph_module)
    if verify and quantized and sqnr_floor is None:
        raise ValueError(
            "to_pte: the model is quantized, so its program cannot match to fp32 tolerance; pass "
            "sqnr_floor=<dB> (e.g. 25.0 against the fp32 model) or verify=False"
        )
    part = xnnpack_rank.partitioner()
    with lowering_time.faster():
        with _why_not_partitioned() as reasons:
            edge = lower(exported, transform_passes=xnnpack_rank.transform_passes(exported), partitioner=[part])
        report = _report_from_graph(edge.exported_program().graph_module, {**reasons, **part.kept_out})
        _refuse_unrunnable(report)
        _refuse_high_rank(edge.exported_program().graph_module)
        buffer = edge.to_executorch().buffer
    out_path = None
    if path is not None:
        out_path = Path(path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_bytes(buffer)
    check = None
    if verify:
        expected = _expected(reference or own_reference, inputs)
        check = _verify(buffer, expected, inputs, rtol=rtol, sqnr_floor=sqnr_floor, report=report)
    log.info("wrote ExecuTorch program (%d bytes) %s\n%s", len(buffer), out_path or "", report)
    return PteArtifact(buffer, out_path, report, check, edge)


# --------------------------------------------------------------------------- run and verify


_loaded: "weakref.WeakSet[PteModule]" = weakref.WeakSet()  # their delegates use the current pool


def set_threadpool_size(n: int) -> bool:
    """Resize ExecuTorch's threadpool to ``n`` threads if its pybindings are loaded and it differs.

    Why this wrapper: the pybindings' ``_unsafe_reset_threadpool`` replaces the pool, and an XNNPACK
    delegate keeps the pool it was initialised with, so running a method loaded before a reset uses
    a freed pool (measured: heap corruption, "corrupted double-linked list", segfaults). So reset
    only on a real change, after every loaded :class:`PteModule` released its method *and* its
    program (``executorch.runtime.Program`` caches the methods it loaded and would hand the stale
    one back); each loads both again on its next call. Returns whether the pool was replaced.
    """
    reset = getattr(_loaded_pybindings(), "_unsafe_reset_threadpool", None)
    if reset is None or threadpool_size() in (None, n):
        return False
    for module in list(_loaded):
        module._release()
    gc.collect()
    reset(n)
    return True


def threadpool_size() -> int | None:
    """ExecuTorch's threadpool size, or ``None`` when its pybindings are not loaded."""
    get = getattr(_loaded_pybindings(), "_threadpool_get_thread_count", None)
    return get() if get else None


def _loaded_pybindings():
    """ExecuTorch's pybindings module if something already loaded it (never imports it)."""
    import sys

    return sys.modules.get("executorch.extension.pybindings.portable_lib")


class PteModule:
    """A loaded ``.pte`` program's ``forward`` as a callable: ``PteModule(buf)(*tensors)``.

    Returns a tensor for a single output, else a tuple (outputs come back flattened). A threadpool
    resize (:func:`set_threadpool_size`) frees the method; the next call loads it again.
    """

    def __init__(self, program: bytes | str | Path, method: str = "forward"):
        self._source = program if isinstance(program, bytes) else Path(program)
        self._name = method
        self._load()
        _loaded.add(self)

    def _load(self) -> None:
        self._program = _runtime().load_program(self._source)
        self._method = self._program.load_method(self._name)
        if self._method is None:
            raise LoweringError(f"program has no method {self._name!r}; it has {sorted(self._program.method_names)}")

    def _release(self) -> None:
        """Free the method with its delegates; the program too, since it caches every method it loaded."""
        self._method = self._program = None

    def __call__(self, *inputs: torch.Tensor) -> Any:
        if self._method is None:
            self._load()
        # a program's inputs are the call's leaves, flattened as torch.export flattened them
        leaves = torch.utils._pytree.tree_leaves(inputs)
        outs = self._method.execute([x.contiguous() if isinstance(x, torch.Tensor) else x for x in leaves])
        return outs[0] if len(outs) == 1 else tuple(outs)


def load_pte(program: bytes | str | Path, method: str = "forward") -> PteModule:
    """Load a ``.pte`` (bytes or a path) in the ExecuTorch runtime; returns a callable."""
    return PteModule(program, method)


def _verify(buffer: bytes, expected: Any, inputs: tuple, *, rtol: float, sqnr_floor: float | None,
            report: DelegationReport) -> dict[str, Any]:
    try:
        got = load_pte(buffer)(*inputs)
    except RuntimeError as exc:
        outside = "\n  ".join(str(o) for o in report.outside_ops) or "(none)"
        raise LoweringError(
            f"the ExecuTorch runtime failed to run the program ({exc}). Ops outside the XNNPACK "
            f"delegate (run by portable kernels):\n  {outside}\nIf one is a 5-D op: {DEPLOY_HINT}"
        ) from exc
    return compare_outputs(expected, got, inputs, rtol=rtol, sqnr_floor=sqnr_floor, what="ExecuTorch program")
