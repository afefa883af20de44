"""propagate_shapes: the export's example-input shapes on every node, or none at all (never stale)."""
import torch
from torch import fx
from torch.fx.passes.shape_prop import ShapeProp

from fxaccel.passes.lower.propagate_shapes import propagate_shapes
from fxaccel.options import LowerOptions
from fxaccel.pipeline import PassContext
from fxaccel.report import PassRecord, Report
from fxaccel.targets import get_target


def _ctx(*inputs):
    ctx = PassContext("lower", get_target("mobile_cpu"), inputs, Report("lower"), options=LowerOptions("executorch"))
    ctx.record = PassRecord("propagate_shapes", "lower")
    return ctx


def _shapes(gm):
    return [tuple(n.meta["tensor_meta"].shape) if "tensor_meta" in n.meta else None
            for n in gm.graph.nodes if n.op != "output"]


def test_shapes_are_those_of_the_export_inputs():
    gm = fx.symbolic_trace(lambda x: x.mean(1))
    ShapeProp(gm).propagate(torch.randn(2, 3))  # shapes of another (deploy-time) input
    propagate_shapes(gm, _ctx(torch.randn(5, 7)))
    assert _shapes(gm) == [(5, 7), (5,)]


def test_inputs_that_do_not_run_the_graph_leave_no_stale_shape():
    gm = fx.symbolic_trace(lambda x: x.mean(1))
    ShapeProp(gm).propagate(torch.randn(2, 3))
    ctx = _ctx(torch.randn(5, 7), torch.randn(1))  # two inputs for one placeholder
    propagate_shapes(gm, ctx)
    assert _shapes(gm) == [None, None]
    (note,) = ctx.record.notes
    assert note.startswith("no shapes")
