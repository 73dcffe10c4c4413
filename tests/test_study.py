"""The runner: validation before anything runs, failures reported, resume and archive."""
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from helpers import paths, study

PARAMS = 'batch_sizes = [1]  # batch sizes\nlabel = "x"  # a label\n'


def write_nb(folder, name, body):
    params = new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nbformat.write(new_notebook(cells=[params, new_code_cell(body)]), folder / f"{name}.ipynb")


@pytest.fixture
def project(tmp_path, monkeypatch):
    nbs, prm, out = tmp_path / "notebooks", tmp_path / "params", tmp_path / "out"
    nbs.mkdir(), prm.mkdir()
    write = "from helpers import paths\n(paths.results_dir() / f'{label}.txt').write_text(str(batch_sizes))"
    write_nb(nbs, "01_first", write)
    write_nb(nbs, "02_broken", "raise ValueError('boom in cell')")
    write_nb(nbs, "03_third", write)
    (prm / "smoke.yaml").write_text("defaults:\n  batch_sizes: [2]\nnotebooks:\n  03_third:\n    label: third\n")
    (prm / "other.yaml").write_text("defaults: {}\nnotebooks: {}\n")
    monkeypatch.setattr(paths, "NOTEBOOKS", nbs)
    monkeypatch.setattr(paths, "PARAMS", prm)
    monkeypatch.setenv("WORKBOOK_OUT", str(out))
    for var in ("WORKBOOK_PROFILE", "WORKBOOK_RUN_ID", "WORKBOOK_HEADLESS"):
        monkeypatch.delenv(var, raising=False)
    return out


def test_failing_notebook_is_reported_and_the_others_still_run(project, capsys):
    assert study.main(["run", "--profile", "smoke", "--out", str(project)]) == 1
    printed = capsys.readouterr().out
    assert "02_broken FAILED" in printed and "ValueError: boom in cell" in printed
    assert "2 of 3 notebooks ran" in printed
    assert (project / "results" / "x.txt").read_text() == "[2]"  # profile defaults applied
    assert (project / "results" / "third.txt").read_text() == "[2]"  # per-notebook section too
    assert sorted(p.name for p in (project / "runs" / "smoke").glob("*.ipynb")) == [
        "01_first.ipynb", "02_broken.ipynb", "03_third.ipynb"]


def test_bad_parameter_stops_everything_before_any_notebook(project, capsys):
    code = study.main(["run", "--profile", "smoke", "--only", "01", "-p", "batch_sizes=[0]", "--out", str(project)])
    assert code == 2
    assert "batch_sizes: 0 is impossible" in capsys.readouterr().err
    assert not (project / "runs").exists()
    assert study.main(["run", "--profile", "smoke", "-p", "colour=blue", "--out", str(project)]) == 2
    assert "colour: unknown parameter" in capsys.readouterr().err
    assert study.main(["run", "--only", "77", "--out", str(project)]) == 2
    assert "--only: unknown notebook '77'" in capsys.readouterr().err


def test_same_profile_resumes_and_another_profile_archives(project, capsys):
    study.main(["run", "--profile", "smoke", "--only", "01", "--out", str(project)])
    first = json.loads((project / "results" / "run.json").read_text())
    study.main(["run", "--profile", "smoke", "--only", "01", "--out", str(project)])
    assert json.loads((project / "results" / "run.json").read_text()) == first
    assert "resuming run" in capsys.readouterr().out
    study.main(["run", "--profile", "other", "--only", "01", "--out", str(project)])
    second = json.loads((project / "results" / "run.json").read_text())
    assert second["profile"] == "other" and second["run_id"] != first["run_id"]
    archived = project / "runs" / "smoke" / f"archive-{first['run_id']}" / "results" / "x.txt"
    assert archived.read_text() == "[2]"
    assert (project / "results" / "x.txt").read_text() == "[1]"


def test_list_shows_parameters(project, capsys):
    study.main(["list"])
    printed = capsys.readouterr().out
    assert "01_first" in printed and "batch_sizes: list[int] = [1]  # batch sizes" in printed
    assert "profiles: other, smoke" in printed
