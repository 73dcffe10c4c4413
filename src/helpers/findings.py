"""Sentences that cite results, computed from the result tables (never typed by hand)."""
from __future__ import annotations

import pandas as pd


def _fmt_list(items) -> str:
    items = list(items)
    return ", ".join(items) if items else "none"


def export_takeaway(df: pd.DataFrame) -> str:
    """Per model: which formats matched eager, which did not or could not be made, and what
    graph optimization and the exporters cost."""
    lines = []
    for model, sub in df.groupby("model", sort=False):
        ok = sub[sub["status"] == "ok"]
        lines.append(f"**{model}**: {len(ok)} of {len(sub)} formats match eager fp32 "
                     f"(largest diff {ok['max_abs_diff'].max():.2g}, smallest cosine {ok['cosine_min'].min():.6f}).")
        for status in ("mismatch", "error", "skipped"):
            bad = sub[sub["status"] == status]
            if len(bad):
                lines.append(f"{status.capitalize()}: " + "; ".join(
                    f"{r.format} ({r.message})" for r in bad.itertuples()) + ".")
        nodes = sub.set_index("format")["node_count"].dropna()
        if "onnx" in nodes and len(nodes) > 1:
            fewest = nodes.idxmin()
            lines.append(f"Graph optimization shrinks the plain export from {int(nodes['onnx'])} nodes "
                         f"to {int(nodes[fewest])} ({fewest}).")
        times = sub.set_index("format")["export_seconds"].dropna()
        if {"optimum-api", "optimum-cli"} <= set(times.index):
            lines.append(f"optimum's CLI took {times['optimum-cli']:.1f} s against {times['optimum-api']:.1f} s "
                         f"for its API (the CLI starts a new Python process).")
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
        head = f"**{model}, batch {bs} × {int(sub['seq_len'].iloc[0])}**: eager fp32 {sub.loc['eager', 'p50_ms']:.1f} ms."
        if len(good):
            best = good["speedup"].idxmax()
            b = good.loc[best]
            rec = fid.loc[(model, best), "recall_at_10"]
            head += (f" Fastest within tolerance: **{best}**, {b.speedup:.2f}× "
                     f"(95% CI {b.speedup_ci_low:.2f}–{b.speedup_ci_high:.2f}), recall@10 {rec:.3f}.")
        for method in ("ort-fp32", "ort-int8-pc"):
            if method in sub.index:
                r = sub.loc[method]
                head += f" {method}: {r.speedup:.2f}× ({r.speedup_ci_low:.2f}–{r.speedup_ci_high:.2f})."
        mism = sub[status == "mismatch"].index.tolist()
        if mism:
            head += f" Outside tolerance (never recommended): {_fmt_list(mism)}."
        lines.append(head)
    for model, sub in variants.groupby("model", sort=False):
        sub = sub.set_index("method")
        if {"ort-int8-pt", "ort-int8-pc"} <= set(sub.index):
            pt, pc = sub.loc["ort-int8-pt"], sub.loc["ort-int8-pc"]
            lines.append(f"**{model}**: per-channel INT8 keeps min cosine {pc.cosine_min:.3f} and recall@10 "
                         f"{pc.recall_at_10:.3f}, per-tensor {pt.cosine_min:.3f} and {pt.recall_at_10:.3f}; "
                         f"INT8 is {sub.loc['ort-fp32', 'size_mb'] / pc.size_mb:.1f}× smaller than the fp32 ONNX file."
                         if "ort-fp32" in sub.index else "")
        failed = sub[sub["status"].isin(["error", "skipped"])]
        for r in failed.itertuples():
            lines.append(f"{model} {r.Index}: {r.status} ({r.message}).")
    return "\n\n".join(line for line in lines if line)
