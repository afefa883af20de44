"""Deploy passes: one module per rewrite, each registering itself in stage ``deploy``.

Order: drop_dropout, guard_inputs, fold_bn, lower_blocks, lower_convs, fix_pools, mean_5d,
fuse_relu, layout (mobile), collapse_views, dce, channels_last (x86 hook), check_target (mobile).
"""
from . import (  # noqa: F401  (modules register their passes, in this order)
    drop_dropout, guard_inputs, fold_bn, lower_blocks, lower_convs, fix_pools, mean_5d, fuse_relu, layout,
    collapse_views, dce, channels_last, check_target,
)
