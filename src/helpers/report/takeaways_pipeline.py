"""07_pipeline's takeaway: a sentence computed from results/07_pipeline.csv."""

from __future__ import annotations

import pandas as pd


def _floors(min_cosine: float, min_recall: float) -> str:
    return f"min_cosine {min_cosine:.10g} and min_recall_at_10 {min_recall:.10g}"


def pipeline_takeaway(df: pd.DataFrame, min_cosine: float, min_recall: float) -> str:
    """The recommended pipeline and what it buys over the naive one, or, when no pipeline meets
    the floors, which came closest."""
    from helpers.report.recommend_pipeline import NAIVE, closest, recommended

    best = recommended(df) if len(df) else None
    if best is None:
        near = closest(df) if len(df) else None
        if near is None:
            return f"No pipeline meets {_floors(min_cosine, min_recall)}, and none could be measured."
        recall = "" if pd.isna(near.get("recall_at_10")) else f", recall@10 {near['recall_at_10']:.3f}"
        return (
            f"No pipeline meets min_cosine {min_cosine:.10g} (and min_recall_at_10 {min_recall:.10g}); the closest is "
            f"**{near['candidate']}** (worst-text cosine {near['cosine_min']:.5f}{recall}). "
            "No recommended pipeline was written."
        )
    naive = df[(df["stage"] == "corpus") & (df["candidate"] == NAIVE)]
    naive_rate = f" against {naive['items_per_s'].iloc[0]:.1f} for the naive one" if len(naive) else ""
    recall = "" if pd.isna(best.get("recall_at_10")) else f", recall@10 {best['recall_at_10']:.3f}"
    memory = f", peak RSS {best['peak_rss_mb']:.0f} MB" if pd.notna(best.get("peak_rss_mb")) else ""
    overlap = ", tokenization overlapped" if bool(best["overlap"]) else ""
    return (
        f"The fastest whole pipeline meeting {_floors(min_cosine, min_recall)} is **{best['variant']}** "
        f"({best['precision']}), {best['strategy']} batches of {int(best['batch_size'])}, "
        f"{int(best['threads'])} {'threads' if best['layout'] == 'threads' else 'single-threaded processes'}"
        f"{overlap}: **{best['speedup']:.2f}x** the naive pipeline (eager fp32, one text at a time; 95% CI "
        f"{best['speedup_ci_low']:.2f}-{best['speedup_ci_high']:.2f}), {best['items_per_s']:.1f} texts/s"
        f"{naive_rate} over {int(best['n_texts'])} texts, tokenization included. Its worst text's cosine to "
        f"eager fp32 is {best['cosine_min']:.5f}{recall}{memory}."
    )
