"""One style for every chart: matplotlib's settings, one colour and marker per engine, panels in a
grid, one legend per figure, marks for rows that failed or were skipped, point labels that do not
overprint each other, the nothing-to-plot notice; and `save`, which writes PNG + SVG into
figures/ with a provenance caption, and the gallery.

Drawing the same table twice gives byte-identical files: no dates in the metadata and a
fixed salt for the SVG element ids.

An engine keeps its colour on every chart. A new engine gets a line in `STYLES`, in its
family's hue and a colour no other engine has (tests/test_charts_style.py checks both); a
name not registered still gets a stable colour and marker (from a checksum of the name, so the
same in every process), and `register` gives one its own at run time (in a user's notebook)."""

from __future__ import annotations

import json
import re
import textwrap
import zlib
from functools import lru_cache
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator
from matplotlib.transforms import Bbox, blended_transform_factory

from helpers.core import paths

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


LAYOUT_RECT = (0, 0.03, 1, 1)  # the panels above the caption line


def layout(fig) -> None:
    """Fit the panels into the figure above the caption (what `save` does before writing;
    charts that place labels by distance call it first, so the distances hold in the file)."""
    fig.tight_layout(rect=LAYOUT_RECT)


def apply_style() -> None:
    plt.rcParams.update(STYLE)


@lru_cache(maxsize=1)
def host_caption() -> str:
    """machine · threads · library versions, measured once per process (figures drawn outside a
    run; a run's figures carry the run's own caption)."""
    from helpers.core.fingerprint import fingerprint, short_caption

    return short_caption(fingerprint())


def save(fig, name: str, *, provenance: dict | None = None, caption: str | None = None) -> dict:
    """Write figures/<name>.png and .svg with a caption line naming the machine, threads,
    versions and run; record the figure's provenance in figures/index.json for the gallery."""
    caption = _with_drawn_threads(caption or host_caption(), fig)
    fig.text(0.01, 0.005, caption, fontsize=7, color="0.4", ha="left", va="bottom")
    layout(fig)
    out = paths.figures_dir()
    files = {}
    for ext in ("png", "svg"):
        path = out / f"{name}.{ext}"
        # a figure-level legend sits right of the panels: the tight box takes it in
        fig.savefig(path, metadata={"Title": name, **METADATA[ext]}, bbox_inches="tight")
        files[ext] = path.name
    title = fig._suptitle.get_text() if fig._suptitle is not None else ""
    entry = {"name": name, "title": title, "caption": caption, **files, **(provenance or {})}
    _record(entry)
    return entry


DRAWN_THREADS = "_drawn_threads"  # figure attribute: the thread count of the cells it shows


def drawn_threads(fig, threads: int):
    """Record that `fig` shows cells measured at `threads` threads: `save` writes that count in
    the caption, not the run's (a 1-thread cell drawn in a 2-thread run). Returns `fig`."""
    setattr(fig, DRAWN_THREADS, int(threads))
    return fig


def _with_drawn_threads(caption: str, fig) -> str:
    """The caption with its "N threads" replaced by the drawn cells' count, when recorded."""
    n = getattr(fig, DRAWN_THREADS, None)
    if n is None:
        return caption
    return re.sub(r"\b\S+ threads?\b", f"{n} thread{'s' * (n != 1)} (drawn cells)", caption, count=1)


def _record(entry: dict) -> None:
    index_path = paths.figures_dir() / INDEX_FILE
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    index[entry["name"]] = entry
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True, default=str) + "\n")


# ---------------------------------------------------------------- the gallery
def gallery(figures_dir: str | Path, link_prefix: str = "", heading: str = "#") -> str:
    """Every figure of figures/index.json with its title, caption, the notebook, profile and
    parameters that made it, and the machine (figures/gallery.md, and a reference's README)."""
    figures_dir = Path(figures_dir)
    index_path = figures_dir / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    lines = [f"{heading} Figures", "", "Generated by `08_report` from `figures/index.json`; do not edit by hand.", ""]
    for name in sorted(index):
        e = index[name]
        params = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted((e.get("params") or {}).items()))
        lines += [
            f"{heading}# {name}",
            "",
            f"![{e.get('title') or name}]({link_prefix}{e.get('png', name + '.png')})",
            "",
            f"**{e.get('title') or name}**",
            "",
            f"- notebook `{e.get('notebook', '?')}`, profile `{e.get('profile', '?')}`, run `{e.get('run_id', '?')}`",
            f"- host: {e.get('host', '?')} ({e.get('caption', '')})",
            f"- parameters: {params or '—'}",
            "",
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------- one style per engine
# Families share a hue: PyTorch fp32 dark, brown and olive, bf16/fp16 red and pink, ONNX
# Runtime fp32 blue, INT8 orange and purple, OpenVINO green; a family's members step apart in
# lightness. Any two engines one notebook draws together differ by at least ΔE76 25 (CIELAB;
# tests/test_charts_style.py). sentence-transformers' backends (the peers, "st-") are grey,
# teal, indigo and tan, in markers no other engine uses (PEER_MARKERS).
STYLES: dict[str, tuple[str, str]] = {
    # PyTorch fp32 (03's engines, 02's methods, 07's variants)
    "eager": ("#222222", "o"),
    "torchscript": ("#8c564b", "s"),
    "compile": ("#bcbd22", "D"),
    "compile-cudagraphs": ("#7f7f00", "v"),
    "compile-bf16": ("#e6d881", "P"),
    # PyTorch reduced precision
    "torch-bf16": ("#df1b35", "o"),
    "torch-bf16-autocast": ("#ffa4a8", "^"),
    "torch-bf16-weights": ("#843c39", "s"),
    "torch-fp16": ("#e577c1", "D"),
    "torch-int8": ("#9d71cf", "v"),
    # ONNX Runtime fp32 and fp16 (06's generation engines too)
    "ort": ("#1d649a", "o"),
    "ort-nopast": ("#9fe3e6", "<"),
    "ort-o1": ("#90b1d5", "s"),
    "ort-o2": ("#00a4ec", "D"),
    "ort-o3": ("#0056b5", "^"),
    "ort-trt": ("#15bfce", "P"),
    "ort-fp16": ("#3e346f", "v"),
    # ONNX Runtime INT8
    "ort-int8": ("#ff7f0e", "o"),
    "ort-o3-int8": ("#fdae6b", "^"),
    "ort-int8-pt": ("#e6540b", "s"),
    "ort-int8-pc": ("#fe984b", "D"),
    "optimum-int8-pt": ("#a68f2b", "s"),
    "optimum-int8-pc": ("#ffcc61", "D"),
    "ort-int8-static": ("#a74d8e", "P"),
    "ort-int8-matmul": ("#ba3900", "v"),
    "ort-int8-skip-last": ("#e55d73", "<"),
    "ort-int8-skip-ffn-down": ("#98403a", ">"),
    "ort-int8-skip-attn-out": ("#ff7000", "p"),
    # OpenVINO
    "ov": ("#279e27", "o"),
    "ov-bf16": ("#bee1ae", "^"),
    "ov-int8": ("#70c375", "s"),
    "ov-int8-ac": ("#00722e", "D"),
    "ov-int8-skip-ffn-down": ("#003f19", ">"),
    # sentence-transformers' backends (the peers of 07)
    "st-torch": ("#798182", "*"),
    "st-torch-bf16": ("#c6a28d", "h"),
    "st-onnx": ("#5d4d88", "H"),
    "st-onnx-qint8": ("#068a76", "d"),
    "st-openvino": ("#64d4bd", "8"),
    "st-openvino-qint8": ("#005c68", "X"),
    # fastembed and CTranslate2 (07's other peers): gold and a violet family, in star polygons
    # (points, 1: star, angle) no other engine uses
    "fastembed": ("#736106", (4, 1, 0)),
    "ct2-int8": ("#9d0be6", (6, 1, 0)),
    "ct2-float32": ("#e62ec7", (3, 1, 0)),
    "ct2-bf16": ("#4c042e", (7, 1, 0)),
    "ct2-int8-bf16": ("#4e0673", (8, 1, 0)),
}
# names that draw as another: 06's baseline and 07's naive pipeline are PyTorch eager fp32,
# 02's plain ONNX export is ONNX Runtime fp32
ALIASES = {"torch": "eager", "naive": "eager", "ort-fp32": "ort"}
# the batching strategies of 05 and 07, in a palette of their own: no engine's colour, so a
# strategy is never read as an engine
STRATEGIES: dict[str, tuple[str, str]] = {
    "fixed": ("#595959", "s"),
    "unsorted": ("#9c755f", "v"),
    "sorted": ("#4e79a7", "o"),
    "bucketed": ("#edc948", "D"),
    "token_budget": ("#b07aa1", "^"),
}
# colours no registered engine uses, for names this module does not know
FALLBACK_COLOURS = (
    "#7f7f7f",
    "#c49c94",
    "#8c6d31",
    "#b5cf6b",
    "#ce6dbd",
    "#de9ed6",
    "#e7cb94",
    "#6b6ecf",
    "#9c9ede",
    "#17a589",
)
# colours of categories that are not engines (batch sizes, models, phases of a scheme): a
# sequential map apart from the engines' hues, so a bar of batch 1 is never read as an engine
GROUPS = "cividis"
PEER_MARKERS = ("*", "h", "H", "d", "8", "X")  # the peers' own: no other engine draws these
FALLBACK_MARKERS = ("o", "s", "D", "^", "v", "P", "<", ">", "p")
MISSING = ("error", "oom", "skipped")  # statuses with no timing: marked at the foot of the axis
FLAGGED_COLOUR = "k"


def register(name: str, colour: str, marker: str = "o") -> None:
    """Give engine `name` its own colour and marker on every chart this process draws after
    this call (the project's own engines are lines of `STYLES`)."""
    STYLES[name] = (colour, marker)


def style(name: str) -> dict:
    """{"color": ..., "marker": ...} of an engine, variant or method name: the registered one, or
    one derived from a checksum of the name (stable across processes and runs)."""
    name = ALIASES.get(name, name)
    if name in STYLES or name in STRATEGIES:
        colour, marker = STYLES.get(name) or STRATEGIES[name]
    else:
        h = zlib.crc32(str(name).encode())
        colour = FALLBACK_COLOURS[h % len(FALLBACK_COLOURS)]
        markers = PEER_MARKERS if str(name).startswith("st-") else FALLBACK_MARKERS
        marker = markers[(h // len(FALLBACK_COLOURS)) % len(markers)]
    return {"color": colour, "marker": marker}


def colour(name: str) -> str:
    return style(name)["color"]


def handle(name: str, **kw) -> Line2D:
    """A legend entry for engine `name` in its colour and marker."""
    return Line2D([], [], label=name, ms=5, **{**style(name), **kw})


FLAGGED = Line2D([], [], ls="", marker="x", color=FLAGGED_COLOUR, label="noisy or mismatch (×)")
NOT_TIMED = Line2D([], [], ls="", marker="x", color="0.5", mew=1.5, label="error or skipped (× at the foot)")


def figure_legend(fig, names, extra=(), title: str | None = None):
    """One legend for the whole figure, right of the panels: an entry per name in `names` (in
    order, once each) from the engine map, then `extra` handles. Right for every panel, since
    every panel colours by the same map."""
    handles = [handle(n) for n in dict.fromkeys(names)] + list(extra)
    if not handles:
        return None
    return fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), title=title, fontsize=8)


def rows_legend(fig, rows: pd.DataFrame, by: str = "engine", extra=(), title: str | None = None):
    """`figure_legend` for the names in column `by` of `rows`, measured or not, with the marks
    the rows call for: noisy or mismatch, error or skipped."""
    marks = [FLAGGED] if len(rows) and flagged(rows).any() else []
    marks += [NOT_TIMED] if "status" in rows and rows["status"].isin(MISSING).any() else []
    return figure_legend(fig, rows[by] if by in rows else [], extra=[*extra, *marks], title=title)


def flagged(rows: pd.DataFrame) -> pd.Series:
    """Rows that are outside tolerance or noisy."""
    noisy = rows["noisy"].fillna(False).astype(bool) if "noisy" in rows else False
    return (rows["status"] == "mismatch") | noisy


# ---------------------------------------------------------------- panels
def panel_grid(keys, cols: int = 3, width: float = 4.6, height: float = 3.6, **kw):
    """A grid of at most `cols` panels a row, one per key: (fig, axes), `axes` as long as `keys`
    (unused cells of the last row hidden)."""
    keys = list(keys) or ["none"]
    cols = max(1, min(cols, len(keys)))
    rows = -(-len(keys) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kw)
    axes = list(grid.flat)
    for ax in axes[len(keys) :]:
        ax.axis("off")
    return fig, axes[: len(keys)]


def measured_ticks(ax, values) -> None:
    """Ticks at the measured values of x only (on a log axis, say): no tick for a batch size or
    length that was not measured."""
    values = sorted(set(values))
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.xaxis.set_minor_locator(NullLocator())


def categorical_x(ax, values, label: str):
    """The measured values of x (e.g. batch sizes) as evenly spaced ticks, so no tick stands for
    something that was not measured; returns {value: position}."""
    values = sorted(set(values))
    where = {v: i for i, v in enumerate(values)}
    ax.set_xticks(range(len(values)), [f"{v:g}" for v in values])
    ax.set_xlim(-0.4, len(values) - 0.6)
    ax.set_xlabel(label)
    return where


# ---------------------------------------------------------------- lines and marks
def ci_line(ax, rows: pd.DataFrame, x: str, y: str, low: str, high: str, label: str):
    """One line of `y` against `x` with its 95% CI as error bars (`low`, `high` columns), in the
    colour and marker of engine `label`."""
    rows = rows.sort_values(x)
    ax.errorbar(
        rows[x],
        rows[y],
        yerr=[rows[y] - rows[low], rows[high] - rows[y]],
        ms=3.5,
        capsize=2,
        label=label,
        **style(label),
    )


def line(ax, rows: pd.DataFrame, x: str, y: str, label: str):
    """`y` against `x`, sorted by x, in the colour and marker of `label`."""
    rows = rows.sort_values(x)
    ax.plot(rows[x], rows[y], ms=3.5, label=label, **style(label))


def mark_flagged(ax, sub: pd.DataFrame, x: str, y: str):
    """Crosses on rows that are noisy or outside tolerance, so they are not mistaken for clean ones."""
    bad = sub[flagged(sub)]
    if len(bad):
        ax.scatter(bad[x], bad[y], marker="x", color=FLAGGED_COLOUR, s=30, zorder=5)


def mark_not_timed(ax, rows: pd.DataFrame, x: str, by: str = "engine", where: dict | None = None):
    """A cross at the foot of the axis, in the engine's colour, for each row of `rows` that has
    no timing (error, oom, skipped): the cell is shown as failed, not left out. Crosses at one x
    stack upwards; `where` maps x values to positions on a categorical axis."""
    missing = rows[rows["status"].isin(MISSING)].drop_duplicates([x, by])
    if not len(missing):
        return
    xs = (missing[x].map(where) if where else missing[x]).to_numpy(dtype=float)
    heights = 0.03 + 0.045 * missing.groupby(x, sort=False).cumcount().to_numpy()
    ax.scatter(
        xs,
        heights,
        transform=blended_transform_factory(ax.transData, ax.transAxes),
        marker="x",
        s=28,
        linewidths=1.5,
        c=[colour(n) for n in missing[by]],
        clip_on=False,
        zorder=6,
    )
    ax.update_datalim(np.column_stack([xs, np.ones_like(xs)]), updatey=False)  # the x range takes them in
    ax.autoscale_view()


def lines_by_batch(data: pd.DataFrame, panel: str, by: str, y: str, ylabel: str, cols: int = 3):
    """One panel per value of `panel`, one line per value of `by`: y against the measured batch
    sizes, evenly spaced (no tick for a batch size that was not measured)."""
    panels = list(dict.fromkeys(data[panel]))
    fig, axes = panel_grid(panels, cols=cols)
    for ax, key in zip(axes, panels):
        sub = data[data[panel] == key]
        where = categorical_x(ax, sub["batch_size"], "batch size")
        timed = sub[sub[y].notna()].assign(_x=lambda d: d["batch_size"].map(where))
        for name, g in timed.groupby(by, sort=False):
            line(ax, g, "_x", y, name)
        if "status" in sub:
            mark_flagged(ax, timed, "_x", y)
            mark_not_timed(ax, sub, "batch_size", by=by, where=where)
        ax.set_ylabel(ylabel)
        ax.set_title(key)
    return fig, axes, panels


# ---------------------------------------------------------------- labels that do not collide
def label_points(ax, xs, ys, texts, fontsize: float = 7.0):
    """Write `texts` beside the points (xs, ys) so that no label overprints another label or a
    point: each takes the first free place among spots around its point, further out step by
    step (with a thin leader line once it is away from the point). Deterministic: the same
    points give the same places. Call it last, once every panel's scales and limits are set."""
    fig = ax.figure
    layout(fig)  # the saved geometry, so distances measured here hold in the file
    renderer = fig.canvas.get_renderer()
    ax.get_xlim(), ax.get_ylim()  # settle autoscaling before reading positions
    frame = ax.get_window_extent(renderer)
    to_points = 72.0 / fig.dpi
    kept = [(x, y, t) for x, y, t in zip(xs, ys, texts) if np.isfinite(x) and np.isfinite(y)]  # no place, no label
    xs, ys, texts = [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]
    anchors = [ax.transData.transform((x, y)) for x, y in zip(xs, ys)]
    taken = [Bbox.from_bounds(px - 4, py - 4, 8, 8) for px, py in anchors]
    order = sorted(range(len(anchors)), key=lambda i: (-anchors[i][1], anchors[i][0]))  # top down
    for i in order:
        x, y, (px, py), text = xs[i], ys[i], anchors[i], texts[i]
        probe = ax.text(0, 0, text, fontsize=fontsize)
        box = probe.get_window_extent(renderer)
        probe.remove()
        w, h = box.width, box.height
        sides = (5, -w - 5)
        spots = [(dx, dy) for dx in sides for dy in (2, -h - 2)]
        for k in range(1, 12):
            spots += [(dx, dy) for dx in sides for dy in (2 + k * h * 0.8, -h - 2 - k * h * 0.8)]
        chosen = fallback = None  # a free spot inside the panel; else the first inside it (never in the next panel)
        for dx, dy in spots:
            spot = Bbox.from_bounds(px + dx, py + dy, w, h)
            inside = frame.x0 <= spot.x0 and spot.x1 <= frame.x1 and frame.y0 <= spot.y0 and spot.y1 <= frame.y1
            fallback = fallback or ((dx, dy) if inside else None)
            if inside and not any(spot.overlaps(t) for t in taken):
                chosen = (dx, dy)
                break
        dx, dy = chosen or fallback or spots[0]
        taken.append(Bbox.from_bounds(px + dx, py + dy, w, h))
        far = abs(dy) > 1.5 * h
        note = ax.annotate(
            text,
            (x, y),
            xytext=(dx * to_points, dy * to_points),
            textcoords="offset points",
            fontsize=fontsize,
            ha="left",
            va="bottom",
            arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5} if far else None,
        )
        note.set_in_layout(False)


def label_line_ends(ax, xs, ys, texts, fontsize: float = 7.0):
    """Name each line at its end (xs, ys): the names stacked right of the ends in the order of
    the ends, at least a line of text apart, each joined to its end by a thin leader. Call it
    last, once every panel's scales and limits are set."""
    fig = ax.figure
    layout(fig)
    ax.get_xlim(), ax.get_ylim()
    to_points = 72.0 / fig.dpi
    gap = fontsize * 1.25 / to_points  # one line of text, in pixels
    ends = sorted((ax.transData.transform((x, y)).tolist(), x, y, t) for x, y, t in zip(xs, ys, texts))
    ends.sort(key=lambda e: e[0][1])  # bottom up
    right = max((e[0][0] for e in ends), default=0) + 14
    placed: list[float] = []
    for (_, py), *_ in ends:
        placed.append(max(py, placed[-1] + gap) if placed else py)
    top = ax.get_window_extent().y1
    shift = max(0.0, (placed[-1] if placed else 0) - top)
    for ((px, py), x, y, text), ty in zip(ends, placed):
        note = ax.annotate(
            text,
            (x, y),
            xytext=((right - px) * to_points, (ty - shift - py) * to_points),
            textcoords="offset points",
            fontsize=fontsize,
            va="center",
            annotation_clip=False,
            arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkA": 0, "shrinkB": 2},
        )
        note.set_in_layout(False)


def notice(title: str, text: str):
    """A figure that states why there is nothing to plot (e.g. no CUDA device)."""
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.axis("off")
    ax.text(0.5, 0.5, "\n".join(textwrap.wrap(text, 90)), ha="center", va="center", fontsize=10, transform=ax.transAxes)
    fig.suptitle(title)
    return fig
