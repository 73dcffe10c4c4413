"""01_export's charts: what each format costs to produce and what graph optimization fuses.

Each chart is drawn from a result table (never from kernel state); charts.style saves it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from helpers.report.charts.style import GROUPS, panel_grid


def export_costs(df: pd.DataFrame):
    """File size and export time per format, one bar per model."""
    ok = df[df["export_seconds"].notna()]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, column, label in (
        (axes[0], "size_mb", "size on disk (MB)"),
        (axes[1], "export_seconds", "export time (s)"),
    ):
        table = ok.pivot_table(index="format", columns="model", values=column, sort=False)
        table.plot.barh(ax=ax, colormap=GROUPS, legend=ax is axes[1])
        ax.set_xlabel(label)
        ax.set_ylabel("")
    axes[0].invert_yaxis()
    fig.suptitle("What each format costs to produce")
    return fig


def fusion_counts(df: pd.DataFrame):
    """Fused operators per ONNX graph level (one panel per model); an operator has one colour in
    every panel and the figure one legend."""
    fused = [c for c in df.columns if c.startswith("fused_")]
    graphs = df[df["format"].str.startswith("onnx") & df["node_count"].notna()]
    operators = [c for c in fused if graphs[c].fillna(0).sum() > 0]  # the same columns in every panel
    models = list(dict.fromkeys(graphs["model"]))
    fig, axes = panel_grid(models, cols=2, width=5.5, height=4.5)
    for ax, model in zip(axes, models):
        sub = graphs[graphs["model"] == model].set_index("format")[operators].fillna(0)
        sub.columns = [c.removeprefix("fused_") for c in sub.columns]
        if sub.empty or not operators:
            ax.text(0.5, 0.5, "no fused operators", ha="center", transform=ax.transAxes)
        else:
            sub.plot.bar(ax=ax, colormap=GROUPS, rot=0, legend=False)
        nodes = graphs[graphs["model"] == model].set_index("format")["node_count"]
        ax.set_xticks(range(len(nodes)), [f"{f}\n{int(n)} nodes" for f, n in nodes.items()])
        ax.set_title(model)
        ax.set_ylabel("fused operators in the graph")
        ax.set_xlabel("")
    if operators and models:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), title="fused operator", fontsize=8)
    fig.suptitle("Graph optimization: what ONNX Runtime fuses at each level")
    return fig
