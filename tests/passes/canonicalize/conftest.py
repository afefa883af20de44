"""What every canonicalisation rule test needs: the stage run through the public API, alone.

``fxaccel.transmute`` runs canonicalize then transmute; with every transmute pass skipped, the
graph it returns shows the canonical calls themselves (the transmute rules would turn them into
blocks), and its report holds the canonicalisation records.
"""
import pytest
import torch
from torch import fx

import fxaccel
from fxaccel.testing import assert_equivalent
from graph_helpers import Call

X = torch.randn(2, 3, 4, 5, 5)



def _canonicalize(model, x=X, **kw) -> fx.GraphModule:
    module = Call(model)
    gm = fxaccel.transmute(module, x, skip=fxaccel.list_passes("transmute"), **kw)
    if x is not None:
        assert_equivalent(gm, module, x, rtol=1e-6)
    return gm


def _calls(gm: fx.GraphModule) -> list:
    return [n.target for n in gm.graph.nodes if n.op in ("call_function", "call_method", "call_module")]


@pytest.fixture
def canonicalize():
    """``canonicalize(model, x=X, **transmute_kw)``: canonicalise a model calling ``model`` (a module
    or a function) through ``fxaccel.transmute`` and assert the outputs are unchanged (``x=None``: no inputs)."""
    return _canonicalize


@pytest.fixture
def calls():
    """``calls(gm)``: the targets of the graph's call nodes, in order (modules by qualified name)."""
    return _calls
