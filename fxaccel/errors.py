"""Every error fxaccel raises on purpose, in one place.

Each names the problem and the fix, so a failed deploy or export is actionable without reading
our source. Built-in ``TypeError`` / ``ValueError`` are used where the caller passed a wrong
argument (a non-module, an unknown target or format).

Stability: public.
"""
from __future__ import annotations

from typing import Iterable


class DeployError(ValueError):
    """A layer cannot be put in deploy form for the target; the message names it and says why."""


class PassError(RuntimeError):
    """A pass failed inside on a model it should have rewritten or left alone: a bug in that pass.
    The message names the pass, the graph (``<root>`` or the module path of a graph nested in an
    opaque module) and the fix for now (``skip=[pass]``); the original error is the cause."""


class SpecError(ValueError):
    """The MODEL argument, the input shape, or a file named on the command line is unusable."""


class LoweringError(RuntimeError):
    """Base class: an artifact could not be written, loaded or trusted."""


class MissingDependency(ImportError):
    """An optional dependency (an ``fxaccel[...]`` extra) is not installed."""

    def __init__(self, package: str, extra: str, cause: BaseException | None = None):
        msg = f"{package} is not installed; install it with: pip install \"fxaccel[{extra}]\""
        if cause is not None:
            msg += f" (import failed: {cause})"
        super().__init__(msg)
        self.package, self.extra = package, extra


class ExportMismatch(LoweringError):
    """The written artifact, run by its runtime, does not reproduce the model's outputs."""


class UnsupportedOps(LoweringError):
    """The target runtime cannot run some ops of the model; ``ops`` lists them."""

    def __init__(self, message: str, ops: Iterable[str]):
        self.ops = list(ops)
        super().__init__(message)


class UnsupportedByNNAPI(UnsupportedOps):
    """torch's NNAPI converter refuses some ops of the model; ``ops`` lists them."""


class NotDelegated(LoweringError):
    """Compute ops stayed outside the accelerator delegate (they would run on slow portable kernels)."""

    def __init__(self, message: str, ops: Iterable[str]):
        self.ops = list(ops)
        super().__init__(message)


DEPLOY_HINT = (
    "rewrite the model for the target first: "
    "fxaccel.deploy(model, example_inputs, target=\"mobile_cpu\") folds time into the batch "
    "and leaves only 4-D ops (conv2d, mean over H and W, ...)"
)
