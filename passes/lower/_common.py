"""Helpers shared by the lower passes: where the executorch fixes apply."""
from __future__ import annotations

from fxaccel.pipeline import When

EXECUTORCH = When(formats=("executorch",))

