"""Helpers shared by the lower passes: node shapes, and where the executorch fixes apply."""
from __future__ import annotations

from typing import Any

from torch import fx

from fxaccel.pipeline import When

EXECUTORCH = When(formats=("executorch",))


def shape_of(value: Any) -> tuple[int, ...] | None:
    """The propagated shape of a node's value (``ShapeProp``'s ``tensor_meta``), else ``None``."""
    meta = value.meta.get("tensor_meta") if isinstance(value, fx.Node) else None
    shape = getattr(meta, "shape", None)
    return None if shape is None else tuple(int(s) for s in shape)
