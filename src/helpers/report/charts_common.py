"""Drawing helpers shared by the charts_<topic> modules: panels side by side, lines (with CIs) against
batch size, crosses on flagged rows, and a figure that says why there is nothing to plot."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def per_model_axes(models, width=5.5, height=4.2):
    fig, axes = plt.subplots(1, len(models), figsize=(width * len(models), height), squeeze=False)
    return fig, axes[0]


def mark_flagged(ax, sub, x, y):
    """Crosses on rows that are noisy or outside tolerance, so they are not mistaken for clean ones."""
    bad = sub[(sub["status"] == "mismatch") | sub.get("noisy", False).astype(bool)]
    if len(bad):
        ax.scatter(bad[x], bad[y], marker="x", color="k", s=30, zorder=5, label="noisy or mismatch")


def ci_line(ax, rows: pd.DataFrame, x: str, y: str, low: str, high: str, label: str):
    """One line of `y` against `x` with its 95% CI as error bars (`low`, `high` columns)."""
    rows = rows.sort_values(x)
    ax.errorbar(
        rows[x],
        rows[y],
        yerr=[rows[y] - rows[low], rows[high] - rows[y]],
        marker="o",
        ms=3,
        capsize=2,
        label=label,
    )


def lines_by_batch(data: pd.DataFrame, panel: str, line: str, y: str, ylabel: str, width: float = 5.5):
    """One panel per value of `panel`, one line per value of `line`: y against batch size."""
    panels = list(dict.fromkeys(data[panel]))
    fig, axes = per_model_axes(panels or ["none"], width=width)
    for ax, key in zip(axes, panels):
        for name, g in data[data[panel] == key].groupby(line, sort=False):
            g = g.sort_values("batch_size")
            ax.plot(g["batch_size"], g[y], marker="o", ms=3, label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(key)
    return fig, axes, panels


def notice(title: str, text: str):
    """A figure that states why there is nothing to plot (e.g. no CUDA device)."""
    import textwrap

    fig, ax = plt.subplots(figsize=(9, 3))
    ax.axis("off")
    ax.text(0.5, 0.5, "\n".join(textwrap.wrap(text, 90)), ha="center", va="center", fontsize=10, transform=ax.transAxes)
    fig.suptitle(title)
    return fig
