"""Committed reference runs: only the reference command writes them, never half-way, and the
README's findings stay in step with the reference they name."""

import json

import nbformat
import pytest
from conftest import write_nb

from helpers import study
from helpers.core import paths
from helpers.report import reference

ROWS = """from helpers.core import session as study_run
run = study_run.start("01_first", dict(batch_sizes=batch_sizes, label=label))
table = run.table("01_rows", key=["b"])
for b in batch_sizes:
    table.append_new([{"b": b, "p50_ms": 1.0}])
from helpers.core import paths
print("written under", paths.results_dir())
"""


@pytest.fixture
def ref_project(project, tmp_path, monkeypatch):
    write_nb(paths.NOTEBOOKS, "01_first", ROWS)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- findings:start reference=box-smoke -->\nold\n<!-- findings:end -->\ntail\n")
    monkeypatch.setattr(paths, "README", readme)
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    return tmp_path


def test_the_reference_command_publishes_a_whole_run(ref_project, capsys):
    assert study.main(["run", "--profile", "smoke", "--only", "01", "--reference", "box-smoke"]) == 0
    ref = ref_project / "reference" / "box-smoke"
    assert (ref / "results" / "01_rows.csv").exists() and (ref / "results" / "run.json").exists()
    assert not (ref_project / "reference" / ".partial-box-smoke").exists()
    log = (ref_project / "out" / "runs" / "smoke" / "study.log").read_text()  # kept where runs/ is
    assert "[1/1] 01_first ok" in log and "reference: published" in log
    nb = nbformat.read(ref / "notebooks" / "01_first.ipynb", as_version=4)
    assert "input_path" not in nb.metadata["papermill"] and "output_path" not in nb.metadata["papermill"]
    text = json.dumps(nb)
    assert "written under reference/box-smoke/results" in text and str(ref_project) not in text
    readme = (ref / "README.md").read_text()
    assert "# Reference run `box-smoke`" in readme and "[01_first](notebooks/01_first.ipynb)" in readme
    # the project README quotes the reference its marker names
    assert reference.findings_in(paths.README.read_text()) == reference.project_findings("box-smoke")
    assert paths.README.read_text().startswith("intro\n") and paths.README.read_text().endswith("tail\n")


def test_an_existing_reference_needs_replace_and_a_failed_run_keeps_it(ref_project, capsys):
    assert study.main(["run", "--profile", "smoke", "--only", "01", "--reference", "box-smoke"]) == 0
    ref = ref_project / "reference" / "box-smoke"
    before = (ref / "results" / "01_rows.csv").read_bytes()
    assert study.main(["run", "--profile", "smoke", "--only", "01", "--reference", "box-smoke"]) == 2
    assert "reference/box-smoke/ already exists; pass --replace" in capsys.readouterr().err
    write_nb(paths.NOTEBOOKS, "01_first", "raise RuntimeError('interrupted')")
    assert study.main(["run", "--profile", "smoke", "--only", "01", "--reference", "box-smoke", "--replace"]) == 1
    assert "not published" in capsys.readouterr().out
    assert (ref / "results" / "01_rows.csv").read_bytes() == before  # the old reference is intact
    assert study.main(["run", "--only", "01", "--reference", "Bad Name"]) == 2
    assert "--reference: 'Bad Name' is not a folder name" in capsys.readouterr().err


def test_readme_findings_are_in_step_with_the_reference_they_name():
    name = reference.readme_reference()
    assert name and (paths.REFERENCE / name / "results").is_dir()
    assert reference.findings_in(paths.README.read_text()) == reference.project_findings(name)
    assert (paths.REFERENCE / name / "README.md").read_text() == reference.reference_readme(
        paths.REFERENCE / name, name
    )


def test_every_committed_reference_holds_one_run():
    from helpers.report.claims import TABLES, load_tables

    for folder in sorted(p for p in paths.REFERENCE.iterdir() if (p / "results").is_dir()):
        tables = load_tables(folder / "results")  # raises if a table mixes runs
        run_ids = {rid for df in tables.values() if df is not None for rid in df.get("run_id", [])}
        assert len(run_ids) == 1, (folder.name, run_ids)
        assert any(tables[name] is not None for name in TABLES)
