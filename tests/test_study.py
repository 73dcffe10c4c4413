"""The runner: validation before anything runs, failures reported, resume and archive."""

import json

from helpers import study


def test_failing_notebook_is_reported_and_the_others_still_run(project, capsys):
    assert study.main(["run", "--profile", "smoke", "--out", str(project)]) == 1
    printed = capsys.readouterr().out
    assert "02_broken FAILED" in printed and "ValueError: boom in cell" in printed
    assert "2 of 3 notebooks ran" in printed
    assert (project / "results" / "x.txt").read_text() == "[2]"  # profile defaults applied
    assert (project / "results" / "third.txt").read_text() == "[2]"  # per-notebook section too
    assert sorted(p.name for p in (project / "runs" / "smoke").glob("*.ipynb")) == [
        "01_first.ipynb",
        "02_broken.ipynb",
        "03_third.ipynb",
    ]


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
    assert json.loads((project / "results" / "run.json").read_text())["run_id"] == first["run_id"]
    assert "resuming run" in capsys.readouterr().out
    study.main(["run", "--profile", "other", "--only", "01", "--out", str(project)])
    second = json.loads((project / "results" / "run.json").read_text())
    assert second["profile"] == "other" and second["run_id"] != first["run_id"]
    archived = project / "runs" / "archive" / first["run_id"]
    assert (archived / "results" / "x.txt").read_text() == "[2]"
    assert (archived / "notebooks" / "01_first.ipynb").exists()  # its executed notebook goes with it
    assert (project / "results" / "x.txt").read_text() == "[1]"
    assert f"previous run {first['run_id']} archived" in capsys.readouterr().out


def test_list_shows_parameters(project, capsys):
    study.main(["list"])
    printed = capsys.readouterr().out
    assert "01_first" in printed and "batch_sizes: list[int] = [1]  # batch sizes" in printed
    assert "profiles: other, smoke" in printed


def test_the_project_root_is_found_from_the_package_itself(monkeypatch):
    from helpers.core import paths

    assert (paths.ROOT / "pyproject.toml").is_file() and (paths.ROOT / "notebooks").is_dir()
    assert paths._find_root() == paths.ROOT


def test_list_into_a_closed_pipe_ends_quietly():
    """`python -m helpers.study list | head -1`: the reader goes away early; no traceback."""
    import subprocess
    import sys

    listing = subprocess.Popen(
        [sys.executable, "-m", "helpers.study", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    listing.stdout.close()  # what head does once it has its lines, here before the first write
    assert listing.wait(timeout=60) == 0 and b"Traceback" not in listing.stderr.read()
