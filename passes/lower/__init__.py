"""Lower passes: per-format graph fixes run by ``fxaccel.export`` on a copy of an fp32 deploy graph.

Each pass declares the formats it is for (``when=When(formats=...)``); they run in this order
(declared with ``before=``/``after=``):

* ``one_clip_taps`` (executorch, litert): temporal taps of a one-clip program sum along the batch dim
  (no 3-D view, so no NHWC <-> NCHW transposes around XNNPACK's convolutions).
* ``inline_forms`` (executorch, litert, nnapi): trace through the deploy-form modules so the fixes see
  every op (a module that cannot be traced through is kept, with the reason in the report).
* ``half_silu`` (executorch, fp16): ``silu`` as ``x * sigmoid(x)``, so no fp32 round trip splits
  the program's delegates.
* ``propagate_shapes`` (executorch, litert): the example inputs' shapes on every node, for the rules.
* ``xnnpack_means`` (executorch, litert): every mean in the one spelling XNNPACK delegates, a 4-D
  ``mean((-1, -2), keepdim=True)``.

NNAPI has no fixes yet: what still blocks the X3D deploy form (transpose/permute of the fold and
the pool, ``pad`` of the temporal taps, ``silu``, shape arithmetic) is listed and tested in
``tests/lowering/test_export.py``.
"""
from fxaccel.pipeline import register_modules

register_modules(__name__, __path__)
