"""Runner: loads each artifact kind by suffix and times it with a sane result structure.

Timings themselves are never asserted (they depend on machine load): only structure, thread
handling, and that the loaded artifact computes what the model computes.
"""
import importlib.util
import math

import pytest
import torch
from torch import nn

from fxaccel.lowering.runner import TimingResult, load_artifact, time_artifact
from fxaccel.lowering.torchscript import to_torchscript
from fxaccel.testing import assert_equivalent, randomize_bn


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), randomize_bn(nn.BatchNorm2d(4), seed), nn.ReLU()).eval()


X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _check_structure(r: TimingResult, repeats: int):
    assert len(r.all_ms) == repeats and all(t >= 0 and math.isfinite(t) for t in r.all_ms)
    assert min(r.all_ms) <= r.median_ms <= max(r.all_ms)
    assert len(r.loadavg) == 3 and all(v >= 0 for v in r.loadavg)
    assert r.threads >= 1
    assert r.to_dict()["all_ms"] == list(r.all_ms) and "median" in str(r)


def test_time_a_callable_and_restore_threads():
    before = torch.get_num_threads()
    calls = []
    model = _model()

    def run(x):
        calls.append(torch.get_num_threads())
        return model(x)

    r = time_artifact(run, X, warmup=2, repeats=4, threads=1)
    _check_structure(r, 4)
    assert r.threads == 1 and calls == [1] * 6  # warmup + repeats, all on the requested threads
    assert torch.get_num_threads() == before


def test_threads_none_keeps_current_setting():
    r = time_artifact(_model(), (X,), warmup=0, repeats=1)
    assert r.threads == torch.get_num_threads()


@pytest.mark.parametrize("suffix", [".pt", ".ptl"])
def test_load_and_time_torchscript(tmp_path, suffix):
    model = _model()
    path = to_torchscript(model, (X,), tmp_path / f"m{suffix}").path
    run = load_artifact(path)
    assert_equivalent(run, model, (X,), rtol=1e-5)
    _check_structure(time_artifact(path, (X,), warmup=1, repeats=3), 3)


@pytest.mark.skipif(importlib.util.find_spec("executorch") is None, reason="needs the executorch extra")
def test_load_and_time_pte(tmp_path):
    from fxaccel.lowering.executorch import to_pte

    model = _model()
    path = to_pte(model, (X,), tmp_path / "m.pte").path
    assert_equivalent(load_artifact(path), model, (X,), rtol=1e-4)
    _check_structure(time_artifact(path, (X,), warmup=1, repeats=3, threads=1), 3)


@pytest.mark.skipif(importlib.util.find_spec("executorch") is None, reason="needs the executorch extra")
def test_loaded_pte_survives_thread_count_changes(tmp_path):
    """A delegate keeps the pool it was built with: after a resize the program must re-initialise
    (running it on the freed pool corrupted the heap in tools/bench_quantize.py)."""
    from fxaccel.lowering import executorch as et

    model = _model()
    program = et.load_pte(et.to_pte(model, (X,), tmp_path / "m.pte").path)
    expected = model(X)
    start = et.threadpool_size()
    for n in (1, 2, 1, 2):
        before = program._method
        r = time_artifact(program, (X,), warmup=1, repeats=2, threads=n)
        assert r.threads == n
        assert (program._method is None) == (n != start)  # freed before each pool change
        assert torch.allclose(program(X), expected, atol=1e-5)  # re-initialised on the current pool
        assert (program._method is before) == (n == start)  # a new method, not the program's cached one
    assert et.threadpool_size() == start
    assert not et.set_threadpool_size(start)  # no change, no reset


def test_bad_requests(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_artifact(tmp_path / "missing.pte")
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match=".onnx"):
        load_artifact(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="repeats"):
        time_artifact(_model(), (X,), repeats=0)
