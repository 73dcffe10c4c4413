"""00_environment's chart: the machine's compute ceilings and memory bandwidth.

Each chart is drawn from a result table (never from kernel state); charts.style saves it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.report.charts.style import GROUPS


def ceilings(df: pd.DataFrame):
    """GEMM rates per library/precision (bars per thread count) and memory bandwidth."""
    gemm = df[(df["kind"] == "gemm") & (df["status"] == "ok")].copy()
    gemm["ceiling"] = gemm["library"] + " " + gemm["precision"] + " (" + gemm["device"] + ")"
    bw = df[(df["kind"] == "bandwidth") & (df["status"] == "ok")]
    fig, (ax, ax_bw) = plt.subplots(1, 2, figsize=(10, 4.5), gridspec_kw={"width_ratios": [4, 1]})
    names = list(dict.fromkeys(gemm["ceiling"]))
    thread_counts = sorted(gemm["threads"].unique())
    width = 0.8 / max(len(thread_counts), 1)
    tones = plt.get_cmap(GROUPS)(np.linspace(0.15, 0.85, max(len(thread_counts), 1)))
    for i, t in enumerate(thread_counts):
        sub = gemm[gemm["threads"] == t].set_index("ceiling").reindex(names)
        # a rate is work / time: the median time's CI maps to the rate's CI inverted
        low = sub["value"] * sub["p50_ms"] / sub["ci_high_ms"]
        high = sub["value"] * sub["p50_ms"] / sub["ci_low_ms"]
        ax.bar(
            [j + i * width for j in range(len(names))],
            sub["value"],
            width,
            yerr=[sub["value"] - low, high - sub["value"]],
            capsize=2,
            color=tones[i],
            label=f"{t} thread{'s' if t > 1 else ''}",
        )
    ax.set_xticks([j + width * (len(thread_counts) - 1) / 2 for j in range(len(names))], names, rotation=20, ha="right")
    ax.set_ylabel("GFLOP/s (int8: GOP/s), n x n GEMM")
    ax.set_title("Compute ceilings")
    ax.legend()
    ax_bw.bar(["copy"], bw["value"].max() if len(bw) else 0, color="0.5")
    ax_bw.set_ylabel("GB/s (read + write)")
    ax_bw.set_title("Memory bandwidth")
    return fig
