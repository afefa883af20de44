"""Transmute rules: vanilla subgraphs -> efficient blocks (original form)."""
from . import activation, bottleneck, conv_bn_act, head, squeeze_excite  # noqa: F401  (they register)
