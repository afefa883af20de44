"""Canonicalisation: normalise spellings so each transmute rule matches one canonical form.

Every module here registers its rules; they run together to a fixed point (a respelled sigmoid
is seen by the swish rule in the next sweep), so their order does not matter.
"""
from fxaccel.pipeline import register_modules

register_modules(__name__, __path__)
