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
