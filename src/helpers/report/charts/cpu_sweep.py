"""03_cpu_sweeps' charts (the speed-up heatmaps also for 04): latency, throughput, speed-up,
threads, model size, efficiency and memory, at each model's most threads, model-only scope.

Each chart is drawn from a result table (never from kernel state); charts.style saves it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from helpers.report.charts.style import (
    ci_line,
    colour,
    figure_legend,
    line,
    lines_by_batch,
    mark_flagged,
    mark_not_timed,
    measured_ticks,
    panel_grid,
    rows_legend,
    style,
)
from helpers.report.rows import at_most_threads, thread_rows

# a ceiling's precision by its grey (engines own the hues), named again at the line's end
PRECISION_TONES = {"fp32": "0.1", "bf16": "0.4", "int8": "0.6", "fp16": "0.75"}


def _sweep_slice(df: pd.DataFrame, part: str) -> pd.DataFrame:
    """Rows of one sweep direction at the model's most threads, model-only scope: measured,
    flagged and failed alike (the charts mark the flagged and failed ones)."""
    rows = at_most_threads(df)
    anchor_seq = df.loc[df["part"] == "batch", "seq_len"]
    anchor_batch = df.loc[df["part"] == "length", "batch_size"]
    if part == "batch" and len(anchor_seq):
        return rows[rows["seq_len"] == anchor_seq.iloc[0]]
    if part == "length" and len(anchor_batch):
        return rows[rows["batch_size"] == anchor_batch.iloc[0]]
    return rows


def latency_vs(df: pd.DataFrame, x: str):
    """Median latency (with its CI) against batch size or sequence length, per engine, one panel
    per model in a grid; failed or skipped cells are crosses at the foot of their panel."""
    part = {"batch_size": "batch", "seq_len": "length"}[x]
    sl = _sweep_slice(df, part)
    models = list(dict.fromkeys(sl["model"]))
    fig, axes = panel_grid(models)
    for ax, model in zip(axes, models):
        sub = sl[sl["model"] == model]
        timed = sub[sub["p50_ms"].notna()]
        for engine, e in timed.groupby("engine", sort=False):
            ci_line(ax, e, x, "p50_ms", "ci_low_ms", "ci_high_ms", engine)
        mark_flagged(ax, timed, x, "p50_ms")
        mark_not_timed(ax, sub, x)
        ax.set_xscale("log", base=2)
        measured_ticks(ax, sub[x])
        ax.set_yscale("log")
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel("median latency (ms)")
        fixed = "seq_len" if x == "batch_size" else "batch_size"
        ax.set_title(f"{model} ({fixed.replace('_', ' ')} {int(sub[fixed].iloc[0]) if len(sub) else '?'})")
    rows_legend(fig, sl)
    fig.suptitle(f"Latency against {x.replace('_', ' ')} (model only, most threads)")
    return fig


def throughput_vs_batch(df: pd.DataFrame):
    sl = _sweep_slice(df, "batch")
    fig, axes, _ = lines_by_batch(sl, "model", "engine", "items_per_s", "items / s")
    rows_legend(fig, sl)
    fig.suptitle("Throughput against batch size")
    return fig


STATUS_MARK = {"error": "error", "oom": "oom", "skipped": "skip", "mismatch": "mism."}


def speedup_heatmaps(df: pd.DataFrame, model: str):
    """Speed-up over eager fp32 for every batch x length pair, one panel per engine: colour on a
    log2 scale centred at 1× (blue faster, red slower) out to the model's largest speed-up or
    slow-down, so no cell saturates; one labelled colour bar; the speed-up written in each
    cell, batch size growing upwards. A cell that failed, was skipped or is
    outside tolerance is hatched and says so; a blank cell was not in the sweep."""
    import seaborn as sns  # imported here: it takes a second, and only this chart needs it

    rows = at_most_threads(df[(df["model"] == model) & (df["engine"] != "eager")])
    names = list(dict.fromkeys(rows.loc[rows["speedup"].notna() | rows["status"].isin(STATUS_MARK), "engine"]))
    rows = rows[rows["engine"].isin(names)]
    batches, lengths = sorted(set(rows["batch_size"])), sorted(set(rows["seq_len"]))
    fig, axes = panel_grid(names or [model], cols=3, width=3.8, height=3.3)
    reach = _log2_reach(rows["speedup"])
    if not names:
        axes[0].text(0.5, 0.5, f"no batch x length grid measured for {model}", ha="center", transform=axes[0].transAxes)
    for ax, engine in zip(axes, names):
        e = rows[rows["engine"] == engine]
        grid = e.pivot_table(index="batch_size", columns="seq_len", values="speedup")
        grid = grid.reindex(index=batches, columns=lengths)  # every panel on the same axes
        sns.heatmap(
            np.log2(grid),
            ax=ax,
            cmap="RdBu",
            vmin=-reach,
            vmax=reach,
            center=0,
            cbar=False,
            annot=grid.to_numpy(),
            fmt=".1f",
            annot_kws={"fontsize": 6},
        )
        for r in e[e["status"].isin(STATUS_MARK)].drop_duplicates(["batch_size", "seq_len"]).itertuples():
            i, j = batches.index(r.batch_size), lengths.index(r.seq_len)
            ax.add_patch(Rectangle((j, i), 1, 1, fill=False, hatch="////", edgecolor="0.55", lw=0))
            if pd.isna(r.speedup):
                ax.text(j + 0.5, i + 0.5, STATUS_MARK[r.status], ha="center", va="center", fontsize=5.5, color="0.2")
        ax.invert_yaxis()  # the smallest batch at the bottom
        ax.tick_params(axis="y", rotation=0)
        ax.set_xlabel("sequence length")
        ax.set_ylabel("batch size")
        ax.set_title(engine, fontsize=9, color=colour(engine))
        ax.grid(False)
    if names:
        _speedup_colourbar(fig, axes, reach)
    fig.suptitle(f"Speed-up over eager fp32, {model} (blue: faster; hatched: failed, skipped or mismatch)")
    return fig


def _log2_reach(speedups: pd.Series) -> float:
    """Half-width of the log2 colour scale: the largest speed-up or slow-down measured (at
    least 2×), so the scale stays centred at 1× and no cell saturates."""
    logs = np.abs(np.log2(speedups[speedups > 0].to_numpy(dtype=float)))
    return float(max(1.0, logs.max() if len(logs) else 1.0))


def _speedup_colourbar(fig, axes, reach: float) -> None:
    """One colour bar right of the top row's last panel (inset, so tight_layout makes room for
    it), ticks in × on the log2 scale."""
    cax = axes[min(2, len(axes) - 1)].inset_axes([1.06, 0.0, 0.06, 1.0])
    bar = fig.colorbar(ScalarMappable(Normalize(-reach, reach), "RdBu"), cax=cax)
    ticks = np.arange(-np.floor(reach), np.floor(reach) + 1)
    bar.set_ticks(ticks, labels=[f"{2.0**t:g}×" for t in ticks])
    bar.set_label("speed-up over eager (×, log scale)", fontsize=8)
    cax.tick_params(labelsize=7)


def thread_scaling(df: pd.DataFrame):
    """Speed-up of each engine over itself at one thread, at the anchor shapes."""
    sub = thread_rows(df)
    models = list(dict.fromkeys(sub["model"]))
    fig, axes = panel_grid(models)
    for ax, model in zip(axes, models):
        m = sub[sub["model"] == model]
        big = m["batch_size"].max()
        for engine, e in m[m["batch_size"] == big].groupby("engine", sort=False):
            e = e.sort_values("threads")
            line(ax, e.assign(speedup_1t=e["p50_ms"].iloc[0] / e["p50_ms"]), "threads", "speedup_1t", engine)
        top = int(m["threads"].max())
        ax.plot([1, top], [1, top], color="0.6", ls="--", lw=0.8)
        ax.set_xticks(sorted(set(m["threads"])))
        ax.set_xlabel("threads")
        ax.set_ylabel("speed-up over 1 thread")
        ax.set_title(f"{model} (batch {big} x {int(m['seq_len'].iloc[0])})")
    linear = Line2D([], [], color="0.6", ls="--", lw=0.8, label="linear")
    figure_legend(fig, sub["engine"], extra=[linear])
    fig.suptitle("Thread scaling")
    return fig


def latency_vs_model_size(df: pd.DataFrame):
    sl = _sweep_slice(df, "length")
    anchor_seq = df.loc[df["part"] == "batch", "seq_len"]
    if len(anchor_seq):
        sl = sl[sl["seq_len"] == anchor_seq.iloc[0]]
    timed = sl[sl["p50_ms"].notna()]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for engine, e in timed.groupby("engine", sort=False):
        line(ax, e.assign(mparams=e["n_params"] / 1e6), "mparams", "p50_ms", engine)
    mark_not_timed(ax, sl.assign(mparams=sl["n_params"] / 1e6), "mparams")
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = sl.drop_duplicates("model").sort_values("n_params")
    names = [f"{m} ({p / 1e6:.0f}M)" for m, p in zip(sizes["model"], sizes["n_params"])]
    ax.set_xticks(sizes["n_params"] / 1e6, names, rotation=30, ha="right", fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("model (parameters)")
    ax.set_ylabel("median latency (ms)")
    shape = f"batch {int(sl['batch_size'].iloc[0])} x {int(sl['seq_len'].iloc[0])}" if len(sl) else ""
    ax.set_title(f"Latency against model size ({shape})")
    rows_legend(fig, sl)
    return fig


def efficiency_vs_ceiling(df: pd.DataFrame):
    """Achieved GFLOP/s against work per call, with the measured ceilings (dashed: the highest
    of each precision's, 00's rate at the model's own shapes where measured) and the nominal
    peaks (dotted) as lines; rows above their own cell's ceiling are ringed in red, the legend
    saying why the ceiling was exceeded."""
    sub = at_most_threads(df[df["gflops"].notna()])
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    if "ceiling_gflops" not in sub or sub["ceiling_gflops"].isna().all():
        ax.text(0.5, 0.5, "no ceilings from 00_environment at these thread counts", ha="center", transform=ax.transAxes)
    for engine, e in sub.groupby("engine", sort=False):
        ax.scatter(e["flops"] / 1e9, e["gflops"], s=12, label=engine, **style(engine))
    extra = []
    above = sub[sub["efficiency"] > 1] if "efficiency" in sub else sub.iloc[0:0]
    if len(above):  # never shown as if fine: the measured ceiling is below what these rows reach
        ax.scatter(above["flops"] / 1e9, above["gflops"], s=60, facecolors="none", edgecolors="red")
        why = "above its ceiling: its kernels outrun 00's torch / ORT GEMMs at that shape"
        ring = Line2D([], [], ls="", marker="o", mfc="none", mec="red", label=why)
        extra.append(ring)
    nominal = sub.groupby("precision")["nominal_gflops"].max().dropna() if "nominal_gflops" in sub else pd.Series()
    for ls, kind, values in (
        ("--", "GEMM ceiling (00)", sub.groupby("precision")["ceiling_gflops"].max().dropna()),
        (":", "nominal peak (ISA x clock)", nominal),
    ):
        for precision, value in values.items():
            tone = PRECISION_TONES.get(precision, "0.4")
            ax.axhline(value, color=tone, ls=ls, lw=0.9)
            ax.annotate(
                precision,
                (1.0, value),
                xycoords=("axes fraction", "data"),
                xytext=(2, 0),
                textcoords="offset points",
                fontsize=6,
                color=tone,
                va="center",
            )
            extra.append(Line2D([], [], color=tone, ls=ls, lw=0.9, label=f"{precision} {kind}"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model GFLOP per call")
    ax.set_ylabel("achieved GFLOP/s (int8: GOP/s)")
    ax.set_title("Efficiency against the machine's ceilings")
    figure_legend(fig, sub["engine"], extra=extra)
    return fig


def memory_per_engine(df: pd.DataFrame):
    """Load increment (hatched, inside) and peak resident memory of each engine's process at its
    largest configuration, one panel per model in a grid."""
    sub = df[(df["scope"] == "model") & df["peak_rss_mb"].notna()]
    idx = sub.groupby(["model", "engine"], sort=False)["flops"].idxmax()
    big = sub.loc[idx]
    models = list(dict.fromkeys(big["model"]))
    fig, axes = panel_grid(models)
    for ax, model in zip(axes, models):
        m = big[big["model"] == model]
        y = np.arange(len(m))[::-1]
        colours = [colour(e) for e in m["engine"]]
        ax.barh(y, m["peak_rss_mb"], color=colours, height=0.7)
        ax.barh(y, m["load_mb"], color="none", edgecolor="white", hatch="///", height=0.7, lw=0)
        top = m.loc[m["flops"].idxmax()]
        # an engine whose largest run was smaller (it failed above) says at which shape
        names = [
            e if (b, n) == (top.batch_size, top.seq_len) else f"{e} ({int(b)} x {int(n)})"
            for e, b, n in zip(m["engine"], m["batch_size"], m["seq_len"])
        ]
        ax.set_yticks(y, names, fontsize=8)
        ax.set_xlabel("MB (hatched: load increment)")
        ax.set_title(f"{model} (largest: batch {int(top.batch_size)} x {int(top.seq_len)})", fontsize=10)
    fig.suptitle("Peak resident memory per engine (one process each; hatched: the load increment)")
    return fig
