"""05_sequence_sorting's charts: throughput by batching strategy, padding waste, length
distributions.

Each chart is drawn from a result table (never from kernel state); report.figures saves it."""

from __future__ import annotations

import pandas as pd

from helpers.report.charts_common import lines_by_batch, per_model_axes


def sorting_throughput(df: pd.DataFrame, engine: str):
    """Items/s against batch size per strategy, one panel per length distribution."""
    sub = df[df["engine"] == engine]
    fig, axes, dists = lines_by_batch(sub, "distribution", "strategy", "items_per_s", "items / s (whole dataset)", 4.8)
    for ax, dist in zip(axes, dists):
        d = sub[sub["distribution"] == dist]
        ideal = d.groupby("batch_size").apply(
            lambda g: g["n_texts"].iloc[0] / g["ideal_s"].iloc[0], include_groups=False
        )
        ax.plot(ideal.index, ideal.values, color="0.5", ls=":", label="ideal (real tokens only)")
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"Throughput by batching strategy ({engine})")
    return fig


def padding_waste(df: pd.DataFrame):
    sub = df.drop_duplicates(["distribution", "strategy", "batch_size"])
    fig, axes, _ = lines_by_batch(sub, "distribution", "strategy", "padding_waste", "pad tokens / real tokens", 4.8)
    for ax in axes:
        ax.set_yscale("symlog", linthresh=0.01)
    axes[-1].legend(fontsize=7)
    fig.suptitle("Padding waste")
    return fig


def length_histograms(lengths: pd.DataFrame, edges):
    """Token-length histogram of each distribution, with the bucket boundaries."""
    dists = list(dict.fromkeys(lengths["distribution"]))
    fig, axes = per_model_axes(dists or ["none"], width=4.2, height=3.6)
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
