"""Progress: bars over configurations, a line at each slow phase, the resume message.

Under the study runner (headless) the kernel's real stderr is the runner's terminal, so bars
and phase lines are written there (sys.__stderr__), phase and resume lines also go to
runs/<profile>/study.log, and the executed notebook is not flooded with updates. In
JupyterLab they appear in the cell's output (bars as widgets where ipywidgets is installed).
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm

from helpers.core import paths, runlog

HEADLESS_ENV = "WORKBOOK_HEADLESS"
# a weighted bar shows the share of the work done, and items done / total beside the current one
WEIGHTED_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"


def headless() -> bool:
    return os.environ.get(HEADLESS_ENV) == "1"


def track(configs: Iterable, *, desc: str, label=str, weight: Callable | None = None):
    """Iterate configurations with a progress bar showing the current one. Without `weight`
    the bar counts configurations; with it (e.g. a configuration's GFLOP) it advances by
    each one's weight, so its rate and time left are by work, not by count."""
    configs = list(configs)
    if not configs:  # nothing left to do: no bar
        return
    weights = [float(weight(c)) for c in configs] if weight else []
    if sum(weights) <= 0:  # no weights, or none that measures anything: count
        weights, weight = [1] * len(configs), None
    options = {"bar_format": WEIGHTED_FORMAT} if weight else {}
    if headless():
        bar = tqdm(total=sum(weights), desc=desc, file=sys.__stderr__, mininterval=1.0, **options)
    else:
        bar = _notebook_bar()(total=sum(weights), desc=desc, **options)
    with bar:
        for i, (config, w) in enumerate(zip(configs, weights)):
            count = f"{i + 1}/{len(configs)} " if weight else ""
            bar.set_postfix_str(count + label(config))  # the one being measured now
            yield config
            bar.update(w)


def _notebook_bar():
    """A widget bar where ipywidgets is installed, a text bar otherwise (without a warning)."""
    try:
        import ipywidgets  # noqa: F401
        from tqdm.notebook import tqdm as bar
    except ImportError:
        bar = tqdm
    return bar


def say(line: str, in_notebook: bool = False) -> None:
    """A progress line where the bars are: headless, on the runner's terminal and in
    study.log (and in the notebook's output with `in_notebook`); in JupyterLab, in the cell."""
    if not headless():
        tqdm.write(line, file=sys.stdout)
        return
    tqdm.write(f"  {line}", file=sys.__stderr__)  # indented under the runner's notebook line
    if os.environ.get(paths.PROFILE_ENV):
        runlog.append(os.environ[paths.PROFILE_ENV], f"  {line}")
    if in_notebook:
        print(line, flush=True)


def note(line: str) -> None:
    """A line for the notebook's output and, headless, the terminal and study.log too."""
    say(line, in_notebook=True)


_open_phases = []  # the phases running in this process, outermost first


@contextmanager
def phase(what: str):
    """One line as a slow step starts ("exporting bert-base/model.onnx (onnx) ...") and one as
    it ends, with its time; a step that raises says so, and the exception goes on. A phase
    inside another one says nothing: the outer line covers it."""
    if _open_phases:
        yield
        return
    _open_phases.append(what)
    say(f"{what} ...")
    start = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        say(f"{what}: stopped after {runlog.span(time.perf_counter() - start)} ({type(exc).__name__})")
        raise
    finally:
        _open_phases.pop()
    say(f"{what}: done in {runlog.span(time.perf_counter() - start)}")


def short(path) -> str:
    """A produced file as a phase line names it: its folder and name (bert-mini/model.onnx)."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}"


def resumed(done: int, total: int, what: str = "configurations") -> str | None:
    """Say how much of a notebook's work a resumed run already holds (nothing when none)."""
    if not done:
        return None
    line = f"Resumed: {done} of {total} {what} already done"
    note(line)
    return line
