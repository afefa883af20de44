"""Pictures of a model's graph before and after fxaccel, with efficient blocks highlighted.

:func:`to_networkx` turns a traced ``GraphModule`` into a ``networkx.DiGraph`` whose nodes carry a
``label`` and a ``kind`` (``"block"`` for efficient blocks, ``"opaque"`` for untraceable leaves,
``"module"``, ``"function"``, ``"io"``). :func:`to_dot` writes Graphviz DOT text for one or more
graphs side by side (render it with ``dot -Tsvg``, no Python package needed). :func:`to_svg` draws
the same picture itself (a layered layout: one row per depth from the inputs), so an SVG needs no
Graphviz install; when the ``dot`` program is on ``PATH`` it is used instead for a nicer layout.

>>> import torch, fxaccel
>>> model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.BatchNorm3d(4), torch.nn.ReLU())
>>> after = fxaccel.transmute(model.eval(), torch.randn(1, 3, 4, 8, 8))
>>> text = to_dot({"before": fxaccel.trace(model), "after": after})
>>> "Conv3dBnAct" in text and text.startswith("digraph")
True

Stability: experimental (the picture's style may change).
"""
from __future__ import annotations

import html
import shutil
import subprocess
from typing import Mapping

import networkx as nx
from torch import fx

from .blocks.base import EfficientBlock

# fill colours per node kind (DOT and SVG alike)
COLORS = {"block": "#8fd18f", "opaque": "#f4a6a6", "module": "#dfe8f5", "function": "#f5f5f5", "io": "#ffffff"}


def _kind(gm: fx.GraphModule, node: fx.Node) -> str:
    if node.op in ("placeholder", "output"):
        return "io"
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        if isinstance(mod, EfficientBlock):
            return "block"
        # a module neither from torch nor a block was kept whole: untraceable (or a user-named leaf)
        return "module" if type(mod).__module__.startswith("torch.") else "opaque"
    return "function"


def _label(gm: fx.GraphModule, node: fx.Node) -> str:
    if node.op == "call_module":
        return f"{type(gm.get_submodule(node.target)).__name__}\n{node.target}"
    if node.op in ("call_function", "call_method"):
        return getattr(node.target, "__name__", str(node.target))
    if node.op == "get_attr":
        return f"get_attr\n{node.target}"
    return node.op if node.op == "output" else f"input\n{node.name}"


def to_networkx(gm: fx.GraphModule) -> nx.DiGraph:
    """``gm``'s graph as a DiGraph (node ids are fx node names) with ``label`` and ``kind`` attributes."""
    g = nx.DiGraph()
    for node in gm.graph.nodes:
        g.add_node(node.name, label=_label(gm, node), kind=_kind(gm, node))
        for inp in node.all_input_nodes:
            g.add_edge(inp.name, node.name)
    return g


def _graphs(graphs: Mapping[str, fx.GraphModule | nx.DiGraph]) -> dict[str, nx.DiGraph]:
    return {title: (g if isinstance(g, nx.DiGraph) else to_networkx(g)) for title, g in graphs.items()}


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graphs: Mapping[str, fx.GraphModule | nx.DiGraph]) -> str:
    """DOT text drawing each graph (title -> GraphModule or DiGraph) as a cluster, left to right."""
    lines = ["digraph fxaccel {", "  rankdir=TB; newrank=true;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
    for i, (title, g) in enumerate(_graphs(graphs).items()):
        blocks = sum(1 for _, d in g.nodes(data=True) if d["kind"] == "block")
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_dot_str(f'{title} ({g.number_of_nodes()} nodes, {blocks} efficient blocks)')};")
        for n, d in g.nodes(data=True):
            shape = ", shape=ellipse" if d["kind"] == "io" else ""
            lines.append(f"    g{i}_{n} [label={_dot_str(d['label'])}, fillcolor=\"{COLORS[d['kind']]}\"{shape}];")
        for a, b in g.edges:
            lines.append(f"    g{i}_{a} -> g{i}_{b};")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(graphs: Mapping[str, fx.GraphModule | nx.DiGraph], *, use_dot: bool | None = None) -> str:
    """An SVG picture of ``graphs``: by Graphviz ``dot`` when installed (``use_dot=None``), else our own layout."""
    if use_dot is None:
        use_dot = shutil.which("dot") is not None
    if use_dot:
        done = subprocess.run(["dot", "-Tsvg"], input=to_dot(graphs), capture_output=True, text=True, check=True)
        return done.stdout
    return _layered_svg(_graphs(graphs))


# ------------------------------------------------------------------ our own layout

_W, _H, _GAP_X, _GAP_Y, _MARGIN = 170, 34, 16, 22, 20


def _layers(g: nx.DiGraph) -> list[list[str]]:
    """Nodes by longest-path depth from the inputs, in graph order within a layer."""
    order = {n: i for i, n in enumerate(g.nodes)}
    depth: dict[str, int] = {}
    for n in nx.topological_sort(g):
        depth[n] = max((depth[p] + 1 for p in g.predecessors(n)), default=0)
    rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for n in sorted(depth, key=order.get):
        rows[depth[n]].append(n)
    return rows


def _layered_svg(graphs: dict[str, nx.DiGraph]) -> str:
    parts, x0, height = [], _MARGIN, 0
    for title, g in graphs.items():
        rows = _layers(g)
        width = max((len(r) for r in rows), default=1) * (_W + _GAP_X)
        pos = {n: (x0 + j * (_W + _GAP_X), _MARGIN + 30 + i * (_H + _GAP_Y))
               for i, row in enumerate(rows) for j, n in enumerate(row)}
        blocks = sum(1 for _, d in g.nodes(data=True) if d["kind"] == "block")
        parts.append(f'<text x="{x0}" y="{_MARGIN + 12}" font-size="14" font-weight="bold">'
                     f'{html.escape(title)} ({g.number_of_nodes()} nodes, {blocks} efficient blocks)</text>')
        for a, b in g.edges:
            (xa, ya), (xb, yb) = pos[a], pos[b]
            parts.append(f'<line x1="{xa + _W / 2}" y1="{ya + _H}" x2="{xb + _W / 2}" y2="{yb}" '
                         'stroke="#888" stroke-width="1" marker-end="url(#arrow)"/>')
        for n, d in g.nodes(data=True):
            x, y = pos[n]
            first, _, second = d["label"].partition("\n")
            parts.append(f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" fill="{COLORS[d["kind"]]}" '
                         f'stroke="#555"><title>{html.escape(d["label"])}</title></rect>')
            parts.append(f'<text x="{x + 6}" y="{y + 14}" font-size="11">{html.escape(first[:26])}</text>')
            if second:
                parts.append(f'<text x="{x + 6}" y="{y + 28}" font-size="9" fill="#333">{html.escape(second[-30:])}</text>')
        x0 += width + 3 * _GAP_X
        height = max(height, _MARGIN * 2 + 30 + len(rows) * (_H + _GAP_Y))
    legend_y = height
    for i, (kind, color) in enumerate(COLORS.items()):
        parts.append(f'<rect x="{_MARGIN + i * 110}" y="{legend_y}" width="14" height="14" fill="{color}" stroke="#555"/>'
                     f'<text x="{_MARGIN + i * 110 + 20}" y="{legend_y + 12}" font-size="11">{kind}</text>')
    total_w, total_h = max(x0, 5 * 110 + 2 * _MARGIN), legend_y + 14 + _MARGIN
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
            f'font-family="Helvetica, Arial, sans-serif">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
            'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#888"/></marker></defs>'
            f'<rect width="{total_w}" height="{total_h}" fill="white"/>')
    return head + "\n".join(parts) + "</svg>\n"


__all__ = ["COLORS", "to_dot", "to_networkx", "to_svg"]
