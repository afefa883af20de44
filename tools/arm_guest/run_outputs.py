"""Guest script: run a ``.pte`` or ``.tflite`` on every clip of a saved batch, save the outputs.

The harness's count runs report only the max abs error against one expected output. To judge a
reduced-precision artifact *as a phone computes it* (native fp16 on ARMv8.2, int8 kernels) we need
its outputs on many labelled clips: top-1 and SQNR are then computed on the host
(``tools/bench_arm.py --accuracy``). Run under plain qemu-aarch64 (no counting plugin):

    qemu-aarch64 -cpu cortex-a76 -L VIEW VIEW/usr/bin/python3 run_outputs.py MODEL CLIPS.pt OUT.pt
"""
import importlib.util
import os
import sys
import types

import torch


def _pte(path):
    # executorch.exir's __init__ imports the whole compiler (~40 s under qemu); the runtime needs none of it
    et_dir = list(importlib.util.find_spec("executorch").submodule_search_locations)[0]
    pkg = types.ModuleType("executorch.exir")
    pkg.__path__ = [os.path.join(et_dir, "exir")]
    sys.modules.setdefault("executorch.exir", pkg)
    from executorch.extension.pybindings import portable_lib as pl
    from executorch.runtime import Runtime

    pl._unsafe_reset_threadpool(1)
    method = Runtime.get().load_program(path).load_method("forward")
    return lambda x: method.execute([x.contiguous()])[0]


def main(model, clips, out):
    torch.set_num_threads(1)
    if model.endswith(".tflite"):
        from litert_guest import tflite
        run = tflite(model)
    else:
        run = _pte(model)
    batch = torch.load(clips)
    with torch.no_grad():
        outs = [run(batch[i:i + 1]) for i in range(batch.shape[0])]
    torch.save(torch.cat(outs), out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
