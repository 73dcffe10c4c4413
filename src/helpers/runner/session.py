"""Run identity: which run results/ holds, and the notebook's session within it.

results/ always holds exactly one run. `results/run.json` records it: run id, profile, the
resolved parameters of each notebook, git commit, start and end, and the machine (with a
short fingerprint hash). `begin()` decides, before the first row is written, whether a new
request continues that run or starts another:

- same machine, same profile, and the same parameters for every notebook both know:
  the run is continued (resumed); its finished rows are kept and skipped;
- anything else (or `fresh`): the previous run's results/, figures/ and executed notebooks
  move to runs/archive/<run id>/, and a new run starts in an empty results/.

So a table can only ever hold the rows of one run; `ResultTable` refuses a row of another run
as a second guard. A corrupt or foreign run.json stops everything with a message, and nothing
is moved or deleted.

In a notebook, the first cell after the parameters does

    run = session.start("03_cpu_sweeps", globals())

which records the names the notebook's `parameters` cell declares, with their values: the
parameter list is read from the notebook, never retyped.

The study runner passes the run id through the environment; a notebook opened by hand in
JupyterLab joins the current run when its parameters agree with it, or begins a new one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from helpers.core import paths
from helpers.core.tables import ResultTable

RUN_FILE = "run.json"
INTERACTIVE = "interactive"
RECORD_KEYS = ("run_id", "profile", "machine", "notebooks")


class RunRecordError(RuntimeError):
    """results/run.json cannot be trusted; nothing was moved or deleted."""


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record_path() -> Path:
    return paths.results_dir() / RUN_FILE


def read_record() -> dict | None:
    """The record of the run results/ holds; None when results/ holds no run at all."""
    path = record_path()
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunRecordError(
            f"{path} is not readable JSON ({exc}); it and results/ were left as they are. "
            "Move results/ aside, or run with --fresh to archive it under runs/archive/"
        ) from exc
    missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise RunRecordError(
            f"{path} is not a run record of this workbook (no {', '.join(missing)}); it and "
            "results/ were left as they are. Move results/ aside, or run with --fresh to "
            "archive it under runs/archive/"
        )
    return record


def write_record(record: dict) -> None:
    path = record_path()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def this_machine() -> dict:
    from helpers.core.fingerprint import fingerprint

    return fingerprint()["machine"]


def _same(a, b) -> bool:
    """Equal as JSON (a record read back has lists where the caller may have tuples)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def why_not_continue(record: dict, profile: str | None, machine: dict, notebooks: dict) -> str | None:
    """Why a request cannot continue the recorded run (None if it can). profile None means any
    (a notebook opened by hand)."""
    if profile is not None and record["profile"] != profile:
        return f"profile {record['profile']} → {profile}"
    if record["machine"].get("fingerprint") != machine.get("fingerprint"):
        return f"machine #{record['machine'].get('fingerprint')} → #{machine.get('fingerprint')}"
    for nb, params in notebooks.items():
        before = (record["notebooks"].get(nb) or {}).get("params")
        if before is not None and not _same(before, params):
            changed = sorted(k for k in set(before) | set(params) if not _same(before.get(k), params.get(k)))
            return f"parameters of {nb} changed ({', '.join(changed)})"
    return None


def _rows_written() -> int:
    count = 0
    for table in paths.results_dir().glob("*.csv"):
        with table.open() as f:
            count += max(sum(1 for _ in f) - 1, 0)  # less the header
    return count


def _run_outputs() -> list[Path]:
    """What a run wrote: results/ and the charts in figures/ (figures/README.md is the project's)."""
    return [paths.results_dir(), *(p for p in paths.figures_dir().iterdir() if p.name != "README.md")]


def _has_outputs() -> bool:
    return any(p.name != RUN_FILE for p in paths.results_dir().iterdir()) or len(_run_outputs()) > 1


def archive_current(record: dict | None) -> Path | None:
    """Move results/, figures/ and the executed notebooks of the current run to
    runs/archive/<run id>/ (a run with no record is archived as unrecorded-<time>)."""
    if record is None and not _has_outputs():
        return None
    name = record["run_id"] if record else "unrecorded-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest = paths.out_root() / "runs" / "archive" / name
    (dest / "figures").mkdir(parents=True, exist_ok=True)
    for item in _run_outputs():
        shutil.move(str(item), str(dest / ("results" if item == paths.results_dir() else "figures/" + item.name)))
    if record:
        executed = paths.runs_dir(record["profile"])
        for nb in record["notebooks"]:
            if (executed / f"{nb}.ipynb").exists():
                (dest / "notebooks").mkdir(exist_ok=True)
                shutil.move(str(executed / f"{nb}.ipynb"), str(dest / "notebooks" / f"{nb}.ipynb"))
    return dest


def begin(
    profile: str | None, notebooks: dict[str, dict], fresh: bool = False, say: Callable[[str], None] = print
) -> dict:
    """Continue the recorded run or archive it and start a new one; returns the record.
    `notebooks` maps each notebook about to run to its resolved parameters."""
    try:
        record = read_record()
    except RunRecordError:
        if not fresh:
            raise
        record = None  # --fresh archives an untrusted record as it is, unread
    machine = this_machine()
    reason = "--fresh" if fresh else (why_not_continue(record, profile, machine, notebooks) if record else None)
    if record and not reason:
        say(
            f"resuming run {record['run_id']} ({record['profile']}): same machine and parameters; "
            f"its {_rows_written()} finished rows are kept and their configurations skipped"
        )
    else:
        dest = archive_current(record)
        if dest:
            say(f"previous run {dest.name} archived to {dest} ({reason or 'it had no run record'})")
        from helpers.core.fingerprint import git_info

        record = {
            "run_id": new_run_id(),
            "profile": profile or INTERACTIVE,
            "machine": machine,
            "git": git_info(),
            "started": now(),
            "notebooks": {},
        }
    record["finished"] = None
    for nb, params in notebooks.items():
        record["notebooks"].setdefault(nb, {})["params"] = params
    write_record(record)
    return record


def mark_notebook(notebook: str, **fields) -> None:
    """Record a notebook's start, end and outcome in run.json."""
    record = read_record()
    record["notebooks"].setdefault(notebook, {}).update(fields)
    write_record(record)


def mark_finished() -> None:
    record = read_record()
    record["finished"] = now()
    write_record(record)


# -- the notebook's session -----------------------------------------------------------------
@dataclass
class Run:
    notebook: str
    profile: str
    run_id: str
    host: str
    params: dict = field(default_factory=dict)
    caption: str = ""

    def table(self, name: str, key: Sequence[str]) -> ResultTable:
        """results/<name>.csv; every row gets run_id, notebook and host."""
        common = {"run_id": self.run_id, "notebook": self.notebook, "host": self.host}
        return ResultTable(paths.result_table(name), key, common)

    def save_figure(self, fig, name: str) -> dict:
        """style.save with this run's provenance (notebook, profile, parameters) and caption."""
        from helpers.report.charts import style

        provenance = {
            "notebook": self.notebook,
            "profile": self.profile,
            "run_id": self.run_id,
            "host": self.host,
            "params": self.params,
        }
        return style.save(fig, name, provenance=provenance, caption=self.caption)

    def save_figures(self, figures: Mapping[str, Any]) -> list[dict]:
        """`save_figure` each figure under its name, then show it, in order; each is closed once
        shown, so a notebook shows it once. What to draw is the study's choice (an empty dict
        saves and shows nothing)."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        entries = []
        for name, fig in figures.items():
            entries.append(self.save_figure(fig, name))
            display(fig)
            plt.close(fig)
        return entries


def _join_run(notebook: str, params: dict) -> dict:
    """The record this notebook's rows belong to: the runner's run, or (opened by hand) the
    current run if its parameters agree, else a new one."""
    run_id = os.environ.get(paths.RUN_ID_ENV)
    if not run_id:
        return begin(None, {notebook: params}, say=lambda line: print(f"run: {line}"))
    record = read_record()
    if record is None or record["run_id"] != run_id:
        raise RunRecordError(
            f"the study runner started run {run_id}, but {record_path()} records "
            f"{record['run_id'] if record else 'no run'}"
        )
    return record


def record_environment(notebook: str, record: dict, params: dict) -> dict:
    """Write results/environment.json: the fingerprint, the run, and each notebook's parameters."""
    from helpers.core.fingerprint import fingerprint

    path = paths.environment_file()
    previous = json.loads(path.read_text()) if path.exists() else {}
    env = fingerprint(profile=record["profile"])
    env["run_id"] = record["run_id"]
    notebooks = previous.get("notebooks", {}) if previous.get("run_id") == record["run_id"] else {}
    notebooks[notebook] = params
    env["notebooks"] = notebooks
    path.write_text(json.dumps(env, indent=2, default=str) + "\n")
    return env


def notebook_params(notebook: str, namespace: Mapping) -> dict:
    """The parameters `notebook` runs with: each name its `parameters` cell declares (read from
    notebooks/<notebook>.ipynb) with its value in `namespace`, the notebook's globals().
    A declared name missing from `namespace` is an error (the parameters cell has not run).
    Without a notebook file (a test's session), `namespace` is the parameters, less `_` names."""
    from helpers.runner.params import notebook_parameters

    path = paths.NOTEBOOKS / f"{notebook}.ipynb"
    if not path.exists():
        return {k: v for k, v in namespace.items() if not k.startswith("_")}
    declared = notebook_parameters(path)
    missing = [name for name in declared if name not in namespace]
    if missing:
        raise NameError(f"{notebook}: parameter(s) {', '.join(missing)} not defined; run the parameters cell first")
    return {name: namespace[name] for name in declared}


def _quiet_kernel_exit() -> None:
    """At kernel exit asyncio logs the kernel's own pending control task ("Task was destroyed
    but it is pending"), sometimes after the output streams have closed (a logging traceback).
    Both would reach the runner's terminal; nothing is measured then, so from exit on the
    asyncio logger is silenced and logging errors are dropped."""
    import atexit
    import logging

    def silence() -> None:
        logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
        logging.raiseExceptions = False

    atexit.register(silence)


def start(notebook: str, namespace: Mapping | None = None) -> Run:
    """Begin (or resume) this notebook's part of the run. `namespace` is the notebook's
    globals(): the parameters recorded are the names its `parameters` cell declares
    (see `notebook_params`)."""
    from helpers.core.fingerprint import short_caption
    from helpers.report.charts import style

    params = notebook_params(notebook, namespace or {})
    _quiet_kernel_exit()
    record = _join_run(notebook, params)
    if os.environ.get(paths.REDRAW_ENV):  # a finished run redrawn: its machine's fingerprint stays
        env = json.loads(paths.environment_file().read_text())
    else:
        env = record_environment(notebook, record, params)
    style.apply_style()
    return Run(
        notebook,
        record["profile"],
        record["run_id"],
        env.get("host") if os.environ.get(paths.REDRAW_ENV) else socket.gethostname(),
        params,
        caption=short_caption(env, record["run_id"]),
    )
