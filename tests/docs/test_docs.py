"""The tutorials in docs/ run as written: every ```python block of a page, in order, in one namespace.

Each page runs in a fresh temporary working directory (files it writes land there). A page must
leave the pass registry as it found it (a tutorial that registers a pass unregisters it), or the
passes it added would leak into every later transmute in the same process.
"""
import os
import re
from pathlib import Path

import pytest
import torch

import fxaccel

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
PAGES = sorted(p for p in DOCS.glob("*.md") if _BLOCK.search(p.read_text()))


def code_blocks(page: Path) -> list[tuple[int, str]]:
    """(line number, source) of each ```python block of ``page``."""
    text = page.read_text()
    return [(text[: m.start(1)].count("\n") + 1, m.group(1)) for m in _BLOCK.finditer(text)]


def test_docs_have_tutorials():
    names = {p.name for p in PAGES}
    assert {"blocks.md", "transmute.md", "custom_pass.md"} <= names, names


def test_code_blocks_are_found_with_their_line_numbers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\nx = 1\n```\n\ntext\n```bash\nls\n```\n```python\ny = x + 1\n```\n")
    assert code_blocks(page) == [(4, "x = 1\n"), (12, "y = x + 1\n")]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_tutorial_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread degrades gracefully on a shared machine; the pages time nothing real
    try:
        _run_page(page)
    finally:
        torch.set_num_threads(threads)
    assert os.getcwd() == str(tmp_path)


def _run_page(page: Path) -> None:
    registry = {stage: fxaccel.list_passes(stage) for stage in fxaccel.STAGES}
    namespace = {"__name__": f"docs_{page.stem}"}
    try:
        for line, source in code_blocks(page):
            # blank lines up front make tracebacks point at the page's own line numbers
            code = compile("\n" * (line - 1) + source, str(page), "exec")
            exec(code, namespace)
    finally:
        leaked = {stage: sorted(set(fxaccel.list_passes(stage)) - set(names)) for stage, names in registry.items()}
        for stage, names in leaked.items():  # clean up even when the page failed, for the tests after it
            for name in names:
                fxaccel.unregister_pass(name, stage=stage)
    assert not any(leaked.values()), f"{page.name} left passes registered: {leaked}; unregister them in the page"
    assert {stage: fxaccel.list_passes(stage) for stage in fxaccel.STAGES} == registry, (
        f"{page.name} changed the pass registry (a built-in pass removed or reordered?)")
