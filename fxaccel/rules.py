"""Rules: pattern (what to find) + check (is it safe here? ``None`` or a reason) + rewrite.

``torch.fx.subgraph_rewriter`` matches ``call_module`` nodes by qualified name, not type, has no
commutativity and no optional nodes, so fxaccel has a small type-aware matcher of its own:
:class:`Pat` trees over ``fx.Node``.

- ``Mod(types, *args)``, ``Fn(functions, *args)``, ``Method(names, *args)``: a call node. Arity is
  exact: a node with more positional arguments or any keyword argument does not match, unless the
  pattern says ``extra=True`` (then its ``where=`` looks at them). ``kwargs={"dim": Any()}`` matches
  keyword arguments by name. Two-argument calls of commutative operators (``+``, ``*``) are tried
  in both operand orders (``commute=`` overrides).
- ``Any(name)`` binds anything; ``Var(name)`` binds a value, and a second ``Var`` of the same name
  must be the very same value; a plain literal (``1``, ``(2, 3, 4)``) must be equal.
- ``Input(name)``: a graph input (placeholder), for rules rooted at what the model is fed.
- ``Alt(*pats)``: alternative spellings; ``Opt(pat)``: an optional call node (when absent, the
  pattern continues at its first argument, so ``Opt(Mod(SE, inner))`` is ``SE(inner) | inner``).

The matcher backtracks: :func:`matches` yields *every* binding set, and a rule takes the first whose
``check`` passes. Distinct call patterns match distinct nodes (a value used twice is a ``Var``). A :class:`Match` knows the nodes it covers, so a rule can ask whether an inner
value leaks out (:meth:`Match.leak`). When a rule finds no match at a candidate node, the deepest
partial match and the reason it stopped are kept in the report (:class:`fxaccel.report.Miss`):
the answer to "why didn't my rule fire?".

Rules of a stage are grouped in an indexed :class:`RuleSet` (by the op or module type at their
root, so a rule only visits candidate nodes) and applied to a fixed point by :func:`apply_rules`,
latest node first, so the largest pattern rooted at a node is found before its parts.

Example: find ``sigmoid(x) * x`` (either operand order) where both ``x`` are the same value::

    >>> import operator, torch
    >>> from fxaccel.rules import Fn, Var, match
    >>> pat = Fn(operator.mul, Var("x"), Fn(torch.sigmoid, Var("x")))
    >>> gm = torch.fx.symbolic_trace(lambda x: torch.sigmoid(x) * x)
    >>> out = [n for n in gm.graph.nodes if n.op == "output"][0].args[0]
    >>> sorted(match(pat, out, gm))
    ['x']

Stability: public (``Rule``, ``RuleSet``, ``Match``, ``Pat``, ``Mod``, ``Fn``, ``Method``, ``Var``,
``Any``, ``Alt``, ``Opt``, ``Input``, ``match``, ``matches``, ``apply_rules``).
"""
from __future__ import annotations

import inspect
import operator
import time
from dataclasses import dataclass
from typing import Any as _Any, Callable, Iterable, Iterator

import torch
from torch import fx, nn

from .dce import eliminate_dead_code
from .report import Miss, PassRecord

COMMUTATIVE = frozenset({operator.add, operator.mul, torch.add, torch.mul, "add", "mul"})


def module_of(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    """The module a ``call_module`` node calls, else ``None``."""
    if not isinstance(node, fx.Node) or node.op != "call_module":
        return None
    return gm.get_submodule(node.target)


# ----------------------------------------------------------------------------- the search state

@dataclass(frozen=True)
class _State:
    """A partial match: bindings and the call nodes covered so far (in match order)."""

    env: dict
    nodes: tuple = ()

    def bind(self, name: str | None, value) -> "_State":
        return self if not name else _State({**self.env, name: value}, self.nodes)

    def cover(self, node: fx.Node) -> "_State":
        return _State(self.env, self.nodes + (node,))


class _Search:
    """One search at one root: the graph, and the deepest point where matching stopped."""

    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.depth = -1
        self.miss: tuple | None = None  # (covered nodes, value where it stopped, why)

    def fail(self, st: _State, value, why: str) -> None:
        if len(st.nodes) > self.depth:
            self.depth, self.miss = len(st.nodes), (st.nodes, value, why)


def _show(value) -> str:
    if isinstance(value, fx.Node):
        return value.name
    return repr(value)


def _target_name(t) -> str:
    if isinstance(t, str):
        return t
    if isinstance(t, type):
        return t.__name__
    mod = getattr(t, "__module__", "") or ""
    name = getattr(t, "__name__", repr(t))
    return f"operator.{name}" if mod == "_operator" else name


def _what(node: fx.Node, gm: fx.GraphModule) -> str:
    """A node as the miss report names it: ``relu6 (call_module ReLU6)``."""
    if node.op == "call_module":
        return f"{node.name} (module {type(gm.get_submodule(node.target)).__name__})"
    if node.op in ("call_function", "call_method"):
        return f"{node.name} ({node.op.replace('call_', '')} {_target_name(node.target)})"
    return f"{node.name} ({node.op})"


def _match_value(pat, value, st: _State, s: _Search) -> Iterator[_State]:
    """Match a pattern argument: a :class:`Pat`, a tuple/list of them, or a literal."""
    if isinstance(pat, Pat):
        yield from pat._match(value, st, s)
    elif isinstance(pat, (tuple, list)):
        if isinstance(value, (tuple, list)) and len(value) == len(pat):
            yield from _match_seq(tuple(pat), tuple(value), st, s)
        else:
            s.fail(st, value, f"expected a sequence of {len(pat)}, got {_show(value)}")
    elif not isinstance(value, fx.Node) and type(value) is type(pat) and value == pat:
        yield st
    else:
        s.fail(st, value, f"expected the constant {pat!r}, got {_show(value)}")


def _match_seq(pats: tuple, values: tuple, st: _State, s: _Search) -> Iterator[_State]:
    if not pats:
        yield st
        return
    for nxt in _match_value(pats[0], values[0], st, s):
        yield from _match_seq(pats[1:], values[1:], nxt, s)


# ----------------------------------------------------------------------------- patterns

class Pat:
    """A pattern over ``fx.Node``; ``name`` binds the matched node (for check and rewrite)."""

    name: str | None = None

    def _match(self, value, st: _State, s: _Search) -> Iterator[_State]:
        raise NotImplementedError

    def keys(self) -> tuple:
        """Index keys of the pattern's root: module types, functions or method names (``None``: any)."""
        return (None,)


class Any(Pat):
    """Matches anything (a node or a literal)."""

    def __init__(self, name: str | None = None):
        self.name = name

    def _match(self, value, st, s):
        yield st.bind(self.name, value)

    def __repr__(self):
        return f"Any({self.name!r})" if self.name else "Any()"


class Var(Pat):
    """Matches any value; a second occurrence of the same name must be the *same* value."""

    def __init__(self, name: str):
        self.name = name

    def _match(self, value, st, s):
        if self.name in st.env:
            bound = st.env[self.name]
            if bound is value or (not isinstance(value, fx.Node) and not isinstance(bound, fx.Node)
                                  and type(bound) is type(value) and bound == value):
                yield st
            else:
                s.fail(st, value, f"{_show(value)} is not {_show(bound)}, the value already bound to {self.name!r}")
            return
        yield st.bind(self.name, value)

    def __repr__(self):
        return f"Var({self.name!r})"


class _Call(Pat):
    kind = ""

    def __init__(self, targets, *args, name: str | None = None, where: Callable | None = None,
                 kwargs: dict | None = None, extra: bool = False, commute: bool | None = None):
        self.targets = tuple(targets) if isinstance(targets, (tuple, list, set, frozenset)) else (targets,)
        self.args = args
        self.kwargs = dict(kwargs or {})
        self.name = name
        self.where = where
        self.extra = extra
        self.commute = (len(args) == 2 and any(t in COMMUTATIVE for t in self.targets)) if commute is None \
            else commute and len(args) == 2

    def _head(self, node: fx.Node, gm: fx.GraphModule) -> bool:
        raise NotImplementedError

    def keys(self) -> tuple:
        return self.targets

    def _match(self, node, st, s):
        if not isinstance(node, fx.Node):
            s.fail(st, node, f"expected {self.kind} {self._targets()}, got the constant {node!r}")
            return
        if not self._head(node, s.gm):
            s.fail(st, node, f"expected {self.kind} {self._targets()}, got {_what(node, s.gm)}")
            return
        if self.name and self.name in st.env and st.env[self.name] is not node:
            s.fail(st, node, f"{node.name} is not {_show(st.env[self.name])}, already bound to {self.name!r}")
            return
        if node in st.nodes:  # one graph node per pattern node: two parts of a block are two nodes
            s.fail(st, node, f"{node.name} is already matched by another part of the pattern")
            return
        st = st.cover(node)
        args, kwargs = tuple(node.args), dict(node.kwargs)
        if len(args) < len(self.args) or (len(args) > len(self.args) and not self.extra):
            s.fail(st, node, f"{node.name} has {len(args)} positional arguments, the pattern takes {len(self.args)}")
            return
        extra_kw = sorted(set(kwargs) - set(self.kwargs))
        if extra_kw and not self.extra:
            s.fail(st, node, f"{node.name} is called with keyword arguments {', '.join(extra_kw)}")
            return
        missing = sorted(set(self.kwargs) - set(kwargs))
        if missing:
            s.fail(st, node, f"{node.name} lacks keyword arguments {', '.join(missing)}")
            return
        orders = [self.args, self.args[::-1]] if self.commute else [self.args]
        names = tuple(self.kwargs)
        for pats in orders:
            for nxt in _match_seq(tuple(pats) + tuple(self.kwargs[k] for k in names),
                                  args[:len(pats)] + tuple(kwargs[k] for k in names), st, s):
                if self.where is not None and not self.where(node, s.gm):
                    s.fail(nxt, node, f"{node.name}: condition {getattr(self.where, '__name__', 'where')} is false")
                    continue
                yield nxt.bind(self.name, node)

    def _targets(self) -> str:
        names = [_target_name(t) for t in self.targets]
        return names[0] if len(names) == 1 else "(" + " | ".join(names) + ")"

    def __repr__(self):
        inner = ", ".join([self._targets(), *map(repr, self.args)])
        return f"{type(self).__name__}({inner}{', name=' + repr(self.name) if self.name else ''})"


class Mod(_Call):
    """A ``call_module`` node whose module is an instance of one of ``targets`` (types)."""

    kind = "module"

    def _head(self, node, gm):
        return node.op == "call_module" and isinstance(gm.get_submodule(node.target), self.targets)


class Fn(_Call):
    """A ``call_function`` node calling one of ``targets``."""

    kind = "function"

    def _head(self, node, gm):
        return node.op == "call_function" and node.target in self.targets


class Method(_Call):
    """A ``call_method`` node calling one of the method names ``targets``."""

    kind = "method"

    def _head(self, node, gm):
        return node.op == "call_method" and node.target in self.targets


class Input(Pat):
    """A graph input (a placeholder node): the root of rules that wrap what the model is fed."""

    def __init__(self, name: str | None = None):
        self.name = name

    def _match(self, node, st, s):
        if isinstance(node, fx.Node) and node.op == "placeholder":
            yield st.cover(node).bind(self.name, node)
        else:
            s.fail(st, node, f"expected a graph input, got {_what(node, s.gm) if isinstance(node, fx.Node) else repr(node)}")

    def keys(self) -> tuple:
        return (Input,)

    def __repr__(self):
        return f"Input({self.name!r})" if self.name else "Input()"


class Alt(Pat):
    """Alternative patterns (spellings of one op), tried in order; each may yield matches."""

    def __init__(self, *alternatives: Pat):
        self.alternatives = alternatives

    def _match(self, value, st, s):
        for alt in self.alternatives:
            yield from _match_value(alt, value, st, s)

    def keys(self) -> tuple:
        return tuple(k for alt in self.alternatives for k in alt.keys())

    def __repr__(self):
        return "Alt(" + ", ".join(map(repr, self.alternatives)) + ")"


class Opt(Pat):
    """An optional call node: ``pat`` where it is present, else its argument ``through`` in its place.

    Present is tried first, so the largest match wins; both are yielded (backtracking).
    """

    def __init__(self, pat: _Call, through: int = 0):
        if not isinstance(pat, _Call) or len(pat.args) <= through:
            raise TypeError(f"Opt takes a call pattern with an argument {through} to stand in for it; got {pat!r}")
        self.pat, self.through = pat, through

    def _match(self, value, st, s):
        yield from self.pat._match(value, st, s)
        yield from _match_value(self.pat.args[self.through], value, st, s)

    def keys(self) -> tuple:
        inner = self.pat.args[self.through]
        return self.pat.keys() + (inner.keys() if isinstance(inner, Pat) else (None,))

    def __repr__(self):
        return f"Opt({self.pat!r})"


def matches(pattern: Pat, node: fx.Node, gm: fx.GraphModule) -> Iterator[dict[str, _Any]]:
    """Every binding set of ``pattern`` rooted at ``node``, largest alternatives first."""
    for st in pattern._match(node, _State({}), _Search(gm)):
        yield st.env


def match(pattern: Pat, node: fx.Node, gm: fx.GraphModule) -> dict[str, _Any] | None:
    """The first binding set of ``pattern`` rooted at ``node``, or ``None`` when it does not match."""
    return next(matches(pattern, node, gm), None)


def node_keys(node: fx.Node, gm: fx.GraphModule) -> Iterable:
    """The index keys under which rules rooted at ``node`` are filed."""
    if node.op == "call_module":
        return inspect.getmro(type(gm.get_submodule(node.target)))
    if node.op in ("call_function", "call_method"):
        return (node.target,)
    if node.op == "placeholder":
        return (Input,)
    return ()


# ----------------------------------------------------------------------------- rules

@dataclass
class Match:
    """A pattern match: the root node, the named bindings and every call node it covers.

    ``ctx`` is the stage's :class:`fxaccel.pipeline.PassContext` (target, example inputs, stage
    options) when the rule runs in a stage, else ``None``.
    """

    root: fx.Node
    env: dict[str, _Any]
    gm: fx.GraphModule
    nodes: tuple[fx.Node, ...] = ()
    ctx: _Any = None

    def __getitem__(self, name: str) -> _Any:
        return self.env[name]

    def __contains__(self, name: str) -> bool:
        return name in self.env

    def get(self, name: str, default=None):
        return self.env.get(name, default)

    def module(self, name: str | None = None) -> nn.Module | None:
        """The module called by the node bound to ``name`` (the root when ``None``), else ``None``."""
        node = self.root if name is None else self.env.get(name)
        return module_of(self.gm, node)

    def leak(self) -> str | None:
        """A reason when a value inside the match is read outside it (the rewrite would hide it)."""
        inside = set(self.nodes)
        for node in self.nodes:
            if node is not self.root and any(u not in inside for u in node.users):
                return f"{node.name} has {len(node.users)} users (a value inside the match is read elsewhere)"
        return None


class Rule:
    """A rewrite: subclass and set ``pattern``, override ``check`` and ``rewrite``.

    ``check(match)`` returns ``None`` when the rewrite is safe, else a reason string that goes into
    the report ("conv has 2 users"); it must not change anything. ``rewrite(match)`` builds the
    replacement and edits ``match.gm`` in place (the pipeline works on a copy of the user's model,
    never the original). ``name`` defaults to the class name.
    """

    pattern: Pat
    name: str | None = None

    def check(self, m: Match) -> str | None:
        return None

    def rewrite(self, m: Match) -> None:
        raise NotImplementedError

    def describe(self, m: Match) -> str:
        """How the report names a match (default: the root node's name, and target for modules)."""
        return f"{m.root.name} ({m.root.target})" if m.root.op == "call_module" else m.root.name

    @property
    def rule_name(self) -> str:
        return self.name or type(self).__name__

    def __add__(self, other: "Rule | RuleSet") -> "RuleSet":
        return RuleSet([self]) + other


class RuleSet:
    """Rules composed with ``+``, indexed by root key. At a node, rules are tried in order."""

    def __init__(self, rules: Iterable[Rule]):
        self.rules = list(rules)
        self._index: dict[_Any, list[Rule]] = {}
        for r in self.rules:
            for key in dict.fromkeys(r.pattern.keys()):  # once per key, in order
                self._index.setdefault(key, []).append(r)

    def __add__(self, other: "Rule | RuleSet") -> "RuleSet":
        return RuleSet(self.rules + (other.rules if isinstance(other, RuleSet) else [other]))

    def candidates(self, node: fx.Node, gm: fx.GraphModule) -> list[Rule]:
        found = {id(r) for key in (*node_keys(node, gm), None) for r in self._index.get(key, ())}
        return [r for r in self.rules if id(r) in found]


MAX_SWEEPS = 50


def _try(rule: Rule, node: fx.Node, gm: fx.GraphModule, ctx):
    """The first match of ``rule`` at ``node`` whose check passes, else ``(None, refusals, search)``."""
    search = _Search(gm)
    refusals: list[tuple[str, str, tuple]] = []
    for st in rule.pattern._match(node, _State({}), search):
        m = Match(node, st.env, gm, st.nodes, ctx)
        reason = rule.check(m)
        if not reason:
            return m, refusals, search
        refusals.append((rule.describe(m), reason, m.nodes))
    return None, refusals, search


def apply_rules(rules: Rule | RuleSet, gm: fx.GraphModule,
                record: PassRecord | Callable[[Rule], PassRecord], ctx=None) -> int:
    """Apply ``rules`` to ``gm`` until none fires; return the number of rewrites.

    Each sweep visits nodes latest first, so a pattern rooted at a node is tried before the patterns
    rooted at its inputs (the largest match wins); a sweep sees what earlier sweeps built, so a rule
    can match blocks another rule made. A rule fires at most once at a node. ``record`` is one
    :class:`PassRecord` for all rules, or a function giving each rule its own. A candidate that
    matched is counted once however many sweeps see it; a refusal is reported when no match at
    that node passed its check, once per region (a smaller match inside a refused one, refused for
    the same reason, says nothing new); otherwise the deepest partial match of a rule is its ``miss``.
    ``ctx`` (the stage's context) reaches every :class:`Match` as ``m.ctx``.
    """
    rules = rules if isinstance(rules, RuleSet) else RuleSet([rules])
    record_of = record if callable(record) else (lambda r: record)
    start, own = time.perf_counter(), 0.0
    total, fired, counted = 0, set(), set()
    refused: dict[tuple, set] = {}  # (rule, reason) -> nodes covered by matches refused for it
    for sweep in range(MAX_SWEEPS):
        rewritten = 0
        for node in reversed(list(gm.graph.nodes)):
            if node.graph is not gm.graph or getattr(node, "_erased", False):
                continue
            for rule in rules.candidates(node, gm):
                if (id(rule), node) in fired:
                    continue
                rec = record_of(rule)
                t0 = time.perf_counter()
                m, refusals, search = _try(rule, node, gm, ctx)
                if m is not None or refusals:
                    if (id(rule), node) not in counted:
                        counted.add((id(rule), node))
                        rec.matched += 1
                elif search.miss is not None and search.depth >= 1:
                    _keep_miss(rec, node, search)
                if m is None:
                    for where, reason, nodes in refusals:
                        seen = refused.setdefault((id(rule), reason), set())
                        if node not in seen:
                            rec.skip(where, reason)
                        seen.update(nodes)
                else:
                    rule.rewrite(m)
                    fired.add((id(rule), node))
                    rec.rewritten += 1
                    rewritten += 1
                elapsed = time.perf_counter() - t0
                rec.seconds += elapsed
                own += elapsed
                if m is not None:
                    break
        if not rewritten:
            break
        total += rewritten
        eliminate_dead_code(gm)
        gm.graph.lint()
        gm.recompile()
    else:
        raise RuntimeError(f"rules {[r.rule_name for r in rules.rules]} still rewrite after {MAX_SWEEPS} sweeps: "
                           "a rewrite produces what it (or another rule) matches again")
    shared = time.perf_counter() - start - own  # walking, dead-code removal, recompiles: split evenly
    for r in rules.rules:
        record_of(r).seconds += shared / len(rules.rules)
    return total


def _keep_miss(rec: PassRecord, root: fx.Node, search: _Search) -> None:
    """Keep ``search``'s deepest partial match as ``rec.miss`` when it goes deeper than the one kept."""
    covered, where, why = search.miss
    if rec.miss is not None and len(rec.miss.matched) >= search.depth:
        return
    rec.miss = Miss(root=root.name, matched=[n.name for n in covered],
                    stopped_at=_show(where), why=why)


# ----------------------------------------------------------------------------- graph edit helpers

def unique_name(gm: nn.Module, hint: str) -> str:
    """A dotted-free submodule name not yet used in ``gm``."""
    base = hint.replace(".", "_") or "block"
    name, i = base, 1
    while hasattr(gm, name):
        name, i = f"{base}_{i}", i + 1
    return name


SOURCE_PATH = "fxaccel_source_module"
"""``node.meta`` key: the module path a call was respelled from (``nn.ReLU`` at ``layer1.act`` ->
``torch.relu``), so a block made from the call later can live at the user's path again."""


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


def shape_of(value: _Any) -> tuple[int, ...] | None:
    """The propagated shape of a node's value (``ShapeProp``'s ``tensor_meta``), else ``None``."""
    meta = value.meta.get("tensor_meta") if isinstance(value, fx.Node) else None
    shape = getattr(meta, "shape", None)
    return None if shape is None else tuple(int(s) for s in shape)


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
        return f"in-place {_target_name(node.target)} on a value with {len(x.users)} users"
    return None


__all__ = [
    "Alt", "Any", "Fn", "Input", "Match", "Method", "Mod", "Opt", "Pat", "Rule", "RuleSet", "Var", "apply_rules", "arg",
    "call_sites", "match", "matches", "module_of", "prune_submodules", "record_provenance",
    "replace_with_function", "shape_of", "unique_name",
]
