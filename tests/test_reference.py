"""Committed reference runs: only the reference command writes them, never half-way, and the
README's findings stay in step with the reference they name."""

import json
import subprocess

import nbformat
import pytest
from conftest import write_nb

from helpers import study
from helpers.core import paths
from helpers.runner import reference
from helpers.runner.params import ParameterError

ROWS = """from helpers.runner import session
run = session.start("01_first", dict(batch_sizes=batch_sizes, label=label))
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


def test_an_existing_reference_goes_on_and_a_failed_replacement_keeps_it(ref_project, capsys):
    assert study.main(["run", "--profile", "smoke", "--only", "01", "--reference", "box-smoke"]) == 0
    ref = ref_project / "reference" / "box-smoke"
    before = (ref / "results" / "01_rows.csv").read_bytes()
    run_id = json.loads((ref / "results" / "run.json").read_text())["run_id"]
    assert study.main(["run", "--profile", "smoke", "--only", "01", "--reference", "box-smoke"]) == 0  # goes on
    assert json.loads((ref / "results" / "run.json").read_text())["run_id"] == run_id
    assert study.main(["run", "--profile", "other", "--only", "01", "--reference", "box-smoke"]) == 2
    assert "reference/box-smoke/ cannot be continued (profile smoke → other); pass --replace" in capsys.readouterr().err
    write_nb(paths.NOTEBOOKS, "01_first", "raise RuntimeError('interrupted')")
    assert study.main(["run", "--profile", "smoke", "--only", "01", "--reference", "box-smoke", "--replace"]) == 1
    assert "not published" in capsys.readouterr().out
    assert (ref / "results" / "01_rows.csv").read_bytes() == before  # the old reference is intact
    assert study.main(["run", "--only", "01", "--reference", "Bad Name"]) == 2
    assert "--reference: 'Bad Name' is not a folder name" in capsys.readouterr().err


def _rows_then(table: str, then: str = "") -> str:
    """A notebook that writes one row to results/<table>.csv, then runs `then`."""
    return ROWS.replace("01_rows", table).replace('"01_first"', f'"{table[:2]}_nb"') + then


def test_a_reference_is_built_in_parts_and_a_cut_off_run_keeps_every_finished_part(ref_project, capsys):
    failing = "raise RuntimeError(f'cut off; rows in {paths.results_dir()}')"  # names a machine path
    write_nb(paths.NOTEBOOKS, "02_broken", _rows_then("02_rows", failing))
    write_nb(paths.NOTEBOOKS, "03_third", _rows_then("03_rows"))
    seen = "(paths.results_dir() / '08_seen.txt').write_text(' '.join(sorted(p.name for p in paths.results_dir().glob('0*_rows.csv'))))"
    write_nb(paths.NOTEBOOKS, "08_report", "from helpers.core import paths\n" + seen)
    ref, staging = ref_project / "reference" / "box-smoke", ref_project / "reference" / ".partial-box-smoke"
    # a selection: 01 completes and is published, 02 writes a row and fails: not published
    assert study.main(["run", "--profile", "smoke", "--only", "01,02", "--reference", "box-smoke"]) == 1
    assert (ref / "results" / "01_rows.csv").exists() and not (ref / "results" / "02_rows.csv").exists()
    assert (staging / "results" / "02_rows.csv").exists()  # kept, untracked, for the same command to resume
    assert (ref / "results" / "08_seen.txt").read_text() == "01_rows.csv 02_rows.csv"  # 08 ran last, published
    notebooks = sorted(p.name for p in (ref / "notebooks").glob("*.ipynb"))
    assert notebooks == ["01_first.ipynb", "08_report.ipynb"]
    record = json.loads((ref / "results" / "run.json").read_text())
    run_id, error = record["run_id"], record["notebooks"]["02_broken"]["error"]
    assert "cut off; rows in reference/box-smoke/results" in error and str(ref_project) not in error
    # the session ends: the staging folder is lost; the next one goes on from the published parts
    import shutil

    shutil.rmtree(staging)
    write_nb(paths.NOTEBOOKS, "02_broken", _rows_then("02_rows"))
    assert study.main(["run", "--profile", "smoke", "--only", "02,03", "--reference", "box-smoke"]) == 0
    printed = capsys.readouterr().out
    assert "reference: continuing reference/box-smoke/" in printed and "done: 01_first, 08_report" in printed
    assert json.loads((ref / "results" / "run.json").read_text())["run_id"] == run_id  # one run, in parts
    assert {p.name for p in (ref / "results").glob("0*_rows.csv")} == {"01_rows.csv", "02_rows.csv", "03_rows.csv"}
    assert (ref / "results" / "08_seen.txt").read_text() == "01_rows.csv 02_rows.csv 03_rows.csv"
    assert "[03_third](notebooks/03_third.ipynb)" in (ref / "README.md").read_text()
    assert not staging.exists() and not list((ref_project / "reference").glob(".publish-*"))


def test_readme_findings_are_in_step_with_the_reference_they_name():
    name = reference.readme_reference()
    assert name and (paths.REFERENCE / name / "results").is_dir()
    assert reference.findings_in(paths.README.read_text()) == reference.project_findings(name)
    assert (paths.REFERENCE / name / "README.md").read_text() == reference.reference_readme(
        paths.REFERENCE / name, name
    )


def test_every_committed_reference_holds_one_run():
    from helpers.report.claims.registry import TABLES, load_tables

    for folder in paths.references():
        tables = load_tables(folder / "results")  # raises if a table mixes runs
        run_ids = {rid for df in tables.values() if df is not None for rid in df.get("run_id", [])}
        assert len(run_ids) == 1, (folder.name, run_ids)
        assert any(tables[name] is not None for name in TABLES)


CUT_OFF = """from pathlib import Path
import time
from helpers.runner import session
run = session.start("04_nb", dict(batch_sizes=batch_sizes, label=label))
run.table("04_rows", key=["b"]).append_new([{"b": 1, "p50_ms": 1.0}])
for _ in range(200):  # a long notebook: the runner's periodic save comes while it runs
    if Path(KEPT).exists():
        break
    time.sleep(0.05)
assert Path(KEPT).exists(), "no periodic save"
raise RuntimeError("cut off")
"""

GOES_ON = """from helpers.core import paths
from helpers.runner import session
run = session.start("04_nb", dict(batch_sizes=batch_sizes, label=label))
written = run.table("04_rows", key=["b"]).append_new([{"b": b, "p50_ms": 1.0} for b in (1, 2)])
(paths.results_dir() / "04_written.txt").write_text(str(written))
"""


def test_a_notebook_longer_than_the_window_keeps_its_finished_rows_in_the_reference(ref_project, capsys, monkeypatch):
    import shutil

    monkeypatch.setattr(study, "CHECKPOINT_S", 0.2)
    ref, staging = ref_project / "reference" / "box-smoke", ref_project / "reference" / ".partial-box-smoke"
    kept = ref / "unfinished" / "results" / "04_rows.csv"
    write_nb(paths.NOTEBOOKS, "04_long", CUT_OFF.replace("KEPT", repr(str(kept))))
    write_nb(paths.NOTEBOOKS, "08_report", "pass")
    # the first part of a new reference: 04 writes a row, waits for the periodic save, is cut off
    assert study.main(["run", "--profile", "smoke", "--only", "04", "--reference", "box-smoke"]) == 1
    assert "RuntimeError: cut off" in capsys.readouterr().out  # the periodic save came before it
    assert kept.read_text().count("\n") == 2  # the header and the finished row
    assert not (ref / "results" / "04_rows.csv").exists()  # not a published part: no finding reads it
    assert "Unfinished: the rows measured so far by 04 (1 row)" in (ref / "README.md").read_text()
    assert "04 (1 row)" in (ref / "unfinished" / "README.md").read_text()
    # the session ends: staging is lost, the committed reference (unfinished rows included) is not
    shutil.rmtree(staging)
    write_nb(paths.NOTEBOOKS, "04_long", GOES_ON)
    assert study.main(["run", "--profile", "smoke", "--only", "04", "--reference", "box-smoke"]) == 0
    assert "rows kept of unfinished 04 (1 row)" in capsys.readouterr().out
    assert (ref / "results" / "04_written.txt").read_text() == "1"  # row b=1 was kept, not measured again
    assert (ref / "results" / "04_rows.csv").read_text().count("\n") == 3
    assert not (ref / "unfinished").exists() and "Unfinished" not in (ref / "README.md").read_text()


def test_git_keeps_a_references_tables_and_its_unfinished_rows():
    """The rows kept for a resume must survive a commit: git may ignore none of them."""
    for kept in (
        "reference/box/results/03_cpu_sweep.csv",
        "reference/box/unfinished/README.md",
        "reference/box/unfinished/results/03_cpu_sweep.csv",
        "reference/box/unfinished/results/run.json",
        "reference/box/unfinished/results/samples/03_sample.json",
    ):
        ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q", kept], cwd=paths.ROOT)
        assert ignored.returncode == 1, f"{kept} is git-ignored"


def test_a_stopped_run_lists_its_unfinished_rows_in_the_published_readme(ref_project, capsys, monkeypatch):
    assert study.main(["run", "--profile", "smoke", "--only", "01", "--reference", "box-smoke"]) == 0
    ref = ref_project / "reference" / "box-smoke"
    assert "Unfinished" not in (ref / "README.md").read_text()
    write_nb(paths.NOTEBOOKS, "04_long", "pass")

    def stopped_after_a_row(nb, out_dir, params, kernel, checkpoint=None):
        (reference.staging_dir("box-smoke") / "results" / "04_rows.csv").write_text("b,p50_ms\n1,1.0\n")
        raise study.Terminated  # the end of a session: kill -TERM

    monkeypatch.setattr(study, "execute", stopped_after_a_row)
    assert study.main(["run", "--profile", "smoke", "--only", "04", "--reference", "box-smoke"]) == 130
    assert "interrupted (SIGTERM) in 04_long" in capsys.readouterr().err
    assert (ref / "unfinished" / "results" / "04_rows.csv").exists()
    assert "Unfinished: the rows measured so far by 04 (1 row)" in (ref / "README.md").read_text()


def test_readme_takes_a_committed_reference_only(ref_project, capsys):
    assert study.main(["run", "--profile", "smoke", "--only", "01", "--reference", "box-smoke"]) == 0
    (ref_project / "reference" / ".partial-box-smoke" / "results").mkdir(parents=True)  # a run's staging
    with pytest.raises(ParameterError, match=r"readme: no reference '.partial-box-smoke'; accepted: box-smoke$"):
        reference.write_readmes(".partial-box-smoke")
    assert [p.name for p in paths.references()] == ["box-smoke"]


def test_a_reference_is_redrawn_from_its_tables_on_another_machine_and_measures_nothing(ref_project, capsys):
    assert study.main(["run", "--profile", "smoke", "--only", "01", "--reference", "box-smoke"]) == 0
    ref = ref_project / "reference" / "box-smoke"
    record_file = ref / "results" / "run.json"
    record = json.loads(record_file.read_text())
    record["machine"] = {**record["machine"], "fingerprint": "another-box"}  # measured elsewhere
    record_file.write_text(json.dumps(record, indent=2))
    rows = (ref / "results" / "01_rows.csv").read_bytes()
    write_nb(paths.NOTEBOOKS, "01_first", ROWS + 'table.append_new([{"b": 99, "p50_ms": 1.0}])\nprint("new drawing")\n')
    assert study.main(["redraw", "box-smoke"]) == 0
    assert (ref / "results" / "01_rows.csv").read_bytes() == rows  # no row measured, none added
    assert json.loads(record_file.read_text()) == record  # the run record is the measured run's
    assert "new drawing" in json.dumps(nbformat.read(ref / "notebooks" / "01_first.ipynb", as_version=4))
    assert not (ref_project / "reference" / ".partial-box-smoke").exists()
    # a notebook that would measure a configuration the run lacks is refused, and nothing is published
    write_nb(paths.NOTEBOOKS, "01_first", ROWS + 'table.append({"b": 99, "p50_ms": 1.0})\n')
    assert study.main(["redraw", "box-smoke"]) == 1
    assert "a redraw measures nothing" in capsys.readouterr().out
    assert "new drawing" in json.dumps(nbformat.read(ref / "notebooks" / "01_first.ipynb", as_version=4))
    assert study.main(["redraw", "no-such-box"]) == 2
