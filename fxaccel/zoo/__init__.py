"""Vanilla reference video models, written in plain torch the way model authors write them.

These are the models fxaccel is measured on: nothing in here knows about fxaccel's blocks or
passes (only ``torch.nn`` / ``torch.nn.functional``), so a rewrite that works here works on a
model nobody wrote for us. Random weights come with *realistic* BatchNorm statistics (set by
running random clips through the model), because BN left at its defaults hides folding bugs and
lets activations explode or vanish through a deep network.

Example::

    >>> import torch
    >>> from fxaccel import zoo
    >>> model = zoo.create("x3d_xs", num_classes=10)
    >>> clip = zoo.example_input("x3d_xs")
    >>> tuple(clip.shape)
    (1, 3, 4, 160, 160)
    >>> with torch.no_grad():
    ...     tuple(model(clip).shape)
    (1, 10)
    >>> "csn_26" in zoo.names()
    True

Stability: public (the registry, ``x3d``, ``example_input``, ``realistic_bn``, ``load_weights``).
"""
from __future__ import annotations

import functools
import os
from typing import Callable, Iterable, NamedTuple

import torch
from torch import nn

from ..inputs import clone_inputs

__all__ = [
    "MODELS", "ZooEntry", "create", "example_input", "get", "load_weights", "names",
    "random_clips", "realistic_bn", "synthetic", "x3d",
]


# --- helpers shared by every zoo model ------------------------------------------------------------
# Defined before the submodule imports at the bottom of this file; the submodules import them
# lazily (inside their factories), so importing ``fxaccel.zoo.x3d`` first works too.

def random_clips(shape: Iterable[int], seed: int = 0) -> torch.Tensor:
    """A standard-normal clip batch of ``shape``, reproducible from ``seed`` (torch.Generator).

    Normalised video frames are roughly zero-mean unit-variance, so this stands in for real clips.

    >>> random_clips((1, 3, 4, 8, 8), seed=1).shape
    torch.Size([1, 3, 4, 8, 8])
    """
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=gen)


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def realistic_bn(model: nn.Module, clips: Iterable[torch.Tensor], seed: int = 0) -> nn.Module:
    """Give every BatchNorm in ``model`` mild random affine params and data-derived running stats.

    Why: a randomly initialised network with BN at its defaults (mean 0, var 1) runs in eval mode
    with un-normalised activations that explode or vanish with depth, and defaults make BN-folding
    bugs invisible. Here (1) each BN's weight is drawn from U(0.6, 1.4) and its bias from
    N(0, 0.2^2), deterministically from ``seed``; (2) ``clips`` are run through the model in
    train mode with ``momentum=None`` (cumulative average), so the running statistics are exactly
    what the layers see. BNs with ``track_running_stats=False`` only get the affine part. The
    model is returned in eval mode, changed in place.

    >>> m = nn.Sequential(nn.Conv3d(3, 4, 3), nn.BatchNorm3d(4))
    >>> m = realistic_bn(m, [random_clips((2, 3, 4, 8, 8))])
    >>> bool(m[1].running_var.ne(1).all()), m.training
    (True, False)
    """
    gen = torch.Generator().manual_seed(seed)
    bns = _batchnorms(model)
    for bn in bns:
        if bn.affine:
            bn.weight.copy_(torch.rand(bn.num_features, generator=gen) * 0.8 + 0.6)
            bn.bias.copy_(torch.randn(bn.num_features, generator=gen) * 0.2)
    tracked = [bn for bn in bns if bn.track_running_stats]
    momenta = [bn.momentum for bn in tracked]
    for bn in tracked:
        bn.reset_running_stats()
        bn.momentum = None
    try:
        model.train()
        with torch.random.fork_rng(devices=[]):  # dropout in train mode must not use up global RNG
            torch.manual_seed(seed)
            for clip in clips:  # a tensor, or a call (a tuple of positional arguments: SlowFast's list)
                model(*clone_inputs(clip)) if isinstance(clip, tuple) else model(clip)
    finally:
        for bn, momentum in zip(tracked, momenta):
            bn.momentum = momentum
        model.eval()
    return model


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a local checkpoint (a state dict saved with ``torch.save``) into ``model``, strictly.

    ``torch.load(path, weights_only=True)`` never runs pickled code. A checkpoint wrapped as
    ``{"state_dict": ...}`` or ``{"model_state": ...}`` is unwrapped. Mismatched keys or shapes
    raise a ``ValueError`` naming them, instead of torch's long message or a silent partial load.
    """
    state = torch.load(os.fspath(path), weights_only=True, map_location="cpu")
    for wrapper in ("state_dict", "model_state"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {os.fspath(path)!r} holds a {type(state).__name__}, not a state "
                         "dict; save it with torch.save(model.state_dict(), path)")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = sorted(k for k in set(state) & set(expected)
                        if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or mis_shaped:
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} key(s), e.g. {missing[:5]}")
        if unexpected:
            problems.append(f"unexpected {len(unexpected)} key(s), e.g. {unexpected[:5]}")
        if mis_shaped:
            k = mis_shaped[0]
            problems.append(f"{len(mis_shaped)} shape mismatch(es), e.g. {k!r}: checkpoint "
                            f"{tuple(state[k].shape)} vs model {tuple(expected[k].shape)}")
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} does not fit {type(model).__name__}: "
            + "; ".join(problems)
            + ". Check the model size/num_classes, or convert the checkpoint's key names first.")
    model.load_state_dict(state, strict=True)
    return model.eval()


def _finish(model: nn.Module, *, weights, clip_shape, seed: int, n_clips: int = 2) -> nn.Module:
    """The common end of every zoo factory: load ``weights`` if given, else calibrate BN."""
    if weights is not None:
        return load_weights(model, weights)
    clips = [random_clips(clip_shape, seed=seed * 1000 + i + 1) for i in range(n_clips)]
    return realistic_bn(model, clips, seed=seed)


# --- the registry --------------------------------------------------------------------------------

from . import csn as _csn  # noqa: E402  (helpers above must exist before the submodules load)
from . import r2plus1d as _r2plus1d  # noqa: E402
from . import resnet3d as _resnet3d  # noqa: E402
from . import synthetic  # noqa: E402
from . import x3d as _x3d  # noqa: E402

x3d = _x3d.x3d  # package-level name, as in ``from fxaccel.zoo import x3d``


class ZooEntry(NamedTuple):
    """One registered model: ``factory(num_classes=..., seed=...)``, its example clip, what it is;
    ``task``: the labelled data it was trained on (``"synthetic"``: :mod:`fxaccel.zoo.synthetic`),
    ``None`` for random weights."""

    factory: Callable[..., nn.Module]
    example_input: Callable[..., torch.Tensor]
    description: str
    task: str | None = None


MODELS: dict[str, ZooEntry] = {
    **{
        f"x3d_{size.lower()}": ZooEntry(
            functools.partial(_x3d.x3d, size), functools.partial(_x3d.example_input, size),
            f"X3D-{size} (Feichtenhofer 2020), {_x3d.SIZES[size].frames} frames at "
            f"{_x3d.SIZES[size].crop}x{_x3d.SIZES[size].crop}")
        for size in _x3d.SIZES
    },
    "resnet3d_18": ZooEntry(_resnet3d.resnet3d_18, _resnet3d.example_input,
                            "3-D ResNet-18 (basic blocks, 3x3x3 convs), narrow by default"),
    "resnet3d_50": ZooEntry(_resnet3d.resnet3d_50, _resnet3d.example_input,
                            "3-D ResNet-50 (bottlenecks, 1x3x3 early / 3x1x1+1x3x3 late), narrow"),
    "r2plus1d_18": ZooEntry(_r2plus1d.r2plus1d_18, _r2plus1d.example_input,
                            "R(2+1)D-18: every 3x3x3 conv as 1x3x3 spatial then 3x1x1 temporal"),
    "x3d_xs_synthetic": ZooEntry(
        functools.partial(_x3d.x3d, "XS", weights="synthetic"), synthetic.example_input,
        f"X3D-XS trained on fxaccel's synthetic video task ({len(synthetic.CLASSES)} classes), "
        f"{synthetic.FRAMES} frames at {synthetic.CROP}x{synthetic.CROP}", task="synthetic"),
    "csn_26": ZooEntry(_csn.csn_26, _csn.example_input,
                       "ir-CSN-26: bottlenecks with depthwise 3x3x3 between 1x1x1 convs"),
}

# Sizes accepted as shorthand by ``example_input`` (``example_input("XS")``).
_ALIASES = {size: f"x3d_{size.lower()}" for size in _x3d.SIZES}


def names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODELS)


def get(name: str) -> ZooEntry:
    """The registry entry for ``name``; an unknown name raises ``KeyError`` listing the known ones."""
    key = _ALIASES.get(name, name)
    try:
        return MODELS[key]
    except KeyError:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(names())}") from None


def create(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` (eval mode, realistic BN); ``kwargs`` go to its factory."""
    return get(name).factory(**kwargs)


def example_input(name: str = "x3d_xs", batch: int = 1, seed: int = 0) -> torch.Tensor:
    """The example clip ``(batch, 3, T, H, W)`` for model ``name`` (X3D sizes "XS".."L" also work)."""
    return get(name).example_input(batch=batch, seed=seed)
