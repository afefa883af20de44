"""The matcher: optional nodes, commutativity, backtracking, exact arity, literals, and the miss
record; plus a property test against a brute-force matcher over random small graphs."""
import itertools
import operator

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import fx, nn

from fxaccel.report import PassRecord
from fxaccel.rules import (Alt, Any, Fn, Input, Match, Method, Mod, Opt, Rule, RuleSet, Var, apply_rules, match,
                           matches)


def _graph(fn):
    gm = fx.symbolic_trace(fn)
    out = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    return gm, out


def _names(env):
    return {k: (v.name if isinstance(v, fx.Node) else v) for k, v in env.items()}


def test_opt_matches_with_and_without_the_optional_node():
    pat = Fn(torch.sigmoid, Opt(Fn(torch.relu, Var("x"), name="r")))
    gm, out = _graph(lambda x: torch.sigmoid(torch.relu(x)))
    assert [_names(e) for e in matches(pat, out, gm)] == [{"x": "x", "r": "relu"}, {"x": "relu"}]
    gm, out = _graph(lambda x: torch.sigmoid(x))
    assert [_names(e) for e in matches(pat, out, gm)] == [{"x": "x"}]


def test_opt_needs_an_argument_to_stand_in():
    with pytest.raises(TypeError, match="Opt takes a call pattern"):
        Opt(Var("x"))


def test_commutative_operators_match_either_operand_order():
    pat = Fn(operator.mul, Var("x"), Fn(torch.sigmoid, Var("x")))
    for fn in (lambda x: x * torch.sigmoid(x), lambda x: torch.sigmoid(x) * x):
        gm, out = _graph(fn)
        assert _names(match(pat, out, gm)) == {"x": "x"}


def test_non_commutative_operators_keep_their_order():
    pat = Fn(operator.sub, Var("x"), Fn(torch.relu, Var("x")))
    gm, out = _graph(lambda x: x - torch.relu(x))
    assert match(pat, out, gm) is not None
    gm, out = _graph(lambda x: torch.relu(x) - x)
    assert match(pat, out, gm) is None
    gm, out = _graph(lambda x: torch.relu(x) * x)  # commute=False turns it off
    assert match(Fn(operator.mul, Var("x"), Fn(torch.relu, Var("x")), commute=False), out, gm) is None


def test_alternatives_backtrack_when_a_later_constraint_fails():
    # the first alternative binds y to relu's input; the second Var("y") must then be the same value
    inner = Alt(Fn(torch.relu, Any("y"), name="a"), Any("y"))
    pat = Fn(operator.add, inner, Var("y"), commute=False)

    def f(x):
        r = torch.relu(x)
        return r + r  # the first alternative binds y = x, but the right side is r

    gm, out = _graph(f)
    assert _names(match(pat, out, gm)) == {"y": "relu"}  # the second alternative, found by backtracking


def test_exact_arity_by_default_extra_when_asked():
    gm, out = _graph(lambda x: torch.flatten(x, 1))
    assert match(Fn(torch.flatten, Any("x")), out, gm) is None
    assert match(Fn(torch.flatten, Any("x"), extra=True), out, gm) is not None
    assert match(Fn(torch.flatten, Any("x"), 1), out, gm) is not None
    assert match(Fn(torch.flatten, Any("x"), 2), out, gm) is None
    gm, out = _graph(lambda x: torch.sum(x, dim=1))
    assert match(Fn(torch.sum, Any("x")), out, gm) is None
    assert _names(match(Fn(torch.sum, Any("x"), kwargs={"dim": Any("d")}), out, gm)) == {"x": "x", "d": 1}


def test_module_patterns_match_by_type_and_method_patterns_by_name():
    gm = fx.symbolic_trace(nn.Sequential(nn.Conv3d(1, 1, 1), nn.ReLU()))
    relu = next(n for n in gm.graph.nodes if n.op == "call_module" and n.target == "1")
    assert _names(match(Mod(nn.ReLU, Mod(nn.Conv3d, Any("x"), name="c")), relu, gm)) == {"x": "input_1", "c": "_0"}
    assert match(Mod(nn.ReLU, Mod(nn.Conv2d, Any("x"))), relu, gm) is None
    gm, out = _graph(lambda x: x.view(-1))
    assert match(Method("view", Any("x"), -1), out, gm) is not None


def test_input_patterns_root_at_placeholders_only():
    gm, out = _graph(lambda x: torch.relu(x))
    x = next(n for n in gm.graph.nodes if n.op == "placeholder")
    assert _names(match(Input("i"), x, gm)) == {"i": "x"}
    assert match(Input(), out, gm) is None
    assert RuleSet([_InputRule()]).candidates(x, gm) and not RuleSet([_InputRule()]).candidates(out, gm)


class _InputRule(Rule):
    pattern = Input("x")


def test_literals_compare_by_type_and_value():
    gm, out = _graph(lambda x: torch.nn.functional.adaptive_avg_pool3d(x, 1))
    f = torch.nn.functional.adaptive_avg_pool3d
    assert match(Fn(f, Any(), 1), out, gm) is not None
    assert match(Fn(f, Any(), 1.0), out, gm) is None
    assert match(Fn(f, Any(), (1, 1, 1)), out, gm) is None


class _Tag(Rule):
    """Tags a relu node; the check refuses the first binding so the rule takes the second."""

    name = "tag"
    pattern = Fn(torch.relu, Alt(Fn(torch.neg, Any("x"), name="n"), Any("x")))
    refused = []

    def check(self, m):
        if "n" in m:
            return "refuse the larger match"
        return None

    def rewrite(self, m):
        m.root.meta["tag"] = m["x"].name


def test_a_rule_takes_the_first_binding_whose_check_passes():
    gm, out = _graph(lambda x: torch.relu(torch.neg(x)))
    rec = PassRecord("tag", "test")
    assert apply_rules(_Tag(), gm, rec) == 1
    relu = next(n for n in gm.graph.nodes if n.target is torch.relu)
    assert relu.meta["tag"] == "neg" and rec.matched == 1 and rec.rewritten == 1
    assert rec.skipped == []  # a refused binding is reported only when no binding passes


def test_match_covers_its_nodes_and_finds_leaks():

    def f(x):
        r = torch.relu(x)
        return torch.sigmoid(r) + r

    gm, out = _graph(f)
    sig = out.args[0]
    env = match(Fn(torch.sigmoid, Fn(torch.relu, Any("x"))), sig, gm)
    m = Match(sig, env, gm, (sig, sig.args[0]))
    assert "relu has 2 users" in m.leak()


def test_two_call_patterns_never_match_one_node():
    # conv(x) + conv(x) spelled once: the shortcut branch must not reuse the main branch's node
    def f(x):
        r = torch.relu(x)
        return r + r

    gm, out = _graph(f)
    assert match(Fn(operator.add, Fn(torch.relu, Var("x")), Fn(torch.relu, Var("x"))), out, gm) is None
    assert match(Fn(operator.add, Var("r"), Var("r")), out, gm) is not None


class _Miss(Rule):
    name = "miss"
    pattern = Fn(operator.mul, Var("x"), Fn(torch.sigmoid, Fn(torch.relu, Var("x"))))

    def rewrite(self, m):
        raise AssertionError("must not fire")


def test_the_deepest_partial_match_is_recorded():
    gm, out = _graph(lambda x: x * torch.sigmoid(torch.tanh(x)))
    rec = PassRecord("miss", "test")
    assert apply_rules(_Miss(), gm, rec) == 0
    assert rec.miss.root == "mul" and rec.miss.matched == ["mul", "sigmoid"]
    assert rec.miss.stopped_at == "tanh" and "expected function relu" in rec.miss.why


def test_ruleset_indexes_by_root_and_keeps_order():
    a, b = _Tag(), _Miss()
    rs = a + b
    assert isinstance(rs, RuleSet) and rs.rules == [a, b]
    gm, out = _graph(lambda x: torch.relu(x) * 2)
    assert rs.candidates(out, gm) == [b]
    assert rs.candidates(out.args[0], gm) == [a]


class _Loop(Rule):
    """Rewrites relu into relu: never converges unless the runner stops it."""

    name = "loop"
    pattern = Fn(torch.relu, Any("x"))

    def rewrite(self, m):
        with m.gm.graph.inserting_after(m.root):
            new = m.gm.graph.call_function(torch.relu, (m["x"],))
        m.root.replace_all_uses_with(new)
        m.gm.graph.erase_node(m.root)


def test_a_rule_that_never_converges_is_a_clear_error():
    gm, _ = _graph(lambda x: torch.relu(x))
    with pytest.raises(RuntimeError, match="still rewrite after"):
        apply_rules(_Loop(), gm, PassRecord("loop", "test"))


# ----------------------------------------------------------------------------- against brute force

_UNARY = (torch.relu, torch.neg)
_BINARY = (operator.add, operator.mul, operator.sub)


@st.composite
def _graphs(draw):
    """A random DAG of unary/binary ops over two placeholders; returns (gm, nodes)."""
    g = fx.Graph()
    values = [g.placeholder("a"), g.placeholder("b")]
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            op = draw(st.sampled_from(_UNARY))
            values.append(g.call_function(op, (draw(st.sampled_from(values)),)))
        else:
            op = draw(st.sampled_from(_BINARY))
            values.append(g.call_function(op, (draw(st.sampled_from(values)), draw(st.sampled_from(values)))))
    g.output(values[-1])
    return fx.GraphModule(nn.Module(), g), [v for v in values if v.op == "call_function"]


@st.composite
def _patterns(draw, depth=2):
    """A small pattern tree: ops, Var leaves named p/q, Opt around unary ops."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return ("var", draw(st.sampled_from("pq")))
    if draw(st.booleans()):
        node = ("call", draw(st.sampled_from(_UNARY)), (draw(_patterns(depth - 1)),))
        return ("opt", node) if draw(st.integers(0, 2)) == 0 else node
    return ("call", draw(st.sampled_from(_BINARY)), (draw(_patterns(depth - 1)), draw(_patterns(depth - 1))))


def _to_pat(t):
    if t[0] == "var":
        return Var(t[1])
    if t[0] == "opt":
        return Opt(_to_pat(t[1]))
    return Fn(t[1], *map(_to_pat, t[2]))


def _expand(t):
    """Every Opt-free tree the pattern stands for."""
    if t[0] == "var":
        return [t]
    if t[0] == "opt":
        return _expand(t[1]) + _expand(t[1][2][0])
    return [("call", t[1], args) for args in itertools.product(*map(_expand, t[2]))]


def _number(t, calls):
    """The tree with each call position numbered (its index in ``calls``)."""
    if t[0] == "var":
        return t
    idx = len(calls)
    calls.append(None)
    calls[idx] = ("call", t[1], tuple(_number(a, calls) for a in t[2]), idx)
    return calls[idx]


def _brute(tree, root, nodes, values):
    """All Var bindings of an Opt-free tree at ``root``: try every assignment of graph nodes to the
    pattern's call positions and of values to its Vars, keeping those that satisfy every constraint."""
    if tree[0] == "var":
        return {frozenset({(tree[1], root.name)})}
    calls: list = []
    _number(tree, calls)
    names = sorted({a[1] for c in calls for a in c[2] if a[0] == "var"})
    found = set()
    for assign in itertools.permutations(nodes, len(calls)):  # distinct pattern nodes, distinct nodes
        if assign[0] is not root:
            continue
        for bind in itertools.product(values, repeat=len(names)):
            env = dict(zip(names, bind))

            def value_of(p):
                return assign[p[3]] if p[0] == "call" else env[p[1]]

            def ok(c):
                n = assign[c[3]]
                if n.target is not c[1] or len(n.args) != len(c[2]):
                    return False
                orders = [c[2], c[2][::-1]] if c[1] in (operator.add, operator.mul) else [c[2]]
                return any(all(value_of(p) is a for p, a in zip(o, n.args)) for o in orders)

            if all(ok(c) for c in calls):
                found.add(frozenset((k, v.name) for k, v in env.items()))
    return found


@settings(max_examples=150, deadline=None)
@given(_graphs(), _patterns())
def test_matcher_finds_exactly_the_brute_force_matches(graph, tree):
    gm, nodes = graph
    values = [n for n in gm.graph.nodes if n.op in ("placeholder", "call_function")]
    pat = _to_pat(tree)
    for root in nodes:
        want = set().union(*(_brute(t, root, nodes, values) for t in _expand(tree)))
        got = {frozenset((k, v.name) for k, v in env.items()) for env in matches(pat, root, gm)}
        assert got == want, (tree, root.name, gm.graph)
