"""The model corpus: the video models of the libraries users download, discovered from the libraries.

Nothing here lists models by name: a new release's models join the corpus by themselves.

* **transformers**: every class in ``MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES`` (transformers'
  own auto mapping) and the base model of each of those model types (``MODEL_MAPPING_NAMES``),
  built from its config class with every size shrunk by :data:`HF_SMALL` (rules
  on attribute names), random weights; clips ``(1, T, C, H, W)``, transformers' layout.
* **torchvision**: every builder ``torchvision.models.list_models(torchvision.models.video)`` names,
  at the smallest clip each architecture takes (``tests/torchvision_video.py``).
* **pytorchvideo**: every ``create_*`` builder in ``pytorchvideo.models`` that takes a class count
  (``model_num_class`` / ``head_num_classes``): the whole-network builders. Sizes are shrunk by
  :data:`PTV_SMALL` (rules on parameter names); multi-pathway builders (SlowFast) take a *list* of
  clips. Detection heads (``*_with_roi_head``: they also take boxes) and audio networks are left out,
  with the reason.

A :class:`Case` builds ``(model.eval(), call)`` on demand (a call is a tuple of positional
arguments, as fxaccel takes it). ``fast`` marks the cases the default test run covers; the slow run
covers all. Test-only (not installed); ``tools/models_table.py`` reads it too.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from fxaccel.testing import randomize_bn

T, S = 4, 32  # transformer clips: frames, pixels (two 16-pixel patches a side)


@dataclass
class Case:
    family: str
    name: str
    build: Callable[[], tuple[nn.Module, tuple]] = field(repr=False)
    fast: bool = False
    layout: str = "(N, C, T, H, W)"
    pte_fast: bool = False
    """Its ``.pte`` in the default run too: models whose lowering meets what no other CI test has
    (transformers' code around opaque patch embeddings, a list of pathways); the plain 3-D CNNs'
    ``.pte`` is covered by tests/torchvision in CI and runs here with ``-m slow``."""

    @property
    def id(self) -> str:
        return f"{self.family}:{self.name}"


def _calibrated(model: nn.Module, seed: int) -> nn.Module:
    for i, m in enumerate(model.modules()):
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            randomize_bn(m, seed + i)
    return model.eval()


def _clip(shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------- transformers

HF_SMALL: dict[str, Any] = {
    "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 1,
    "mlp_ratio": 2.0, "pooler_output_size": 32, "num_labels": 5,
}
"""Config attribute -> small value; names ending in one of these keys (``pred_hidden_size``,
``decoder_num_hidden_layers``) and ``num_*_layers`` shrink alike. Frames and pixels follow the
patch: :func:`_hf_sizes`."""


def _hf_shrink(cfg) -> None:
    for key in list(cfg.to_dict()):
        value = getattr(cfg, key, None)
        small = next((v for k, v in HF_SMALL.items() if key == k or key.endswith("_" + k)), None)
        if small is None and key.startswith("num_") and key.endswith("_layers") and isinstance(value, int):
            small = 1
        if small is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(cfg, key, type(value)(small))
    cfg.num_labels = HF_SMALL["num_labels"]


def _hf_sizes(cfg, clips: int = 2, patches: int = 2) -> tuple[int, int]:
    """Frames and pixels for a small clip: ``clips`` tubelets (of at least 2 frames) in time,
    ``patches`` patches a side."""
    tubelet = getattr(cfg, "tubelet_size", 1)
    kt, patch = (tubelet[0], tubelet[1]) if isinstance(tubelet, (list, tuple)) else (tubelet, None)
    patch = patch or getattr(cfg, "patch_size", 16)
    patch = patch[0] if isinstance(patch, (list, tuple)) else patch
    frames, pixels = clips * max(int(kt), 2), patches * int(patch)
    for key in ("num_frames", "frames_per_clip"):
        if hasattr(cfg, key):
            setattr(cfg, key, frames)
    for key in ("image_size", "crop_size"):
        if hasattr(cfg, key):
            setattr(cfg, key, pixels)
    return frames, pixels


def _hf_case(model_type: str, class_name: str, fast: bool = True, **config) -> Case:
    """``config``: attributes set after shrinking (``tubelet_size``, ``patch_size``), and ``clips`` /
    ``patches``: how many tubelets in time and patches a side the example clip has."""
    sizes = {k: config.pop(k) for k in ("clips", "patches") if k in config}

    def build():
        import transformers

        torch.manual_seed(0)
        cfg = transformers.CONFIG_MAPPING[model_type]()
        _hf_shrink(cfg)
        for key, value in config.items():  # in the config's own form: an int, or a list per dim
            if hasattr(cfg, key):
                old = getattr(cfg, key)
                if isinstance(old, int) and isinstance(value, (list, tuple)):
                    value = value[0]
                elif isinstance(old, (list, tuple)) and isinstance(value, int):
                    value = [value] * len(old)
                setattr(cfg, key, value)
        frames, pixels = _hf_sizes(cfg, **sizes)
        model = getattr(transformers, class_name)(cfg).eval()
        return model, (_clip((1, frames, getattr(cfg, "num_channels", 3), pixels, pixels)),)

    return Case("transformers", class_name, build, fast=fast, layout="(N, T, C, H, W)", pte_fast=fast)


def transformers_video_classes() -> dict[str, str]:
    """``{model_type: class name}`` of transformers' video classifiers, from its own auto mapping."""
    if importlib.util.find_spec("transformers") is None:
        return {}
    _torchvision_stand_in()  # transformers imports torchvision when it is there
    from transformers.models.auto import modeling_auto

    return dict(modeling_auto.MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES)


def transformers_cases() -> list[Case]:
    if importlib.util.find_spec("transformers") is None:
        return []
    _torchvision_stand_in()  # transformers imports torchvision when it is there
    from transformers.models.auto import modeling_auto

    video = modeling_auto.MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES
    bases = {t: modeling_auto.MODEL_MAPPING_NAMES[t] for t in video if t in modeling_auto.MODEL_MAPPING_NAMES}
    # the classifiers in the default run; their backbones (BaseModelOutput, other heads) in the slow one
    return [_hf_case(t, c) for t, c in video.items()] + [_hf_case(t, c, fast=False) for t, c in bases.items()]


# -------------------------------------------------------------------------------------- torchvision

def _torchvision_stand_in() -> None:
    """torchvision's wheel is built against CUDA torch: beside the CPU torch these machines use, its
    ``_meta_registrations`` fails to import. Only detection ops need it (tests only)."""
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))


def torchvision_cases() -> list[Case]:
    if importlib.util.find_spec("torchvision") is None:
        return []
    _torchvision_stand_in()
    import torchvision
    from torchvision.models import video

    from torchvision_video import VIDEO_MODELS

    def case(name):
        shape = VIDEO_MODELS.get(name, ((1, 3, 8, 112, 112),))[0]

        def build():
            torch.manual_seed(0)
            return _calibrated(getattr(video, name)(num_classes=5), 0), (_clip(shape),)
        # tests/torchvision runs all of them in the default run already: here in the slow run only
        return Case("torchvision", name, build)

    return [case(n) for n in torchvision.models.list_models(module=video)]


# ------------------------------------------------------------------------------------- pytorchvideo

PTV_SMALL: dict[str, Any] = {
    "model_num_class": 5, "head_num_classes": 5, "dropout_rate": 0.0, "head_dropout_rate": 0.0,
    "stem_dim_out": 8, "stem_dim_outs": (16, 2), "head_dim_out": 32, "width_factor": 1.0, "depth_factor": 1.0,
    "input_clip_length": 4, "input_crop_size": 64, "temporal_size": 4, "spatial_size": 32, "depth": 2,
    "patch_embed_dim": 16, "head_pool_kernel_size": (1, 1, 1), "head_pool_kernel_sizes": ((1, 1, 1), (1, 1, 1)),
    "head_activation": None,
}
"""Builder parameter -> small value (applied where the builder has that parameter). Head pools of
one voxel are exact for these builders: their heads average the rest globally. Heads give logits
(``head_activation=None``): r2plus1d's default softmax over random-weight logits saturates to
one-hot maps, whose average hides any error (its table row read 0e+00 everywhere)."""

PTV_LEFT_OUT = {
    "_with_roi_head": "a detection head: takes boxes beside the clip",
    "acoustic": "an audio network (spectrograms, not video)",
    "audio": "an audio-visual network (one pathway is audio)",
}


FAST_FRAMES = 8


def _alpha(params) -> int | None:
    """Frame-rate ratio of a two-pathway builder (SlowFast), ``None`` for one pathway."""
    if isinstance(params.get("input_channels") and params["input_channels"].default, tuple):
        return params["slowfast_fusion_conv_stride"].default[0]
    return None


def _ptv_kwargs(params, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    kwargs = {k: v for k, v in {**PTV_SMALL, **(overrides or {})}.items() if k in params}
    if _alpha(params):  # pooled pathways are concatenated: each pools all its frames into one
        kwargs["head_pool_kernel_sizes"] = ((FAST_FRAMES // _alpha(params), 1, 1), (FAST_FRAMES, 1, 1))
    return kwargs


def _ptv_input(params, kwargs: dict[str, Any]) -> tuple:
    if _alpha(params):  # one clip per pathway, [slow, fast]: the slow one has alpha times fewer frames
        return ([_clip((1, 3, FAST_FRAMES // _alpha(params), 64, 64), 1), _clip((1, 3, FAST_FRAMES, 64, 64), 2)],)
    if "temporal_size" in params:
        return (_clip((1, 3, kwargs["temporal_size"], kwargs["spatial_size"], kwargs["spatial_size"])),)
    if "input_clip_length" in params:
        size = kwargs["input_crop_size"]
        return (_clip((1, 3, kwargs["input_clip_length"], size, size)),)
    return (_clip((1, 3, 8, 64, 64)),)


def pytorchvideo_builders() -> tuple[dict[str, Callable], dict[str, str]]:
    """``{name: builder}`` of the whole-network builders, and ``{name: why}`` of those left out."""
    _torchvision_stand_in()
    import pytorchvideo.models as pm

    found, left = {}, {}
    for info in pkgutil.iter_modules(pm.__path__):
        mod = importlib.import_module(f"pytorchvideo.models.{info.name}")
        for name, fn in vars(mod).items():
            if not (name.startswith("create_") and inspect.isfunction(fn) and fn.__module__ == mod.__name__):
                continue
            if not {"model_num_class", "head_num_classes"} & set(inspect.signature(fn).parameters):
                continue
            why = next((w for k, w in PTV_LEFT_OUT.items() if k in name), None)
            (left.__setitem__(name, why) if why else found.__setitem__(name, fn))
    return found, left


def pytorchvideo_case(name: str, fn: Callable, seed: int = 0, **overrides) -> Case:
    """Builder ``fn`` at :data:`PTV_SMALL` sizes, ``overrides`` on top (where it has the parameter)."""
    params = inspect.signature(fn).parameters

    def build():
        torch.manual_seed(seed)
        kwargs = _ptv_kwargs(params, overrides)
        return _calibrated(fn(**kwargs), seed), _ptv_input(params, kwargs)

    return Case("pytorchvideo", name.removeprefix("create_"), build, fast=True, pte_fast=_alpha(params) is not None)


def pytorchvideo_cases() -> list[Case]:
    if importlib.util.find_spec("pytorchvideo") is None:
        return []
    return [pytorchvideo_case(n, fn) for n, fn in sorted(pytorchvideo_builders()[0].items())]


def all_cases() -> list[Case]:
    return transformers_cases() + torchvision_cases() + pytorchvideo_cases()
