"""Figures of a claim's own cell, for the claims no sweep chart shows as they are stated: C7 (one
thread, batch 1, by model size) and C13 (latency against length, per batch size, with the
log-log slope the check fits). Each reads the rows its check reads (report.rows), so the
figure beside a verdict shows exactly what decided it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from helpers.report.charts.style import ci_line, drawn_threads, notice
from helpers.report.rows import Untestable, length_slope_cell, length_slopes, one_thread_cell


def _log_log(ax, x_base: int, xlabel: str, ylabel: str, title: str):
    """Both axes logarithmic (every value plotted is a positive time or size), labels, legend."""
    ax.set_xscale("log", base=x_base)
    ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    return ax.figure


def one_thread_by_size(df: pd.DataFrame):
    """C7's cell: median latency of eager and ORT fp32 at 1 thread, batch 1, against model size,
    with ORT's speed-up over eager written at each model."""
    try:
        length, cell = one_thread_cell({"03_cpu_sweep": df})
    except Untestable as exc:
        return notice("One thread, batch 1", str(exc))
    cell = cell[cell["engine"].isin(["eager", "ort"])].assign(m_params=lambda d: d["n_params"] / 1e6)
    fig, ax = plt.subplots()
    for engine, e in cell.groupby("engine", sort=False):
        ci_line(ax, e, "m_params", "p50_ms", "ci_low_ms", "ci_high_ms", engine)
    p = cell.pivot_table(index="m_params", columns="engine", values="p50_ms").dropna()
    for m_params, r in p.iterrows():
        ax.annotate(
            f"{r['eager'] / r['ort']:.2f}×",
            (m_params, r["ort"]),
            xytext=(0, -14),
            textcoords="offset points",
            ha="center",
            fontsize=7,
        )
    fig = _log_log(
        ax,
        10,
        "parameters (millions)",
        "median latency (ms)",
        f"1 thread, batch 1 × {length} (labels: ORT fp32 over eager)",
    )
    return drawn_threads(fig, 1)  # the caption names the cells' 1 thread, not the run's count


def length_slopes_by_batch(df: pd.DataFrame):
    """C13's cell: eager's median latency per item against sequence length, one line per batch
    size, log-log, each labelled with its fitted slope (1 is linear in length)."""
    try:
        model, rows = length_slope_cell({"03_cpu_sweep": df})
    except Untestable as exc:
        return notice("Latency against length, per batch size", str(exc))
    slopes = length_slopes(rows)
    per_item = rows.assign(
        per_item_ms=rows["p50_ms"] / rows["batch_size"],
        low=rows["ci_low_ms"] / rows["batch_size"],
        high=rows["ci_high_ms"] / rows["batch_size"],
    )
    fig, ax = plt.subplots()
    for batch, b in per_item.groupby("batch_size"):
        ci_line(ax, b, "seq_len", "per_item_ms", "low", "high", f"batch {batch}: slope {slopes[batch]:.2f}")
    return _log_log(
        ax, 2, "sequence length (tokens)", "median time per item (ms)", f"{model}, eager: time per item against length"
    )
