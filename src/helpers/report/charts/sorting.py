"""05_sequence_sorting's charts: throughput by batching strategy, padding waste, length
distributions.

Each chart is drawn from a result table (never from kernel state); charts.style saves it."""

from __future__ import annotations

import pandas as pd
from matplotlib.lines import Line2D

from helpers.report.charts.style import lines_by_batch, panel_grid, rows_legend


def sorting_throughput(df: pd.DataFrame, engine: str):
    """Items/s against the measured batch sizes per strategy, one panel per length distribution;
    the dotted grey line is the ideal (real tokens only)."""
    sub = df[df["engine"] == engine]
    fig, axes, dists = lines_by_batch(sub, "distribution", "strategy", "items_per_s", "items / s (whole dataset)", 2)
    for ax, dist in zip(axes, dists):
        d = sub[sub["distribution"] == dist].drop_duplicates("batch_size").sort_values("batch_size")
        where = {b: i for i, b in enumerate(sorted(set(d["batch_size"])))}
        ax.plot(d["batch_size"].map(where), d["n_texts"] / d["ideal_s"], color="0.5", ls=":")
    ideal = Line2D([], [], color="0.5", ls=":", label="ideal (real tokens only)")
    rows_legend(fig, sub, by="strategy", extra=[ideal], title="strategy")
    fig.suptitle(f"Throughput by batching strategy ({engine})")
    return fig


def padding_waste(df: pd.DataFrame):
    """Pad tokens per real token against the measured batch sizes, per strategy; a log axis
    where every value is positive, a linear one otherwise."""
    sub = df.drop_duplicates(["distribution", "strategy", "batch_size"])
    fig, axes, _ = lines_by_batch(sub, "distribution", "strategy", "padding_waste", "pad tokens / real tokens", 2)
    positive = len(sub) and (sub["padding_waste"].dropna() > 0).all()
    for ax in axes:
        if positive:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
    rows_legend(fig, sub, by="strategy", title="strategy")
    fig.suptitle("Padding waste")
    return fig


def length_histograms(lengths: pd.DataFrame, edges):
    """Token-length histogram of each distribution, with the bucket boundaries."""
    dists = list(dict.fromkeys(lengths["distribution"]))
    fig, axes = panel_grid(dists, cols=2, width=4.2, height=3.4)
    for ax, dist in zip(axes, dists):
        values = lengths.loc[lengths["distribution"] == dist, "tokens"]
        ax.hist(values, bins=40, color="C0")
        for edge in edges:
            ax.axvline(edge, color="C3", lw=0.7, ls="--")
        ax.set_xlabel("tokens")
        ax.set_ylabel("texts")
        ax.set_title(f"{dist} (median {values.median():.0f})")
    fig.suptitle("Length distributions (dashed: bucket boundaries)")
    return fig


def throughput_figures(df, engines: list[str]) -> dict:
    """One throughput chart per engine, by figure name (05_throughput_<engine>)."""
    measured = [name for name in engines if (df.loc[df["engine"] == name, "status"] == "ok").any()]
    return {f"05_throughput_{name}": sorting_throughput(df, name) for name in measured}
