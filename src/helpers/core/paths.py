"""Every input and output location of the workbook, absolute.

Inputs (notebooks, params, data) live in the project; outputs (results, figures, runs) live
under one output root, the project by default, redirected with `WORKBOOK_OUT` or
`set_out_root()` (the study runner's `--out`, and the tests). The build cache of model files
is not an output of one run: it lives in the project (`cache/`), redirected with `WORKBOOK_CACHE`,
so runs with different output roots share it.
"""

from __future__ import annotations

import os
from pathlib import Path

OUT_ENV = "WORKBOOK_OUT"
DATA_ENV = "WORKBOOK_DATA"
CACHE_ENV = "WORKBOOK_CACHE"
PROFILE_ENV = "WORKBOOK_PROFILE"  # the profile of the run the study runner started
RUN_ID_ENV = "WORKBOOK_RUN_ID"  # and its run id
# set: the notebooks redraw a finished run from its tables; every configuration counts as done
REDRAW_ENV = "WORKBOOK_REDRAW"


def _find_root() -> Path:
    """The project root: src/helpers/core/../../.. in a checkout; WORKBOOK_ROOT or cwd otherwise."""
    if os.environ.get("WORKBOOK_ROOT"):
        return Path(os.environ["WORKBOOK_ROOT"]).resolve()
    candidate = Path(__file__).resolve().parents[3]
    if (candidate / "pyproject.toml").exists():
        return candidate
    return Path.cwd().resolve()


ROOT = _find_root()
NOTEBOOKS = ROOT / "notebooks"
PARAMS = ROOT / "params"
REFERENCE = ROOT / "reference"  # committed reference runs, one folder per machine and profile
README = ROOT / "README.md"


def references(root: Path | None = None) -> list[Path]:
    """The committed reference runs under root (default reference/): folders with results/, not
    a run's dot-named staging or swap folders (.partial-NAME, .publish-NAME ...)."""
    root = REFERENCE if root is None else Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "results").is_dir() and not p.name.startswith("."))


def set_out_root(path: str | os.PathLike) -> Path:
    """Redirect every output (results, figures, runs) below `path`; child processes follow."""
    resolved = Path(path).expanduser().resolve()
    os.environ[OUT_ENV] = str(resolved)
    return resolved


def out_root() -> Path:
    return Path(os.environ[OUT_ENV]).resolve() if os.environ.get(OUT_ENV) else ROOT


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    return _ensure(out_root() / "results")


def figures_dir() -> Path:
    return _ensure(out_root() / "figures")


def runs_dir(profile: str) -> Path:
    """Executed notebooks of the current run; archived runs go to runs/archive/<run id>/."""
    return _ensure(out_root() / "runs" / profile)


def cache_dir() -> Path:
    """The build cache of exported, optimized and quantized model files (helpers.backends.cache):
    WORKBOOK_CACHE if set, else <project>/cache, whatever the output root."""
    return _ensure(Path(os.environ[CACHE_ENV]).expanduser().resolve() if os.environ.get(CACHE_ENV) else ROOT / "cache")


def data_dir() -> Path:
    """Inputs and the built corpus cache; redirect with WORKBOOK_DATA."""
    return _ensure(Path(os.environ[DATA_ENV]).resolve() if os.environ.get(DATA_ENV) else ROOT / "data")


def result_table(name: str) -> Path:
    """results/<name>.csv, e.g. result_table('00_ceilings')."""
    return results_dir() / f"{name}.csv"


def environment_file() -> Path:
    return results_dir() / "environment.json"
