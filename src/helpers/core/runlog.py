"""The study's record of time, per profile, under runs/<profile>/ (ignored by git).

- `study.log`: every line the runner prints (and, in a headless run, each notebook's phase
  and resume lines), prefixed with an ISO timestamp, appended run after run.
- `durations.json`: each notebook's duration in the last run that completed it; the runner
  estimates the study's end from it (`start_note`). runs/<profile>/ outlives the runs that
  are archived, so a fresh run still has the durations of the previous one.

A reference run keeps both in the runs/ it would use without --reference: its staging folder
is deleted once the run is published.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Mapping, Sequence

from helpers.core import paths

LOG = "study.log"
DURATIONS = "durations.json"
# runs/ of a reference run: the project's, not its staging folder's, which is deleted once published
RUNS_ENV = "WORKBOOK_RUNLOG_RUNS"


def folder(profile: str) -> Path:
    """runs/<profile>/ of the output root (or of RUNS_ENV, set by the runner)."""
    if not os.environ.get(RUNS_ENV):
        return paths.runs_dir(profile)
    path = Path(os.environ[RUNS_ENV]) / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_file(profile: str) -> Path:
    return folder(profile) / LOG


def append(profile: str, text: str) -> None:
    """Append each line of `text` to runs/<profile>/study.log with the local time (ISO 8601)."""
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    with log_file(profile).open("a") as f:
        f.write("".join(f"{stamp} {line}\n" for line in text.splitlines() or [""]))


def read_durations(profile: str) -> dict[str, float]:
    """notebook -> seconds it took in the last run that completed it ({} when none did)."""
    path = folder(profile) / DURATIONS
    try:
        return {k: float(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}  # no file yet, or unreadable: no estimate, never a failed run


def record_duration(profile: str, notebook: str, seconds: float) -> None:
    durations = read_durations(profile) | {notebook: round(seconds, 1)}
    path = folder(profile) / DURATIONS
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(durations, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


# -- the estimate ----------------------------------------------------------------------------
def span(seconds: float) -> str:
    """A duration as people say it: 45 s, 6 min, 2 h 05 min."""
    if seconds < 180:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def clock(when: datetime, now: datetime) -> str:
    """10:42 today, Tue 02:10 on another day."""
    return f"{when:%H:%M}" if when.date() == now.date() else f"{when:%a %H:%M}"


def start_note(left: Sequence[str], durations: Mapping[str, float], spent: Mapping[str, float], now: datetime) -> str:
    """What the runner says as left[0] starts: its previous duration and when the study (the
    notebooks in `left`) should end. `spent`: seconds each notebook already ran in this run
    (inf once it completed), taken off its previous duration."""
    current = left[0]
    if spent.get(current) == math.inf:
        head = "already done in this run"
    elif current in durations:
        head = f"last run {span(durations[current])}"
    else:
        head = "no previous run to estimate from"
    known = [nb for nb in left if nb in durations]
    if not known:
        return head
    seconds = sum(max(durations[nb] - spent.get(nb, 0.0), 0.0) for nb in known)
    eta = clock(now + timedelta(seconds=seconds), now)
    unknown = len(left) - len(known)
    if unknown and seconds < 1:  # what had a previous run is done: nothing left to estimate from
        return f"{head}; no study ETA: the {unknown} notebook(s) left have no previous run"
    if unknown:
        return (
            f"{head}; study ETA {eta} or later, at least {span(seconds)} left, "
            f"not counting {unknown} notebook(s) with no previous run"
        )
    return f"{head}; study ETA {eta}, " + ("under a minute left" if seconds < 60 else f"about {span(seconds)} left")
