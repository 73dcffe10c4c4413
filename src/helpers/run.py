"""The run a notebook belongs to: profile, run id, host, parameters, result tables.

The first cell after a notebook's parameters does

    run = helpers.run.start("03_cpu_sweeps", params)

which records the environment (results/environment.json, with this notebook's parameters),
and gives `run.table(...)` for its result tables. The study runner passes the profile and
run id through the environment; a notebook opened by hand runs as profile "interactive".
"""
from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

from . import paths
from .results import ResultTable

PROFILE_ENV = "WORKBOOK_PROFILE"
RUN_ID_ENV = "WORKBOOK_RUN_ID"
RUN_FILE = "run.json"


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def current_run_info() -> dict | None:
    """results/run.json: the profile and id of the run whose tables results/ holds."""
    path = paths.results_dir() / RUN_FILE
    return json.loads(path.read_text()) if path.exists() else None


def write_run_info(profile: str, run_id: str) -> None:
    path = paths.results_dir() / RUN_FILE
    path.write_text(json.dumps({"profile": profile, "run_id": run_id}, indent=2) + "\n")


@dataclass
class Run:
    notebook: str
    profile: str
    run_id: str
    host: str
    params: dict = field(default_factory=dict)

    def table(self, name: str, key: Sequence[str]) -> ResultTable:
        """results/<name>.csv; every row gets run_id, notebook and host."""
        common = {"run_id": self.run_id, "notebook": self.notebook, "host": self.host}
        return ResultTable(paths.result_table(name), key, common)

    def save_figure(self, fig, name: str) -> dict:
        """plots.save with this run's provenance (notebook, profile, parameters)."""
        from . import plots

        provenance = {"notebook": self.notebook, "profile": self.profile, "run_id": self.run_id,
                      "host": self.host, "params": self.params}
        return plots.save(fig, name, provenance=provenance)


def _resolve_run(profile: str | None) -> tuple[str, str]:
    profile = profile or os.environ.get(PROFILE_ENV) or "interactive"
    run_id = os.environ.get(RUN_ID_ENV)
    if not run_id:
        info = current_run_info()
        run_id = info["run_id"] if info and info.get("profile") == profile else new_run_id()
        write_run_info(profile, run_id)
    return profile, run_id


def record_environment(notebook: str, profile: str, run_id: str, params: dict) -> dict:
    """Write results/environment.json: the fingerprint, plus each notebook's parameters."""
    from .fingerprint import fingerprint

    path = paths.environment_file()
    previous = json.loads(path.read_text()) if path.exists() else {}
    env = fingerprint(profile=profile, params=None)
    env["run_id"] = run_id
    notebooks = previous.get("notebooks", {}) if previous.get("run_id") == run_id else {}
    notebooks[notebook] = params
    env["notebooks"] = notebooks
    path.write_text(json.dumps(env, indent=2, default=str) + "\n")
    return env


def start(notebook: str, params: dict | None = None, profile: str | None = None) -> Run:
    """Begin (or resume) this notebook's part of the run."""
    from . import plots

    profile, run_id = _resolve_run(profile)
    params = {k: v for k, v in (params or {}).items() if not k.startswith("_")}
    record_environment(notebook, profile, run_id, params)
    plots.apply_style()
    return Run(notebook, profile, run_id, socket.gethostname(), params)
