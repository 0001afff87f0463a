"""Every ```python block of README.md runs as written (issue 11, item 1), so the README cannot drift.

Each block runs as a script of its own (``python block.py``, so a ``if __name__ == "__main__":``
guard behaves as for a user) in a fresh interpreter, in an empty temporary directory (the
installed package is imported, not the source tree), with its own imports in its own order.
A block that imports a framework which is not installed, or not selected by
``$BCE_COMPAT_BACKENDS``, is skipped with the reason.

A snippet that uses names defined elsewhere (the migration "Before"/"After" pair) gets them from
an HTML comment right above its fence, invisible in the rendered README::

    <!-- readme-test setup: import torch; x, y = torch.randn(4, 3), torch.rand(4, 3) -->
"""

from __future__ import annotations

import ast
import importlib.util
import io
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bce_compat.conformance import frameworks

README = Path(__file__).resolve().parents[1] / "README.md"
_SETUP = re.compile(r"<!--\s*readme-test setup:(.*?)-->", re.S)
# module imported by a block -> the distributions it needs (beyond its top-level package)
_ALSO_NEEDS = {"dask.distributed": ("distributed",)}
# libraries that are test-bench backends: a block using one follows $BCE_COMPAT_BACKENDS
_BACKENDS = ("torch", "paddle", "tensorflow", "jax", "dask", "cupy")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the ```python fence
    section: str
    code: str
    setup: str = ""

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")
        return f"L{self.line}-{slug}"


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown text, with their section and setup comment.

    >>> [b.code for b in python_blocks("# T\\n<!-- readme-test setup: a = 1 -->\\n```python\\nprint(a)\\n```\\n")]
    ['print(a)\\n']
    """
    blocks, lines = [], text.splitlines(keepends=True)
    section, i = "top", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        if line.strip() == "```python":
            start, body = i, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            above = "".join(lines[max(0, start - 3):start])
            setups = _SETUP.findall(above)
            blocks.append(Block(start + 1, section, "".join(body), setups[-1].strip() if setups else ""))
        i += 1
    return blocks


def imported_modules(code: str) -> set[str]:
    """Every module a piece of code imports (``import a.b as c, d`` gives a.b and d)."""
    modules = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def missing_requirement(code: str) -> str | None:
    """Why a block cannot run here (a library not installed or not selected), or None."""
    selected = frameworks.selected_names()
    for module in sorted(imported_modules(code)):
        root = module.split(".")[0]
        for dist in (root, *_ALSO_NEEDS.get(module, ())):
            if importlib.util.find_spec(dist) is None:
                return f"{dist} is not installed"
        if root in _BACKENDS and root not in selected:
            return f"{root} is not selected by $BCE_COMPAT_BACKENDS"
    return None


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 4, [b.id for b in BLOCKS]


def test_block_extraction_keeps_setup_and_sections():
    text = ("## A\n```python\nx = 1\n```\n## B\nBefore:\n<!-- readme-test setup: import torch;\n t = 2 -->\n"
            "```python\nprint(t)\n```\n```bash\nls\n```\n")
    blocks = python_blocks(text)
    assert [(b.section, b.code, b.setup) for b in blocks] == [("A", "x = 1\n", ""),
                                                              ("B", "print(t)\n", "import torch;\n t = 2")]
    assert imported_modules("import dask.array as da, bce_compat\nfrom dask.distributed import Client\n") == {
        "dask.array", "bce_compat", "dask.distributed"}


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs(block, tmp_path):
    source = (block.setup + "\n" if block.setup else "") + block.code
    reason = missing_requirement(source)
    if reason:
        pytest.skip(f"README line {block.line}: {reason}")
    script = tmp_path / "readme_block.py"
    script.write_text(source, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"README.md line {block.line} ({block.section}) failed with exit {done.returncode}:\n{done.stderr[-4000:]}")


def _code_lines(code: str) -> list[str]:
    """Non-blank lines with runs of spaces collapsed (comment alignment is free)."""
    return [re.sub(r"\s+", " ", line).strip() for line in code.splitlines() if line.strip()]


def test_migration_after_is_what_migrate_prints_for_before():
    """The README's "After `--to paddle`" block is the tool's output for its "Before" block."""
    pytest.importorskip("libcst")
    from bce_compat.migrate._driver import migrate_paths

    pair = [b for b in BLOCKS if b.section.startswith("Migrating")]
    assert len(pair) >= 2, "the migration section's Before/After blocks are missing"
    before, after = pair[0], pair[1]
    out, err = io.StringIO(), io.StringIO()
    migrate_paths(["-"], "paddle", write=True, out=out, err=err, stdin=io.StringIO(before.code))
    assert _code_lines(out.getvalue()) == _code_lines(after.code), err.getvalue()


def _visible_lead_in(block: Block) -> str:
    """The README text just above a block's fence, without the invisible setup comment."""
    lines = README.read_text(encoding="utf-8").splitlines()[max(0, block.line - 5):block.line - 1]
    return _SETUP.sub("", "\n".join(lines))


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.setup], ids=lambda b: b.id)
def test_a_block_with_hidden_setup_is_marked_as_a_fragment(block):
    """A reader runs a block as shown; one that needs names from elsewhere says so (issue 23, item 5)."""
    assert "fragment" in _visible_lead_in(block).lower(), (
        f"README line {block.line}: needs hidden setup but its lead-in does not call it a fragment")


def test_migration_section_says_to_paddle_converts_the_loss_calls_only():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Migrating a loss"):text.index("## Errors")]
    assert "converts the loss calls only" in section
    assert "aborts inside Paddle" in section
