"""Example inputs and outputs as pytrees: normalised once at the edges, with errors that say the fix.

A model's inputs are whatever its ``forward`` takes: one clip, several tensors, a *list* of pathways
(SlowFast), keyword inputs (``pixel_values=``), optional arguments left at their defaults. fxaccel
holds them as one **call**: a tuple of positional arguments, each a pytree (tensors in tuples,
lists and dicts; ``None`` and Python scalars as constants). Keyword inputs are bound to their
positions through the signature, so every stage runs ``model(*call)``. Outputs may be any pytree
too (tuples, dicts, ``ModelOutput``, dataclasses): :func:`output_leaves` names every tensor in them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils import _pytree as pytree

_CONSTANTS = (type(None), bool, int, float, str, torch.dtype, torch.device)


def as_input_tuple(example_inputs: Any, *, required: bool = False, what: str = "example_inputs",
                   model: nn.Module | None = None) -> tuple | None:
    """Normalise ``example_inputs`` to a call: a tuple of positional arguments (pytrees).

    A tensor is the one argument; a tuple (or a list of tensors) holds the positional arguments,
    each a tensor or a nested list/tuple/dict of them (``([slow, fast],)`` for SlowFast); a dict
    holds keyword arguments, bound to positions through ``model.forward``'s signature (skipped
    parameters take their defaults).
    """
    if example_inputs is None:
        if required:
            raise ValueError(f"{what} is required: pass the model's inputs as you would call it (a tensor, a "
                             "tuple of positional arguments, or a dict of keyword arguments), e.g. "
                             "fxaccel.zoo.example_input('XS')")
        return None
    if isinstance(example_inputs, torch.Tensor):
        call = (example_inputs,)
    elif isinstance(example_inputs, tuple) or (
            isinstance(example_inputs, list) and all(isinstance(t, torch.Tensor) for t in example_inputs)):
        call = tuple(example_inputs)
    elif isinstance(example_inputs, Mapping):
        call = _bind_keywords(model, dict(example_inputs), what)
    else:
        raise TypeError(f"{what} must be a tensor, a tuple of positional arguments or a dict of keyword "
                        f"arguments, got {type(example_inputs).__name__}")
    bad = [type(x).__name__ for x in pytree.tree_leaves(call) if not isinstance(x, (torch.Tensor, *_CONSTANTS))]
    if bad:
        raise TypeError(f"{what} may hold tensors (in tuples, lists and dicts), None and Python scalars; "
                        f"got {', '.join(sorted(set(bad)))}")
    if not input_tensors(call):
        raise ValueError(f"{what} holds no tensor: pass the tensors the model's forward takes")
    if model is not None:
        _check_arity(model, call, what)
    return call


def _forward_signature(model: nn.Module) -> inspect.Signature | None:
    try:
        return inspect.signature(model.forward)
    except (TypeError, ValueError):
        return None


def positional_parameters(module: nn.Module) -> list[inspect.Parameter]:
    """The parameters of ``module.forward`` a call can pass by position (none when it has no
    signature)."""
    sig = _forward_signature(module)
    params = sig.parameters.values() if sig is not None else ()
    return [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def positional_call(module: nn.Module, args: tuple, kwargs: dict) -> tuple:
    """``module(*args, **kwargs)`` as positional arguments alone, defaults filled in between; a
    ``TypeError`` names a keyword no positional parameter takes or a parameter not given."""
    params = positional_parameters(module)
    names = [p.name for p in params]
    unknown = [k for k in kwargs if k not in names]
    if unknown:
        raise TypeError(f"{type(module).__name__}.forward has no positional parameter "
                        f"{', '.join(map(repr, unknown))} (parameters: {', '.join(names)})")
    last = max([len(args) - 1] + [names.index(k) for k in kwargs])
    if last >= len(params):
        raise TypeError(f"{type(module).__name__}.forward takes {len(params)} positional arguments")
    call = []
    for i, p in enumerate(params[:last + 1]):
        value = args[i] if i < len(args) else kwargs.get(p.name, p.default)
        if value is p.empty:
            raise TypeError(f"{type(module).__name__}.forward needs {p.name!r}, which is not given")
        call.append(value)
    return tuple(call)


def _bind_keywords(model: nn.Module | None, kwargs: dict, what: str) -> tuple:
    """Keyword inputs as positional arguments, defaults filled in between."""
    if model is None or _forward_signature(model) is None:
        raise TypeError(f"{what} as a dict (keyword arguments) needs the model to bind them: pass a tuple of "
                        "positional arguments instead")
    try:
        return positional_call(model, (), kwargs)
    except TypeError as err:
        raise TypeError(f"{what}: {err}") from None


def _check_arity(model: nn.Module, call: tuple, what: str) -> None:
    sig = _forward_signature(model)
    if sig is None:
        return
    try:
        sig.bind(*call)
    except TypeError as err:
        hint = (" A model that takes a list of tensors (SlowFast's pathways) takes it as one argument: "
                "pass ([slow, fast],)." if len(call) > 1 else "")
        raise TypeError(f"{what} do not fit {type(model).__name__}.forward{sig}: {err}.{hint}") from None


def input_tensors(call: Any) -> list[torch.Tensor]:
    """The tensors of a call (or of any pytree), in pytree order."""
    return [x for x in pytree.tree_leaves(call) if isinstance(x, torch.Tensor)]


def first_tensor(call: Any) -> torch.Tensor:
    """The first input tensor: what batch size and clip shape are read from."""
    return input_tensors(call)[0]


def map_tensors(fn, call: Any) -> Any:
    """``call`` with ``fn`` applied to every tensor (structure, constants kept)."""
    return pytree.tree_map(lambda x: fn(x) if isinstance(x, torch.Tensor) else x, call)


def clone_inputs(call: tuple) -> tuple:
    """Copies of a call's tensors: a model may write into its input."""
    return map_tensors(torch.Tensor.clone, call)


def describe(call: Any) -> str:
    """A call's structure with shapes for tensors: ``(1, 3, 4, 64, 64)`` or ``[(1, 3, 4, ..), (..)]``."""
    if isinstance(call, torch.Tensor):
        return str(tuple(call.shape))
    if isinstance(call, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in call.items()) + "}"
    if isinstance(call, (list, tuple)):
        inner = ", ".join(describe(v) for v in call)
        return f"[{inner}]" if isinstance(call, list) else inner
    return repr(call)


def output_leaves(out: Any, path: str = "output") -> list[tuple[str, torch.Tensor]]:
    """Every tensor in a model's output with its path (``output['logits']``, ``output[0][1]``), in
    pytree order (dicts and ``ModelOutput`` by insertion, as ``torch.export`` flattens them).
    Tuples, lists, named tuples, mappings and dataclasses are walked; other leaves are not tensors."""
    if isinstance(out, torch.Tensor):
        return [(path, out)]
    if isinstance(out, Mapping):
        return [leaf for k, v in out.items() for leaf in output_leaves(v, f"{path}[{k!r}]")]
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return [leaf for f in dataclasses.fields(out) for leaf in output_leaves(getattr(out, f.name), f"{path}.{f.name}")]
    if isinstance(out, (list, tuple)):
        return [leaf for i, v in enumerate(out) for leaf in output_leaves(v, f"{path}[{i}]")]
    return []


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put modules in eval mode and restore every submodule's own ``training`` flag afterwards.

    Running a model in train mode would update BN running statistics: a stage must not touch them.
    Exported (pt2e) GraphModules refuse ``.eval()``; they are traced already and are left as they are.
    """
    flags = [(m, m.training) for root in modules for m in root.modules()]
    try:
        for root in modules:
            with contextlib.suppress(NotImplementedError):
                root.eval()
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def run(model: nn.Module, inputs: tuple, *, what: str = "the model") -> Any:
    """Run ``model`` on copies of ``inputs`` (a model may write into its input) in eval mode without
    gradients; a failure names the inputs' structure and shapes."""
    with torch.no_grad(), eval_mode(model):
        try:
            return model(*clone_inputs(inputs))
        except Exception as err:
            raise bad_inputs(what, inputs, err) from err


def bad_inputs(what: str, inputs: tuple, err: Exception) -> ValueError:
    """The error for a model that fails on its example inputs, naming their structure and shapes."""
    while err.__cause__ is not None:  # ShapeProp wraps the model's own error
        err = err.__cause__
    first = (str(err).strip().splitlines() or [""])[0]
    return ValueError(
        f"running {what} on example inputs of shape {describe(tuple(inputs))} failed: {type(err).__name__}: {first}. "
        f"Check that they are what {what}'s forward takes, as you would call it (structure, rank, sizes, "
        "layout: torchvision and pytorchvideo clips are (N, C, T, H, W), transformers' (N, T, C, H, W))"
    )


def verify_outputs(stage: str, model: nn.Module, result: nn.Module, inputs: tuple, report, rtol: float = 1e-5,
                   sqnr_floor: float | None = None) -> None:
    """Compare ``result`` against ``model`` on the example inputs; record the error in ``report``.

    A safety net under the per-pass proofs: a stage that changed the numbers fails loudly. Every
    tensor of the output is compared, whatever its structure (tuples, dicts, ``ModelOutput``); a
    changed structure fails, and so does an output with no tensor in it (nothing would be checked).
    With ``sqnr_floor`` (a reduced-precision result: rounding is not a bug) the worst output SQNR
    must reach it instead of the relative error staying within ``rtol``.
    """
    from .numerics import relative_error, sqnr_db

    pairs = paired_leaves(run(model, inputs), run(result, inputs), what=stage)
    if sqnr_floor is not None:
        db = min(sqnr_db(r, o) for _, r, o in pairs)
        report.extra["output_sqnr_db"] = round(float(db), 2)
        if db < sqnr_floor:
            raise AssertionError(f"{stage}'s output is {db:.1f} dB from the model's, below the {sqnr_floor} dB "
                                 "floor: please report it")
        return
    errors = {path: relative_error(o, r) for path, r, o in pairs}
    path, err = max(errors.items(), key=lambda kv: kv[1])
    report.extra["max_relative_error"] = float(f"{err:.3g}")
    if err > rtol:
        raise AssertionError(
            f"{stage} changed the model's output {path} (relative error {err:.2e} > {rtol:g}): a pass is wrong. "
            "Rerun with skip=[...] to find it and please report it"
        )


def paired_leaves(reference: Any, got: Any, *, what: str) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(path, reference tensor, got tensor)`` for every tensor of ``reference``: the two outputs
    must have the same tensor paths and shapes, and at least one tensor."""
    ref, out = dict(output_leaves(reference)), dict(output_leaves(got))
    if not ref:
        raise ValueError(f"the model's output ({type(reference).__name__}) holds no tensor: {what} has nothing "
                         "to verify")
    if ref.keys() != out.keys():
        missing, extra = sorted(ref.keys() - out.keys()), sorted(out.keys() - ref.keys())
        raise AssertionError(f"{what} changed the output's structure: missing {missing}, unexpected {extra}")
    for path, r in ref.items():
        if tuple(r.shape) != tuple(out[path].shape):
            raise AssertionError(f"{what} changed the shape of {path}: {tuple(out[path].shape)} vs the model's "
                                 f"{tuple(r.shape)}")
    return [(path, r, out[path]) for path, r in ref.items()]
