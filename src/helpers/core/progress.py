"""Progress of configurations: a bar in JupyterLab, and lines on the terminal of a headless run.

Under the study runner the kernel's real stderr is the runner's terminal, so the bar is
written there (sys.__stderr__) and the executed notebook is not flooded with updates.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable

from tqdm import tqdm

HEADLESS_ENV = "WORKBOOK_HEADLESS"


def track(configs: Iterable, *, desc: str, total: int | None = None, label=str):
    """Iterate configurations with a progress bar showing done / total and the current one."""
    configs = list(configs)
    headless = os.environ.get(HEADLESS_ENV) == "1"
    if headless:
        bar = tqdm(configs, total=total or len(configs), desc=desc, file=sys.__stderr__, mininterval=1.0)
    else:
        bar = _notebook_bar()(configs, total=total or len(configs), desc=desc)
    with bar:
        for config in bar:
            bar.set_postfix_str(label(config), refresh=False)
            yield config


def _notebook_bar():
    """A widget bar where ipywidgets is installed, a text bar otherwise (without a warning)."""
    try:
        import ipywidgets  # noqa: F401
        from tqdm.notebook import tqdm as bar
    except ImportError:
        bar = tqdm
    return bar
