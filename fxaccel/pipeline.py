"""Stages, the pass registry, pass ordering and the stage runner.

A *pass* is registered in a stage with ``register_pass``. It can be

- a :class:`fxaccel.rules.Rule` or ``RuleSet`` (pattern + check + rewrite; the runner walks the graph),
- a function ``fn(gm, ctx) -> GraphModule | None`` (a *graph pass*: edit ``gm`` in place or return
  a new one), or
- a ``torch.fx.passes.infra.pass_base.PassBase`` instance (its ``PassResult.graph_module`` is kept).

Order within a stage: registration order, constrained by ``before=`` / ``after=``; resolved with
networkx as a deterministic topological sort, with an error naming the cycle when there is one.
Consecutive rules run together as one indexed ``RuleSet`` to a fixed point
(:func:`fxaccel.rules.apply_rules`): a rule sees what the others built, whatever their order. Where
two rules match at the same node, the one ordered first is tried first; so ``before=``/``after=``
between rules are needed only where one must win over another.

Where a pass applies is declared at registration with ``when=`` (:class:`When`: targets, export
formats, quantization flows, root module only); the runner skips it elsewhere.

Stability: public (``register_pass``, ``unregister_pass``, ``list_passes``, ``PassContext``, ``When``,
``STAGES``).
"""
from __future__ import annotations

import contextlib
import importlib
import pkgutil
import time
from dataclasses import dataclass
from typing import Any, Iterable

import networkx as nx
from torch import fx
from torch.fx.passes.infra.pass_base import PassBase

from .errors import PassError
from .options import DeployOptions, LowerOptions, QuantizeOptions
from .report import PassRecord, Report
from .rules import Rule, RuleSet, apply_rules
from .targets import Target

STAGES = ("canonicalize", "transmute", "deploy", "quantize", "lower")


@dataclass
class PassContext:
    """What a pass may read: the stage, target, example inputs, the stage's typed options
    (:mod:`fxaccel.options`), the model being rewritten (``root``) and its report record."""

    stage: str
    target: Target
    example_inputs: tuple | None
    report: Report
    record: PassRecord = None  # type: ignore[assignment]  (set per pass by the runner)
    options: DeployOptions | QuantizeOptions | LowerOptions | None = None
    root: fx.GraphModule | None = None


@dataclass(frozen=True)
class When:
    """Where a pass applies; the runner checks it, so a pass body has no guard lines.

    ``target``: attributes the deploy target must have (``{"conv3d": False}``: targets without a
    native 3-D convolution); ``options``: values the stage's options must have
    (``{"channels_last": True}``); ``formats``: export formats (lower stage); ``flows``:
    quantization flows (``"eager"``, ``"pt2e"``); ``root``: only the model itself, not GraphModules
    nested in opaque leaves; ``inputs``: only when example inputs were given. Empty fields do not
    constrain.
    """

    target: dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    formats: tuple[str, ...] = ()
    flows: tuple[str, ...] = ()
    root: bool = False
    inputs: bool = False

    def holds(self, gm: fx.GraphModule, ctx: "PassContext") -> bool:
        if self.target and any(getattr(ctx.target, k) != v for k, v in self.target.items()):
            return False
        if self.options and any(getattr(ctx.options, k) != v for k, v in self.options.items()):
            return False
        if self.formats and getattr(ctx.options, "format", None) not in self.formats:
            return False
        if self.flows and getattr(ctx.options, "flow", None) not in self.flows:
            return False
        if self.root and ctx.root is not None and gm is not ctx.root:
            return False
        return not (self.inputs and ctx.example_inputs is None)


ALWAYS = When()


@dataclass
class _Entry:
    name: str
    stage: str
    fn: Any
    before: tuple[str, ...]
    after: tuple[str, ...]
    index: int
    when: When = ALWAYS

    @property
    def is_rule(self) -> bool:
        return isinstance(self.fn, (Rule, RuleSet))


_REGISTRY: dict[str, dict[str, _Entry]] = {s: {} for s in STAGES}
_COUNTER = [0]
_BUILTINS_LOADED: set[str] = set()


def _as_names(x: str | Iterable[str]) -> tuple[str, ...]:
    return (x,) if isinstance(x, str) else tuple(x)


def _default_name(fn: Any) -> str:
    name = getattr(fn, "rule_name", None) or getattr(fn, "name", None) or getattr(fn, "__name__", None) or type(fn).__name__
    return str(name)


def register_pass(
    pass_: Any = None,
    *,
    stage: str = "transmute",
    name: str | None = None,
    before: str | Iterable[str] = (),
    after: str | Iterable[str] = (),
    replace: bool = False,
    when: When = ALWAYS,
):
    """Register a pass in ``stage``; usable directly or as a decorator.

    ``before`` / ``after``: pass names this one must run before / after (only where it depends on
    them); ``when``: where it applies (:class:`When`); ``replace``: replace a pass of that name.

    >>> import torch, fxaccel
    >>> @fxaccel.register_pass(stage="transmute", name="count_nodes", after="conv_bn_act")
    ... def count_nodes(gm, ctx):
    ...     ctx.record.note(f"{len(gm.graph.nodes)} nodes")
    >>> "count_nodes" in fxaccel.list_passes("transmute")
    True
    >>> fxaccel.unregister_pass("count_nodes", stage="transmute")
    """
    if stage not in _REGISTRY:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")

    def _register(fn):
        if not (isinstance(fn, (Rule, RuleSet, PassBase)) or callable(fn)):
            raise TypeError(f"a pass is a Rule, RuleSet, PassBase or callable(gm, ctx); got {fn!r}")
        pname = name or _default_name(fn)
        if stage not in _BUILTINS_LOADED and not _is_builtin(fn):
            _load_builtins(stage)  # so before=/after= can name built-ins and duplicates are caught
        if pname in _REGISTRY[stage] and not replace:
            raise ValueError(f"a pass named {pname!r} is already registered in stage {stage!r}; "
                             "pass replace=True to replace it or choose another name")
        _COUNTER[0] += 1
        _REGISTRY[stage][pname] = _Entry(pname, stage, fn, _as_names(before), _as_names(after), _COUNTER[0], when)
        return fn

    return _register if pass_ is None else _register(pass_)


def unregister_pass(name: str, *, stage: str = "transmute") -> None:
    """Remove a registered pass (built-in or user)."""
    _load_builtins(stage)
    if _REGISTRY[stage].pop(name, None) is None:
        raise KeyError(f"no pass named {name!r} in stage {stage!r}")


def _is_builtin(fn: Any) -> bool:
    mod = getattr(fn, "__module__", "") or type(fn).__module__
    return mod.startswith("fxaccel.passes.")


def _load_builtins(stage: str) -> None:
    """Import ``fxaccel.passes.<stage>``, whose modules register the built-in passes."""
    if stage in _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED.add(stage)
    importlib.import_module(f"fxaccel.passes.{stage}")


def register_modules(package: str, path: Iterable[str]) -> None:
    """Import every public module of a pass package, in name order; each registers its passes.

    A package's ``__init__`` calls this, so a new rule is one new file: nothing lists it.
    Registration order is name order; where order matters, a pass says so with ``before=``/``after=``.
    """
    for info in sorted(pkgutil.iter_modules(path), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


def list_passes(stage: str) -> list[str]:
    """Names of the passes of ``stage`` in the order they run."""
    return [e.name for e in _ordered(stage)]


def _ordered(stage: str) -> list[_Entry]:
    _load_builtins(stage)
    entries = _REGISTRY[stage]
    g = nx.DiGraph()
    g.add_nodes_from(entries)
    for e in entries.values():
        for other in e.after:
            if other in entries:
                g.add_edge(other, e.name)
        for other in e.before:
            if other in entries:
                g.add_edge(e.name, other)
    try:
        order = list(nx.lexicographical_topological_sort(g, key=lambda n: entries[n].index))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(g)
        names = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
        raise ValueError(f"pass order in stage {stage!r} has a cycle: {names}; "
                         "fix the before=/after= declarations") from None
    return [entries[n] for n in order]


def _graph_modules(root: fx.GraphModule) -> list[tuple[str, fx.GraphModule]]:
    """The root and every GraphModule nested inside opaque leaves (traced children)."""
    return [(path, m) for path, m in root.named_modules() if isinstance(m, fx.GraphModule)]


def _run_one(entry: _Entry, gm: fx.GraphModule, ctx: PassContext) -> fx.GraphModule:
    fn = entry.fn
    start = time.perf_counter()
    if isinstance(fn, PassBase):
        result = fn(gm)
        out = result.graph_module if result is not None else gm
    else:
        out = fn(gm, ctx)
        out = gm if out is None else out
    ctx.record.seconds += time.perf_counter() - start
    if not isinstance(out, fx.GraphModule):
        raise TypeError(f"pass {entry.name!r} returned {type(out).__name__}, expected a GraphModule or None")
    return out


def _groups(entries: list[_Entry]) -> list[list[_Entry]]:
    """Consecutive rule entries form one group (applied together); a graph pass is a group of its own."""
    groups: list[list[_Entry]] = []
    for e in entries:
        last = groups[-1] if groups else None
        if e.is_rule and last and last[0].is_rule:
            last.append(e)
        else:
            groups.append([e])
    return groups


def _run_rules(group: list[_Entry], gm: fx.GraphModule, ctx: PassContext, records: dict[str, PassRecord]) -> None:
    owner: dict[int, PassRecord] = {}
    rules: list[Rule] = []
    for e in group:
        if not e.when.holds(gm, ctx):
            continue
        members = e.fn.rules if isinstance(e.fn, RuleSet) else [e.fn]
        rules += members
        owner.update({id(r): records[e.name] for r in members})
    if rules:
        apply_rules(RuleSet(rules), gm, lambda r: owner[id(r)], ctx)


def _nested_inputs(gm: fx.GraphModule, inputs: tuple | None) -> dict[str, tuple | None]:
    """Each nested GraphModule's own example inputs (what it gets when ``gm`` runs on ``inputs``):
    a pass on a nested graph reads those, never the root's (a patch embedding inside a transformer
    gets a permuted clip, not the model's input)."""
    from .tracing import VARIES, record_calls

    nested = [(p, m) for p, m in _graph_modules(gm) if p]
    if inputs is None or not nested:
        return {}
    calls = record_calls(gm, inputs, modules=[m for _, m in nested], keep_tensors=True)
    return {p: calls.get(id(m)) if calls.get(id(m)) is not VARIES else None for p, m in nested}


def run_stage(stage: str, gm: fx.GraphModule, ctx: PassContext, *, skip: Iterable[str] = ()) -> fx.GraphModule:
    """Run every pass of ``stage`` on ``gm`` and on GraphModules nested in it, in order; a pass on a
    nested graph sees that graph's own example inputs (``None`` where the example does not reach it)."""
    skip = set(skip)
    nested_inputs = _nested_inputs(gm, ctx.example_inputs)
    root_inputs = ctx.example_inputs
    try:
        return _run_groups(stage, gm, ctx, skip, nested_inputs, root_inputs)
    finally:
        ctx.example_inputs = root_inputs


def _run_groups(stage, gm, ctx, skip, nested_inputs, root_inputs) -> fx.GraphModule:
    for group in _groups([e for e in _ordered(stage) if e.name not in skip]):
        records = {}
        for e in group:
            records[e.name] = ctx.report.record(e.name)
            records[e.name].stage = stage
        for path, sub in reversed(_graph_modules(gm)):  # innermost first; root last
            ctx.example_inputs = nested_inputs.get(path) if path else root_inputs
            if group[0].is_rule:
                with _named_failure(group, path, sub):
                    _run_rules(group, sub, ctx, records)
                _answer_for_originals(sub)
                continue
            entry = group[0]
            if not entry.when.holds(sub, ctx):
                continue
            ctx.record = records[entry.name]
            with _named_failure(group, path, sub):
                out = _run_one(entry, sub, ctx)
            if out is not sub:
                out = _keep_nested(sub, out)
                if path:
                    parent, _, leaf = path.rpartition(".")
                    setattr(gm.get_submodule(parent) if parent else gm, leaf, out)
                else:
                    gm = out
            _answer_for_originals(out)
    return gm


_INTERNAL = (AttributeError, TypeError, KeyError, IndexError, StopIteration)
"""Errors a pass raises only by mistake (its own errors are DeployError, ValueError, ...)."""


@contextlib.contextmanager
def _named_failure(group: list[_Entry], path: str, sub: fx.GraphModule):
    """A pass's internal error becomes a :class:`PassError` naming the pass, the graph and the way
    round it, never a bare ``AttributeError`` from deep inside fxaccel."""
    try:
        yield
    except _INTERNAL as err:
        names = ", ".join(repr(e.name) for e in group)
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise PassError(
            f"pass {names} failed on graph {path or '<root>'} ({type(sub).__name__}): {type(err).__name__}: "
            f"{first}. Run without it (skip=[{names}]) and please report it with the model") from err


def _keep_nested(old: fx.GraphModule, new: fx.GraphModule) -> fx.GraphModule:
    """A pass that returned a new graph for a nested one: the new one keeps the original module."""
    from .tracing import NestedGraph

    if isinstance(old, NestedGraph) and not isinstance(new, NestedGraph) and old.original is not None:
        return NestedGraph.of(new, old.original)
    return new


def _answer_for_originals(sub: fx.GraphModule) -> None:
    """Right after a pass: opaque code around a nested graph may read attributes of what it replaced
    (a later pass in this stage may run the whole model)."""
    from .tracing import NestedGraph

    if isinstance(sub, NestedGraph):
        sub.answer_for_originals()
