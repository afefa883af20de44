"""fxaccel: a torch.fx graph-rewriting compiler that makes vanilla PyTorch video models fast on devices.

    >>> import fxaccel
    >>> model, x = fxaccel.zoo.x3d("XS"), fxaccel.zoo.example_input("XS")
    >>> gm = fxaccel.transmute(model, x)          # efficient blocks, same numerics
    >>> print(fxaccel.report_of(gm))               # what each pass did  # doctest: +SKIP

Stability: the names in ``__all__`` are public.
"""
from . import blocks, testing, zoo
from .pipeline import STAGES, PassContext, list_passes, register_pass, unregister_pass
from .report import Report, report_of
from .rules import Rule
from .targets import TARGETS, Target, get_target
from .tracing import trace
from .transmuting import load_vanilla_state_dict, transmute

__version__ = "0.1.0"

__all__ = [
    "STAGES", "TARGETS", "PassContext", "Report", "Rule", "Target", "blocks", "get_target",
    "list_passes", "load_vanilla_state_dict", "register_pass", "report_of", "testing", "trace",
    "transmute", "unregister_pass", "zoo",
]
