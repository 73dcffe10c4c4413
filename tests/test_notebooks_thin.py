"""Notebooks are thin: their code cells only call the study module, report and display
helpers; the parameters they record are derived from their `parameters` cell."""

import ast

import nbformat
import pytest

from helpers.runner import session
from helpers.runner.params import discover_notebooks

CONTROL_FLOW = (ast.For, ast.AsyncFor, ast.While, ast.Try, ast.If, ast.With, ast.FunctionDef, ast.ClassDef)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.IfExp)


def code_cells(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            yield i, cell.source


@pytest.mark.parametrize("path", discover_notebooks(), ids=lambda p: p.stem)
def test_notebook_cells_hold_no_control_flow(path):
    found = []
    for i, source in code_cells(path):
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, CONTROL_FLOW + COMPREHENSIONS):
                found.append(f"cell {i} line {node.lineno}: {type(node).__name__}")
    assert not found, f"{path.stem}: move into the study module: {found}"


@pytest.mark.parametrize("path", discover_notebooks(), ids=lambda p: p.stem)
def test_notebook_parameters_are_derived_not_retyped(path):
    sources = "\n".join(source for _, source in code_cells(path))
    assert f'session.start("{path.stem}", globals())' in sources
    assert "params = dict(" not in sources


def test_session_records_the_declared_parameters_of_the_namespace(project):
    namespace = {"__name__": "__main__", "batch_sizes": [4], "label": "y", "plt": object(), "texts": ["a"]}
    assert session.notebook_params("01_first", namespace) == {"batch_sizes": [4], "label": "y"}
    with pytest.raises(NameError, match="label"):
        session.notebook_params("01_first", {"batch_sizes": [4]})
    assert session.notebook_params("09_no_file", {"n": 1, "_hidden": 2}) == {"n": 1}


@pytest.mark.parametrize("path", discover_notebooks(), ids=lambda p: p.stem)
def test_every_figure_says_how_to_read_it(path):
    """The markdown cell above each figure cell (over the figure cells just before it) says how
    to read the chart."""
    cells = nbformat.read(path, as_version=4).cells
    unexplained = []
    for i, cell in enumerate(cells):
        if cell.cell_type != "code" or "save_figure" not in cell.source:
            continue
        above = next((c for c in reversed(cells[:i]) if c.cell_type == "markdown"), None)
        if above is None or "How to read" not in above.source:
            unexplained.append(f"cell {i}")
    assert not unexplained, f"{path.stem}: no 'How to read' markdown above {unexplained}"
