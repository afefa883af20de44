"""Canonicalisation: normalise spellings so each transmute rule matches one canonical form."""
from . import arith, global_mean, identity, relu, sigmoid, swish  # noqa: F401  (modules register their passes)
