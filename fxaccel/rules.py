"""Rules: pattern (what to find) + check (is it safe here? ``None`` or a reason) + rewrite.

``torch.fx.subgraph_rewriter`` matches ``call_module`` nodes by qualified name, not type, and has no
notion of "this module is a Conv3d", so module patterns need a small type-aware matcher of our own:
:class:`Pat` trees over ``fx.Node``. Rules are indexed by what sits at their root (module type,
function, or method name) so a pass only visits candidate nodes.

Example: find ``sigmoid(x) * x`` where both ``x`` are the same value::

    >>> import operator, torch
    >>> from fxaccel.rules import Fn, Var, match
    >>> pat = Fn(operator.mul, Fn(torch.sigmoid, Var("x")), Var("x"))
    >>> gm = torch.fx.symbolic_trace(lambda x: torch.sigmoid(x) * x)
    >>> out = [n for n in gm.graph.nodes if n.op == "output"][0].args[0]
    >>> sorted(match(pat, out, gm))
    ['x']

Stability: public (``Rule``, ``Pat``, ``Mod``, ``Fn``, ``Method``, ``Var``, ``Any``, ``match``).
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any as _Any, Callable, Iterable

from torch import fx, nn

from .dce import eliminate_dead_code
from .report import PassRecord


def module_of(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    """The module a ``call_module`` node calls, else ``None``."""
    if node.op != "call_module":
        return None
    return gm.get_submodule(node.target)


class Pat:
    """A pattern over ``fx.Node``; ``name`` binds the matched node (for the rewrite to use)."""

    name: str | None = None

    def match(self, node: _Any, gm: fx.GraphModule, env: dict[str, _Any]) -> bool:
        raise NotImplementedError


class Any(Pat):
    """Matches anything (a node or a literal)."""

    def __init__(self, name: str | None = None):
        self.name = name

    def match(self, node, gm, env):
        if self.name:
            env[self.name] = node
        return True


class Var(Pat):
    """Matches any value; a second occurrence of the same name must be the *same* value."""

    def __init__(self, name: str):
        self.name = name

    def match(self, node, gm, env):
        if self.name in env:
            return env[self.name] is node
        env[self.name] = node
        return True


class _Call(Pat):
    def __init__(self, targets, *args: Pat, name: str | None = None, where: Callable | None = None):
        self.targets = targets if isinstance(targets, tuple) else (targets,)
        self.args = args
        self.name = name
        self.where = where

    def _head(self, node, gm) -> bool:
        raise NotImplementedError

    def match(self, node, gm, env):
        if not isinstance(node, fx.Node) or not self._head(node, gm):
            return False
        if len(node.args) < len(self.args):
            return False
        for pat, arg in zip(self.args, node.args):
            if not pat.match(arg, gm, env):
                return False
        if self.where is not None and not self.where(node, gm):
            return False
        if self.name:
            env[self.name] = node
        return True


class Mod(_Call):
    """A ``call_module`` node whose module is an instance of one of ``targets`` (types)."""

    def _head(self, node, gm):
        return node.op == "call_module" and isinstance(gm.get_submodule(node.target), self.targets)


class Fn(_Call):
    """A ``call_function`` node calling one of ``targets``."""

    def _head(self, node, gm):
        return node.op == "call_function" and node.target in self.targets


class Method(_Call):
    """A ``call_method`` node calling one of the method names ``targets``."""

    def _head(self, node, gm):
        return node.op == "call_method" and node.target in self.targets


class Alt(Pat):
    """The first of several alternative patterns that matches (e.g. spellings of one op)."""

    def __init__(self, *alternatives: Pat):
        self.alternatives = alternatives
        self.name = None

    def match(self, node, gm, env):
        for alt in self.alternatives:
            trial = dict(env)
            if alt.match(node, gm, trial):
                env.update(trial)
                return True
        return False


def match(pattern: Pat, node: fx.Node, gm: fx.GraphModule) -> dict[str, _Any] | None:
    """Match ``pattern`` rooted at ``node``; the bindings, or ``None`` when it does not match."""
    env: dict[str, _Any] = {}
    return env if pattern.match(node, gm, env) else None


def root_keys(pattern: Pat) -> tuple:
    """Index keys of a pattern's root: module types, functions or method names."""
    if isinstance(pattern, _Call):
        return pattern.targets
    if isinstance(pattern, Alt):
        return tuple(k for alt in pattern.alternatives for k in root_keys(alt))
    return (None,)  # matches at any node


def node_keys(node: fx.Node, gm: fx.GraphModule) -> Iterable:
    """The index keys under which rules rooted at ``node`` are filed."""
    if node.op == "call_module":
        return inspect.getmro(type(gm.get_submodule(node.target)))
    if node.op in ("call_function", "call_method"):
        return (node.target,)
    return ()


@dataclass
class Match:
    """A pattern match: the root node and the named bindings."""

    root: fx.Node
    env: dict[str, _Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # partial matches: what was left out and why

    def __getitem__(self, name: str) -> _Any:
        return self.env[name]

    def get(self, name: str, default=None):
        return self.env.get(name, default)


class Rule:
    """A rewrite: subclass and set ``pattern``, override ``check`` and ``rewrite``.

    ``check(match, gm)`` returns ``None`` when the rewrite is safe, else a reason string that goes
    into the report ("conv has 2 users"). ``rewrite(match, gm)`` edits ``gm`` in place (the
    pipeline works on a copy of the user's model, never the original). ``name`` defaults to the
    module name of the rule's file.
    """

    pattern: Pat
    name: str | None = None

    def check(self, m: Match, gm: fx.GraphModule) -> str | None:
        return None

    def rewrite(self, m: Match, gm: fx.GraphModule) -> None:
        raise NotImplementedError

    def describe(self, m: Match) -> str:
        """How the report names a match (default: the root node's name and target)."""
        return f"{m.root.name} ({m.root.target})" if m.root.op == "call_module" else m.root.name

    def __add__(self, other: "Rule | RuleSet") -> "RuleSet":
        return RuleSet([self]) + other


class RuleSet:
    """Rules composed with ``+``, indexed by root key; applied in one walk over the graph."""

    def __init__(self, rules: Iterable[Rule]):
        self.rules = list(rules)
        self._index: dict[_Any, list[Rule]] = {}
        for r in self.rules:
            for key in dict.fromkeys(root_keys(r.pattern)):  # once per key, in order
                self._index.setdefault(key, []).append(r)

    def __add__(self, other: "Rule | RuleSet") -> "RuleSet":
        return RuleSet(self.rules + (other.rules if isinstance(other, RuleSet) else [other]))

    def candidates(self, node: fx.Node, gm: fx.GraphModule) -> list[Rule]:
        out: list[Rule] = []
        for key in (*node_keys(node, gm), None):
            out.extend(r for r in self._index.get(key, ()) if r not in out)
        return out


def apply_rules(rules: Rule | RuleSet, gm: fx.GraphModule, record: PassRecord) -> int:
    """Apply ``rules`` at every node (in graph order, one walk); return the number of rewrites.

    A node erased by an earlier rewrite in the same walk is skipped.
    """
    rules = rules if isinstance(rules, RuleSet) else RuleSet([rules])
    start = time.perf_counter()
    rewritten = 0
    for node in list(gm.graph.nodes):
        if node.graph is not gm.graph or getattr(node, "_erased", False):
            continue
        for rule in rules.candidates(node, gm):
            env = match(rule.pattern, node, gm)
            if env is None:
                continue
            m = Match(node, env)
            record.matched += 1
            reason = rule.check(m, gm)
            if reason:
                record.skip(rule.describe(m), reason)
                continue
            rule.rewrite(m, gm)
            rewritten += 1
            record.rewritten += 1
            for note in m.notes:
                record.skip(rule.describe(m), note)
            break
    if rewritten:
        eliminate_dead_code(gm)
        gm.graph.lint()
        gm.recompile()
    record.seconds += time.perf_counter() - start
    return rewritten


# ----------------------------------------------------------------------------- graph edit helpers

def unique_name(gm: nn.Module, hint: str) -> str:
    """A dotted-free submodule name not yet used in ``gm``."""
    base = hint.replace(".", "_") or "block"
    name, i = base, 1
    while hasattr(gm, name):
        name, i = f"{base}_{i}", i + 1
    return name


def replace_with_function(gm: fx.GraphModule, node: fx.Node, target, args: tuple, kwargs=None) -> fx.Node:
    """Replace ``node`` by ``target(*args, **kwargs)`` (a ``call_function``), keeping its meta."""
    with gm.graph.inserting_after(node):
        new = gm.graph.call_function(target, args, kwargs or {})
    node.replace_all_uses_with(new)
    new.meta.update(node.meta)
    gm.graph.erase_node(node)
    return new


def prune_submodules(gm: fx.GraphModule) -> None:
    """Delete every submodule *path* no node uses.

    ``GraphModule.delete_all_unused_submodules`` walks ``named_modules()``, which lists a module
    once even when it hangs at two paths; after a rule moves a BN into a block, the BN's old path
    would survive and the state dict would hold its tensors twice. This works on paths.
    """
    used: set[str] = set()
    for node in gm.graph.nodes:
        if node.op in ("call_module", "get_attr"):
            parts = str(node.target).split(".")
            used.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            if node.op == "call_module":
                used.update(f"{node.target}.{p}" for p, _ in gm.get_submodule(node.target).named_modules(remove_duplicate=False) if p)
    for path, _ in list(gm.named_modules(remove_duplicate=False)):
        if path and path not in used and not _ancestor_deleted(path, used):
            parent, _, leaf = path.rpartition(".")
            owner = gm.get_submodule(parent) if parent else gm
            if hasattr(owner, leaf):
                delattr(owner, leaf)


def _ancestor_deleted(path: str, used: set[str]) -> bool:
    parts = path.split(".")
    return any(".".join(parts[:i]) not in used for i in range(1, len(parts)))


def call_sites(gm: fx.GraphModule, target: str) -> int:
    """How many nodes call the submodule ``target`` (more than one: shared weights)."""
    return sum(1 for n in gm.graph.nodes if n.op == "call_module" and n.target == target)


def record_provenance(gm: fx.GraphModule, new: nn.Module, old: nn.Module) -> None:
    """Note that ``new``'s tensors were converted from ``old``'s (same names, same order).

    Transmute's state-dict map follows tensors by identity; a rule that converts weights (a
    Linear into a 1x1x1 conv) records where they came from so vanilla checkpoints still load.
    """
    prov = gm.meta.setdefault("fxaccel_provenance", {})
    for (_, a), (_, b) in zip(new.state_dict(keep_vars=True).items(), old.state_dict(keep_vars=True).items()):
        prov[id(a)] = b


def arg(node: fx.Node, index: int, name: str, default: _Any = None) -> _Any:
    """Argument ``name`` of a call node, given positionally at ``index`` or by keyword."""
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def inplace_conflict(node: fx.Node, x: _Any, inplace: bool) -> str | None:
    """Reason not to turn an in-place op on ``x`` into an out-of-place one, or ``None``.

    An in-place op mutates ``x``; any other reader of ``x`` would see the change, so dropping
    ``inplace`` is exact only when the op is ``x``'s only user.
    """
    if inplace and isinstance(x, fx.Node) and len(x.users) > 1:
        return f"in-place {node.target} on a value with {len(x.users)} users"
    return None


__all__ = [
    "Alt", "Any", "Fn", "arg", "Match", "Method", "Mod", "Pat", "Rule", "RuleSet", "Var", "apply_rules", "match",
    "call_sites", "module_of", "prune_submodules", "record_provenance", "replace_with_function", "unique_name",
]
