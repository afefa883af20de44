"""Run a LiteRT ``.tflite`` as a torch-callable, so the arm64 harness can count it.

The harness (shared/arm, ``count.sh --kind eager``) builds a model from a ``'module:expr'`` factory
and calls it on torch tensors; it has no tflite kind. ``tflite(path)`` is that factory:

    count.sh --kind eager --model 'litert_guest:tflite("/abs/model.tflite")' \
        --pythonpath tools/arm_guest --pythonpath $ARM_ROOT/litert-site ...

Building it (the harness's load region) creates the interpreter and allocates its tensors
(XNNPACK delegate, LiteRT's default). Calling it runs one ``invoke``. An int8 model with int8
input/output tensors gets its float input quantized and its output dequantized with the tensors'
own (scale, zero_point), as an app would: what ``fxaccel.lowering.load_tflite`` does on the host,
restated here because the guest rootfs has numpy, torch and ai_edge_litert but not fxaccel's
dependencies.
"""
import numpy as np
import torch


class TFLite:
    """A ``.tflite`` file behind ``ai_edge_litert.interpreter.Interpreter`` with torch in and out."""

    def __init__(self, path, threads=1):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=str(path), num_threads=threads)
        self.interp.allocate_tensors()
        self.inputs = self.interp.get_input_details()
        self.output = self.interp.get_output_details()[0]

    def eval(self):
        return self

    def __call__(self, *tensors):
        for det, t in zip(self.inputs, tensors):
            self.interp.set_tensor(det["index"], _to_tensor_dtype(t.detach().numpy(), det))
        self.interp.invoke()
        out = self.interp.get_tensor(self.output["index"])
        scale, zero = self.output["quantization"]
        if np.issubdtype(out.dtype, np.integer) and scale:
            out = (out.astype(np.float32) - zero) * scale
        return torch.from_numpy(np.array(out, dtype=np.float32))


def _to_tensor_dtype(a, det):
    dtype = det["dtype"]
    scale, zero = det["quantization"]
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        a = np.clip(np.round(a / scale) + zero, info.min, info.max)
    return np.ascontiguousarray(a.astype(dtype))


def tflite(path, threads=1):
    """The harness factory: ``tflite("/abs/model.tflite")``."""
    return TFLite(path, threads)
