"""Write LiteRT (TFLite) ``.tflite`` flatbuffers with litert-torch, report their ops, verify them.

LiteRT is the runtime most Android apps ship, and Google's converter cannot take a vanilla video
model: litert-torch 0.10.0 crashes (SIGSEGV) on a depthwise ``Conv3d`` with spatial stride, and
without stride it needs the Flex (TF Select) ``Conv3D`` kernel, which the LiteRT runtime does not
have. fxaccel's ``mobile_cpu`` deploy form has no 5-D op, so it converts to builtin ops only
(``CONV_2D``, ``DEPTHWISE_CONV_2D``, ``FULLY_CONNECTED``, ``MEAN``, ...), which LiteRT's default
XNNPACK delegate runs.

Both packages are optional (``pip install "fxaccel[litert]"``: ``litert-torch`` converts,
``ai-edge-litert`` runs) and are imported inside the functions.

* fp32: ``to_tflite(deploy_model, x)``; the ``lower`` stage's XNNPACK spellings apply as for a
  ``.pte`` (``fxaccel.export`` runs them).
* int8: a model from ``fxaccel.quantize(..., backend="litert")`` (litert-torch's pt2e quantizer,
  weight Q/DQ pairs left unfolded); the converter is told which quantizer annotated it, and makes
  int8 ``CONV_2D`` etc. Its graph input and output become int8 tensors (the first and last
  Q/DQ pair fold into them): :class:`TfliteModule` quantizes float inputs and dequantizes outputs
  with the tensors' own scale and zero point, as an app would.

The report (:class:`TfliteReport`) lists the flatbuffer's ops, which are not builtin (custom or
Flex ops: the stock runtime cannot run them) and which nodes LiteRT's XNNPACK delegate did not
take at load time (they run on LiteRT's reference kernels).

Stability: public (``to_tflite``, ``TfliteArtifact``, ``TfliteReport``, ``tflite_report``,
``load_tflite``); experimental report format.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import LoweringError, MissingDependency
from ..inputs import clone_inputs, eval_mode, input_tensors
from ..provenance import provenance_of
from .checking import compare_outputs

log = logging.getLogger(__name__)


def _litert_torch():
    try:
        import litert_torch
    except ImportError as exc:
        raise MissingDependency("litert-torch", "litert", exc) from exc
    return litert_torch


def _interpreter(model: bytes, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise MissingDependency("ai-edge-litert", "litert", exc) from exc
    it = Interpreter(model_content=model, num_threads=threads)  # XNNPACK delegate: LiteRT's default
    it.allocate_tensors()
    return it


# --------------------------------------------------------------------------- report


@dataclass
class TfliteReport:
    """What a ``.tflite`` holds and what LiteRT's XNNPACK delegate took of it.

    ``ops``: builtin op name -> count in the flatbuffer (custom ops by their custom name).
    ``custom``: the ops that are not builtin (``Flex...`` or custom): the stock runtime has no kernel
    for them. ``delegates``: XNNPACK partitions at load; ``outside``: op -> nodes left to LiteRT's
    own kernels. ``inputs``/``outputs``: the tensors' dtypes (int8 for a fully quantized model).
    """

    ops: dict[str, int]
    custom: dict[str, int] = field(default_factory=dict)
    delegates: int = 0
    outside: dict[str, int] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def all_builtin(self) -> bool:
        return not self.custom

    @property
    def fully_delegated(self) -> bool:
        return self.delegates > 0 and not self.outside

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self), all_builtin=self.all_builtin, fully_delegated=self.fully_delegated)

    def __str__(self) -> str:
        total = sum(self.ops.values())
        lines = [f"{total} op(s), {'all builtin' if self.all_builtin else 'NOT all builtin'}: "
                 + ", ".join(f"{k}={v}" for k, v in sorted(self.ops.items(), key=lambda kv: -kv[1]))]
        if self.custom:
            lines.append("non-builtin (no kernel in the stock runtime): "
                         + ", ".join(f"{k}={v}" for k, v in self.custom.items()))
        lines.append(f"{self.delegates} XNNPACK delegate partition(s); outside: "
                     + (", ".join(f"{k}={v}" for k, v in self.outside.items()) or "-"))
        lines.append(f"inputs {self.inputs}, outputs {self.outputs}")
        return "\n".join(lines)


def _flatbuffer_ops(buffer: bytes) -> tuple[Counter, Counter]:
    """(op -> count, non-builtin op -> count) over every subgraph of the flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(buffer, 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # the schema keeps both fields
        custom = code.CustomCode()
        codes.append(custom.decode() if builtin == schema.BuiltinOperator.CUSTOM and custom else names[builtin])
    ops: Counter = Counter()
    custom_ops: Counter = Counter()
    for g in range(model.SubgraphsLength()):
        sub = model.Subgraphs(g)
        for j in range(sub.OperatorsLength()):
            name = codes[sub.Operators(j).OpcodeIndex()]
            ops[name] += 1
            if name not in names.values():
                custom_ops[name] += 1
    return ops, custom_ops


def _outside_delegates(interpreter) -> tuple[int, Counter]:
    """(delegate partitions, op -> nodes no delegate took), read from the loaded interpreter.

    LiteRT's Python API lists the original nodes and, after them, one ``DELEGATE`` node per
    partition, without the execution plan. A node is inside a partition when it lies between the
    partition's inputs and outputs: walk back from each partition's outputs to its inputs.
    """
    details = interpreter._get_ops_details()  # the only per-node view the Python API gives
    delegates = [d for d in details if d["op_name"] == "DELEGATE"]
    nodes = [d for d in details if d["op_name"] != "DELEGATE"]
    producer = {int(t): d["index"] for d in nodes for t in d["outputs"]}
    by_index = {d["index"]: d for d in nodes}
    inside: set[int] = set()
    for part in delegates:
        stop = {int(t) for t in part["inputs"]}
        todo = [int(t) for t in part["outputs"]]
        while todo:
            t = todo.pop()
            node = producer.get(t)
            if t in stop or node is None or node in inside:
                continue
            inside.add(node)
            todo.extend(int(i) for i in by_index[node]["inputs"] if i >= 0)
    outside = Counter(d["op_name"] for d in nodes if d["index"] not in inside)
    return len(delegates), outside


def tflite_report(tflite: bytes | str | Path) -> TfliteReport:
    """Ops of a ``.tflite`` (bytes or path), the non-builtin ones, and what XNNPACK left outside."""
    buffer = tflite if isinstance(tflite, bytes) else Path(tflite).read_bytes()
    ops, custom = _flatbuffer_ops(buffer)
    it = _interpreter(buffer, 1)
    delegates, outside = _outside_delegates(it)
    return TfliteReport(
        ops=dict(ops), custom=dict(custom), delegates=delegates, outside=dict(outside),
        inputs=[d["dtype"].__name__ for d in it.get_input_details()],
        outputs=[d["dtype"].__name__ for d in it.get_output_details()],
    )


# --------------------------------------------------------------------------- run


class TfliteModule:
    """A loaded ``.tflite`` as a callable on torch tensors: ``TfliteModule(buf)(*tensors)``.

    Runs with torch's current thread count (the interpreter is rebuilt when it changes, so
    :func:`fxaccel.lowering.thread_count` and ``time_artifact(threads=)`` apply to LiteRT too).
    int8 input/output tensors are (de)quantized with their own scale and zero point.
    """

    def __init__(self, tflite: bytes | str | Path):
        self._buffer = tflite if isinstance(tflite, bytes) else Path(tflite).read_bytes()
        self._threads = None
        self._load(torch.get_num_threads())

    def _load(self, threads: int) -> None:
        self._it = _interpreter(self._buffer, threads)
        self._threads = threads
        self._inputs = self._it.get_input_details()
        self._outputs = self._it.get_output_details()

    def __call__(self, *inputs: torch.Tensor) -> Any:
        import numpy as np

        if torch.get_num_threads() != self._threads:
            self._load(torch.get_num_threads())
        inputs = input_tensors(inputs)  # the program's inputs are the call's tensors, flattened
        if len(inputs) != len(self._inputs):
            raise ValueError(f"the .tflite takes {len(self._inputs)} input(s), got {len(inputs)}")
        for detail, x in zip(self._inputs, inputs):
            value = x.detach().cpu().numpy()
            scale, zero = detail["quantization"]
            if np.issubdtype(detail["dtype"], np.integer) and scale:
                info = np.iinfo(detail["dtype"])
                value = np.clip(np.round(value / scale) + zero, info.min, info.max)
            self._it.set_tensor(detail["index"], value.astype(detail["dtype"]))
        self._it.invoke()
        outs = []
        for detail in self._outputs:
            value = self._it.get_tensor(detail["index"])
            scale, zero = detail["quantization"]
            if np.issubdtype(detail["dtype"], np.integer) and scale:
                value = (value.astype(np.float32) - zero) * scale
            outs.append(torch.from_numpy(np.array(value, dtype=np.float32)))
        return outs[0] if len(outs) == 1 else tuple(outs)


def load_tflite(tflite: bytes | str | Path) -> TfliteModule:
    """Load a ``.tflite`` (bytes or a path) in the LiteRT interpreter; returns a callable."""
    return TfliteModule(tflite)


# --------------------------------------------------------------------------- export


@dataclass
class TfliteArtifact:
    """A written ``.tflite``: its bytes, where they were written, its op report and how it was checked."""

    buffer: bytes
    path: Path | None
    report: TfliteReport
    check: dict[str, Any] | None = None

    def __bytes__(self) -> bytes:
        return self.buffer

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "bytes": len(self.buffer),
                "report": self.report.to_dict(), "check": self.check}


def _quantized_with(model: Any) -> str | None:
    made_by = provenance_of(model) if isinstance(model, torch.nn.Module) else None
    return made_by.backend if made_by is not None and made_by.stage == "quantize" else None


def _quant_config():
    from litert_torch.quantize import pt2e_quantizer, quant_config

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    return quant_config.QuantConfig(pt2e_quantizer=quantizer)


@contextlib.contextmanager
def _quiet():
    """litert-torch prints a progress line per conversion step to stdout (which ``fxaccel --json``
    owns); off unless the user set ``LITERT_TORCH_SHOW_PROGRESS`` themselves."""
    saved = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)


def _refuse_5d(model: Callable, inputs: tuple) -> None:
    """Fail here, not in the converter: litert-torch 0.10.0 dies with SIGSEGV on a strided depthwise
    ``Conv3d`` and needs Flex kernels for the others; XNNPACK and LiteRT's builtins have no 5-D conv
    or pool. The ``mobile_cpu`` target's op-legality table names them."""
    from ..aten_ops import record_aten_ops
    from ..errors import DEPLOY_HINT, UnsupportedOps
    from ..targets import TARGETS

    with torch.no_grad():
        bad = TARGETS["mobile_cpu"].unsupported(record_aten_ops(model, *inputs))
    if bad:
        listed = ", ".join(f"{op} on a {rank}-D input" for op, rank in bad)
        raise UnsupportedOps(f"LiteRT has no kernel for {listed}. Fix: {DEPLOY_HINT}", [op for op, _ in bad])


def _converter_failure(exc: BaseException) -> str:
    """What LiteRT's converter failing means, with the way round it."""
    text = f"{type(exc).__name__}: {str(exc).strip()[:600]}"
    if "failed to legalize" in str(exc):
        why = ("it has no TFLite op for part of this graph (builtin ops take at most 6-D tensors for most "
               "kinds: MViT-v2's decomposed relative positions broadcast 8-D ones)")
    elif "Concretization" in type(exc).__name__ or "data-dependent" in str(exc):
        why = "the graph has a size that depends on the data (a mask's index sort or nonzero count)"
    else:
        why = "it could not convert this graph"
    return (f"LiteRT's converter failed: {why}. Export a .pte instead where ExecuTorch runs it, or keep "
            f"that part out of the model you convert. Converter: {text}")


def to_tflite(
    model: torch.nn.Module,
    example_inputs: Any,
    path: str | Path | None = None,
    *,
    verify: bool = True,
    rtol: float = 1e-4,
    sqnr_floor: float | None = None,
    reference: Callable | None = None,
) -> TfliteArtifact:
    """Convert ``model`` with litert-torch to a ``.tflite``; optionally write it to ``path``.

    ``model``: an fp32 ``nn.Module`` without 5-D ops (``fxaccel.deploy(..., target="mobile_cpu")``)
    or a model from ``fxaccel.quantize(..., backend="litert")``. Refuses a program with non-builtin
    ops (:class:`~fxaccel.errors.UnsupportedOps`). With ``verify`` (default) the program runs in the
    LiteRT interpreter on ``example_inputs`` against ``reference`` (default: ``model``): fp32 within
    ``rtol`` of each output's largest magnitude, int8 at ``sqnr_floor`` dB or better (required).
    """
    from ..errors import UnsupportedOps

    litert_torch = _litert_torch()
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    backend = _quantized_with(model)
    if backend not in (None, "litert"):
        raise LoweringError(
            f"this int8 model was quantized for backend {backend!r}; a .tflite needs "
            "fxaccel.quantize(..., backend='litert') (LiteRT's converter reads unfolded weight Q/DQ pairs)")
    int8 = backend == "litert"
    if verify and int8 and sqnr_floor is None:
        raise ValueError("to_tflite: the model is int8, so pass sqnr_floor=<dB> (e.g. 25.0) or verify=False")
    with _quiet():
        if int8:  # a pt2e GraphModule: no .eval() (it is traced in eval mode already)
            _refuse_5d(model, inputs)
            try:
                converted = litert_torch.convert(model, inputs, quant_config=_quant_config())
            except ValueError as exc:
                if "same scale constraint" not in str(exc):
                    raise
                raise LoweringError(
                    "LiteRT's converter refused this int8 graph: a PAD (a temporal tap's zero padding) sits "
                    "between two int8 tensors of different scales, and TFLite's PAD needs one scale (seen when a "
                    "kT > 1 conv3d reads the network input; X3D's (1, 3, 3) stem converts). Export it as fp32 "
                    f".tflite, or as an int8 .pte (quantize backend='xnnpack'). Converter: {exc}") from exc
        else:
            with eval_mode(model), torch.no_grad():
                _refuse_5d(model, inputs)
                try:
                    converted = litert_torch.convert(model, inputs)
                except Exception as exc:  # the converter's own errors (MLIR, JAX) name no layer of ours
                    raise LoweringError(_converter_failure(exc)) from exc
    with _quiet(), tempfile.TemporaryDirectory() as tmp:  # the public API writes files only
        converted.export(str(Path(tmp) / "model.tflite"))
        buffer = (Path(tmp) / "model.tflite").read_bytes()
    report = tflite_report(buffer)
    if report.custom:
        raise UnsupportedOps(
            f"the .tflite needs ops the LiteRT runtime does not have: {report.custom}. Fix: convert the "
            "deploy form (fxaccel.deploy(model, x, target='mobile_cpu')), which has no 5-D ops",
            list(report.custom))
    out_path = None
    if path is not None:
        out_path = Path(path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_bytes(buffer)
    check = None
    if verify:
        with torch.no_grad():
            ref = reference or model
            if isinstance(ref, torch.nn.Module) and not int8:
                with eval_mode(ref):
                    expected = ref(*clone_inputs(inputs))
            else:
                expected = ref(*clone_inputs(inputs))
        check = _verify(buffer, expected, inputs, rtol=rtol, sqnr_floor=sqnr_floor if int8 else None)
    log.info("wrote LiteRT flatbuffer (%d bytes) %s\n%s", len(buffer), out_path or "", report)
    return TfliteArtifact(buffer, out_path, report, check)


def _verify(buffer: bytes, expected: Any, inputs: tuple, *, rtol: float, sqnr_floor: float | None) -> dict[str, Any]:
    try:
        got = load_tflite(buffer)(*inputs)
    except (RuntimeError, ValueError) as exc:
        raise LoweringError(f"the LiteRT interpreter failed to run the program ({exc})") from exc
    return compare_outputs(expected, got, inputs, rtol=rtol, sqnr_floor=sqnr_floor, what=".tflite")
