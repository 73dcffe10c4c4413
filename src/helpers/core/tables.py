"""Tidy result tables: one CSV row per measurement, appended as each configuration finishes.

A row is written whole and flushed to disk before the next configuration starts, so an
interrupted run loses no finished measurement; a re-run skips configurations whose key is
already in the table. A line cut short by a crash is dropped when the table is opened again.
A table holds the rows of one run only (see helpers.runner.session).

A timed row may carry its raw per-call samples (under the key `SAMPLES`): they go to
results/samples/<table>.jsonl, one line per row with the row's run id and key, so any
statistic or CI can be recomputed later (`load_samples`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from helpers.core import paths

COMMON_COLUMNS = (
    "run_id",
    "notebook",
    "host",
    "model",
    "engine",
    "precision",
    "device",
    "threads",
    "batch_size",
    "seq_len",
    "n",
    "mean_ms",
    "std_ms",
    "cv",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "min_ms",
    "ci_low_ms",
    "ci_high_ms",
    "items_per_s",
    "tokens_per_s",
    "peak_rss_mb",
    "peak_gpu_mb",
    "status",
    "message",
)
STATUSES = ("ok", "error", "oom", "skipped", "mismatch")
SAMPLES = "samples_ms"  # a row's raw per-call times in ms; stored beside the table, not in it


class ForeignRowsError(RuntimeError):
    """A table holds rows of another run than the one reading or writing it."""


def _key_text(value) -> str:
    """The text a key value has in the CSV, so keys compare equal before and after a reload."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


class ProcessFailure(RuntimeError):
    """A child process's failure, classified where the evidence was (the child's exception,
    or its exit status and the memory seen while it ran): `status` is the row's status."""

    def __init__(self, message: str, status: str = "error"):
        super().__init__(message)
        self.status = status


def failure_status(exc: BaseException) -> str:
    """`oom` for out-of-memory failures (host or device), `skipped` for an engine that cannot
    run on this machine (helpers.backends.engines.EngineUnavailable), `error` for anything else."""
    if isinstance(exc, ProcessFailure):
        return exc.status
    if type(exc).__name__ == "EngineUnavailable":
        return "skipped"
    text = f"{type(exc).__name__}: {exc}".lower()
    # torch: "CUDA out of memory" (OutOfMemoryError); ONNX Runtime: "Failed to allocate memory
    # for requested buffer"; C++ code: std::bad_alloc
    oom = (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"
        or any(s in text for s in ("out of memory", "failed to allocate memory", "bad_alloc"))
    )
    return "oom" if oom else "error"


# A SIGKILL while less than this share of memory was available: the OOM killer's (the lowest
# available memory is sampled, so it may miss the last moments before the kill).
LOW_MEMORY_FRACTION = 0.05


def _size(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def exit_failure(
    exitcode: int | None, low_available_mb: float | None = None, total_mb: float | None = None, oom_kills: int = 0
) -> tuple[str, str]:
    """Status and reason for a process that died without answering. `exitcode` as
    multiprocessing gives it (negative: killed by that signal). `oom` only with evidence of
    memory exhaustion: a SIGKILL while the kernel's OOM-kill count rose (`oom_kills`) or
    while the lowest available memory seen was near zero; any other death is `error`."""
    if exitcode is None:
        return "error", "stopped answering (no exit code yet)"
    if exitcode >= 0:
        return "error", f"exit code {exitcode} without an answer"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = "unknown signal"
    if -exitcode != signal.SIGKILL:
        return "error", f"{name} (signal {-exitcode})"
    known = low_available_mb is not None and bool(total_mb)
    if oom_kills:
        seen = f"; lowest available memory {_size(low_available_mb)} of {_size(total_mb)}" if known else ""
        return "oom", f"killed by SIGKILL while the kernel's OOM killer fired (OOM-kill count +{oom_kills}{seen})"
    if not known:
        return "error", "killed by SIGKILL (signal 9); available memory was not recorded"
    if low_available_mb < LOW_MEMORY_FRACTION * total_mb:
        return "oom", f"killed by SIGKILL while available memory was {_size(low_available_mb)} of {_size(total_mb)}"
    return "error", (
        f"killed by SIGKILL (signal 9); the lowest available memory seen was {_size(low_available_mb)} "
        f"of {_size(total_mb)}: no sign of memory exhaustion"
    )


def failure_row(exc: BaseException) -> dict:
    return {"status": failure_status(exc), "message": f"{type(exc).__name__}: {exc}"[:500]}


class RedrawMeasures(RuntimeError):
    """A notebook redrawing a finished run would have measured a configuration its tables lack."""


class ResultTable:
    """results/<name>.csv with a key (the columns that identify a configuration)."""

    def __init__(self, path: Path, key: Sequence[str], common: dict | None = None):
        self.path = Path(path)
        self.key = tuple(key)
        self.common = dict(common or {})
        self.samples_path = self.path.parent / "samples" / f"{self.path.stem}.jsonl"
        _drop_torn_line(self.path)
        _drop_torn_line(self.samples_path)
        self._header, rows = self._read_rows()
        self._check_one_run(rows)
        self._done = {self._key_of(r) for r in rows}

    def _check_one_run(self, rows: list[dict]) -> None:
        run_id = self.common.get("run_id")
        others = sorted({r.get("run_id") for r in rows} - {run_id}) if run_id else []
        if others:
            raise ForeignRowsError(
                f"{self.path} holds rows of run {others[0]}, not of this run {run_id}; "
                "a table holds one run (the study runner archives a previous run first)"
            )

    # -- reading ---------------------------------------------------------------------------
    def _read_rows(self) -> tuple[list[str], list[dict]]:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return [], []
        with self.path.open(newline="") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)

    def _key_of(self, row: dict) -> tuple:
        return tuple(_key_text(row.get(k)) for k in self.key)

    @property
    def frozen(self) -> bool:
        """A redraw (paths.REDRAW_ENV): every configuration counts as done, nothing is measured."""
        return bool(os.environ.get(paths.REDRAW_ENV))

    def done(self, **config) -> bool:
        """Whether a row with this configuration's key is already recorded."""
        missing = [k for k in self.key if k not in config]
        if missing:
            raise KeyError(f"done() needs every key column; missing {missing}")
        return self.frozen or self._key_of(config) in self._done

    def append_new(self, rows: Iterable[dict]) -> int:
        """Append the rows whose configuration is not yet recorded; how many were written."""
        written = 0
        for row in rows:
            if not self.frozen and self._key_of({**self.common, **row}) not in self._done:
                self.append(row)
                written += 1
        return written

    def read(self) -> pd.DataFrame:
        return pd.read_csv(self.path) if self.path.exists() and self.path.stat().st_size else pd.DataFrame()

    def __len__(self) -> int:
        return len(self._done)

    # -- writing ---------------------------------------------------------------------------
    def append(self, row: dict) -> dict:
        """Write one finished row (its samples first); raises if its configuration is already recorded."""
        full = {**self.common, **row}
        if self.frozen:
            raise RedrawMeasures(
                f"{self.path.stem}: no row for {dict(zip(self.key, self._key_of(full)))}; a redraw measures nothing "
                "(run the notebook on the machine that measured the run)"
            )
        samples = full.pop(SAMPLES, None)
        full.setdefault("status", "ok")
        full.setdefault("message", "")
        if full["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {full['status']!r}")
        missing = [k for k in self.key if k not in full]
        if missing:
            raise KeyError(f"row lacks key columns {missing}")
        key = self._key_of(full)
        if key in self._done:
            raise ValueError(f"{self.path.name}: configuration {dict(zip(self.key, key))} is already recorded")
        new_columns = [c for c in full if c not in self._header]
        if new_columns:
            self._widen(self._order(list(self._header) + new_columns))
        if samples is not None:
            self._write_samples(full, samples)
        self._write_line(full)
        self._done.add(key)
        return full

    @staticmethod
    def _order(columns: Iterable[str]) -> list[str]:
        """Common columns first in their documented order, the notebook's own after them."""
        columns = list(dict.fromkeys(columns))
        return [c for c in COMMON_COLUMNS if c in columns] + [c for c in columns if c not in COMMON_COLUMNS]

    def _widen(self, header: list[str]) -> None:
        """Rewrite the table with more columns (atomically: a crash keeps the old file)."""
        _, rows = self._read_rows()
        tmp = self.path.with_suffix(".csv.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._header = header

    def _write_line(self, row: dict) -> None:
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=self._header, lineterminator="\n").writerow(
            {k: _cell(row.get(k)) for k in self._header}
        )
        _append_line(self.path, buf.getvalue())

    def _write_samples(self, row: dict, samples_ms) -> None:
        """One JSON line: the row's run id and key, and its samples in integer nanoseconds."""
        key = {k: _key_text(row.get(k)) for k in ("run_id", *self.key)}
        ns = np.rint(np.asarray(samples_ms, dtype=float) * 1e6).astype(np.int64).tolist()
        self.samples_path.parent.mkdir(parents=True, exist_ok=True)
        _append_line(self.samples_path, json.dumps({"key": key, "samples_ns": ns}, separators=(",", ":")) + "\n")


def _append_line(path: Path, line: str) -> None:
    with path.open("a", newline="") as f:
        f.write(line)  # one write of the whole line
        f.flush()
        os.fsync(f.fileno())


def _drop_torn_line(path: Path) -> None:
    """Drop a trailing line that a crash cut short (a complete line ends with a newline)."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


def read_table(name: str) -> pd.DataFrame | None:
    """results/<name>.csv of the current output root, or None if that notebook has not run."""
    return read_one_run(paths.result_table(name))


def read_one_run(path: str | os.PathLike) -> pd.DataFrame | None:
    """A result table (None if absent or empty); raises if it mixes the rows of several runs."""
    path = Path(path)
    if not path.exists() or not path.stat().st_size:
        return None
    df = pd.read_csv(path)
    runs = df["run_id"].dropna().unique() if "run_id" in df else []
    if len(runs) > 1:
        raise ForeignRowsError(
            f"{path} mixes the rows of {len(runs)} runs ({', '.join(map(str, runs[:3]))}); "
            "every table, chart and takeaway reads one run"
        )
    return df


def load_samples(name: str, results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The raw samples of results/<name>.csv: one row per timed table row, with its run id and
    key columns (typed as in the table) and `samples_ms` (an array). A configuration measured
    again after an interruption keeps its last samples."""
    path = Path(results_dir or paths.results_dir()) / "samples" / f"{name}.jsonl"
    entries = {}
    if path.exists():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            entries[tuple(entry["key"].items())] = entry
    df = pd.DataFrame([{**e["key"], SAMPLES: np.asarray(e["samples_ns"], dtype=float) / 1e6} for e in entries.values()])
    for column in df.columns.drop(SAMPLES, errors="ignore"):
        try:
            df[column] = pd.to_numeric(df[column])
        except (ValueError, TypeError):
            pass  # a text key column
    return df


FAILED = ("error", "oom", "mismatch")


def failures(df: pd.DataFrame | None) -> pd.DataFrame:
    """The rows that failed (error, oom, mismatch), one line per engine, status and reason: how
    many cells, which models, and the reason (the rows' message). Skipped rows (left out for
    the time budget or a missing device) are not failures."""
    columns = ["engine", "status", "cells", "models", "reason"]
    if df is None or "status" not in df:
        return pd.DataFrame(columns=columns)
    bad = df[df["status"].isin(FAILED)].assign(reason=lambda d: d["message"].fillna("").astype(str))
    if bad.empty:
        return pd.DataFrame(columns=columns)
    grouped = bad.groupby(["engine", "status", "reason"], sort=False)
    out = grouped.agg(cells=("status", "size"), models=("model", lambda m: ", ".join(dict.fromkeys(m))))
    return out.reset_index()[columns].sort_values("cells", ascending=False, ignore_index=True)
