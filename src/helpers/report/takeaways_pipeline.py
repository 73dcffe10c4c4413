"""07_pipeline's takeaway: a sentence computed from results/07_pipeline.csv."""

from __future__ import annotations

import pandas as pd

from helpers.report import text


def _cosine(value: float) -> str:
    """A cosine with the digits that tell it from 1 (0.99800, 0.9999993)."""
    return f"{value:.7f}" if value >= 0.99995 else f"{value:.5f}"


def _floors(min_cosine: float, min_recall: float) -> str:
    return f"min_cosine {min_cosine:.10g} and min_recall_at_10 {min_recall:.10g}"


def pipeline_takeaway(
    df: pd.DataFrame, min_cosine: float, min_recall: float, relaxed_min_cosine: float | None = None
) -> str:
    """The recommended pipeline and what it buys over the naive one, or, when no pipeline meets
    the floors, which came closest; then the fastest at the looser floor, where given."""
    text = _at_floor(df, min_cosine, min_recall)
    text += " " + _against_peers(df)
    if relaxed_min_cosine is not None and relaxed_min_cosine < min_cosine:
        text += " " + _at_relaxed_floor(df, min_cosine, relaxed_min_cosine, min_recall)
    return text


def _at_relaxed_floor(df: pd.DataFrame, min_cosine: float, relaxed: float, min_recall: float) -> str:
    from helpers.core.fidelity import meets_floors
    from helpers.report.recommend_pipeline import candidates

    corpus = candidates(df)
    corpus = corpus[corpus["items_per_s"].notna()] if len(corpus) else corpus
    ok = corpus[[meets_floors(r, relaxed, min_recall) for _, r in corpus.iterrows()]] if len(corpus) else corpus
    if not len(ok):
        return f"No pipeline measured on the whole corpus meets the looser floor min_cosine {relaxed:.10g} either."
    best = ok.sort_values("items_per_s", ascending=False).iloc[0]
    same = " (it meets the stricter floors too)" if meets_floors(best, min_cosine, min_recall) else ""
    return (
        f"At the looser floor min_cosine {relaxed:.10g}, the fastest is **{best['candidate']}**{same}: "
        f"{best['speedup']:.2f}x the naive pipeline ({text.interval(best['speedup_ci_low'], best['speedup_ci_high'])}), "
        f"worst-text cosine {_cosine(best['cosine_min'])}."
    )


def _against_peers(df: pd.DataFrame) -> str:
    """The recommended pipeline against the best peer (sentence-transformers), said plainly
    when a peer is faster; the peers that missed a floor or could not run."""
    from helpers.report.recommend_pipeline import best_peer, is_peer, peers, recommended

    rows = peers(df)
    failed = df["stage"].isin(["probe-peer", "corpus"]) & df["status"].isin(["skipped", "error"]) if len(df) else []
    probes = df[failed & is_peer(df)] if len(df) else df
    missing = "".join(f" {r['candidate']} did not run: {r['message']}." for _, r in probes.iterrows())
    if not len(rows):
        return ("No peer (sentence-transformers) was measured on the whole corpus." + missing) if len(probes) else ""
    below = rows[rows["status"] == "mismatch"]
    missed = "".join(f" {r['candidate']} missed a floor ({r['message']})." for _, r in below.iterrows())
    peer, best = best_peer(df), recommended(df) if len(df) else None
    if peer is None:
        return "No peer met the floors on the whole corpus." + missed + missing
    said = (
        f"The best peer at the floors is **{peer['candidate']}** (sentence-transformers): "
        f"{peer['speedup']:.2f}x the naive pipeline ({text.interval(peer['speedup_ci_low'], peer['speedup_ci_high'])})"
    )
    if best is None or pd.isna(best.get("speedup_over_peer")):
        return said + "." + missed + missing
    x, lo, hi = best["speedup_over_peer"], best["speedup_over_peer_ci_low"], best["speedup_over_peer_ci_high"]
    ci = f"{text.interval(lo, hi)}, from the same interleaved passes"
    if hi < 1 or (pd.isna(hi) and x < 1):  # without a CI (one pass) the ratio alone decides
        verdict = (
            f"; **the peer is faster** than the recommended pipeline at these floors: the recommended one runs at "
            f"{x:.2f}x its speed ({ci}), so on this machine the peer is the better choice."
        )
    elif text.straddles_one(lo, hi):
        verdict = f"; the recommended pipeline runs at {x:.2f}x its speed ({ci}): {text.NO_DIFFERENCE}."
    else:
        verdict = f"; the recommended pipeline is **{x:.2f}x** faster ({ci})."
    return said + verdict + missed + missing


def _at_floor(df: pd.DataFrame, min_cosine: float, min_recall: float) -> str:
    from helpers.report.recommend_pipeline import NAIVE, closest, cost_note, layout_words, recommended

    best = recommended(df) if len(df) else None
    if best is None:
        near = closest(df) if len(df) else None
        if near is None:
            return f"No pipeline meets {_floors(min_cosine, min_recall)}, and none could be measured."
        recall = "" if pd.isna(near.get("recall_at_10")) else f", recall@10 {near['recall_at_10']:.3f}"
        return (
            f"No pipeline meets min_cosine {min_cosine:.10g} (and min_recall_at_10 {min_recall:.10g}); the closest is "
            f"**{near['candidate']}** (worst-text cosine {_cosine(near['cosine_min'])}{recall}). "
            "No recommended pipeline was written."
        )
    naive = df[(df["stage"] == "corpus") & (df["candidate"] == NAIVE)]
    head = (
        "recommended whole pipeline (the cheapest within the fastest's CI)"
        if cost_note(df)
        else "fastest whole pipeline"
    )
    naive_rate = f" against {naive['items_per_s'].iloc[0]:.1f} for the naive one" if len(naive) else ""
    recall = "" if pd.isna(best.get("recall_at_10")) else f", recall@10 {best['recall_at_10']:.3f}"
    memory = f", peak RSS {best['peak_rss_mb']:.0f} MB" if pd.notna(best.get("peak_rss_mb")) else ""
    overlap = ", tokenization overlapped" if bool(best["overlap"]) else ""
    if text.straddles_one(best["speedup_ci_low"], best["speedup_ci_high"]):
        overlap += f" ({text.NO_DIFFERENCE} from the naive pipeline)"
    return (
        f"The {head} meeting {_floors(min_cosine, min_recall)} is **{best['variant']}** "
        f"({best['precision']}), {best['strategy']} batches of {int(best['batch_size'])}, "
        f"{layout_words(best['layout'], best['threads'])}"
        f"{overlap}: **{best['speedup']:.2f}x** the naive pipeline (eager fp32, one text at a time; "
        f"{text.interval(best['speedup_ci_low'], best['speedup_ci_high'])}), {best['items_per_s']:.1f} texts/s"
        f"{naive_rate} over {int(best['n_texts'])} texts, tokenization included. Its worst text's cosine to "
        f"eager fp32 is {_cosine(best['cosine_min'])}{recall}{memory}. " + cost_note(df)
    ).rstrip()
