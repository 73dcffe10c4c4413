"""02_quantization's charts: speed against fidelity, size per variant, per-channel against
per-tensor INT8.

Each chart is drawn from a result table (never from kernel state); charts.style saves it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.report.charts.style import FLAGGED, GROUPS, figure_legend, label_points, style


def quantization_pareto(variants: pd.DataFrame, speed: pd.DataFrame, fidelity: str = "recall_at_10"):
    """Speed-up over eager fp32 (with its CI) against fidelity, per model and batch size, each
    method in its colour; mismatching variants are drawn as black crosses."""
    merged = speed.merge(
        variants[["model", "method", fidelity, "status"]], on=["model", "method"], suffixes=("", "_variant")
    )
    models = list(dict.fromkeys(merged["model"]))
    sizes = sorted(merged["batch_size"].unique())
    fig, axes = plt.subplots(len(models), len(sizes), figsize=(4.8 * len(sizes), 4.2 * len(models)), squeeze=False)
    cells = []
    for i, model in enumerate(models):
        for j, bs in enumerate(sizes):
            ax = axes[i][j]
            sub = merged[(merged["model"] == model) & (merged["batch_size"] == bs) & merged["speedup"].notna()]
            for r in sub.itertuples():
                bad = r.status_variant == "mismatch"
                ax.errorbar(
                    r.speedup,
                    getattr(r, fidelity),
                    xerr=[[r.speedup - r.speedup_ci_low], [r.speedup_ci_high - r.speedup]],
                    capsize=2,
                    ms=5,
                    label=f"_{r.method}" if bad else r.method,
                    **(style(r.method) | ({"marker": "x", "color": "k"} if bad else {})),
                )
            ax.axvline(1.0, color="0.6", lw=0.8, ls="--")
            ax.set_xlabel(f"speed-up over eager fp32 (batch {bs} × {int(sub['seq_len'].iloc[0]) if len(sub) else '?'})")
            ax.set_ylabel(fidelity.replace("_", " ") + " vs fp32")
            ax.set_title(f"{model}, batch {bs}")
            cells.append((ax, sub))
    crosses = [FLAGGED] if (merged["status_variant"] == "mismatch").any() else []
    figure_legend(fig, merged["method"], extra=crosses)
    for ax, sub in cells:  # once every panel is drawn: labels are placed by distance
        label_points(ax, sub["speedup"], sub[fidelity], sub["method"])
    fig.suptitle("Speed against fidelity (crosses: outside tolerance)")
    return fig


def variant_sizes(variants: pd.DataFrame):
    """Size on disk (torch: saved state dict) per variant and model."""
    table = variants.pivot_table(index="method", columns="model", values="size_mb", sort=False)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(table) + 1.5))
    table.plot.barh(ax=ax, colormap=GROUPS)
    ax.invert_yaxis()
    ax.set_xlabel("size (MB)")
    ax.set_ylabel("")
    ax.set_title("Model size per variant")
    return fig


def per_channel_vs_per_tensor(variants: pd.DataFrame):
    """Minimum cosine and recall@10 of per-tensor against per-channel INT8, per tool and model."""
    pairs = {"quantize_dynamic": ("ort-int8-pt", "ort-int8-pc"), "optimum": ("optimum-int8-pt", "optimum-int8-pc")}
    rows = []
    for model, sub in variants.groupby("model", sort=False):
        sub = sub.set_index("method")
        for tool, (pt, pc) in pairs.items():
            for scheme, method in (("per-tensor", pt), ("per-channel", pc)):
                if method in sub.index and sub.loc[method, "status"] in ("ok", "mismatch"):
                    rows.append(
                        {
                            "group": f"{model}\n{tool}",
                            "scheme": scheme,
                            "cosine_min": sub.loc[method, "cosine_min"],
                            "recall_at_10": sub.loc[method, "recall_at_10"],
                        }
                    )
    df = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, metric in zip(axes, ("cosine_min", "recall_at_10")):
        if df.empty:
            ax.text(0.5, 0.5, "no INT8 pair measured", ha="center", transform=ax.transAxes)
            continue
        _scheme_points(ax, df.pivot_table(index="group", columns="scheme", values=metric, sort=False))
        ax.set_ylabel(metric.replace("_", " ") + " vs fp32 (points; axis not from 0)")
    if not df.empty:
        axes[0].legend(title="scheme", loc="best")
    fig.suptitle("INT8 per-tensor against per-channel")
    return fig


def _scheme_points(ax, table: pd.DataFrame) -> None:
    """One point per scheme and group, the pair joined by a thin line: points, not bars, since
    the axis is cut to the measured range (bars from a cut axis exaggerate the gap)."""
    xs = np.arange(len(table))
    ax.plot(np.tile(xs, (len(table.columns), 1)), table.T.to_numpy(), color="0.7", lw=1, zorder=1)
    tones = plt.get_cmap(GROUPS)(np.linspace(0, 0.75, len(table.columns)))  # no pale yellow on white
    for (scheme, values), tone, marker in zip(table.items(), tones, ("o", "s")):
        ax.scatter(xs, values, color=tone, marker=marker, s=40, label=scheme, zorder=3)
    ax.set_xticks(xs, table.index)
    ax.set_xlim(-0.5, len(table) - 0.5)
    low = np.nanmin(table.to_numpy())
    ax.set_ylim(max(0.0, low - 0.02), 1.005)
