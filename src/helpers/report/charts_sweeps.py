"""03_cpu_sweeps' charts (the speed-up heatmaps also for 04): latency, throughput, speed-up,
threads, model size, efficiency and memory, at each model's most threads, model-only scope.

Each chart is drawn from a result table (never from kernel state); report.figures saves it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers.core.tables import at_most_threads
from helpers.report.charts_common import ci_line, lines_by_batch, mark_flagged, per_model_axes


def _sweep_slice(df: pd.DataFrame, part: str) -> pd.DataFrame:
    """Rows of one sweep direction at the model's most threads, model-only scope, measured."""
    ok = at_most_threads(df[df["p50_ms"].notna()])  # flagged rows too: latency_vs marks them
    anchor_seq = df.loc[df["part"] == "batch", "seq_len"]
    anchor_batch = df.loc[df["part"] == "length", "batch_size"]
    if part == "batch" and len(anchor_seq):
        return ok[ok["seq_len"] == anchor_seq.iloc[0]]
    if part == "length" and len(anchor_batch):
        return ok[ok["batch_size"] == anchor_batch.iloc[0]]
    return ok


def latency_vs(df: pd.DataFrame, x: str):
    """Median latency (with its CI) against batch size or sequence length, per engine and model."""
    part = {"batch_size": "batch", "seq_len": "length"}[x]
    sl = _sweep_slice(df, part)
    models = list(dict.fromkeys(sl["model"]))
    fig, axes = per_model_axes(models)
    for ax, model in zip(axes, models):
        sub = sl[sl["model"] == model]
        for engine, e in sub.groupby("engine", sort=False):
            ci_line(ax, e, x, "p50_ms", "ci_low_ms", "ci_high_ms", engine)
        mark_flagged(ax, sub, x, "p50_ms")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel("median latency (ms)")
        fixed = "seq_len" if x == "batch_size" else "batch_size"
        ax.set_title(f"{model} ({fixed.replace('_', ' ')} {int(sub[fixed].iloc[0]) if len(sub) else '?'})")
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"Latency against {x.replace('_', ' ')} (model only, most threads)")
    return fig


def throughput_vs_batch(df: pd.DataFrame):
    fig, axes, _ = lines_by_batch(_sweep_slice(df, "batch"), "model", "engine", "items_per_s", "items / s")
    axes[-1].legend(fontsize=7)
    fig.suptitle("Throughput against batch size")
    return fig


def speedup_heatmaps(df: pd.DataFrame, model: str):
    """Speed-up over eager fp32 for every batch x length pair, one panel per engine: colour on a
    log2 scale centred at 1× (blue faster, red slower, saturating at 4× either way), the speed-up
    written in each cell, batch size growing upwards."""
    sub = at_most_threads(df[(df["model"] == model) & df["speedup"].notna() & (df["engine"] != "eager")])
    names = list(dict.fromkeys(sub["engine"]))
    batches, lengths = sorted(set(sub["batch_size"])), sorted(set(sub["seq_len"]))
    cols = min(4, max(len(names), 1))
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    if not names:
        axes[0][0].text(
            0.5, 0.5, f"no batch x length grid measured for {model}", ha="center", transform=axes[0][0].transAxes
        )
    for ax, engine in zip(axes.flat, names):
        grid = sub[sub["engine"] == engine].pivot_table(index="batch_size", columns="seq_len", values="speedup")
        grid = grid.reindex(index=batches, columns=lengths)  # every panel on the same axes; missing cells empty
        sns.heatmap(
            np.log2(grid),
            ax=ax,
            cmap="RdBu",
            vmin=-2,
            vmax=2,
            center=0,
            cbar=False,
            annot=grid.to_numpy(),
            fmt=".1f",
            annot_kws={"fontsize": 6},
        )
        ax.invert_yaxis()  # the smallest batch at the bottom
        ax.tick_params(axis="y", rotation=0)
        ax.set_xlabel("sequence length")
        ax.set_ylabel("batch size")
        ax.set_title(engine, fontsize=9)
        ax.grid(False)
    fig.suptitle(f"Speed-up over eager fp32, {model} (blue: faster; empty: skipped or failed)")
    return fig


def thread_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Model-only measured rows of the shapes that were measured at more than one thread count."""
    ok = df[(df["scope"] == "model") & df["p50_ms"].notna()]
    counts = ok.groupby(["model", "engine", "batch_size", "seq_len"])["threads"].transform("nunique")
    return ok[counts > 1]


def thread_scaling(df: pd.DataFrame):
    """Speed-up of each engine over itself at one thread, at the anchor shapes."""
    sub = thread_rows(df)
    models = list(dict.fromkeys(sub["model"]))
    fig, axes = per_model_axes(models or ["none"])
    for ax, model in zip(axes, models):
        m = sub[sub["model"] == model]
        big = m["batch_size"].max()
        for engine, e in m[m["batch_size"] == big].groupby("engine", sort=False):
            e = e.sort_values("threads")
            ax.plot(e["threads"], e["p50_ms"].iloc[0] / e["p50_ms"], marker="o", ms=3, label=engine)
        top = int(m["threads"].max())
        ax.plot([1, top], [1, top], color="0.6", ls="--", lw=0.8, label="linear")
        ax.set_xlabel("threads")
        ax.set_ylabel("speed-up over 1 thread")
        ax.set_title(f"{model} (batch {big} x {int(m['seq_len'].iloc[0])})")
    axes[-1].legend(fontsize=7)
    fig.suptitle("Thread scaling")
    return fig


def latency_vs_model_size(df: pd.DataFrame):
    sl = _sweep_slice(df, "length")
    anchor_seq = df.loc[df["part"] == "batch", "seq_len"]
    if len(anchor_seq):
        sl = sl[sl["seq_len"] == anchor_seq.iloc[0]]
    fig, ax = plt.subplots()
    for engine, e in sl.groupby("engine", sort=False):
        e = e.sort_values("n_params")
        ax.plot(e["n_params"] / 1e6, e["p50_ms"], marker="o", ms=4, label=engine)
    for model, m in sl.groupby("model"):
        ax.annotate(
            model,
            (m["n_params"].iloc[0] / 1e6, m["p50_ms"].min()),
            fontsize=7,
            xytext=(0, -12),
            textcoords="offset points",
            ha="center",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("median latency (ms)")
    shape = f"batch {int(sl['batch_size'].iloc[0])} x {int(sl['seq_len'].iloc[0])}" if len(sl) else ""
    ax.set_title(f"Latency against model size ({shape})")
    ax.legend(fontsize=7)
    return fig


def efficiency_vs_ceiling(df: pd.DataFrame):
    """Achieved GFLOP/s against work per call, with the measured ceilings (dashed) and the
    nominal peaks (dotted) as lines; rows above their measured ceiling are ringed in red."""
    sub = at_most_threads(df[df["gflops"].notna()])
    fig, ax = plt.subplots()
    if "ceiling_gflops" not in sub or sub["ceiling_gflops"].isna().all():
        ax.text(0.5, 0.5, "no ceilings from 00_environment at these thread counts", ha="center", transform=ax.transAxes)
    for engine, e in sub.groupby("engine", sort=False):
        ax.scatter(e["flops"] / 1e9, e["gflops"], s=12, label=engine)
    above = sub[sub["efficiency"] > 1] if "efficiency" in sub else sub.iloc[0:0]
    if len(above):  # never shown as if fine: the measured ceiling is below what these rows reach
        label = "above the measured ceiling (measured too low)"
        ax.scatter(above["flops"] / 1e9, above["gflops"], s=60, facecolors="none", edgecolors="red", label=label)
    ceilings = sub.groupby("precision")["ceiling_gflops"].max().dropna()
    for i, (precision, value) in enumerate(ceilings.items()):
        ax.axhline(value, color=f"C{i}", ls="--", lw=0.8, label=f"{precision} GEMM ceiling (00)")
    nominal = sub.groupby("precision")["nominal_gflops"].max().dropna() if "nominal_gflops" in sub else pd.Series()
    for i, (precision, value) in enumerate(nominal.items()):
        ax.axhline(value, color=f"C{i}", ls=":", lw=0.8, label=f"{precision} nominal peak (ISA x clock)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model GFLOP per call")
    ax.set_ylabel("achieved GFLOP/s (int8: GOP/s)")
    ax.set_title("Efficiency against the machine's ceilings")
    ax.legend(fontsize=7)
    return fig


def memory_per_engine(df: pd.DataFrame):
    """Load increment and peak resident memory of each engine's process at its largest configuration."""
    sub = df[(df["scope"] == "model") & df["peak_rss_mb"].notna()]
    idx = sub.groupby(["model", "engine"])["flops"].idxmax()
    big = sub.loc[idx]
    models = list(dict.fromkeys(big["model"]))
    fig, axes = per_model_axes(models or ["none"])
    for ax, model in zip(axes, models):
        m = big[big["model"] == model].set_index("engine")
        m[["load_mb", "peak_rss_mb"]].plot.bar(ax=ax, rot=30)
        ax.set_ylabel("MB")
        shape = m.iloc[0]
        ax.set_title(f"{model} (largest: batch {int(shape.batch_size)} x {int(shape.seq_len)})")
    fig.suptitle("Memory per engine (one process each)")
    return fig
