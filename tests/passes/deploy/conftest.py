"""What every deploy rule test needs: a model traced with shapes, one rule applied to it, a context.

Rules run here without the rest of the stage, the way the pipeline runs them
(:func:`fxaccel.rules.apply_rules` to a fixed point, counts and reasons in a :class:`PassRecord`).
"""
import pytest
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from fxaccel.options import DeployOptions
from fxaccel.pipeline import PassContext
from fxaccel.report import PassRecord, Report
from fxaccel.rules import apply_rules
from fxaccel.targets import get_target
from graph_helpers import Call



class _Tracer(fx.Tracer):
    def __init__(self, leaves: tuple):
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m, qualname):
        return isinstance(m, self.leaves) or super().is_leaf_module(m, qualname)


def _traced(model: nn.Module, *inputs: torch.Tensor, shapes: bool = True, leaves: tuple = ()) -> fx.GraphModule:
    model.eval()
    gm = fx.GraphModule(model, _Tracer(leaves).trace(model))
    if shapes:
        ShapeProp(gm).propagate(*inputs)
    return gm


def _apply(rule, gm: fx.GraphModule, ctx: PassContext | None = None) -> PassRecord:
    record = PassRecord(getattr(rule, "rule_name", "rules"), "deploy")
    apply_rules(rule, gm, record, ctx)
    return record


def _context(target: str, *inputs: torch.Tensor, **options) -> PassContext:
    ctx = PassContext("deploy", get_target(target), inputs, Report("deploy", target),
                      options=DeployOptions(**{"op_counts": False, **options}))
    ctx.record = PassRecord("test", "deploy")
    return ctx


def _calls(gm: fx.GraphModule) -> list:
    """The call nodes' targets in order: module types for modules, else the function / method."""
    return [type(gm.get_submodule(n.target)) if n.op == "call_module" else n.target
            for n in gm.graph.nodes if n.op in ("call_function", "call_method", "call_module")]


@pytest.fixture
def traced():
    """``traced(model, *inputs, shapes=True, leaves=())``: ``model`` (eval) traced, shapes propagated;
    modules of the types ``leaves`` (user subclasses) stay calls."""
    return _traced


@pytest.fixture
def apply():
    """``apply(rule, gm, ctx=None) -> PassRecord``: ``rule`` (a Rule or RuleSet) applied to a fixed
    point; ``ctx`` reaches its matches as ``m.ctx``."""
    return _apply


@pytest.fixture
def context():
    """``context(target, *inputs, **options)``: a deploy PassContext (op counts off)."""
    return _context


@pytest.fixture
def calls():
    """``calls(gm)``: the call nodes' targets in order (module types for modules)."""
    return _calls


@pytest.fixture
def call():
    """``call(fn)``: a module whose forward is ``fn`` (functional ops as the graph's nodes)."""
    return Call
