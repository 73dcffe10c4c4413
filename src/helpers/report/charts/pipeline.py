"""07_pipeline's charts, drawn from results/07_pipeline.csv (studies.pipeline.results)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from helpers.report.charts.style import colour, figure_legend, label_points, mark_not_timed, style
from helpers.report.recommend.pipeline import BEST_PEER, LIMIT, recommended


def pareto(df: pd.DataFrame, min_cosine: float, min_recall_at_10: float):
    """Items/s against each fidelity measure, each with its floor: recall@10 (left) and 1 - the
    worst text's cosine to eager fp32 (right, log). Filled: pipelines measured on the whole
    corpus (marker area: peak RSS); hollow: each variant on the probe sample, the INT8 ones
    included; a red ring: below a floor; a cross at the foot: a variant pruned before timing."""
    rows = _pareto_rows(df)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), sharey=True)
    if not len(rows):
        axes[0].text(0.5, 0.5, "no pipeline or variant was measured", ha="center", transform=axes[0].transAxes)
        fig.suptitle("Whole pipelines: speed against fidelity")
        return fig
    rows = rows.assign(gap=(1 - rows["cosine_min"]).clip(lower=1e-8))
    below = (rows["cosine_min"] < min_cosine) | (rows["recall_at_10"] < min_recall_at_10)
    timed = rows["items_per_s"].notna()
    for ax, x, floor in ((axes[0], "recall_at_10", min_recall_at_10), (axes[1], "gap", max(1 - min_cosine, 1e-8))):
        for r, miss in zip(rows[timed].itertuples(), below[timed]):
            corpus = r.stage == "corpus"
            ax.scatter(
                getattr(r, x),
                r.items_per_s,
                s=r.area,
                marker=style(r.variant)["marker"],
                facecolors=colour(r.variant) if corpus else "white",
                edgecolors="C3" if miss else colour(r.variant),
                linewidths=2.0 if miss else 1.2,
                alpha=0.85,
                zorder=3,
            )
        mark_not_timed(ax, rows.assign(status=np.where(timed, "ok", "skipped")), x, by="variant")
        ax.axvline(floor, color="C3", ls="--", lw=1)
    axes[0].set_xlabel(f"recall@10 against eager fp32 (floor {min_recall_at_10:g}, dashed)")
    axes[1].set_xscale("log")
    axes[1].invert_xaxis()
    axes[1].set_xlabel(f"1 - worst text's cosine to eager fp32 (log; floor {min_cosine:g}, dashed)")
    axes[0].set_ylabel("items / s (filled: whole corpus; hollow: probe sample)")
    marks = [
        Line2D([], [], ls="", marker="o", color="0.4", label="whole corpus (area: peak RSS)"),
        Line2D([], [], ls="", marker="o", mfc="white", color="0.4", label="probe sample, one variant"),
        Line2D([], [], ls="", marker="o", mfc="white", mec="C3", mew=2, label="below a floor"),
        Line2D([], [], color="C3", ls="--", lw=1, label="floor"),
    ]
    if (~timed).any():
        marks.append(Line2D([], [], ls="", marker="x", color="0.5", mew=1.5, label="pruned, not timed (× at the foot)"))
    ring, labels = _mark_recommended(axes, df, rows)
    figure_legend(fig, rows["variant"], extra=marks + ring)
    for ax, x in ((axes[0], "recall_at_10"), (axes[1], "gap")):
        t = rows[timed]
        label_points(ax, t[x], t["items_per_s"], labels[timed], fontsize=6.5)
    fig.suptitle("Pipelines and variants: speed against each fidelity floor")
    return fig


def _mark_recommended(axes, df: pd.DataFrame, rows: pd.DataFrame) -> tuple[list, pd.Series]:
    """A black ring on the recommended pipeline in both panels: its legend entry ([] when none is
    recommended) and the point labels, the recommended one's led by "recommended:"."""
    best = recommended(df)
    if best is None or pd.isna(best["items_per_s"]):
        return [], rows["label"]
    gap = max(1 - best["cosine_min"], 1e-8)
    for ax, x in ((axes[0], best["recall_at_10"]), (axes[1], gap)):
        ax.scatter(
            x, best["items_per_s"], s=420, marker="o", facecolors="none", edgecolors="k", linewidths=1.6, zorder=4
        )
    ring = Line2D([], [], ls="", marker="o", ms=11, mfc="none", mec="k", mew=1.6, label="recommended pipeline")
    chosen = (rows["stage"] == "corpus") & (rows["candidate"] == best["candidate"])
    return [ring], rows["label"].where(~chosen, "recommended: " + rows["label"])


def _pareto_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The whole-corpus pipelines (with their peak RSS from the memory rows) and each variant's
    probe, with a label and a marker area."""
    if not len(df):
        return df
    rows = df[df["stage"].isin(["corpus", "probe-variant"]) & df["recall_at_10"].notna()].copy()
    memory = df[df["stage"] == "memory"].set_index("candidate")["peak_rss_mb"]
    rows["peak_rss_mb"] = rows["peak_rss_mb"].fillna(rows["candidate"].map(memory))
    corpus = rows["stage"] == "corpus"
    top = max(rows.loc[corpus, "peak_rss_mb"].max(), 1) if corpus.any() else 1
    rows["area"] = np.where(corpus, 30 + 250 * rows["peak_rss_mb"].fillna(0) / top, 30)
    mb = rows["peak_rss_mb"].map(lambda v: f", {v:.0f} MB" if pd.notna(v) else "")
    rows["label"] = np.where(corpus, rows["candidate"] + mb, rows["candidate"] + " (probe)")
    return rows


def waterfall(steps: pd.DataFrame):
    """Speed-up over the naive pipeline after each step, every step measured as its own
    pipeline; bar labels give the step's own gain over the previous one. The best peer, where
    measured, stands last in another colour (not a step)."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    if not len(steps):
        ax.text(0.5, 0.5, "no step was measured", ha="center", transform=ax.transAxes)
        fig.suptitle("From the naive pipeline to the recommended one")
        return fig
    speed = steps["speedup"].astype(float).to_numpy()
    low = np.nan_to_num(speed - steps["speedup_ci_low"].astype(float).to_numpy())  # no CI (one pass): no bar
    high = np.nan_to_num(steps["speedup_ci_high"].astype(float).to_numpy() - speed)
    x = np.arange(len(steps))
    peer = (steps["waterfall_step"] == BEST_PEER).to_numpy()  # the bar beside the waterfall, not a step
    bound = (steps["waterfall_step"] == LIMIT).to_numpy()  # computed, not measured: an outline
    tones = [colour(str(c).split(" ")[0]) for c in steps["candidate"]]  # the step's engine, or the peer's
    bars = ax.bar(x, speed, color=["0.6"] + tones[1:], alpha=0.85, yerr=[low, high], capsize=3, ecolor="0.55")
    for bar, is_peer, is_bound in zip(bars, peer, bound):
        if is_peer:
            bar.set_hatch("//")
        if is_bound:
            bar.set(facecolor="none", edgecolor="black", linestyle="--", linewidth=1.2)  # after alpha: see-through
    previous = np.concatenate([[1.0], speed[:-1]])
    for i, (s, p, top) in enumerate(zip(speed, previous, speed + high)):  # above the CI's top, clear of it
        label = f"{s:.2f}x" + ("" if peer[i] or bound[i] else f"\n({s / p:.2f}x step)")
        ax.text(i, top, label if i else "1x", ha="center", va="bottom", fontsize=8)
    labels = [w + "\n" + str(c).replace(" ", "\n") for w, c in zip(steps["waterfall_step"], steps["candidate"])]
    ax.set_xticks(x, labels, fontsize=6.5)
    ax.set_ylabel("speed-up over naive (95% CI)" if high.any() else "speed-up over naive (one pass: no CI)")
    ax.set_ylim(0, max((speed + high).max(), 1) * 1.2)
    beside = "; best peer hatched" if peer.any() else ""
    beside += "; limit dashed" if bound.any() else ""
    fig.suptitle(f"Naive to recommended, each step measured{beside}")
    return fig


PHASES = [  # (column or derived name, label, colour: steps of the sequential map, not engine hues)
    ("lengths_ms", "length pass (tokenizer)", "#f3db42"),
    ("tokenize_ms", "tokenizing the batches", "#bcae6c"),
    ("engine_real_ms", "engine on real tokens", "#083370"),
    ("engine_pad_ms", "engine on padding (by FLOP share)", "#727274"),
    ("pooling_ms", "mean pooling", "#4a5d8f"),
    ("other_ms", "the rest (Python, copies, normalizing)", "0.8"),
]


def time_breakdown(times: pd.DataFrame, target: float):
    """Each timed pipeline's whole-corpus pass split into phases (ms, stacked bars), with the
    pass time `target` times faster than the naive one as a dashed line."""
    ok = times[times["status"] == "ok"].copy() if len(times) else times
    fig, ax = plt.subplots(figsize=(8, 0.6 * max(len(ok), 2) + 2.4))
    if not len(ok):
        ax.text(0.5, 0.5, "no pipeline was timed phase by phase", ha="center", transform=ax.transAxes)
        fig.suptitle("Where the time goes")
        return fig
    share = (ok["real_gflop"] / ok["computed_gflop"]).fillna(1.0)
    ok["engine_real_ms"], ok["engine_pad_ms"] = ok["engine_ms"] * share, ok["engine_ms"] * (1 - share)
    y = np.arange(len(ok))[::-1]
    left = np.zeros(len(ok))
    for column, label, tone in PHASES:
        values = ok[column].fillna(0).to_numpy() if column in ok else np.zeros(len(ok))  # older tables: no pooling
        ax.barh(y, values, left=left, color=tone, label=label, height=0.6)
        left += values
    for yi, total, (_, r) in zip(y, left, ok.iterrows()):
        eff = f", engine at {r['efficiency']:.0%} of {r['precision']} GEMM rate" if pd.notna(r["efficiency"]) else ""
        ax.text(total, yi, f" {total:.0f} ms{eff}", va="center", fontsize=7)
    naive = ok[ok["candidate"] == "naive"]["total_ms"]
    if len(naive):
        ax.axvline(naive.iloc[0] / target, color="C3", ls="--", lw=1, label=f"{target:g}x faster than naive")
    ax.set_yticks(y, ok["candidate"], fontsize=7)
    ax.set_xlabel("ms per whole-corpus pass (one process, phases one after the other)")
    ax.set_xlim(0, left.max() * 1.45)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=7, frameon=False)
    fig.suptitle("Where the time goes: each pipeline's pass, phase by phase")
    fig.tight_layout()
    return fig
