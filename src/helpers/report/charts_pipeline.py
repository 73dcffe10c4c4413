"""07_pipeline's charts, drawn from results/07_pipeline.csv (studies.pipeline.results)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.report.recommend_pipeline import BEST_PEER


def pareto(df: pd.DataFrame, min_cosine: float):
    """Items/s against the worst text's cosine to eager fp32, one point per pipeline measured on
    the whole corpus; marker area grows with peak RSS; the floor is the dashed line."""
    corpus = df[(df["stage"] == "corpus") & df["items_per_s"].notna()] if len(df) else df
    fig, ax = plt.subplots(figsize=(8, 5))
    if not len(corpus):
        ax.text(0.5, 0.5, "no pipeline was measured on the whole corpus", ha="center", transform=ax.transAxes)
        fig.suptitle("Whole pipelines: speed against fidelity")
        return fig
    memory = corpus["peak_rss_mb"] if "peak_rss_mb" in corpus else pd.Series(np.nan, index=corpus.index)
    size = 30 + 250 * (memory.fillna(memory.min() if memory.notna().any() else 0) / max(memory.max(), 1))
    # 1 - cosine on a log axis: 0.99 and 0.9999 are as far apart as they matter
    gap = (1 - corpus["cosine_min"]).clip(lower=1e-8)
    colors = np.where(corpus["status"] == "ok", "C0", "C3")
    ax.scatter(gap, corpus["items_per_s"], s=size.fillna(40), c=colors, alpha=0.7, edgecolor="k", lw=0.5)
    for (_, r), x in zip(corpus.iterrows(), gap):
        mem = f", {r['peak_rss_mb']:.0f} MB" if pd.notna(r.get("peak_rss_mb")) else ""
        ax.annotate(
            f"{r['candidate']}{mem}", (x, r["items_per_s"]), fontsize=6.5, xytext=(4, 3), textcoords="offset points"
        )
    ax.axvline(max(1 - min_cosine, 1e-8), color="C3", ls="--", lw=1, label=f"floor: cosine {min_cosine:g}")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("1 - cosine of the worst text to eager fp32 (log; right is closer)")
    ax.set_ylabel("items / s (whole corpus, tokenization included)")
    ax.legend(loc="best")
    fig.suptitle("Whole pipelines: speed against fidelity (marker area: peak RSS; red: below a floor)")
    return fig


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
    low = speed - steps["speedup_ci_low"].astype(float).to_numpy()
    high = steps["speedup_ci_high"].astype(float).to_numpy() - speed
    x = np.arange(len(steps))
    peer = (steps["waterfall_step"] == BEST_PEER).to_numpy()  # the bar beside the waterfall, not a step
    colors = ["C1" if p else "C0" for p in peer]
    ax.bar(x, speed, color=["0.6"] + colors[1:], yerr=[low, high], capsize=3)
    previous = np.concatenate([[1.0], speed[:-1]])
    for i, (s, p) in enumerate(zip(speed, previous)):
        label = f"{s:.2f}x" + ("" if peer[i] else f"\n({s / p:.2f}x step)")
        ax.text(i, s, label if i else "1x", ha="center", va="bottom", fontsize=8)
    labels = [w + "\n" + str(c).replace(" ", "\n") for w, c in zip(steps["waterfall_step"], steps["candidate"])]
    ax.set_xticks(x, labels, fontsize=6.5)
    ax.set_ylabel("speed-up over naive (95% CI)")
    ax.set_ylim(0, max(speed.max() + high.max(), 1) * 1.25)
    beside = ", beside the best peer" if peer.any() else ""
    fig.suptitle(f"From the naive pipeline to the recommended one, step by step (each step measured){beside}")
    return fig


PHASES = [  # (column or derived name, label, colour)
    ("lengths_ms", "length pass (tokenizer)", "C1"),
    ("tokenize_ms", "tokenizing the batches", "C2"),
    ("engine_real_ms", "engine on real tokens", "C0"),
    ("engine_pad_ms", "engine on padding (by FLOP share)", "C9"),
    ("pooling_ms", "mean pooling", "C4"),
    ("other_ms", "the rest (Python, copies, normalizing)", "0.6"),
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
    for column, label, colour in PHASES:
        values = ok[column].fillna(0).to_numpy() if column in ok else np.zeros(len(ok))  # older tables: no pooling
        ax.barh(y, values, left=left, color=colour, label=label, height=0.6)
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
