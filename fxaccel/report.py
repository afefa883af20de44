"""What each stage did: per pass matched / rewritten / skipped-with-reason, opaque parts, coverage.

A report is plain data (``to_dict()``, ``to_json()``) and prints as a table. Every stage attaches
its report to the module it returns; :func:`fxaccel.report_of` reads it back.

Stability: public (``Report``, ``PassRecord``); the field set may grow.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

_META_KEY = "fxaccel_report"


@dataclass
class Skip:
    """A candidate a pass looked at and left alone, and why."""

    where: str
    reason: str


@dataclass
class Miss:
    """The deepest partial match of a rule that found no match: where matching stopped and why.

    ``root`` is the candidate node the match started at, ``matched`` the nodes it covered before
    stopping at ``stopped_at`` (a node name or a constant); the deepest miss covers the most nodes.
    """

    root: str
    matched: list[str]
    stopped_at: str
    why: str

    def __str__(self) -> str:
        return (f"closest match rooted at {self.root} covered {', '.join(self.matched)}; "
                f"stopped at {self.stopped_at}: {self.why}")


@dataclass
class PassRecord:
    """What one pass did in one graph module."""

    name: str
    stage: str
    matched: int = 0
    rewritten: int = 0
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    miss: Miss | None = None

    def skip(self, where: str, reason: str) -> None:
        self.skipped.append(Skip(str(where), reason))

    def note(self, text: str) -> None:
        self.notes.append(text)


@dataclass
class Opaque:
    """A submodule that could not be traced and stays a leaf, with the tracer's error."""

    path: str
    error: str


@dataclass
class Report:
    """The record of one fxaccel stage (and the stages before it)."""

    stage: str
    target: str | None = None
    passes: list[PassRecord] = field(default_factory=list)
    opaque: list[Opaque] = field(default_factory=list)
    coverage: float | None = None
    state_dict_map: dict[str, str] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    previous: Report | None = None

    def record(self, name: str) -> PassRecord:
        """The record for pass ``name`` (merged across graph modules of one model)."""
        for rec in self.passes:
            if rec.name == name:
                return rec
        rec = PassRecord(name, self.stage)
        self.passes.append(rec)
        return rec

    def why(self, name: str) -> str:
        """Why pass ``name`` did (not) rewrite: its counts, refusals and closest miss, in this stage
        and the stages before it (the answer to "why didn't my rule fire?")."""
        lines = []
        for rep in self._chain():
            for p in rep.passes:
                if p.name != name:
                    continue
                lines.append(f"{p.name} ({p.stage}): matched {p.matched}, rewritten {p.rewritten}")
                lines += [f"  refused at {s.where}: {s.reason}" for s in p.skipped]
                lines += [f"  {n}" for n in p.notes]
                if p.miss is not None:
                    lines.append(f"  {p.miss}")
                elif not p.matched:
                    lines.append("  no candidate node: nothing in the graph has the op or module type at "
                                 "the rule's root")
        if not lines:
            known = sorted({p.name for rep in self._chain() for p in rep.passes})
            raise ValueError(f"no pass named {name!r} in this report; passes: {', '.join(known)}")
        return "\n".join(lines)

    def _chain(self) -> list["Report"]:
        return ([] if self.previous is None else self.previous._chain()) + [self]

    @property
    def skipped(self) -> list[tuple[str, Skip]]:
        return [(p.name, s) for p in self.passes for s in p.skipped]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["previous"] = self.previous.to_dict() if self.previous else None
        return d

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), default=str, **kw)

    def table(self) -> str:
        """The report as a text table (``rich`` renders it; no colour codes)."""
        from rich.console import Console
        from rich.table import Table

        console = Console(width=120, record=True, force_terminal=False, color_system=None)
        with console.capture() as cap:
            self._print(console, Table)
        return cap.get()

    def _print(self, console, Table) -> None:
        if self.previous is not None:
            self.previous._print(console, Table)
        title = f"fxaccel {self.stage}" + (f" (target {self.target})" if self.target else "")
        t = Table(title=title, title_justify="left")
        for col in ("pass", "matched", "rewritten", "skipped", "ms"):
            t.add_column(col, justify="left" if col == "pass" else "right")
        for p in self.passes:
            t.add_row(p.name, str(p.matched), str(p.rewritten), str(len(p.skipped)), f"{p.seconds * 1e3:.1f}")
        console.print(t)
        if self.layers:
            cols = list(dict.fromkeys(k for row in self.layers for k in row))
            lt = Table(title=f"{self.stage}: per layer", title_justify="left")
            for col in cols:
                lt.add_column(col)
            for row in self.layers:
                lt.add_row(*(_cell(row.get(c)) for c in cols))
            console.print(lt)
        for name, s in self.skipped:
            console.print(f"  skipped by {name}: {s.where}: {s.reason}")
        for p in self.passes:
            for n in p.notes:
                console.print(f"  {p.name}: {n}")
        for o in self.opaque:
            console.print(f"  opaque (untraceable, kept as is): {o.path or '<root>'}: {o.error}")
        if self.coverage is not None:
            console.print(f"  coverage: {self.coverage:.1%} of Conv3d MACs inside efficient blocks")
        for key, value in self.extra.items():
            console.print(f"  {key}: {value}")

    def __str__(self) -> str:
        return self.table()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def attach(module: torch.nn.Module, report: Report) -> None:
    """Attach ``report`` to ``module`` (kept in ``module.meta`` when it is a GraphModule)."""
    if isinstance(module, torch.fx.GraphModule):
        module.meta[_META_KEY] = report
    else:
        object.__setattr__(module, "_" + _META_KEY, report)


def report_of(module: torch.nn.Module) -> Report:
    """The report of the fxaccel stage that produced ``module``.

    >>> import torch, fxaccel
    >>> gm = fxaccel.transmute(torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1)), torch.randn(1, 3, 2, 4, 4))
    >>> fxaccel.report_of(gm).stage
    'transmute'
    """
    meta = getattr(module, "meta", None)
    rep = meta.get(_META_KEY) if isinstance(meta, dict) else None
    rep = rep or getattr(module, "_" + _META_KEY, None)
    if rep is None:
        raise ValueError(
            f"{type(module).__name__} carries no fxaccel report: only modules returned by "
            "fxaccel.transmute / deploy / quantize have one"
        )
    return rep


def report_or_none(module: torch.nn.Module) -> Report | None:
    """:func:`report_of`, or ``None`` for a module no fxaccel stage produced."""
    try:
        return report_of(module)
    except ValueError:
        return None
