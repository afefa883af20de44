"""Deploy passes: one module per rewrite, each registering itself in stage ``deploy``.

Order: drop_dropout, guard_inputs, fold_bn, lower_blocks, lower_convs (mobile), fix_pools,
fold_pool3d (mobile), mean_5d, fuse_relu, layout (mobile), collapse_views, dce, channels_last (x86
hook), check_target (mobile). Rules are ``Rule`` classes (consecutive ones, lower_convs to fuse_relu,
run as one rule set to a fixed point; lower_convs is tried before fuse_relu at a ReLU); the rest are
graph passes that declare where they apply with ``when=``.
"""
from . import (  # noqa: F401  (modules register their passes, in this order)
    drop_dropout, guard_inputs, fold_bn, lower_blocks, lower_convs, fix_pools, mean_5d, fuse_relu, layout,
    collapse_views, dce, channels_last, check_target,
)
