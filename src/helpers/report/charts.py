"""The study's charts, each drawn from a result table (never from kernel state)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def export_costs(df: pd.DataFrame):
    """File size and export time per format, one bar per model."""
    ok = df[df["export_seconds"].notna()]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, column, label in (
        (axes[0], "size_mb", "size on disk (MB)"),
        (axes[1], "export_seconds", "export time (s)"),
    ):
        table = ok.pivot_table(index="format", columns="model", values=column, sort=False)
        table.plot.barh(ax=ax, legend=ax is axes[1])
        ax.set_xlabel(label)
        ax.set_ylabel("")
    axes[0].invert_yaxis()
    fig.suptitle("What each format costs to produce")
    return fig


def fusion_counts(df: pd.DataFrame):
    """Fused operators per ONNX graph level (one panel per model)."""
    fused = [c for c in df.columns if c.startswith("fused_")]
    graphs = df[df["format"].str.startswith("onnx") & df["node_count"].notna()]
    models = list(dict.fromkeys(graphs["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models):
        sub = graphs[graphs["model"] == model].set_index("format")[fused].fillna(0)
        sub = sub.loc[:, sub.sum() > 0]
        sub.columns = [c.removeprefix("fused_") for c in sub.columns]
        if sub.empty:
            ax.text(0.5, 0.5, "no fused operators", ha="center", transform=ax.transAxes)
        else:
            sub.plot.bar(ax=ax, rot=0)
        nodes = graphs[graphs["model"] == model].set_index("format")["node_count"]
        ax.set_xticks(range(len(nodes)), [f"{f}\n{int(n)} nodes" for f, n in nodes.items()])
        ax.set_title(model)
        ax.set_ylabel("fused operators in the graph")
        ax.set_xlabel("")
    fig.suptitle("Graph optimization: what ONNX Runtime fuses at each level")
    return fig


def quantization_pareto(variants: pd.DataFrame, speed: pd.DataFrame, fidelity: str = "recall_at_10"):
    """Speed-up over eager fp32 (with its CI) against fidelity, per model and batch size;
    mismatching variants are drawn as crosses."""
    merged = speed.merge(
        variants[["model", "method", fidelity, "status"]], on=["model", "method"], suffixes=("", "_variant")
    )
    models = list(dict.fromkeys(merged["model"]))
    sizes = sorted(merged["batch_size"].unique())
    fig, axes = plt.subplots(len(models), len(sizes), figsize=(5.5 * len(sizes), 4.5 * len(models)), squeeze=False)
    for i, model in enumerate(models):
        for j, bs in enumerate(sizes):
            ax = axes[i][j]
            sub = merged[(merged["model"] == model) & (merged["batch_size"] == bs)]
            for r in sub.itertuples():
                bad = r.status_variant == "mismatch"
                ax.errorbar(
                    r.speedup,
                    getattr(r, fidelity),
                    xerr=[[r.speedup - r.speedup_ci_low], [r.speedup_ci_high - r.speedup]],
                    fmt="x" if bad else "o",
                    color="C3" if bad else "C0",
                    capsize=2,
                )
                ax.annotate(
                    r.method, (r.speedup, getattr(r, fidelity)), fontsize=7, xytext=(3, 3), textcoords="offset points"
                )
            ax.axvline(1.0, color="0.6", lw=0.8, ls="--")
            ax.set_xlabel(f"speed-up over eager fp32 (batch {bs} × {int(sub['seq_len'].iloc[0]) if len(sub) else '?'})")
            ax.set_ylabel(fidelity.replace("_", " ") + " vs fp32")
            ax.set_title(model)
    fig.suptitle("Speed against fidelity (crosses: outside tolerance)")
    return fig


def variant_sizes(variants: pd.DataFrame):
    """Size on disk (torch: saved state dict) per variant and model."""
    table = variants.pivot_table(index="method", columns="model", values="size_mb", sort=False)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(table) + 1.5))
    table.plot.barh(ax=ax)
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
        df.pivot_table(index="group", columns="scheme", values=metric, sort=False).plot.bar(ax=ax, rot=0)
        ax.set_ylabel(metric.replace("_", " ") + " vs fp32")
        ax.set_xlabel("")
        low = df[metric].min()
        ax.set_ylim(max(0.0, low - 0.05), 1.0)
    fig.suptitle("INT8 per-tensor against per-channel")
    return fig


# -- 03 / 04 sweeps ------------------------------------------------------------------------------
def _sweep_slice(df: pd.DataFrame, part: str) -> pd.DataFrame:
    """Rows of one sweep direction at the model's most threads, model-only scope, measured."""
    ok = df[(df["scope"] == "model") & df["p50_ms"].notna()]
    top = ok.groupby("model")["threads"].transform("max")
    ok = ok[ok["threads"] == top]
    anchor_seq = df.loc[df["part"] == "batch", "seq_len"]
    anchor_batch = df.loc[df["part"] == "length", "batch_size"]
    if part == "batch" and len(anchor_seq):
        return ok[ok["seq_len"] == anchor_seq.iloc[0]]
    if part == "length" and len(anchor_batch):
        return ok[ok["batch_size"] == anchor_batch.iloc[0]]
    return ok


def _per_model_axes(models, width=5.5, height=4.2):
    fig, axes = plt.subplots(1, len(models), figsize=(width * len(models), height), squeeze=False)
    return fig, axes[0]


def _mark_flagged(ax, sub, x, y):
    """Crosses on rows that are noisy or outside tolerance, so they are not mistaken for clean ones."""
    bad = sub[(sub["status"] == "mismatch") | sub.get("noisy", False).astype(bool)]
    if len(bad):
        ax.scatter(bad[x], bad[y], marker="x", color="k", s=30, zorder=5, label="noisy or mismatch")


def latency_vs(df: pd.DataFrame, x: str):
    """Median latency (with its CI) against batch size or sequence length, per engine and model."""
    part = {"batch_size": "batch", "seq_len": "length"}[x]
    sl = _sweep_slice(df, part)
    models = list(dict.fromkeys(sl["model"]))
    fig, axes = _per_model_axes(models)
    for ax, model in zip(axes, models):
        sub = sl[sl["model"] == model]
        for engine, e in sub.groupby("engine", sort=False):
            e = e.sort_values(x)
            ax.errorbar(
                e[x],
                e["p50_ms"],
                yerr=[e["p50_ms"] - e["ci_low_ms"], e["ci_high_ms"] - e["p50_ms"]],
                marker="o",
                ms=3,
                capsize=2,
                label=engine,
            )
        _mark_flagged(ax, sub, x, "p50_ms")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel("median latency (ms)")
        fixed = "seq_len" if x == "batch_size" else "batch_size"
        ax.set_title(f"{model} ({fixed.replace('_', ' ')} {int(sub[fixed].iloc[0]) if len(sub) else '?'})")
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"Latency against {x.replace('_', ' ')} (model only, most threads)")
    return fig


def _lines_by_batch(data: pd.DataFrame, panel: str, line: str, y: str, ylabel: str, width: float = 5.5):
    """One panel per value of `panel`, one line per value of `line`: y against batch size."""
    panels = list(dict.fromkeys(data[panel]))
    fig, axes = _per_model_axes(panels or ["none"], width=width)
    for ax, key in zip(axes, panels):
        for name, g in data[data[panel] == key].groupby(line, sort=False):
            g = g.sort_values("batch_size")
            ax.plot(g["batch_size"], g[y], marker="o", ms=3, label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(key)
    return fig, axes, panels


def throughput_vs_batch(df: pd.DataFrame):
    fig, axes, _ = _lines_by_batch(_sweep_slice(df, "batch"), "model", "engine", "items_per_s", "items / s")
    axes[-1].legend(fontsize=7)
    fig.suptitle("Throughput against batch size")
    return fig


def speedup_heatmaps(df: pd.DataFrame, model: str):
    """Speed-up over eager fp32 for every batch x length pair, one panel per engine."""
    import numpy as np

    sub = df[(df["model"] == model) & (df["scope"] == "model") & df["speedup"].notna() & (df["engine"] != "eager")]
    sub = sub[sub["threads"] == sub["threads"].max()] if len(sub) else sub
    names = list(dict.fromkeys(sub["engine"]))
    cols = min(4, max(len(names), 1))
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    if not names:
        axes[0][0].text(
            0.5, 0.5, f"no batch x length grid measured for {model}", ha="center", transform=axes[0][0].transAxes
        )
    for ax, engine in zip(axes.flat, names):
        grid = sub[sub["engine"] == engine].pivot_table(index="batch_size", columns="seq_len", values="speedup")
        ax.imshow(np.log2(grid.values), cmap="RdBu", vmin=-2, vmax=2, aspect="auto", origin="lower")
        for (i, j), v in np.ndenumerate(grid.values):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6)
        ax.set_xticks(range(grid.shape[1]), grid.columns)
        ax.set_yticks(range(grid.shape[0]), grid.index)
        ax.set_xlabel("sequence length")
        ax.set_ylabel("batch size")
        ax.set_title(engine, fontsize=9)
        ax.grid(False)
    fig.suptitle(f"Speed-up over eager fp32, {model} (blue: faster; empty: skipped or failed)")
    return fig


def thread_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Model-only measured rows of the shapes that were measured at more than one thread count."""
    ok = df[(df["scope"] == "model") & df["p50_ms"].notna()]
    counts = ok.groupby(["model", "engine", "batch_size", "seq_len"])["threads"].transform("nunique")
    return ok[counts > 1]


def thread_scaling(df: pd.DataFrame):
    """Speed-up of each engine over itself at one thread, at the anchor shapes."""
    sub = thread_rows(df)
    models = list(dict.fromkeys(sub["model"]))
    fig, axes = _per_model_axes(models or ["none"])
    for ax, model in zip(axes, models):
        m = sub[sub["model"] == model]
        big = m["batch_size"].max()
        for engine, e in m[m["batch_size"] == big].groupby("engine", sort=False):
            e = e.sort_values("threads")
            ax.plot(e["threads"], e["p50_ms"].iloc[0] / e["p50_ms"], marker="o", ms=3, label=engine)
        top = int(m["threads"].max())
        ax.plot([1, top], [1, top], color="0.6", ls="--", lw=0.8, label="linear")
        ax.set_xlabel("threads")
        ax.set_ylabel("speed-up over 1 thread")
        ax.set_title(f"{model} (batch {big} x {int(m['seq_len'].iloc[0])})")
    axes[-1].legend(fontsize=7)
    fig.suptitle("Thread scaling")
    return fig


def latency_vs_model_size(df: pd.DataFrame):
    sl = _sweep_slice(df, "length")
    anchor_seq = df.loc[df["part"] == "batch", "seq_len"]
    if len(anchor_seq):
        sl = sl[sl["seq_len"] == anchor_seq.iloc[0]]
    fig, ax = plt.subplots()
    for engine, e in sl.groupby("engine", sort=False):
        e = e.sort_values("n_params")
        ax.plot(e["n_params"] / 1e6, e["p50_ms"], marker="o", ms=4, label=engine)
    for model, m in sl.groupby("model"):
        ax.annotate(
            model,
            (m["n_params"].iloc[0] / 1e6, m["p50_ms"].min()),
            fontsize=7,
            xytext=(0, -12),
            textcoords="offset points",
            ha="center",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("median latency (ms)")
    shape = f"batch {int(sl['batch_size'].iloc[0])} x {int(sl['seq_len'].iloc[0])}" if len(sl) else ""
    ax.set_title(f"Latency against model size ({shape})")
    ax.legend(fontsize=7)
    return fig


def efficiency_vs_ceiling(df: pd.DataFrame):
    """Achieved GFLOP/s against work per call, with the measured ceilings as lines."""
    sub = df[(df["scope"] == "model") & df["gflops"].notna()]
    sub = sub[sub["threads"] == sub.groupby("model")["threads"].transform("max")]
    fig, ax = plt.subplots()
    if "ceiling_gflops" not in sub or sub["ceiling_gflops"].isna().all():
        ax.text(0.5, 0.5, "no ceilings from 00_environment at these thread counts", ha="center", transform=ax.transAxes)
    for engine, e in sub.groupby("engine", sort=False):
        ax.scatter(e["flops"] / 1e9, e["gflops"], s=12, label=engine)
    ceilings = sub.groupby("precision")["ceiling_gflops"].max().dropna()
    for i, (precision, value) in enumerate(ceilings.items()):
        ax.axhline(value, color=f"C{i}", ls="--", lw=0.8, label=f"{precision} GEMM ceiling (00)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model GFLOP per call")
    ax.set_ylabel("achieved GFLOP/s (int8: GOP/s)")
    ax.set_title("Efficiency against the machine's ceilings")
    ax.legend(fontsize=7)
    return fig


def memory_per_engine(df: pd.DataFrame):
    """Load increment and peak resident memory of each engine's process at its largest configuration."""
    sub = df[(df["scope"] == "model") & df["peak_rss_mb"].notna()]
    idx = sub.groupby(["model", "engine"])["flops"].idxmax()
    big = sub.loc[idx]
    models = list(dict.fromkeys(big["model"]))
    fig, axes = _per_model_axes(models or ["none"])
    for ax, model in zip(axes, models):
        m = big[big["model"] == model].set_index("engine")
        m[["load_mb", "peak_rss_mb"]].plot.bar(ax=ax, rot=30)
        ax.set_ylabel("MB")
        shape = m.iloc[0]
        ax.set_title(f"{model} (largest: batch {int(shape.batch_size)} x {int(shape.seq_len)})")
    fig.suptitle("Memory per engine (one process each)")
    return fig


# -- 05 sequence sorting ------------------------------------------------------------------------
def sorting_throughput(df: pd.DataFrame, engine: str):
    """Items/s against batch size per strategy, one panel per length distribution."""
    sub = df[df["engine"] == engine]
    fig, axes, dists = _lines_by_batch(sub, "distribution", "strategy", "items_per_s", "items / s (whole dataset)", 4.8)
    for ax, dist in zip(axes, dists):
        d = sub[sub["distribution"] == dist]
        ideal = d.groupby("batch_size").apply(
            lambda g: g["n_texts"].iloc[0] / g["ideal_s"].iloc[0], include_groups=False
        )
        ax.plot(ideal.index, ideal.values, color="0.5", ls=":", label="ideal (real tokens only)")
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"Throughput by batching strategy ({engine})")
    return fig


def padding_waste(df: pd.DataFrame):
    sub = df.drop_duplicates(["distribution", "strategy", "batch_size"])
    fig, axes, _ = _lines_by_batch(sub, "distribution", "strategy", "padding_waste", "pad tokens / real tokens", 4.8)
    for ax in axes:
        ax.set_yscale("symlog", linthresh=0.01)
    axes[-1].legend(fontsize=7)
    fig.suptitle("Padding waste")
    return fig


def length_histograms(lengths: pd.DataFrame, edges):
    """Token-length histogram of each distribution, with the bucket boundaries."""
    dists = list(dict.fromkeys(lengths["distribution"]))
    fig, axes = _per_model_axes(dists or ["none"], width=4.2, height=3.6)
    for ax, dist in zip(axes, dists):
        values = lengths.loc[lengths["distribution"] == dist, "tokens"]
        ax.hist(values, bins=40, color="C0")
        for edge in edges:
            ax.axvline(edge, color="C3", lw=0.7, ls="--")
        ax.set_xlabel("tokens")
        ax.set_ylabel("texts")
        ax.set_title(f"{dist} (median {values.median():.0f})")
    fig.suptitle("Length distributions (dashed: bucket boundaries)")
    return fig


# -- 06 seq2seq ---------------------------------------------------------------------------------
def _generation_ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["p50_ms"].notna() & (df["status"].isin(["ok", "mismatch"]))] if len(df) else df


def per_token_time(df: pd.DataFrame):
    """Decode time per generated token (after the first) and time to first token, per engine,
    at the longest generation, one bar group per batch size x input length."""
    ok = _generation_ok(df)
    top = ok[(ok["new_tokens"] == ok["new_tokens"].max()) & ok["per_token_ms"].notna()]
    top = top.assign(cell=[f"batch {b} × {s} in" for b, s in zip(top["batch_size"], top["seq_len"])])
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    for ax, column, label in (
        (axes[0], "per_token_ms", "ms per generated token (decode)"),
        (axes[1], "ttft_ms", "time to first token (ms)"),
    ):
        table = top.pivot_table(index="engine", columns="cell", values=column, sort=False)
        table.plot.barh(ax=ax, legend=ax is axes[1])
        ax.set_xlabel(label)
        ax.set_ylabel("")
        ax.invert_yaxis()
    if len(top):  # outside the panel: the long bars of large batches would hide it
        axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"Generation cost per engine ({int(top['new_tokens'].max()) if len(top) else 0} new tokens forced)")
    return fig


def total_vs_new_tokens(df: pd.DataFrame):
    """Total generate() time against the number of new tokens, one line per engine, one panel
    per batch size (at the shortest input)."""
    ok = _generation_ok(df)
    ok = ok[ok["seq_len"] == ok["seq_len"].min()]
    sizes = sorted(ok["batch_size"].unique()) or [0]
    fig, axes = _per_model_axes([f"batch {b}" for b in sizes])
    for ax, bs in zip(axes, sizes):
        for name, g in ok[ok["batch_size"] == bs].groupby("engine", sort=False):
            g = g.sort_values("new_tokens")
            ax.plot(g["new_tokens"], g["p50_ms"], marker="o", ms=3, label=name)
        ax.set_xlabel("new tokens per call")
        ax.set_ylabel("median time per call (ms)")
        ax.set_title(f"batch {bs}, {int(ok['seq_len'].min()) if len(ok) else 0} input tokens")
    axes[-1].legend(fontsize=7)
    fig.suptitle("Total generation time against the number of generated tokens")
    return fig


def generation_memory(df: pd.DataFrame):
    """RSS increment of loading and of inference per engine (one fresh process each)."""
    ok = df[df["status"] == "ok"].set_index("engine") if len(df) else df
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if len(ok):
        ok[["load_mb", "inference_mb"]].rename(
            columns={"load_mb": "load increment", "inference_mb": "inference increment"}
        ).plot.barh(ax=ax)
        r = ok.iloc[0]
        ax.set_title(f"batch {int(r.batch_size)} × {int(r.seq_len)} input tokens, {int(r.new_tokens)} new tokens")
    ax.invert_yaxis()
    ax.set_xlabel("resident memory increment (MB)")
    ax.set_ylabel("")
    fig.suptitle("Memory per engine (a fresh process each)")
    return fig


def generation_speedups(df: pd.DataFrame):
    """Speed-up of total generate() time over PyTorch fp32 with its 95% CI, at the longest
    generation, one panel per input length, one bar per engine and batch size."""
    ok = _generation_ok(df)
    top = ok[(ok["new_tokens"] == ok["new_tokens"].max()) & ok["speedup"].notna()]
    lens = sorted(top["seq_len"].unique()) or [0]
    fig, axes = _per_model_axes([f"{n} input tokens" for n in lens])
    for ax, n in zip(axes, lens):
        sub = top[top["seq_len"] == n]
        table = sub.pivot_table(index="engine", columns="batch_size", values="speedup", sort=False)
        low = table - sub.pivot_table(index="engine", columns="batch_size", values="speedup_ci_low", sort=False)
        high = sub.pivot_table(index="engine", columns="batch_size", values="speedup_ci_high", sort=False) - table
        if len(table):
            errors = [[low[c].values, high[c].values] for c in table.columns]
            table.plot.barh(ax=ax, xerr=errors, capsize=2)
            ax.legend(title="batch", fontsize=7)
        ax.axvline(1, color="0.4", lw=1, ls="--")
        ax.invert_yaxis()
        ax.set_xlabel("speed-up over PyTorch fp32 (95% CI)")
        ax.set_ylabel("")
        ax.set_title(f"{n} input tokens")
    fig.suptitle(f"Generation speed-up ({int(top['new_tokens'].max()) if len(top) else 0} new tokens)")
    return fig


# -- 04 GPU sweeps ------------------------------------------------------------------------------
def notice(title: str, text: str):
    """A figure that states why there is nothing to plot (e.g. no CUDA device)."""
    import textwrap

    fig, ax = plt.subplots(figsize=(9, 3))
    ax.axis("off")
    ax.text(0.5, 0.5, "\n".join(textwrap.wrap(text, 90)), ha="center", va="center", fontsize=10, transform=ax.transAxes)
    fig.suptitle(title)
    return fig


def _gpu_ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["p50_ms"].notna()] if "p50_ms" in df else df.iloc[:0]


def per_item_time_vs_batch(df: pd.DataFrame, seq_len: int):
    """Time per item against batch size at one length, per engine, one panel per model: the
    knee where batching stops paying is where the line flattens."""
    ok = _gpu_ok(df)
    sub = ok[ok["seq_len"] == seq_len].assign(per_item_ms=lambda d: d["p50_ms"] / d["batch_size"])
    fig, axes, _ = _lines_by_batch(sub, "model", "engine", "per_item_ms", "median time per item (ms)")
    for ax in axes:
        ax.set_yscale("log")
    axes[-1].legend(fontsize=7)
    gpu = sub["gpu"].iloc[0] if len(sub) else ""
    fig.suptitle(f"Time per item against batch size, {seq_len} tokens ({gpu}; copies excluded)")
    return fig


def speedup_vs_batch(df: pd.DataFrame, seq_len: int):
    """Speed-up over eager fp32 (95% CI) against batch size at one length: the cross-overs."""
    ok = _gpu_ok(df)
    sub = ok[(ok["seq_len"] == seq_len) & ok["speedup"].notna() & (ok["engine"] != "eager")]
    models = list(dict.fromkeys(sub["model"])) or ["none"]
    fig, axes = _per_model_axes(models)
    for ax, model in zip(axes, models):
        for engine, e in sub[sub["model"] == model].groupby("engine", sort=False):
            e = e.sort_values("batch_size")
            ax.errorbar(
                e["batch_size"],
                e["speedup"],
                yerr=[e["speedup"] - e["speedup_ci_low"], e["speedup_ci_high"] - e["speedup"]],
                marker="o",
                ms=3,
                capsize=2,
                label=engine,
            )
        ax.axhline(1, color="0.4", lw=1, ls="--")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel("speed-up over eager fp32 (95% CI)")
        ax.set_title(f"{model}, {seq_len} tokens")
    axes[-1].legend(fontsize=7)
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
    fig, axes, _ = _lines_by_batch(sub, "model", "engine", "gpu_mb", "GPU memory (MB)")
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"GPU memory at {seq_len} tokens (torch: peak allocated; ORT: NVML, whole process)")
    return fig


# -- 07 report ----------------------------------------------------------------------------------
def speed_fidelity_memory(points: pd.DataFrame):
    """Speed-up over each notebook's fp32 baseline against fidelity, marker area by memory,
    one panel per notebook; crosses mark variants outside tolerance."""
    books = list(dict.fromkeys(points["notebook"])) if len(points) else ["nothing measured"]
    fig, axes = _per_model_axes(books, width=5.2, height=4.6)
    for ax, book in zip(axes, books):
        sub = points[points["notebook"] == book] if len(points) else points
        if sub.empty:
            continue
        mem = sub["memory_mb"].fillna(sub["memory_mb"].median() if sub["memory_mb"].notna().any() else 100)
        area = 20 + 200 * mem / max(mem.max(), 1)
        good = sub["status"] == "ok"
        ax.scatter(sub.loc[good, "fidelity"], sub.loc[good, "speedup"], s=area[good], alpha=0.6)
        ax.scatter(
            sub.loc[~good, "fidelity"],
            sub.loc[~good, "speedup"],
            s=area[~good],
            marker="x",
            color="k",
            label="outside tolerance",
        )
        for r in sub.itertuples():
            ax.annotate(r.label, (r.fidelity, r.speedup), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.axhline(1, color="0.4", lw=1, ls="--")
        ax.set_xlabel(sub["fidelity_kind"].iloc[0])
        ax.set_ylabel("speed-up over fp32 baseline (median)")
        ax.set_title(book)
    fig.suptitle("Speed, fidelity and memory across notebooks (marker area: memory)")
    return fig


def hosts_side_by_side(per_host: dict[str, pd.DataFrame], batch_size: int = 1, seq_len: int = 128):
    """03's speed-up over eager per engine at one shape, one panel per host (largest model
    each host measured at that shape)."""
    hosts = list(per_host) or ["none"]
    fig, axes = _per_model_axes(hosts, width=5.0)
    for ax, host in zip(axes, hosts):
        df = per_host.get(host)
        if df is None or df.empty:
            ax.text(0.5, 0.5, "no 03 results", ha="center", transform=ax.transAxes)
            continue
        sub = df[
            (df["scope"] == "model")
            & (df["status"] == "ok")
            & (df["batch_size"] == batch_size)
            & (df["seq_len"] == seq_len)
            & df["speedup"].notna()
        ]
        sub = sub[sub["threads"] == sub["threads"].max()]
        if sub.empty:
            ax.text(0.5, 0.5, f"nothing at batch {batch_size} × {seq_len}", ha="center", transform=ax.transAxes)
            continue
        model = sub.sort_values("n_params")["model"].iloc[-1]
        m = sub[sub["model"] == model].drop_duplicates("engine").set_index("engine")
        m["speedup"].plot.barh(
            ax=ax, xerr=[m["speedup"] - m["speedup_ci_low"], m["speedup_ci_high"] - m["speedup"]], capsize=2
        )
        ax.axvline(1, color="0.4", lw=1, ls="--")
        ax.invert_yaxis()
        ax.set_xlabel("speed-up over eager fp32 (95% CI)")
        ax.set_ylabel("")
        ax.set_title(f"{host}: {model}, {int(m['threads'].iloc[0])} threads")
    fig.suptitle(f"The same sweep on each machine (batch {batch_size} × {seq_len})")
    return fig
