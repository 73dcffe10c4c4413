"""04_gpu_sweeps' charts: time per item, speed-up and GPU memory against batch size (the
heatmaps are cpu_sweep.speedup_heatmaps, the no-GPU notice style.notice); `notebook_figures`
picks which the notebook shows.

Each chart is drawn from a result table (never from kernel state); style.save saves it."""

from __future__ import annotations

from typing import Any

import pandas as pd

from helpers.report.charts.cpu_sweep import speedup_heatmaps
from helpers.report.charts.style import (
    ci_line,
    lines_by_batch,
    mark_not_timed,
    measured_ticks,
    notice,
    panel_grid,
    rows_legend,
)
from helpers.report.rows import measured_rows


def _gpu_ok(df: pd.DataFrame) -> pd.DataFrame:
    """Every row of a sweep that has a latency column: the timed ones are drawn, the failed or
    skipped ones marked."""
    return df if "p50_ms" in df else df.iloc[:0]


def per_item_time_vs_batch(df: pd.DataFrame, seq_len: int):
    """Time per item against batch size at one length, per engine, one panel per model: the
    knee where batching stops paying is where the line flattens."""
    ok = _gpu_ok(df)
    sub = ok[ok["seq_len"] == seq_len].assign(per_item_ms=lambda d: d["p50_ms"] / d["batch_size"])
    fig, axes, _ = lines_by_batch(sub, "model", "engine", "per_item_ms", "median time per item (ms)")
    for ax in axes:
        ax.set_yscale("log")
    rows_legend(fig, sub)
    gpu = sub["gpu"].iloc[0] if len(sub) else ""
    fig.suptitle(f"Time per item against batch size, {seq_len} tokens ({gpu}; copies excluded)")
    return fig


def speedup_vs_batch(df: pd.DataFrame, seq_len: int):
    """Speed-up over eager fp32 (95% CI) against batch size at one length: the cross-overs."""
    ok = _gpu_ok(df)
    sub = ok[(ok["seq_len"] == seq_len) & (ok["engine"] != "eager")]
    models = list(dict.fromkeys(sub["model"]))
    fig, axes = panel_grid(models)
    for ax, model in zip(axes, models):
        m = sub[sub["model"] == model]
        for engine, e in m[m["speedup"].notna()].groupby("engine", sort=False):
            ci_line(ax, e, "batch_size", "speedup", "speedup_ci_low", "speedup_ci_high", engine)
        mark_not_timed(ax, m, "batch_size")
        ax.axhline(1, color="0.4", lw=1, ls="--")
        ax.set_xscale("log", base=2)
        measured_ticks(ax, m["batch_size"])
        ax.set_xlabel("batch size")
        ax.set_ylabel("speed-up over eager fp32 (95% CI)")
        ax.set_title(f"{model}, {seq_len} tokens")
    rows_legend(fig, sub)
    fig.suptitle("Which engine wins at which batch size")
    return fig


def gpu_memory_vs_batch(df: pd.DataFrame, seq_len: int):
    """torch's peak allocated memory (torch engines) and NVML's process figure (ORT engines)
    against batch size at one length."""
    ok = _gpu_ok(df)
    sub = ok[ok["seq_len"] == seq_len]
    if "nvml_process_mb" in sub:
        ort = sub["engine"].str.startswith("ort")
        sub = sub.assign(gpu_mb=sub["peak_gpu_mb"].where(~ort, sub["nvml_process_mb"]))
    else:
        sub = sub.assign(gpu_mb=sub.get("peak_gpu_mb"))
    fig, axes, _ = lines_by_batch(sub, "model", "engine", "gpu_mb", "GPU memory (MB)")
    rows_legend(fig, sub)
    fig.suptitle(f"GPU memory at {seq_len} tokens (torch: peak allocated; ORT: NVML, whole process)")
    return fig


def notebook_figures(sweep, models: list[str], focus_seq_len: int, no_gpu: str | None) -> dict[str, Any]:
    """The notebook's figures by name: without a usable CUDA device a notice saying why
    (04_gpu_sweep); with measured rows, per-item time and speed-up against batch size at
    `focus_seq_len`, one speed-up heatmap per model, and memory."""
    measured = measured_rows(sweep)
    out = {}
    if no_gpu:
        out["04_gpu_sweep"] = notice("04 · GPU sweeps: not measured on this machine", no_gpu)
    if len(measured):  # the charts draw what ran and mark what failed or was skipped
        out["04_per_item_vs_batch"] = per_item_time_vs_batch(sweep, focus_seq_len)
        out["04_speedup_vs_batch"] = speedup_vs_batch(sweep, focus_seq_len)
        for model in models:
            heatmap = speedup_heatmaps(sweep.assign(threads=1), model)
            out[f"04_speedup_heatmap_{model.replace('/', '__')}"] = heatmap
        out["04_memory"] = gpu_memory_vs_batch(sweep, focus_seq_len)
    return out
