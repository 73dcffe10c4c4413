"""What the reader is pointed to exists, and every notebook opens with its answer: each
`helpers.…` name written in the notebooks, README and docs resolves; each file they point to
exists in the project or in a committed reference; each notebook opens with its question and a
computed answer of at most three lines, and its paragraphs stay short."""

import importlib
import re
from pathlib import Path

import nbformat
import pytest

from helpers.core import paths
from helpers.report.claims.registry import load_tables
from helpers.report.prose import answers
from helpers.runner.params import discover_notebooks

ROOT = paths.ROOT
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOTEBOOKS = discover_notebooks()
MAX_WORDS = 80  # words in one paragraph (or one list item) of a notebook's markdown


def _texts() -> dict[str, str]:
    """Every document the reader reads, by a name for the failure message."""
    out = {p.name: p.read_text() for p in DOCS}
    for nb in NOTEBOOKS:
        cells = nbformat.read(nb, as_version=4).cells
        out[nb.name] = "\n".join(c.source for c in cells)
    return out


def _resolves(dotted: str) -> bool:
    """An importable module, or an attribute chain on the longest importable prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_helpers_name_written_for_the_reader_resolves():
    unresolved = {
        (name, dotted)
        for name, body in _texts().items()
        for dotted in re.findall(r"\bhelpers(?:\.[A-Za-z_]\w*)+", body)
        if not _resolves(dotted)
    }
    assert not unresolved, sorted(unresolved)


def _aliases(cells) -> dict[str, str]:
    """The names a notebook imports from helpers, to their dotted module names."""
    import ast

    out = {}
    for cell in cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
                out.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_names_a_notebook_writes_through_its_imports_resolve(path):
    """`environment.thread_counts` in a notebook's text means helpers.studies.environment's."""
    cells = nbformat.read(path, as_version=4).cells
    aliases = _aliases(cells)
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    written = re.findall(r"`(\w+)((?:\.\w+)+)", prose)
    unresolved = [f"{a}{rest}" for a, rest in written if a in aliases and not _resolves(aliases[a] + rest)]
    assert not unresolved, unresolved


def _pointed_files(body: str) -> set[str]:
    """Relative paths a document points to: markdown link targets, and `code` spans with a
    slash that start at a top folder of the project or of a run. Placeholders (`<profile>`,
    `NN`, `NAME`) and `runs/` (the reader's own run, never committed) are left out."""
    links = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", body)
    tops = ("results/", "figures/", "reference/", "notebooks/", "docs/", "params/", "data/", "src/", "tests/")
    spans = [s for s in re.findall(r"`([^`\s]+)`", body) if s.startswith(tops)]
    return {
        p
        for p in {*links, *spans}
        if "://" not in p and not re.search(r"<|NN|NAME|\$", p) and not p.startswith(("runs/", "mailto:"))
    }


def _written_by_the_study(target: str) -> bool:
    """A run's output (results/ or figures/) that the study writes by that name: its name is a
    string in the notebooks or in helpers (a GPU figure, say, that a CPU reference lacks)."""
    if not target.startswith(("results/", "figures/")):
        return False
    stem = Path(target).stem.rstrip("*")
    sources = [*NOTEBOOKS, *(ROOT / "src").rglob("*.py")]
    return any(f'"{stem}' in p.read_text() for p in sources)


def _exists(target: str, doc_dir: Path) -> bool:
    """In the document's folder, the project, or any committed reference (a run's results and
    figures live there; a glob matches at least one file), or a name the study writes."""
    roots = [doc_dir, ROOT, *[p for p in paths.REFERENCE.iterdir() if p.is_dir()]]
    return any(list(root.glob(target.rstrip("/"))) for root in roots) or _written_by_the_study(target)


def test_every_file_the_readme_docs_and_notebooks_point_to_exists():
    missing = []
    for name, body in _texts().items():
        doc_dir = ROOT if name == "README.md" else (ROOT / ("docs" if name.endswith(".md") else "notebooks"))
        missing += [(name, t) for t in sorted(_pointed_files(body)) if not _exists(t, doc_dir)]
    assert not missing, missing
    assert not _exists("figures/03_no_such_chart.png", ROOT) and not _exists("docs/nothing.md", ROOT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_opens_with_its_question_and_computed_answer(path):
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert re.search(r"\*\*[^*]+\?\*\*", cells[0].source), "cell 0 asks the notebook's question in bold"
    first_code = next(i for i, c in enumerate(cells) if "session.start(" in c.source)
    assert f'answers.Answer("{path.stem}")' in cells[first_code].source
    assert "answer.update()" in cells[-1].source
    assert path.stem in answers.ANSWERS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_paragraphs_are_short(path):
    long = []
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "markdown":
            continue
        for block in re.split(r"\n\s*\n", cell.source):
            for item in re.split(r"\n(?=- )", block):
                if len(item.split()) > MAX_WORDS:
                    long.append((i, len(item.split()), item[:60]))
    assert not long, long


def test_answers_are_computed_from_the_tables_in_at_most_three_lines():
    tables = load_tables(paths.REFERENCE / "xeon-spr-2c-full" / "results")
    for notebook in answers.ANSWERS:
        text = answers.answer_markdown(notebook, tables)
        assert text.startswith("**Answer.** ") and answers.PENDING not in text, (notebook, text)
        assert 1 <= len(text.splitlines()) <= 3, (notebook, text)
    assert answers.answer_markdown("03_cpu_sweeps", {}).endswith(answers.PENDING)
    sorting = answers.answer_markdown("05_sequence_sorting", tables)
    assert "**sorted**" in sorting and "**token_budget**" in sorting  # the two tie in the reference


def test_the_readme_keeps_to_what_a_newcomer_needs():
    prose = re.sub(r"```.*?```", "", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(prose.split()) <= 1500  # parameter lists live in docs/usage.md and `helpers.study list`


def test_an_answer_on_partial_tables_says_it_is_pending_instead_of_failing():
    tables = load_tables(paths.REFERENCE / "xeon-spr-2c-full" / "results")
    for name, df in tables.items():
        if df is None:
            continue
        for partial in (None, df[["status"]]):
            for notebook in set(answers.ANSWERS) - {"08_report"}:  # claims and recommend: test_claims
                assert answers.answer_markdown(notebook, {**tables, name: partial}).startswith("**Answer.** ")


def test_the_gpu_answer_names_the_engine_that_wins_most_cells():
    from test_claims import sweep_rows

    cells = {(e, b, 128): ms * b for b in (1, 8, 64) for e, ms in (("eager", 10.0), ("ort", 4.0), ("torchscript", 8.0))}
    cells[("torchscript", 64, 128)] = 1.0  # torchscript wins the largest batch
    text = answers.answer_markdown("04_gpu_sweeps", {"04_gpu_sweep": sweep_rows(cells=cells)})
    assert text.startswith(
        "**Answer.** **ort** (median 2.50× eager fp32 over the cells it wins) is the fastest in 2 of 3"
    )
    assert "then torchscript 1" in text
