"""Where a long run is: the runner's ETA, study.log, Ctrl-C, weighted bars, phases, resume lines."""

import io
import json
import re
import sys
from datetime import datetime

import pytest
from tqdm import tqdm

from helpers import study
from helpers.core import progress, runlog

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"
RUNNER_ENV = ("WORKBOOK_PROFILE", "WORKBOOK_RUN_ID", "WORKBOOK_HEADLESS", runlog.RUNS_ENV)


@pytest.fixture(autouse=True)
def _not_headless(monkeypatch):
    """JupyterLab's behaviour unless a test says otherwise; whatever the runner sets is undone."""
    for var in RUNNER_ENV:
        monkeypatch.setenv(var, "")


@pytest.fixture
def headless(monkeypatch, tmp_path):
    """A kernel under the runner: profile smoke, outputs in tmp, its terminal a buffer."""
    monkeypatch.setenv("WORKBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("WORKBOOK_PROFILE", "smoke")
    monkeypatch.setenv("WORKBOOK_HEADLESS", "1")
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", terminal)
    return terminal


# -- the estimate ------------------------------------------------------------------------------
NOW = datetime(2026, 3, 2, 10, 30, 0)


def test_eta_adds_the_previous_durations_of_the_notebooks_left():
    durations = {"02_quantization": 30.0, "03_cpu_sweeps": 131.0, "04_gpu_sweeps": 229.0}
    note = runlog.start_note(["03_cpu_sweeps", "04_gpu_sweeps"], durations, {}, NOW)
    assert note == "last run 131 s; study ETA 10:36, about 6 min left"  # 360 s from 10:30


def test_eta_takes_off_what_this_run_already_spent():
    durations = {"03_cpu_sweeps": 600.0, "04_gpu_sweeps": 120.0}
    spent = {"03_cpu_sweeps": 480.0}  # interrupted after 8 of its 10 minutes
    assert runlog.start_note(["03_cpu_sweeps", "04_gpu_sweeps"], durations, spent, NOW).endswith(
        "study ETA 10:34, about 4 min left"
    )
    done = {"03_cpu_sweeps": float("inf")}  # completed earlier in this run: re-run skips its rows
    assert runlog.start_note(["03_cpu_sweeps", "04_gpu_sweeps"], durations, done, NOW) == (
        "already done in this run; study ETA 10:32, about 120 s left"
    )
    assert runlog.start_note(["04_gpu_sweeps"], {"04_gpu_sweeps": 30.0}, {}, NOW).endswith("under a minute left")


def test_eta_without_previous_durations_says_so():
    assert runlog.start_note(["03_cpu_sweeps"], {}, {}, NOW) == "no previous run to estimate from"
    partial = runlog.start_note(["03_cpu_sweeps", "04_gpu_sweeps"], {"04_gpu_sweeps": 7200.0}, {}, NOW)
    assert partial == (
        "no previous run to estimate from; study ETA 12:30 or later, at least 2 h 00 min left, "
        "not counting 1 notebook(s) with no previous run"
    )
    done = {"03_cpu_sweeps": float("inf")}  # a resumed run: the only notebook with a duration is done
    resumed = runlog.start_note(["03_cpu_sweeps", "05_sorting"], {"03_cpu_sweeps": 90.0}, done, NOW)
    assert resumed == "already done in this run; no study ETA: the 1 notebook(s) left have no previous run"
    assert runlog.start_note(["x"], {"x": 5 * 3600.0}, {}, datetime(2026, 3, 2, 22, 0)).endswith(
        "study ETA Tue 03:00, about 5 h 00 min left"  # another day: its name
    )


def test_durations_survive_a_broken_file(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_OUT", str(tmp_path))
    assert runlog.read_durations("smoke") == {}
    runlog.record_duration("smoke", "01_first", 12.34)
    runlog.record_duration("smoke", "02_second", 5)
    assert runlog.read_durations("smoke") == {"01_first": 12.3, "02_second": 5.0}
    (tmp_path / "runs" / "smoke" / "durations.json").write_text("{not json")
    assert runlog.read_durations("smoke") == {}


# -- the runner --------------------------------------------------------------------------------
def fake_execute(interrupt_at: str | None = None, seconds: float = 7.0, stop=KeyboardInterrupt):
    """Stands for papermill: each notebook takes `seconds`; `stop` (Ctrl-C) during `interrupt_at`."""

    def execute(nb, out_dir, params, kernel, checkpoint=None):
        if nb.stem == interrupt_at:
            raise stop
        return study.Outcome(nb.stem, seconds)

    return execute


def test_runner_prints_the_eta_from_the_last_run_and_logs_every_line(project, monkeypatch, capsys):
    monkeypatch.setattr(study, "ensure_kernel", lambda: "fake")
    monkeypatch.setattr(study, "execute", fake_execute())
    smoke = project / "runs" / "smoke"
    smoke.mkdir(parents=True)
    (smoke / "durations.json").write_text(json.dumps({"01_first": 100, "02_broken": 200}))
    assert study.main(["run", "--profile", "smoke", "--out", str(project)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"\[1/3\] 01_first \.\.\. \(last run 100 s; study ETA \d\d:\d\d or later, at least 5 min", printed)
    assert "not counting 1 notebook(s) with no previous run)" in printed
    assert "[3/3] 03_third ... (no previous run to estimate from)" in printed
    assert "[3/3] 03_third ok (7 s)" in printed
    assert runlog.read_durations("smoke") == {"01_first": 7.0, "02_broken": 7.0, "03_third": 7.0}
    log = (smoke / "study.log").read_text().splitlines()
    assert all(re.match(STAMP + " ", line) for line in log)
    assert [line.split(" ", 1)[1] for line in log] == printed.splitlines()


def test_ctrl_c_says_what_finished_and_how_to_resume(project, monkeypatch, capsys):
    monkeypatch.setattr(study, "ensure_kernel", lambda: "fake")
    monkeypatch.setattr(study, "execute", fake_execute(interrupt_at="02_broken"))
    code = study.main(["run", "--profile", "smoke", "--fresh", "-p", "label=y", "--out", str(project)])
    assert code == 130
    err = capsys.readouterr().err
    assert "study: interrupted (Ctrl-C) in 02_broken after" in err
    assert "study: finished in this run: 01_first (7 s)" in err
    resume = re.search(r"study: to resume where it stopped: (.*)", err).group(1)
    assert resume.endswith(f"-m helpers.study run --profile smoke -p label=y --out {project}")  # no --fresh
    assert "Traceback" not in err
    log = (project / "runs" / "smoke" / "study.log").read_text()
    assert re.search(STAMP + r" study: interrupted \(Ctrl-C\) in 02_broken", log)
    assert re.search(STAMP + " study: to resume where it stopped: .*helpers.study run --profile smoke", log)
    record = json.loads((project / "results" / "run.json").read_text())["notebooks"]
    assert record["01_first"]["status"] == "ok" and record["02_broken"]["status"] == "interrupted"
    assert runlog.read_durations("smoke") == {"01_first": 7.0}  # only what completed


def test_sigterm_stops_as_ctrl_c_does_and_is_named(project, monkeypatch, capsys):
    monkeypatch.setattr(study, "ensure_kernel", lambda: "fake")
    monkeypatch.setattr(study, "execute", fake_execute(interrupt_at="02_broken", stop=study.Terminated))
    assert study.main(["run", "--profile", "smoke", "--out", str(project)]) == 130
    err = capsys.readouterr().err
    assert "study: interrupted (SIGTERM) in 02_broken after" in err and "Ctrl-C" not in err
    assert "study: to resume where it stopped:" in err
    record = json.loads((project / "results" / "run.json").read_text())["notebooks"]
    assert record["02_broken"]["status"] == "interrupted" and record["02_broken"]["error"] == "SIGTERM"


def test_resume_command_offers_make_for_a_plain_request(project, monkeypatch, capsys):
    monkeypatch.setattr(study, "ensure_kernel", lambda: "fake")
    monkeypatch.setattr(study, "execute", fake_execute(interrupt_at="01_first"))
    assert study.main(["run", "--profile", "smoke"]) == 130  # outputs under WORKBOOK_OUT
    err = capsys.readouterr().err
    assert "study: finished in this run: no notebook" in err
    assert "-m helpers.study run --profile smoke  (or: make study PROFILE=smoke)" in err


# -- inside a notebook -------------------------------------------------------------------------
def test_weighted_track_advances_by_weight_to_the_total(monkeypatch):
    bars = []

    def recording_bar(**kwargs):
        bars.append(tqdm(file=io.StringIO(), **kwargs))
        return bars[-1]

    monkeypatch.setattr(progress, "_notebook_bar", lambda: recording_bar)
    configs = [("tiny", 0.5), ("big", 400.0), ("medium", 12.0)]
    seen = []
    for name, _ in progress.track(configs, desc="sweep", label=lambda c: c[0], weight=lambda c: c[1]):
        seen.append((name, bars[0].n))  # the bar has advanced by the work before this one
    assert seen == [("tiny", 0), ("big", 0.5), ("medium", 400.5)]
    assert bars[0].total == bars[0].n == 412.5
    assert list(progress.track([1, 2], desc="zero", weight=lambda c: 0)) == [1, 2]
    assert bars[1].total == bars[1].n == 2  # no work to weigh: the bar counts
    assert list(progress.track([], desc="nothing")) == [] and len(bars) == 2  # no bar at all


def test_resume_message_in_the_notebook(capsys):
    assert progress.resumed(0, 276) is None
    assert capsys.readouterr().out == ""
    progress.resumed(180, 276)
    assert capsys.readouterr().out == "Resumed: 180 of 276 configurations already done\n"


def test_headless_lines_reach_the_terminal_the_notebook_and_the_log(headless, tmp_path, capsys):
    progress.resumed(3, 11, "cells")
    assert capsys.readouterr().out == "Resumed: 3 of 11 cells already done\n"  # the notebook's output
    with progress.phase("exporting bert-mini/model.onnx (onnx)"):
        with progress.phase("an inner step"):  # covered by the outer line: silent
            pass
    with pytest.raises(ValueError):
        with progress.phase("quantizing bert-mini/ort-int8-pc.onnx"):
            raise ValueError("boom")
    assert capsys.readouterr().out == ""  # phases stay out of the executed notebook
    assert headless.getvalue().splitlines() == [
        "  Resumed: 3 of 11 cells already done",
        "  exporting bert-mini/model.onnx (onnx) ...",
        "  exporting bert-mini/model.onnx (onnx): done in 0 s",
        "  quantizing bert-mini/ort-int8-pc.onnx ...",
        "  quantizing bert-mini/ort-int8-pc.onnx: stopped after 0 s (ValueError)",
    ]
    log = (tmp_path / "runs" / "smoke" / "study.log").read_text().splitlines()
    assert [re.sub(STAMP + " ", "", line) for line in log] == headless.getvalue().splitlines()
    assert all(re.match(STAMP + "   ", line) for line in log)


def test_phase_lines_in_jupyterlab(capsys):
    with progress.phase("starting worker ort (bert-base, 2 thread(s))"):
        pass
    assert capsys.readouterr().out.splitlines() == [
        "starting worker ort (bert-base, 2 thread(s)) ...",
        "starting worker ort (bert-base, 2 thread(s)): done in 0 s",
    ]
    assert progress.short("/x/artifacts/03_cpu_sweeps/bert-mini/model-O2.onnx") == "bert-mini/model-O2.onnx"


def test_a_sweep_configuration_weighs_its_expected_seconds():
    """03's bar weighs a configuration by the time it should take: a tiny one the minimum
    measuring time per engine and round, a large one the cap, or one call when a call is longer."""
    from helpers.studies.cpu_sweep import ROUGH_GFLOPS, expected_seconds

    timing = {"min_time_s": 0.1, "max_time_s": 3.0}
    assert expected_seconds(0.01, 7, 2, timing) == pytest.approx(7 * 2 * 0.1)
    assert expected_seconds(100.0, 7, 2, timing) == pytest.approx(7 * 2 * 3.0)
    assert expected_seconds(10 * ROUGH_GFLOPS, 1, 2, timing) == pytest.approx(2 * 10.0)


def test_sorting_advances_per_engine_of_each_dataset_and_skips_what_it_holds(headless, monkeypatch):
    """05's bar moves as each engine of a dataset ends (not once per dataset), and a resumed
    run measures only the engines with rows left."""
    import numpy as np

    from helpers.studies import sorting

    calls = []
    monkeypatch.setattr(sorting, "token_lengths_capped", lambda texts, tok, n: (np.full(len(texts), 10), 0))
    monkeypatch.setattr(
        sorting, "measure_distribution", lambda table, d, texts, built, *a, **k: calls.append((d, *built))
    )

    class Table:
        def done(self, distribution, engine, strategy, batch_size):
            return (distribution, engine) == ("corpus", "eager")

    class Loaded:
        tokenizer, input_names = None, ["input_ids"]

    texts_of = {"corpus": ["a"] * 4, "sentences": ["b"] * 2}
    params = dict(strategies=["fixed", "sorted"], batch_sizes=[4], passes=1, max_length=8, min_time_s=0.1)
    sorting.measure_datasets(Table(), params, texts_of, {"eager": 1, "ort": 2}, Loaded())
    assert calls == [("corpus", "ort"), ("sentences", "eager"), ("sentences", "ort")]
    out = headless.getvalue()
    assert "Resumed: 2 of 8 configurations already done" in out and "3/3 sentences · ort" in out
