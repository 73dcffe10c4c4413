"""Run identity: one run in results/, resumed only by the same request on the same machine,
archived otherwise; a killed run resumes without losing or repeating a row; a user's run
never touches a tracked file or the committed references."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest
from conftest import write_nb

from helpers import study
from helpers.core import paths
from helpers.core.tables import ForeignRowsError, ResultTable
from helpers.runner import session

ROWS_PARAMS = "n_rows = 3  # rows to write\npause = 0.0  # pause after each row\n"
ROWS_BODY = """import time
from helpers.runner import session
run = session.start("04_rows", dict(n_rows=n_rows, pause=pause))
table = run.table("04_rows", key=["i"])
for i in range(n_rows):
    if not table.done(i=i):
        table.append({"i": i, "p50_ms": float(i), "samples_ms": [1.0, 2.0, 3.0]})
        time.sleep(pause)
"""


@pytest.fixture
def rows_project(project):
    write_nb(paths.NOTEBOOKS, "04_rows", ROWS_BODY, params=ROWS_PARAMS)
    return project


def table(out, name="04_rows"):
    return pd.read_csv(out / "results" / f"{name}.csv")


def test_changed_parameters_archive_the_run_and_mix_nothing(rows_project, capsys):
    out = rows_project
    assert study.main(["run", "--profile", "other", "--only", "04", "--out", str(out)]) == 0
    first = json.loads((out / "results" / "run.json").read_text())
    assert first["notebooks"]["04_rows"]["params"] == {"n_rows": 3, "pause": 0.0}
    assert first["finished"] and first["machine"]["fingerprint"] and first["git"]
    assert study.main(["run", "--profile", "other", "--only", "04", "-p", "n_rows=2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "parameters of 04_rows changed (n_rows)" in printed
    second = json.loads((out / "results" / "run.json").read_text())
    assert second["run_id"] != first["run_id"]
    assert set(table(out)["run_id"]) == {second["run_id"]} and len(table(out)) == 2
    archived = out / "runs" / "archive" / first["run_id"]
    assert len(pd.read_csv(archived / "results" / "04_rows.csv")) == 3


def test_unchanged_request_measures_nothing_new(rows_project, capsys):
    out = rows_project
    study.main(["run", "--profile", "other", "--only", "04", "--out", str(out)])
    before = (out / "results" / "04_rows.csv").read_bytes()
    study.main(["run", "--profile", "other", "--only", "04", "--out", str(out)])
    assert (out / "results" / "04_rows.csv").read_bytes() == before
    assert "its 3 finished rows are kept" in capsys.readouterr().out


def test_another_machine_archives_the_run(rows_project, monkeypatch, capsys):
    out = rows_project
    study.main(["run", "--profile", "other", "--only", "04", "--out", str(out)])
    first = json.loads((out / "results" / "run.json").read_text())
    other = dict(first["machine"], fingerprint="0ther000")
    monkeypatch.setattr(session, "this_machine", lambda: other)
    study.main(["run", "--profile", "other", "--only", "04", "--out", str(out)])
    assert f"machine #{first['machine']['fingerprint']} → #0ther000" in capsys.readouterr().out
    assert json.loads((out / "results" / "run.json").read_text())["run_id"] != first["run_id"]


@pytest.mark.parametrize("content", ["{not json", '{"run_id": "x"}'])
def test_a_corrupt_or_foreign_run_record_stops_and_deletes_nothing(rows_project, content, capsys):
    out = rows_project
    (out / "results").mkdir(parents=True)
    (out / "results" / "run.json").write_text(content)
    (out / "results" / "04_rows.csv").write_text("run_id,i\nsomeone,0\n")
    assert study.main(["run", "--profile", "other", "--only", "04", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "run.json" in err and "--fresh" in err and len(err.strip().splitlines()) == 1
    assert (out / "results" / "run.json").read_text() == content
    assert (out / "results" / "04_rows.csv").read_text() == "run_id,i\nsomeone,0\n"
    assert not (out / "runs").exists()
    assert study.main(["run", "--profile", "other", "--only", "04", "--fresh", "--out", str(out)]) == 0
    archived = list((out / "runs" / "archive").iterdir())
    assert len(archived) == 1 and (archived[0] / "results" / "run.json").read_text() == content


def test_a_table_refuses_rows_of_another_run(tmp_path):
    ResultTable(tmp_path / "t.csv", ["i"], {"run_id": "a"}).append({"i": 1})
    with pytest.raises(ForeignRowsError, match="holds rows of run a"):
        ResultTable(tmp_path / "t.csv", ["i"], {"run_id": "b"})


def test_a_notebook_opened_by_hand_joins_the_run_only_when_its_parameters_agree(project):
    record = session.begin("smoke", {"01_first": {"batch_sizes": [2], "label": "x"}}, say=lambda line: None)
    assert session.start("01_first", {"batch_sizes": [2], "label": "x"}).run_id == record["run_id"]
    assert session.start("03_third", {"batch_sizes": [5], "label": "x"}).run_id == record["run_id"]  # new in this run
    other = session.start("01_first", {"batch_sizes": [9], "label": "x"})
    assert other.run_id != record["run_id"] and other.profile == "interactive"
    assert (project / "runs" / "archive" / record["run_id"] / "results" / "run.json").exists()


def _study(root, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBOOK_OUT", "WORKBOOK_RUN_ID", "WORKBOOK_PROFILE")}
    env["WORKBOOK_ROOT"] = str(root)
    return subprocess.Popen(
        [sys.executable, "-m", "helpers.study", "run", "--profile", "other", "--only", "04", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def standalone(tmp_path):
    """A project of its own (WORKBOOK_ROOT) for a study run in a subprocess."""
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "params").mkdir()
    (root / "params" / "other.yaml").write_text("defaults: {}\nnotebooks: {}\n")
    write_nb(root / "notebooks", "04_rows", ROWS_BODY, params=ROWS_PARAMS)
    return root


@pytest.mark.smoke
def test_a_killed_run_resumes_without_losing_or_repeating_a_row(standalone):
    proc = _study(standalone, "-p", "n_rows=6", "-p", "pause=0.4")
    csv = standalone / "results" / "04_rows.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (csv.exists() and len(csv.read_text().splitlines()) >= 3):
        time.sleep(0.1)
    # the runner and its kernel (jupyter starts kernels in a session of their own), mid-run
    tree = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    for pid in tree:
        os.kill(pid, signal.SIGKILL)
    proc.wait()
    done = len(csv.read_text().splitlines()) - 1
    assert 2 <= done < 6
    with csv.open("a") as f:
        f.write(f"{json.loads((standalone / 'results' / 'run.json').read_text())['run_id']},04_rows,vm,")  # a torn row
    resumed = _study(standalone, "-p", "n_rows=6", "-p", "pause=0.4")
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert "resuming run" in output
    df = table(standalone)
    assert sorted(df["i"]) == list(range(6)) and df["run_id"].nunique() == 1


@pytest.mark.smoke
def test_a_users_run_changes_no_tracked_file_and_leaves_the_reference_alone(standalone):
    ref = standalone / "reference" / "other-box-full" / "results"
    ref.mkdir(parents=True)
    (ref / "04_rows.csv").write_text("run_id,notebook,host,i,p50_ms\nr0,04_rows,vm,0,1.0\n")
    (ref / "environment.json").write_text(json.dumps({"host": "vm", "run_id": "r0", "cpu": {"model": "Other CPU"}}))
    shutil.copy(paths.ROOT / ".gitignore", standalone / ".gitignore")
    (standalone / "figures").mkdir()
    shutil.copy(paths.ROOT / "figures" / "README.md", standalone / "figures" / "README.md")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(standalone)]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "fake project"], check=True)
    before = (ref / "04_rows.csv").read_bytes()
    output, _ = _study(standalone).communicate(timeout=300)
    assert "1 of 1 notebooks ran" in output, output
    assert subprocess.run(git + ["status", "--porcelain"], capture_output=True, text=True).stdout == ""
    assert (ref / "04_rows.csv").read_bytes() == before
    mine = table(standalone)
    assert mine["run_id"].nunique() == 1 and "r0" not in set(mine["run_id"])
    output, _ = _study(standalone, "-p", "n_rows=2").communicate(timeout=300)  # other parameters: archive
    assert "archived" in output and "1 of 1 notebooks ran" in output, output
    assert subprocess.run(git + ["status", "--porcelain"], capture_output=True, text=True).stdout == ""
