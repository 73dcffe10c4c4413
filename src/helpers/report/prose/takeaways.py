"""Sentences that cite results, computed from the result tables (never typed by hand)."""

from __future__ import annotations

import pandas as pd

from helpers.core.policy import POLICY
from helpers.report.claims.rules import (
    C6_MEMORY_MIB,
    C6_MEMORY_RATIO,
    C6_SPEEDUP,
    per_item_change,
    per_item_change_text,
)
from helpers.report.prose import text
from helpers.report.rows import at_most_threads, measured_rows, trusted


def export_takeaway(df: pd.DataFrame) -> str:
    """Per model: which formats matched eager, which did not or could not be made, and what
    graph optimization and the exporters cost."""
    lines = []
    for model, sub in df.groupby("model", sort=False):
        ok = sub[sub["status"] == "ok"]
        lines.append(
            f"**{model}**: {len(ok)} of {len(sub)} formats match eager fp32 "
            f"(largest diff {ok['max_abs_diff'].max():.2g}, smallest cosine {ok['cosine_min'].min():.6f})."
        )
        for status in ("mismatch", "error", "skipped"):
            bad = sub[sub["status"] == status]
            if len(bad):
                lines.append(
                    f"{status.capitalize()}: " + "; ".join(f"{r.format} ({r.message})" for r in bad.itertuples()) + "."
                )
        nodes = sub.set_index("format")["node_count"].dropna()
        if "onnx" in nodes and len(nodes) > 1:
            fewest = nodes.idxmin()
            lines.append(
                f"Graph optimization shrinks the plain export from {int(nodes['onnx'])} nodes "
                f"to {int(nodes[fewest])} ({fewest})."
            )
        times = sub.set_index("format")["export_seconds"].dropna()
        if {"optimum-api", "optimum-cli"} <= set(times.index):
            lines.append(
                f"optimum's CLI took {times['optimum-cli']:.1f} s against {times['optimum-api']:.1f} s "
                f"for its API (the CLI starts a new Python process)."
            )
        lines.append("")
    return "\n\n".join(lines)


def quantization_takeaway(variants: pd.DataFrame, speed: pd.DataFrame) -> str:
    """Per model and batch size: the fastest variant within tolerance, INT8 and ORT against
    eager, and what per-channel buys over per-tensor."""
    lines = []
    fid = variants.set_index(["model", "method"])
    for (model, bs), sub in speed.groupby(["model", "batch_size"], sort=False):
        sub = sub.set_index("method")
        status = fid.loc[model]["status"].reindex(sub.index)
        good = sub[status == "ok"].drop(index="eager", errors="ignore")
        head = (
            f"**{model}, batch {bs} × {int(sub['seq_len'].iloc[0])}**: eager fp32 {sub.loc['eager', 'p50_ms']:.1f} ms."
        )
        if len(good):
            best = good["speedup"].idxmax()
            b = good.loc[best]
            rec = fid.loc[(model, best), "recall_at_10"]
            head += (
                f" Fastest within tolerance: **{best}**, {b.speedup:.2f}× "
                f"({text.interval(b.speedup_ci_low, b.speedup_ci_high)}), recall@10 {rec:.3f}."
            )
        for method in ("ort-fp32", "ort-int8-pc"):
            if method in sub.index:
                r = sub.loc[method]
                head += f" {method}: {r.speedup:.2f}× ({r.speedup_ci_low:.2f}–{r.speedup_ci_high:.2f})."
        mism = sub[status == "mismatch"].index.tolist()
        if mism:
            head += f" Outside tolerance (never recommended): {text.fmt_list(mism)}."
        lines.append(head)
    for model, sub in variants.groupby("model", sort=False):
        sub = sub.set_index("method")
        if {"ort-int8-pt", "ort-int8-pc"} <= set(sub.index):
            pt, pc = sub.loc["ort-int8-pt"], sub.loc["ort-int8-pc"]
            lines.append(
                f"**{model}**: per-channel INT8 keeps min cosine {pc.cosine_min:.3f} and recall@10 "
                f"{pc.recall_at_10:.3f}, per-tensor {pt.cosine_min:.3f} and {pt.recall_at_10:.3f}; "
                f"INT8 is {sub.loc['ort-fp32', 'size_mb'] / pc.size_mb:.1f}× smaller than the fp32 ONNX file."
                if "ort-fp32" in sub.index
                else ""
            )
        lines.append(int8_floors_text(model, sub, speed[speed["model"] == model]))
        failed = sub[sub["status"].isin(["error", "skipped"])]
        for r in failed.itertuples():
            lines.append(f"{model} {r.Index}: {r.status} ({r.message}).")
    return "\n\n".join(line for line in lines if line)


def int8_floors_text(model: str, variants: pd.DataFrame, speed: pd.DataFrame) -> str:
    """Whether any INT8 variant of one model (variants indexed by method) meets the floors
    ov-int8-ac aims at (the decision policy's, helpers.core.policy) on real text, each one's
    min cosine and recall@10, and what accuracy control kept in fp32 and cost against plain
    NNCF INT8."""
    from helpers.core.fidelity import meets_floors

    cosine, recall = POLICY.min_cosine, POLICY.min_recall_at_10
    int8 = variants[(variants["precision"] == "int8") & variants["status"].isin(["ok", "mismatch"])]
    if int8.empty:
        return ""
    scores = "; ".join(f"{m} {r.cosine_min:.4f} / {r.recall_at_10:.3f}" for m, r in int8.iterrows())
    meeting = [m for m, r in int8.iterrows() if meets_floors(r, cosine, recall)]
    verdict = (
        f"{text.fmt_list(meeting)} {'meets' if len(meeting) == 1 else 'meet'} both"
        if meeting
        else f"none of the {len(int8)} INT8 variants meets both"
    )
    line = (
        f"**{model}, INT8 against the floors min cosine {cosine:g} and recall@10 {recall:g}**: {verdict} "
        f"(min cosine / recall@10: {scores})."
    )
    return line + _accuracy_control_cost(variants, speed)


def _accuracy_control_cost(variants: pd.DataFrame, speed: pd.DataFrame) -> str:
    """What ov-int8-ac kept in fp32 and its median time against ov-int8's, per batch size."""
    if not {"ov-int8", "ov-int8-ac"} <= set(variants.index) or variants.loc["ov-int8-ac", "status"] == "error":
        return ""
    kept = (
        f" Accuracy control (ov-int8-ac) left {int(variants.loc['ov-int8-ac', 'excluded_nodes'])} MatMul(s) "
        f"in fp32, plain NNCF INT8 (ov-int8) {int(variants.loc['ov-int8', 'excluded_nodes'])}"
    )
    p50 = speed.pivot_table(index="batch_size", columns="method", values="p50_ms")
    if not {"ov-int8", "ov-int8-ac"} <= set(p50.columns):
        return kept + "."
    ratios = ", ".join(f"batch {b}: {r:.2f}×" for b, r in (p50["ov-int8-ac"] / p50["ov-int8"]).dropna().items())
    return kept + f"; its median time over plain NNCF INT8's: {ratios}."


def _fastest(rows: pd.DataFrame) -> str:
    others = rows[rows["engine"] != "eager"]
    if others.empty or others["speedup"].isna().all():
        return "no engine besides eager was measured"
    best = others.loc[others["speedup"].idxmax()]
    verdict = "faster than" if best.speedup_ci_low > 1 else "not clearly faster than"
    return f"**{best.engine}**, {text.ci(best)} over eager ({verdict} eager)"


GEMM_BOUND_SHARE = 0.8  # the best engine of a precision should reach this share of its GEMM rate


def _efficiency_text(eff: pd.DataFrame) -> str:
    """The best efficiency per precision against the measured GEMM rate (and the nominal peak),
    rows above the measured rate flagged, and a precision below GEMM_BOUND_SHARE named."""
    parts, short = [], []
    for precision, g in eff.groupby("precision", sort=False):
        top = g.loc[g["efficiency"].idxmax()]
        nominal = top.get("nominal_efficiency") if "nominal_efficiency" in g else float("nan")
        of_nominal = f", {100 * nominal:.0f}% of its nominal peak" if nominal == nominal else ""
        parts.append(
            f"{precision}: {top.engine} on {top.model} at batch {top.batch_size} × {top.seq_len}, "
            f"{top.gflops:.0f} GFLOP/s = {100 * top.efficiency:.0f}% of the measured GEMM rate{of_nominal}"
        )
        if top.efficiency < GEMM_BOUND_SHARE:
            short.append(f"{precision} ({100 * top.efficiency:.0f}% at best)")
    text = "Best efficiency per precision: " + "; ".join(parts) + "."
    text += f" Median over all configurations: {100 * eff['efficiency'].median():.0f}%."
    above = eff[eff["efficiency"] > 1]
    if len(above):
        text += (
            f" **{len(above)} row(s) run above 00's measured GEMM rate** (up to {100 * above['efficiency'].max():.0f}%): "
            "that rate was measured too low (one GEMM shape, one library) and is not the limit for them."
        )
    over_nominal = eff[eff.get("nominal_efficiency", pd.Series(dtype=float)) > 1]
    if len(over_nominal):
        text += (
            f" **{len(over_nominal)} row(s) run above the nominal peak** (up to "
            f"{100 * over_nominal['nominal_efficiency'].max():.0f}%): the clock or the units 00 assumed are below "
            "what this CPU runs, so that peak is not a bound here."
        )
    if short:
        text += (
            f" Below {GEMM_BOUND_SHARE:.0%} of the GEMM rate at every measured shape: {', '.join(short)}: "
            "the largest shapes measured are not GEMM-bound enough (small matrices, attention and element-wise "
            "work between the GEMMs), or the engine does not use the fastest kernels."
        )
    return text


def sweep_takeaways(df: pd.DataFrame, heatmap_model: str = "") -> dict[str, str]:
    """One computed sentence under each chart of a sweep notebook."""
    ok = at_most_threads(trusted(df))
    largest = ok.loc[ok["n_params"].idxmax(), "model"] if len(ok) else None
    big = ok[ok["model"] == largest]
    out = {}
    if big.empty:
        return {
            k: "Nothing was measured."
            for k in ("batch", "length", "heatmap", "throughput", "threads", "size", "efficiency", "memory", "scope")
        }
    b_lo, b_hi = big["batch_size"].min(), big["batch_size"].max()
    lo, hi = big[big["batch_size"] == b_lo], big[big["batch_size"] == b_hi]
    lo, hi = lo[lo["seq_len"] == lo["seq_len"].max()], hi[hi["seq_len"] == hi["seq_len"].min()]
    out["batch"] = (
        f"{largest}: at batch {b_lo} the fastest engine is {_fastest(lo)}; at batch {b_hi} it is {_fastest(hi)}."
    )
    s = big[big["engine"] == "ort"]
    if len(s) > 1:
        short, long_ = s.loc[s["seq_len"].idxmin()], s.loc[s["seq_len"].idxmax()]
        trend = "grows" if long_.speedup > short.speedup else "shrinks"
        out["length"] = (
            f"{largest}: ORT fp32 over eager is {text.ci(short)} at {short.seq_len} tokens and "
            f"{text.ci(long_)} at {long_.seq_len} tokens: its advantage {trend} with length."
        )
    else:
        out["length"] = "ORT fp32 was not measured at several lengths."
    grid = ok[(ok["model"] == heatmap_model) & (ok["engine"] != "eager")]
    if len(grid):
        wins = grid.groupby("engine").apply(lambda g: (g["speedup_ci_low"] > 1).mean(), include_groups=False)
        cells = grid.drop_duplicates(["engine", "batch_size", "seq_len"]).groupby("engine").size()
        n_cells = len(grid.drop_duplicates(["batch_size", "seq_len"]))
        best = grid.loc[grid["speedup"].idxmax()]

        def share(e, v):  # an engine missing cells (errors) is judged on the ones it has, and says so
            return f"{e} {100 * v:.0f}%" + (
                f" of its {cells[e]} measured cells (of {n_cells})" if cells[e] < n_cells else ""
            )

        out["heatmap"] = (
            f"{heatmap_model}: share of batch × length cells where each engine is faster than eager "
            f"(CI above 1): "
            + ", ".join(share(e, v) for e, v in wins.sort_values(ascending=False).items())
            + f". Largest speed-up: {best.engine} at batch {best.batch_size} × {best.seq_len}, {text.ci(best)}."
        )
    else:
        out["heatmap"] = "No batch × length grid was measured (heatmap_model is empty or not among the models)."
    eager = big[big["engine"] == "eager"].sort_values("batch_size")
    eager = eager[eager["seq_len"] == eager["seq_len"].mode().iloc[0]] if len(eager) else eager
    if len(eager) > 1:
        out["throughput"] = (
            f"{largest}, eager: {eager['items_per_s'].iloc[0]:.1f} items/s at batch "
            f"{eager['batch_size'].iloc[0]} and {eager['items_per_s'].iloc[-1]:.1f} at batch "
            f"{eager['batch_size'].iloc[-1]} ({eager['items_per_s'].iloc[-1] / eager['items_per_s'].iloc[0]:.1f}× from batching)."
        )
    else:
        out["throughput"] = "Only one batch size was measured."
    from helpers.report.rows import thread_rows

    th = thread_rows(df[df["status"] == "ok"])
    th = th[th["model"] == largest]
    th = th[th["batch_size"] == th["batch_size"].max()]
    parts = []
    for engine, e in th.groupby("engine", sort=False):
        e = e.sort_values("threads")
        if len(e) > 1:
            parts.append(f"{engine} {e['p50_ms'].iloc[0] / e['p50_ms'].iloc[-1]:.2f}×")
    out["threads"] = (
        f"{largest}, from {int(th['threads'].min())} to {int(th['threads'].max())} threads: " + ", ".join(parts) + "."
        if parts
        else "Only one thread count was measured."
    )
    one = df[(df["scope"] == "model") & (df["status"] == "ok") & (df["threads"] == 1) & (df["engine"] == "ort")]
    one = one[one["batch_size"] == one["batch_size"].min()]
    out["size"] = (
        "At 1 thread and batch 1, ORT fp32 over eager by model size: "
        + ", ".join(
            f"{r.model} ({r.n_params / 1e6:.0f}M) {text.ci(r)}" for r in one.sort_values("n_params").itertuples()
        )
        + "."
        if len(one)
        else "ORT fp32 was not measured at 1 thread."
    )
    measured = df[(df["scope"] == "model") & (df["status"] == "ok")]
    eff = measured[measured["efficiency"].notna()] if "efficiency" in measured else measured.iloc[0:0]
    if len(eff):
        out["efficiency"] = _efficiency_text(eff)
    else:
        out["efficiency"] = "No ceilings from 00_environment: efficiency was not computed."
    mem = big.loc[big.groupby("engine")["flops"].idxmax()]
    out["memory"] = (
        f"{largest}, peak resident memory at the largest configuration: "
        + ", ".join(f"{r.engine} {r.peak_rss_mb:.0f} MB" for r in mem.sort_values("peak_rss_mb").itertuples())
        + "."
    )
    e2e = df[(df["status"] == "ok") & (df["engine"] == "eager") & (df["model"] == largest)]
    pivot = e2e.pivot_table(index=["threads", "batch_size", "seq_len"], columns="scope", values="p50_ms").dropna()
    if {"model", "end_to_end"} <= set(pivot.columns) and len(pivot):
        share = 1 - pivot["model"] / pivot["end_to_end"]
        low = f"{100 * share.min():.0f}%" if share.min() > 0 else "nothing measurable (within noise)"
        out["scope"] = (
            f"{largest}, eager: tokenization adds {low} to {100 * share.max():.0f}% of the end-to-end "
            f"time across configurations (median {100 * share.median():.0f}%); end-to-end results "
            "differ from model-only ones by that much."
        )
    else:
        out["scope"] = "Only one timing scope was measured."
    return out


def fastest_strategies(df: pd.DataFrame) -> pd.DataFrame:
    """05's trusted rows of the fastest strategy (lowest median time for the whole dataset) in
    each distribution × engine × batch size cell."""
    ok = df[(df["status"] == "ok") & df["p50_ms"].notna()] if "p50_ms" in df else df.iloc[:0]
    if ok.empty:
        return ok
    return ok.loc[ok.groupby(["distribution", "engine", "batch_size"])["p50_ms"].idxmin()]


def sorting_takeaway(df: pd.DataFrame, engine: str) -> str:
    """Per distribution: the fastest strategy at the largest batch and what it buys over
    unsorted, sorting's padding waste, and the claim that from batch 16 to 64 unsorted gets
    slower per item while sorted gets faster."""
    lines = []
    sub = df[df["engine"] == engine]
    best = fastest_strategies(sub).set_index(["distribution", "batch_size"])
    for dist, d in sub.groupby("distribution", sort=False):
        top = d[d["batch_size"] == d["batch_size"].max()].set_index("strategy")
        if "sorted" in top.index and "speedup" in top:
            r = top.loc["sorted"]
            win = best.loc[(dist, r.batch_size)] if (dist, r.batch_size) in best.index else None
            fastest = f"fastest: **{win.strategy}**, {text.ci(win)} over unsorted; " if win is not None else ""
            lines.append(
                f"**{dist}** (batch {int(r.batch_size)}): {fastest}sorted {text.ci(r)}; padding waste "
                f"{top.loc['unsorted', 'padding_waste']:.2f} unsorted vs {r.padding_waste:.2f} sorted; sorted runs at "
                f"{r.over_ideal:.2f}× the ideal time of the real tokens alone."
            )
        change = per_item_change(d)
        if change is not None:
            lines.append(f"{dist}, {per_item_change_text(change)}.")
        bad = d[d["status"] != "ok"]
        if len(bad):
            lines.append(
                f"{dist}: answers differ from one-by-one for "
                + text.fmt_list(f"{r.strategy} at batch {r.batch_size} ({r.message})" for r in bad.itertuples())
                + "."
            )
    return "\n\n".join(lines) or "Nothing was measured."


def sorting_takeaways(df: pd.DataFrame, engines: list[str]) -> str:
    """`sorting_takeaway` of each engine, under the engine's name."""
    return "\n\n".join(f"#### {engine}\n\n{sorting_takeaway(df, engine)}" for engine in engines)


def _cell_rows(gen: pd.DataFrame, engine: str) -> pd.DataFrame:
    ok = gen[(gen["engine"] == engine) & gen["speedup"].notna()]
    return ok[ok["new_tokens"] == ok["new_tokens"].max()] if len(ok) else ok


def seq2seq_takeaway(gen: pd.DataFrame, memory: pd.DataFrame, agreement: pd.DataFrame) -> str:
    """The published recipe (O3 + INT8) against PyTorch fp32 in time and memory, the fastest
    engine per configuration, what past key values buy, and agreement of the tokens."""
    lines = []
    needed = ["engine", "status", "batch_size", "seq_len", "new_tokens", "p50_ms", "speedup"]
    gen = gen.reindex(columns=list(dict.fromkeys([*gen.columns, *needed])))  # failed runs lack some
    recipe = _cell_rows(gen, "ort-o3-int8")
    if len(recipe):
        parts = [f"batch {r.batch_size} × {r.seq_len} input: {text.ci(r)}" for r in recipe.itertuples()]
        lines.append(
            f"**ORT O3 + INT8 over PyTorch fp32** ({int(recipe['new_tokens'].iloc[0])} new tokens): "
            + "; ".join(parts)
            + f" (published: about {C6_SPEEDUP:g}×)."
        )
    mem = memory[memory["status"] == "ok"].set_index("engine") if len(memory) else memory
    if {"torch", "ort-o3-int8"} <= set(mem.index):
        t, q = mem.loc["torch", "inference_mb"], mem.loc["ort-o3-int8", "inference_mb"]
        ratio = f"{t / q:.1f}× less" if q <= t else f"{q / t:.1f}× more"
        lines.append(
            f"Inference memory increment: PyTorch fp32 +{t:.1f} MB, ORT O3 + INT8 +{q:.1f} MB "
            f"({ratio}; published: about {C6_MEMORY_RATIO:g}× less, +{C6_MEMORY_MIB[0]:g} → +{C6_MEMORY_MIB[1]:g} MiB)."
        )
    ok = trusted(gen)
    top = ok[ok["new_tokens"] == ok["new_tokens"].max()]
    if len(top):
        best = top.loc[top.groupby(["batch_size", "seq_len"])["p50_ms"].idxmin()]
        lines.append(
            "Fastest engine whose tokens agree with fp32: "
            + "; ".join(f"batch {r.batch_size} × {r.seq_len}: {r.engine} ({r.speedup:.2f}×)" for r in best.itertuples())
            + "."
        )
    past, nopast = _cell_rows(gen, "ort"), _cell_rows(gen, "ort-nopast")
    if len(past) and len(nopast):
        both = past.merge(nopast, on=["batch_size", "seq_len"], suffixes=("", "_nopast"))
        ratio = both["p50_ms_nopast"] / both["p50_ms"]
        lines.append(
            f"Past key values: ORT without them takes {ratio.min():.2f}–{ratio.max():.2f}× the time of ORT with them."
        )
    if len(agreement):
        measured = agreement[agreement["exact_match"].notna()] if "exact_match" in agreement else agreement.iloc[:0]
        exact = measured[measured["exact_match"] == 1.0]["engine"]
        lines.append(
            f"Identical token sequences to PyTorch fp32: {text.fmt_list(exact)}; "
            + text.fmt_list(
                f"{r.engine} {r.exact_match:.0%}" for r in measured[measured["exact_match"] < 1].itertuples()
            )
            + " for the others."
        )
        distinct = measured["reference_distinct_tokens"].max() if len(measured) else 0
        if len(measured) and distinct <= 3:
            lines.append(
                f"The reference sequences use only {int(distinct)} distinct tokens (random weights repeat "
                "themselves), so exact match is a weak test here; the first-step logits diff is the sharper one."
            )
        bad = agreement[agreement["status"] != "ok"]
        if len(bad):
            lines.append(
                "Not trusted: " + text.fmt_list(f"{r.engine} ({r.status}: {r.message})" for r in bad.itertuples()) + "."
            )
    return "\n\n".join(lines) or "Nothing was measured."


def gpu_takeaway(df: pd.DataFrame, fits: pd.DataFrame, seq_len: int) -> str:
    """Per model at one length: the winner at batch 1 and at the largest batch, where ORT
    stops beating TorchScript (the published cross-over), the best speed-up over eager fp32,
    and the largest batch that fits."""
    ok = trusted(df)
    lines = []
    for model, m in ok.groupby("model", sort=False):
        at = m[m["seq_len"] == seq_len]
        if at.empty:
            continue
        small, large = at["batch_size"].min(), at["batch_size"].max()
        lines.append(
            f"**{model}** ({seq_len} tokens): fastest at batch {small}: {_fastest(at[at['batch_size'] == small])}; "
            f"at batch {large}: {_fastest(at[at['batch_size'] == large])}."
        )
        pair = at.pivot_table(index="batch_size", columns="engine", values="p50_ms")
        if {"ort", "torchscript"} <= set(pair.columns):
            ort_wins = (pair["ort"] < pair["torchscript"]).dropna()
            flips = [b for prev, b in zip(ort_wins.index, ort_wins.index[1:]) if ort_wins[prev] and not ort_wins[b]]
            lines.append(
                "ORT fp32 against TorchScript: "
                + (
                    f"ORT is faster up to batch {ort_wins.index[ort_wins.index < flips[0]].max()}, TorchScript from batch {flips[0]}"
                    if flips
                    else (
                        "ORT is faster at every batch"
                        if ort_wins.all()
                        else "TorchScript is faster at every batch"
                        if not ort_wins.any()
                        else "no single cross-over ("
                        + ", ".join(f"{b}: {'ORT' if w else 'TorchScript'}" for b, w in ort_wins.items())
                        + ")"
                    )
                )
                + " (published: ORT best at small batch, TorchScript at large)."
            )
        best = m.loc[m["speedup"].idxmax()] if m["speedup"].notna().any() else None
        if best is not None:
            lines.append(
                f"Best speed-up over eager fp32: {best.engine} at batch {best.batch_size} × {best.seq_len}, {text.ci(best)}."
            )
        f = (
            fits[(fits["model"] == model) & fits["first_oom_batch"].notna()]
            if "first_oom_batch" in fits
            else fits.iloc[:0]
        )
        if len(f):
            lines.append(
                "Out of memory: "
                + "; ".join(
                    f"{r.engine} at {r.seq_len} tokens from batch {int(r.first_oom_batch)} (largest that fits: "
                    f"{int(r.largest_batch) if r.largest_batch == r.largest_batch else 'none'})"
                    for r in f.itertuples()
                )
                + "."
            )
    bad = df[df["status"].isin(["error", "mismatch", "skipped"])] if "status" in df else df.iloc[:0]
    if len(bad):
        reasons = bad.groupby(["engine", "status"])["message"].first()
        lines.append(
            "Not measured or not trusted: " + "; ".join(f"{e} ({s}: {msg})" for (e, s), msg in reasons.items()) + "."
        )
    return "\n\n".join(lines) or "Nothing was measured."


BF16_ENGINES = ("torch-bf16", "ov-bf16")  # compared with bf16 autocast at the same cells


def bf16_cells(df: pd.DataFrame) -> pd.DataFrame:
    """03's cells (model only, the most threads) where bf16 autocast and a bf16 engine of
    BF16_ENGINES were both trusted: each one's speed-up over eager fp32 with its 95% CI, and
    each bf16 engine's median time over autocast's (above 1: autocast is slower)."""
    keys = ["model", "threads", "batch_size", "seq_len"]
    ok = at_most_threads(trusted(df[df["scope"] == "model"]))
    wanted = ok[ok["engine"].isin(("torch-bf16-autocast", *BF16_ENGINES))].copy()
    wanted["speedup (95% CI)"] = [text.ci(r) for r in wanted.itertuples()]
    table = wanted.pivot_table(index=keys, columns="engine", values="speedup (95% CI)", aggfunc="first")
    p50 = wanted.pivot_table(index=keys, columns="engine", values="p50_ms")
    if "torch-bf16-autocast" not in p50:
        return pd.DataFrame()
    for engine in (e for e in BF16_ENGINES if e in p50):
        table[f"autocast / {engine}"] = (p50["torch-bf16-autocast"] / p50[engine]).round(2)
    return table.dropna(subset=["torch-bf16-autocast"]).reset_index()


def bf16_takeaway(cells: pd.DataFrame) -> str:
    """How often each bf16 engine beats bf16 autocast at the same cells, and by how much."""
    ratios = [c for c in cells.columns if c.startswith("autocast / ")]
    if cells.empty or not ratios:
        return "bf16 autocast and a bf16 engine were not both measured at the same cells."
    parts = []
    for column in ratios:
        r = cells[column].dropna()
        engine = column.removeprefix("autocast / ")
        parts.append(
            f"{engine} is faster than autocast in {int((r > 1).sum())} of {len(r)} cells "
            f"(autocast's median time over {engine}'s: {r.min():.2f}× to {r.max():.2f}×, median {r.median():.2f}×)"
        )
    return "At the same cells, model only, at the most threads: " + "; ".join(parts) + "."


# ---------------------------------------------------------------- 07_pipeline
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
    from helpers.report.recommend.pipeline import candidates

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
    """The recommended pipeline against the best peer (what a user would run instead), said plainly
    when a peer is faster; the peers that missed a floor or could not run."""
    from helpers.backends.peers import LIBRARY
    from helpers.report.recommend.pipeline import best_peer, is_peer, peers, recommended

    rows = peers(df)
    failed = df["stage"].isin(["probe-peer", "corpus"]) & df["status"].isin(["skipped", "error"]) if len(df) else []
    probes = df[failed & is_peer(df)] if len(df) else df
    missing = "".join(f" {r['candidate']} did not run: {r['message']}." for _, r in probes.iterrows())
    if not len(rows):
        return ("No peer was measured on the whole corpus." + missing) if len(probes) else ""
    below = rows[rows["status"] == "mismatch"]
    missed = "".join(f" {r['candidate']} missed a floor ({r['message']})." for _, r in below.iterrows())
    peer, best = best_peer(df), recommended(df) if len(df) else None
    if peer is None:
        return "No peer met the floors on the whole corpus." + missed + missing
    said = (
        f"The best peer at the floors is **{peer['candidate']}** ({LIBRARY.get(peer['peer'], 'a peer')}): "
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
    from helpers.report.recommend.pipeline import closest, cost_note, layout_words, recommended
    from helpers.studies.pipeline import NAIVE

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


def gpu_notebook_takeaway(sweep, fits, focus_seq_len: int, no_gpu: str | None) -> str:
    """The notebook's closing text: the takeaways, or why nothing was measured."""
    if len(measured_rows(sweep)):
        return gpu_takeaway(sweep, fits, focus_seq_len)
    return f"Nothing was measured: {no_gpu or 'every configuration failed (see the table)'}."
