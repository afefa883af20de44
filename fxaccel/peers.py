"""The runtimes a user would otherwise pick, run on the *vanilla* model: the bar fxaccel must clear.

ONNX Runtime and OpenVINO have native 3-D convolution, so they take the model as
``torch.onnx.export`` writes it, with no fxaccel rewrite; fxaccel's artifacts are worth shipping
only where they beat these on the same CPU, in the same run. int8 peers run an ONNX Runtime
static-quantized QDQ model (per-channel weights, calibrated on the same clips as fxaccel's int8).

Each program is a callable on torch tensors that follows torch's thread count at call time (a
session per thread count, like ExecuTorch's delegates), so :func:`fxaccel.lowering.runner.time_artifact`
times it exactly as it times an artifact. Needs the ``bench`` extra (``onnx``, ``onnxruntime``,
``openvino``); a missing package raises :class:`~fxaccel.errors.MissingDependency`.

Stability: experimental.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .errors import MissingDependency

log = logging.getLogger(__name__)

OPSET = 18  # the TorchScript exporter's best-tested opset; both runtimes take it


def _import(package: str):
    try:
        return __import__(package)
    except ImportError as exc:
        raise MissingDependency(package, "bench", exc) from exc


def export_onnx(model: nn.Module, inputs: tuple, path: str | Path) -> Path:
    """The vanilla model as ONNX (TorchScript exporter: the route users of these runtimes take)."""
    _import("onnx")
    path = Path(path)
    with torch.no_grad():
        torch.onnx.export(model.eval(), inputs, str(path), opset_version=OPSET, dynamo=False,
                          input_names=[f"input_{i}" for i in range(len(inputs))])
    return path


def quantize_onnx(fp32: str | Path, calibration: Sequence[tuple], path: str | Path) -> Path:
    """ONNX Runtime static int8 (QDQ, per-channel symmetric weights, MinMax activations) of ``fp32``,
    calibrated on ``calibration`` (tuples of input tensors)."""
    _import("onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from onnxruntime.quantization.shape_inference import quant_pre_process

    names = [i.name for i in _session(fp32, 1).get_inputs()]
    prepared = Path(path).with_suffix(".prep.onnx")  # shape inference + fusions, as ORT's guide asks
    quant_pre_process(str(fp32), str(prepared))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._items = iter(calibration)

        def get_next(self):
            item = next(self._items, None)
            return None if item is None else {n: t.numpy() for n, t in zip(names, item)}

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice on the root logger for every run
    try:
        quantize_static(str(prepared), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
        prepared.unlink(missing_ok=True)
    return Path(path)


def _session(path: str | Path, threads: int):
    ort = _import("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class _PerThreads:
    """Runs an ONNX file, compiled once per torch thread count; returns one tensor or a tuple."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._compiled: dict[int, object] = {}

    def __call__(self, *inputs: torch.Tensor):
        n = torch.get_num_threads()
        if n not in self._compiled:
            self._compiled[n] = self._compile(n)
        outs = [torch.from_numpy(o) for o in self._run(self._compiled[n], [t.contiguous().numpy() for t in inputs])]
        return outs[0] if len(outs) == 1 else tuple(outs)


class OnnxRuntimeProgram(_PerThreads):
    """ONNX Runtime, CPU execution provider, all graph optimisations."""

    def _compile(self, threads: int):
        session = _session(self.path, threads)
        return session, [i.name for i in session.get_inputs()]

    def _run(self, compiled, arrays):
        session, names = compiled
        return session.run(None, dict(zip(names, arrays)))


class OpenVinoProgram(_PerThreads):
    """OpenVINO on the CPU, latency mode; ``precision="f32"`` forces fp32 math, ``None`` keeps the
    plugin's default (bf16 on CPUs with AVX512-BF16/AMX, else fp32), or f32 where the default cannot
    compile the model (:meth:`inference_precision` says which ran)."""

    def __init__(self, path: str | Path, precision: str | None = "f32"):
        super().__init__(path)
        self.precision = precision

    def _compile(self, threads: int):
        ov = _import("openvino")
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if self.precision:
            config["INFERENCE_PRECISION_HINT"] = self.precision
        core = ov.Core()
        try:
            return core.compile_model(str(self.path), "CPU", config)
        except RuntimeError as exc:
            # OpenVINO 2026.4 on AMD Zen 4 (AVX512-BF16, no AMX) defaults to bf16 and then finds no
            # kernel for a QDQ int8 model ("No suitable implementations"); f32 around the int8 ops works
            if self.precision is not None or "No suitable implementations" not in str(exc):
                raise
            log.warning("OpenVINO's default precision cannot compile %s on this CPU; compiling it with f32 "
                        "for the non-int8 ops", self.path.name)
            return core.compile_model(str(self.path), "CPU", {**config, "INFERENCE_PRECISION_HINT": "f32"})

    def _run(self, compiled, arrays):
        result = compiled(arrays)
        return [result[o] for o in compiled.outputs]

    def inference_precision(self) -> str:
        """What the plugin chose (``f32``, ``bf16``, ...), for the benchmark note."""
        n = torch.get_num_threads()
        if n not in self._compiled:
            self._compiled[n] = self._compile(n)
        hint = self._compiled[n].get_property("INFERENCE_PRECISION_HINT")
        return hint.to_string() if hasattr(hint, "to_string") else str(hint)


__all__ = ["OnnxRuntimeProgram", "OpenVinoProgram", "export_onnx", "quantize_onnx"]
