"""Lower passes: per-format graph fixes run by ``fxaccel.export`` on a copy of an fp32 deploy graph.

Each pass acts only when ``ctx.options["format"]`` is a format it is for:

* ``inline_forms`` (executorch, nnapi): trace through the deploy-form modules so the fixes below
  see every op.
* ``xnnpack_means`` (executorch): every mean in the one spelling XNNPACK delegates.
* ``nnapi_*`` (nnapi): the folded 4-D input, activations, scalar operands, reshape/view and head
  means in spellings torch's NNAPI converter accepts.
"""
from . import inline_forms, xnnpack_means  # noqa: F401  (modules register their passes, in this order)
