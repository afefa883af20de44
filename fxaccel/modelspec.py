"""Turn the command line's MODEL argument into a model and an example input.

MODEL is one of

* a zoo name (``x3d_xs``; the X3D sizes ``XS`` .. ``L`` work too), built with realistic BN;
* a factory spec ``package.module:factory`` or ``path/to/file.py:factory``: ``factory()`` is called
  and must return an ``nn.Module`` (an ``nn.Module`` instance or class works too); keyword
  arguments go in Python call syntax, literals only: ``'torchvision.models.video:r3d_18(num_classes=10)'``
  (quote it in the shell); the input shape comes from ``--input-shape``;
* an artifact path (``.pte``, ``.ptl``, ``.pt``): only ``fxaccel bench`` runs those.

Every problem with the argument raises :class:`SpecError`, whose message names the problem and the
fix in one line: the command line prints it and exits with status 2.

>>> subject = resolve("x3d_xs", input_shape=(1, 3, 4, 32, 32))
>>> subject.kind, tuple(subject.inputs[0].shape)
('zoo', (1, 3, 4, 32, 32))
>>> parse_shape("1,3,4,160,160")
(1, 3, 4, 160, 160)
>>> split_call("torch.nn:Conv3d(3, 8, kernel_size=1)")
('torch.nn:Conv3d', (3, 8), {'kernel_size': 1})

Stability: experimental (used by the command line; the argument forms above are stable).
"""
from __future__ import annotations

import ast
import importlib
import itertools
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from . import zoo
from .errors import SpecError
from .inputs import clone_inputs, describe

ARTIFACT_SUFFIXES = (".pte", ".ptl", ".pt")


@dataclass
class Subject:
    """What MODEL resolved to: ``model`` (``None`` for artifacts), example ``inputs``, a display name."""

    name: str
    kind: str  # "zoo", "factory" or "artifact"
    model: nn.Module | None
    inputs: tuple[torch.Tensor, ...]
    path: Path | None = None
    task: str | None = None  # labelled data the model was trained on (zoo.ZooEntry.task)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,3,4,160,160"`` (or ``1x3x4x160x160``) as a tuple of positive ints."""
    try:
        shape = tuple(int(p) for p in re.split(r"\s*[,x]\s*", text.strip()))
    except ValueError:  # also "" and "1,,3": int("") fails
        shape = ()
    if not shape or any(s <= 0 for s in shape):
        raise SpecError(f"--input-shape {text!r} is not a shape: write positive integers separated "
                        "by commas, e.g. --input-shape 1,3,4,160,160 (N, C, T, H, W)")
    return shape


def parse_inputs(text: str):
    """``--input-shape`` as a call: one shape (``1,3,4,160,160``) is one tensor; shapes separated by
    ``;`` are positional arguments; ``[...]`` groups shapes into one list argument (SlowFast's
    pathways: ``[1,3,2,64,64;1,3,8,64,64]``). Returns a shape, or a tuple of arguments where each is
    a shape or a list of shapes."""
    text = text.strip()
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text + ";"):
        depth += (ch == "[") - (ch == "]")
        if depth < 0:
            raise SpecError(f"--input-shape {text!r} closes a bracket it did not open")
        if ch == ";" and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise SpecError(f"--input-shape {text!r} opens a bracket it does not close")

    def one(part: str):
        if part.startswith("[") and part.endswith("]"):
            return [parse_shape(s) for s in part[1:-1].split(";")]
        return parse_shape(part)

    args = tuple(one(p) for p in parts if p)
    if len(args) == 1 and not isinstance(args[0], list):
        return args[0]
    return args


def _random_call(shapes, seed: int) -> tuple:
    """Random clips for :func:`parse_inputs`' result, as a call (a tuple of positional arguments)."""
    if shapes and all(isinstance(s, int) for s in shapes):
        return (zoo.random_clips(tuple(shapes), seed=seed),)
    seeds = itertools.count(seed)
    return tuple([zoo.random_clips(s, seed=next(seeds)) for s in a] if isinstance(a, list)
                 else zoo.random_clips(a, seed=next(seeds)) for a in shapes)


def resolve(spec: str, input_shape: Sequence[int] | None = None, *, allow_artifact: bool = False,
            seed: int = 0) -> Subject:
    """Resolve ``spec`` (see the module docstring) and build its example input."""
    shape = tuple(input_shape) if input_shape is not None else None
    if spec.endswith(ARTIFACT_SUFFIXES) and ":" not in spec:
        return _artifact(spec, shape, allow_artifact, seed)
    if ":" in spec:
        return _factory(spec, shape, seed)
    return _zoo(spec, shape, seed)


def check_runs(subject: Subject) -> None:
    """Run the model once on its example input so that a wrong shape is a one-line :class:`SpecError`."""
    if subject.model is None:
        return
    shapes = describe(subject.inputs)
    try:
        with torch.no_grad():
            subject.model.eval()(*clone_inputs(subject.inputs))
    except Exception as err:  # any failure here means this input does not fit this model
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpecError(f"{subject.name} does not run on an input of shape {shapes}: {first[:300]}. "
                        "Pass the shape the model expects with --input-shape (N,C,T,H,W for torchvision and "
                        "pytorchvideo, N,T,C,H,W for transformers; [slow;fast] for a list of pathways)") from err


def _zoo(name: str, shape, seed: int) -> Subject:
    try:
        entry = zoo.get(name)
    except KeyError:
        raise SpecError(f"unknown model {name!r}: use a zoo name ({', '.join(zoo.names())}), a factory "
                        "spec package.module:factory or file.py:factory with --input-shape, or (bench "
                        "only) a .pte/.ptl/.pt file") from None
    model = entry.factory()
    call = _random_call(shape, seed) if shape is not None else (entry.example_input(batch=1, seed=seed),)
    return Subject(name, "zoo", model, call, task=entry.task)


def split_call(spec: str) -> tuple[str, tuple, dict]:
    """``"pkg.mod:factory(1, k=2)"`` -> ``("pkg.mod:factory", (1,), {"k": 2})``; no parentheses: no
    arguments. Arguments must be Python literals (numbers, strings, tuples, ...): nothing is run."""
    if not spec.endswith(")") or "(" not in spec:
        return spec, (), {}
    name = spec[:spec.index("(")]
    try:
        call = ast.parse("f" + spec[len(name):], mode="eval").body
        if not isinstance(call, ast.Call):
            raise ValueError("not a call")
        args = tuple(ast.literal_eval(a) for a in call.args)
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg is not None}
        if len(kwargs) != len(call.keywords):
            raise ValueError("**kwargs")
    except (SyntaxError, ValueError) as err:
        raise SpecError(f"the arguments in {spec!r} must be Python literals, e.g. "
                        f"'{name}(num_classes=10)' ({err})") from None
    return name, args, kwargs


def _factory(spec: str, shape, seed: int) -> Subject:
    spec_name, args, kwargs = split_call(spec)
    where, _, attr = spec_name.rpartition(":")
    if not where or not attr:
        raise SpecError(f"factory spec {spec!r} must look like package.module:factory or file.py:factory")
    module = _import(where, spec)
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SpecError(f"{where} has no attribute {attr!r} (from {spec!r})") from None
    if isinstance(obj, nn.Module) and not (args or kwargs):
        model = obj
    elif callable(obj):
        try:
            model = obj(*args, **kwargs)
        except Exception as err:
            call = spec if (args or kwargs) else f"{spec}()"
            raise SpecError(f"calling {call} failed: {type(err).__name__}: {err}. The factory must "
                            "build the model from the arguments given in the spec") from err
    else:
        raise SpecError(f"{spec} is a {type(obj).__name__}, not an nn.Module or a factory returning one")
    if not isinstance(model, nn.Module):
        raise SpecError(f"{spec}() returned a {type(model).__name__}, not an nn.Module")
    if shape is None:
        raise SpecError(f"{spec} needs --input-shape (the shape of one example input, e.g. "
                        "--input-shape 1,3,4,160,160)")
    return Subject(spec, "factory", model.eval(), _random_call(shape, seed))


def _import(where: str, spec: str):
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise SpecError(f"no such file: {where} (from {spec!r})")
        name = f"_fxaccel_spec_{path.stem}_{abs(hash(path.resolve())) & 0xFFFFFF:x}"
        mod_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
        except Exception as err:
            sys.modules.pop(name, None)
            raise SpecError(f"importing {where} failed: {type(err).__name__}: {err}") from err
        return module
    if os.getcwd() not in sys.path and "" not in sys.path:  # like `python -m`: the current directory imports
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as err:
        raise SpecError(f"cannot import {where!r} (from {spec!r}): {err}. Is the package installed, or "
                        "are you in the directory that contains it?") from err
    except Exception as err:
        raise SpecError(f"importing {where} failed: {type(err).__name__}: {err}") from err


def _artifact(spec: str, shape, allow: bool, seed: int) -> Subject:
    path = Path(spec)
    if not allow:
        raise SpecError(f"{spec} is an artifact: only `fxaccel bench` runs artifacts; the other commands "
                        "take a zoo name or a factory spec")
    if not path.is_file():
        raise SpecError(f"no such file: {spec}")
    if shape is None:
        raise SpecError(f"benchmarking {path.name} needs --input-shape (the shape it was exported for, "
                        "e.g. --input-shape 1,3,4,160,160)")
    return Subject(path.name, "artifact", None, _random_call(shape, seed), path)


__all__ = ["ARTIFACT_SUFFIXES", "SpecError", "Subject", "check_runs", "parse_inputs", "parse_shape", "resolve", "split_call"]
