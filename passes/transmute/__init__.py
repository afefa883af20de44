"""Transmute rules: vanilla subgraphs -> efficient blocks (original form).

Every module here registers its rules; they run together to a fixed point, latest node first, so
``bottleneck`` sees the blocks the others build and ``squeeze_excite`` (rooted at the gating
multiply) takes its 1x1x1 convs before ``conv_bn_act`` reaches them. At one node, ``conv_bn_act``
is tried before ``activation`` (declared with ``after=``): it absorbs an activation that follows
a conv/BN.
"""
from fxaccel.pipeline import register_modules

register_modules(__name__, __path__)
