"""Every ``>>>`` example in ``fxaccel`` and ``fxaccel.passes`` runs as written (stdlib ``doctest``).

A docstring example is documentation a reader copies; one that no longer runs misleads. Modules
are found by walking both packages (``fxaccel.passes`` lives in top-level ``passes/``, so walking
``fxaccel`` alone misses it); a module is collected when its source holds a ``>>>``. As in the
tutorials' test, an example must leave the pass registry as it found it.

Modules whose examples transmute or build whole zoo models (X3D and friends at design size) take
8-35 s each on the 2-core CI machine when it is quiet (110 s together; 280 s under load); they are
marked slow and run with ``-m slow``, like the other full-model checks. The rest take ~30 s.
"""
import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import fxaccel
import fxaccel.passes

_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> list[str]:
    names = ["fxaccel", "fxaccel.passes"]
    for pkg in (fxaccel, fxaccel.passes):
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
    return sorted(n for n in dict.fromkeys(names) if ">>>" in _source(n))


def _source(name: str) -> str:
    origin = importlib.util.find_spec(name).origin
    return Path(origin).read_text(encoding="utf-8") if origin and origin.endswith(".py") else ""


MODULES = _module_names()
SLOW = {"fxaccel", "fxaccel.modelspec", "fxaccel.transmuting", "fxaccel.zoo", "fxaccel.zoo.r2plus1d",
        "fxaccel.zoo.x3d"}


def test_the_walk_finds_the_documented_modules():
    assert {"fxaccel", "fxaccel.rules", "fxaccel.report", "fxaccel.transmuting", "fxaccel.zoo"} <= set(MODULES)
    assert SLOW <= set(MODULES), SLOW - set(MODULES)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in MODULES])
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module, name) if t.examples]
    assert tests, f"{name} has '>>>' in its source but doctest finds no example"
    registry = {stage: fxaccel.list_passes(stage) for stage in fxaccel.STAGES}
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=_FLAGS)
    for test in tests:
        runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)
    assert {stage: fxaccel.list_passes(stage) for stage in fxaccel.STAGES} == registry, (
        f"an example in {name} changed the pass registry; unregister what it registers")
