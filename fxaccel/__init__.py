"""fxaccel: a torch.fx graph-rewriting compiler that makes vanilla PyTorch video models fast on devices.

    >>> import fxaccel
    >>> model, x = fxaccel.zoo.x3d("XS"), fxaccel.zoo.example_input("XS")
    >>> gm = fxaccel.transmute(model, x)                       # efficient blocks, same numerics
    >>> fast = fxaccel.deploy(gm, x, target="x86")             # deploy form for a target
    >>> fxaccel.report_of(fast).stage
    'deploy'

Stability: the names in ``__all__`` are public.
"""
from . import blocks, errors, lowering, testing, zoo
from .deploying import DeployError, deploy
from .exporting import export
from .pipeline import STAGES, PassContext, When, list_passes, register_pass, unregister_pass
from .provenance import Provenance, provenance_of
from .quantizing import quantize
from .report import Report, report_of
from .rules import Rule
from .targets import TARGETS, Target, get_target
from .tracing import trace
from .transmuting import load_vanilla_state_dict, transmute

__version__ = "0.1.0"

__all__ = [
    "STAGES", "TARGETS", "DeployError", "PassContext", "Provenance", "Report", "Rule", "Target", "When",
    "blocks", "deploy", "errors", "export", "get_target", "list_passes", "load_vanilla_state_dict", "lowering",
    "provenance_of", "quantize", "register_pass", "report_of", "testing", "trace", "transmute",
    "unregister_pass", "zoo",
]
