"""One style for every chart; `save` writes PNG + SVG into figures/ with a provenance caption.

Drawing the same table twice gives byte-identical files: no dates in the metadata and a
fixed salt for the SVG element ids."""
from __future__ import annotations

import json
from functools import lru_cache

import matplotlib.pyplot as plt

from . import paths

STYLE = {
    "figure.figsize": (7.5, 4.5),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "font.size": 10,
    "svg.hashsalt": "inference-workbook",  # SVG ids from a fixed salt, not a random one
}
METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}  # no dates or versions
INDEX_FILE = "index.json"


def apply_style() -> None:
    plt.rcParams.update(STYLE)


@lru_cache(maxsize=1)
def host_caption() -> str:
    """machine · threads · library versions, measured once per process (figures drawn outside a
    run; a run's figures carry the run's own caption)."""
    from .fingerprint import fingerprint, short_caption

    return short_caption(fingerprint())


def save(fig, name: str, *, provenance: dict | None = None, caption: str | None = None) -> dict:
    """Write figures/<name>.png and .svg with a caption line naming the machine, threads,
    versions and run; record the figure's provenance in figures/index.json for the gallery."""
    caption = caption or host_caption()
    fig.text(0.01, 0.005, caption, fontsize=7, color="0.4", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out = paths.figures_dir()
    files = {}
    for ext in ("png", "svg"):
        path = out / f"{name}.{ext}"
        fig.savefig(path, metadata={"Title": name, **METADATA[ext]})
        files[ext] = path.name
    title = fig._suptitle.get_text() if fig._suptitle is not None else ""
    entry = {"name": name, "title": title, "caption": caption, **files, **(provenance or {})}
    _record(entry)
    return entry


def _record(entry: dict) -> None:
    index_path = paths.figures_dir() / INDEX_FILE
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    index[entry["name"]] = entry
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True, default=str) + "\n")
