"""Writers, loaders and runners for deployable artifacts.

* ``.pte``: ExecuTorch with the XNNPACK delegate (:mod:`.executorch`; needs ``fxaccel[executorch]``)
* ``.tflite``: LiteRT, converted by litert-torch (:mod:`.litert`; needs ``fxaccel[litert]``)
* ``.pt`` / ``.ptl``: TorchScript, full or lite interpreter (:mod:`.torchscript`)
* NNAPI: a TorchScript file wrapping an Android NNAPI model (:mod:`.nnapi`)
* :mod:`.runner`: load any of them and time it (median, threads, load average)

Nothing here imports executorch (or litert-torch) until a ``.pte`` (``.tflite``) is written or loaded.

Stability: public (the names below); the report formats are experimental.
"""
from ..errors import (
    ExportMismatch, LoweringError, MissingDependency, NotDelegated, UnsupportedByNNAPI, UnsupportedOps,
)
from .executorch import (
    DelegationReport, PteArtifact, assert_all_compute_delegated, delegation_report, load_pte, op_kind, to_pte,
)
from .litert import TfliteArtifact, TfliteReport, load_tflite, tflite_report, to_tflite
from .nnapi import NnapiInfo, to_nnapi
from .runner import TimingResult, load_artifact, thread_count, time_artifact
from .torchscript import TorchScriptInfo, load_torchscript, to_torchscript

__all__ = [
    "DelegationReport", "ExportMismatch", "LoweringError", "MissingDependency", "NnapiInfo", "NotDelegated",
    "PteArtifact", "TfliteArtifact", "TfliteReport", "TimingResult", "TorchScriptInfo", "UnsupportedByNNAPI", "UnsupportedOps",
    "assert_all_compute_delegated", "delegation_report", "load_artifact", "load_pte", "load_tflite", "load_torchscript",
    "op_kind", "thread_count", "tflite_report", "time_artifact", "to_nnapi", "to_pte", "to_tflite", "to_torchscript",
]
