"""The checks of the published claims (c1..c17, registered in report.claims) and the rows
they read.

A check takes the result tables (name -> DataFrame or None) and returns (verdict, ours,
reason), or raises Untestable with the reason the results cannot test the claim. A claim's
numbers belong to its authors' hardware; what is tested is its shape (which engine wins, by
roughly how much, where the cross-over is). "Roughly" is within a factor of ROUGHLY of their
figure. Every threshold a check applies is a named constant below; report.claims lists them
per claim (and docs/claims.md shows them).
"""

from __future__ import annotations

import pandas as pd

from helpers.report.prose import text
from helpers.report.rows import (
    Untestable,
    anchor_len,
    complete,
    cpu_rows,
    decided_by,
    gpu_rows,
    has_columns,
    largest,
    length_slope_cell,
    length_slopes,
    need,
    one_thread_cell,
    pivot,
    timed_recipe,
    trusted_table,
    widest,
)

HOLDS, FAILS, UNTESTABLE = "holds", "does not hold", "cannot be tested here"

# ---------------------------------------------------------------- thresholds and their figures
ROUGHLY = 1.5  # "roughly their figure": within this factor of it
SMALL_PARAMS, LARGE_PARAMS = 30e6, 100e6  # "small BERTs" (3.6M-29M) and BERT-base size
BERT_BASE_PARAMS = 110e6  # the model C1 names
C3_ORT, C3_TENSORRT = 3.0, 5.0  # ORT/Triton 2-4× (its middle), TensorRT about 5×
C5_BATCHING_GAIN = 1.2  # batching "pays" when it raises eager items/s at least this much
C6_SPEEDUP, C6_MEMORY_RATIO = 5.0, 2.2  # ONNX + O3 + INT8 over PyTorch: time, inference memory
C6_SECONDS = (0.497, 0.099)  # their time for 5 runs, PyTorch then ONNX + O3 + INT8
C6_MEMORY_MIB = (11.3, 4.9)  # their inference memory increment, PyTorch then ONNX + O3 + INT8
C7_SMALL, C7_BASE = 2.2, 1.8  # ORT over PyTorch at 1 thread: small BERTs, BERT-base size
C8_SMALL, C8_BASE, C8_BY_LENGTH = 1.45, 2.4, 1.25  # INT8 over ORT fp32: small, base, any length
C9_SMALL_BATCH, C9_LARGE_BATCHES, C9_INT8_FROM = 8, (32, 64), 32  # batch 1-8 vs 32-64; INT8 above 32
C9_INT8_GROWS = 1.1  # INT8's edge "grows above batch 32": above it, more than 10% over its edge at batch 32
C10_GROWS = 1.1  # the advantage "grows" with length when it rises by more than 10%
C11_BELOW, C11_AT, C11_WITHIN = 32, 64, 1.10  # ONNX wins below batch 32; within 10% by batch 64
C12_GAIN, C12_KNEE = 12.0, 0.9  # their least gain over batch 1 (T4); the knee: under 10% per doubling
C13_LINEAR, C13_GAP = 0.8, 0.15  # log-log slope "about linear" at large batch; batch 1 clearly lower
C14_BATCHES = (16, 64)  # per-item time from batch 16 to 64
C14_UNSORTED, C14_SORTED = 0.20, -0.10  # their change: unsorted +20%, sorted -10% per item
# "1k sentences of varied length" on PyTorch: 05's synthetic sentences (workloads.batching.SCENARIOS), eager
C14_DISTRIBUTION, C14_ENGINE = "sentences", "eager"
C14_SORTED_MAX = 0.05  # sorted "keeps gaining": its per-item time rises by less than 5%
C15_SPREAD = 0.01  # INT8 fidelity "differs by model and method": min cosines more than this apart
C16_STATIC, C16_QINT8, C16_FP32 = 4.8, 2.3, 1.1  # over st-torch: openvino static INT8; onnx qint8; onnx / openvino
C16_SCORE = 0.996  # "over 99.6% of the fp32 score": recall@10 against eager fp32 is the score here
C16_BATCH = 32  # the peers are compared at SentenceTransformer.encode's default batch size
C17_BF16, C17_INT8 = 4.2, 6.4  # OpenVINO bf16 and INT8 over its fp32, bert-base on a Xeon with AMX


def _roughly(ours: float, theirs: float) -> bool:
    return theirs / ROUGHLY <= ours <= theirs * ROUGHLY


def _against(ours: float, theirs: float, what: str = "") -> str:
    """Our figure against theirs, and whether it is within the ROUGHLY band: the reason a
    "roughly their figure" check decides as it does."""
    inside = "within" if _roughly(ours, theirs) else "outside"
    return (
        f"{what}{text.times(ours)} against their {theirs:g}× ({inside} {theirs / ROUGHLY:.2f}–{theirs * ROUGHLY:.2f}×)"
    )


def _verdict(ok: bool) -> str:
    return HOLDS if ok else FAILS


def faster(a_rows: pd.DataFrame, b_rows: pd.DataFrame, on: str = "batch_size") -> pd.DataFrame:
    """The one rule for "a is faster than b", per value of `on` both measured: b's median time
    over a's (`ratio`), and `faster` where its 95% CI lies above 1. The CI comes from the rows'
    speed-up CIs (speedup, speedup_ci_low, speedup_ci_high, over the table's baseline): a's own
    where b is that baseline (speed-up 1), else a's low end over b's high end (a bound, as the
    two CIs are not joint). A table without speed-up CIs has only the ratio of medians."""
    a, b = a_rows.set_index(on), b_rows.set_index(on)
    a, b = a.align(b, join="inner", axis=0)
    out = pd.DataFrame({"ratio": b["p50_ms"] / a["p50_ms"]})
    if {"speedup", "speedup_ci_low", "speedup_ci_high"} <= set(a.columns):
        b_high = b["speedup_ci_high"].where(b["speedup"] != 1, 1.0)
        out["ci_low"] = a["speedup_ci_low"] / b_high
    else:
        out["ci_low"] = out["ratio"]
    out["faster"] = out["ci_low"] > 1
    return out.sort_index()


def _engine(rows: pd.DataFrame, engine: str) -> pd.DataFrame:
    return rows[rows["engine"] == engine]


# ---------------------------------------------------------------- the claims
def c1(t):
    df = cpu_rows(t)
    n = anchor_len(df)
    model, m = largest(df[df["seq_len"] == n], ("eager", "torchscript", "ort"), near=BERT_BASE_PARAMS)
    p = complete(m, "batch_size", ("eager", "torchscript", "ort"), model)
    m = m[m["batch_size"].isin(p.index)]
    decided_by(m[m["engine"].isin(["eager", "torchscript", "ort"])])
    ort = _engine(m, "ort")
    wins = faster(ort, _engine(m, "eager"))["faster"] & faster(ort, _engine(m, "torchscript"))["faster"]
    ours = "; ".join(
        f"batch {b}: eager {r.eager:.1f} ms, TorchScript {r.torchscript:.1f}, ORT {r.ort:.1f}" for b, r in p.iterrows()
    )
    return (
        _verdict(wins.all()),
        f"{model}, {n} tokens: {ours}",
        (
            f"ORT is clearly (CI above 1) the fastest of the three at {'every' if wins.all() else 'only some'} measured batch size "
            f"({', '.join(str(b) for b in p.index[wins]) or 'none'}); its margin is {text.times((p['eager'] / p['ort']).min())}–"
            f"{text.times((p['eager'] / p['ort']).max())} over eager, not the 50× of their setup"
        ),
    )


def c2(t):
    df = gpu_rows(t)
    model, m = largest(df, ("eager", "torchscript", "ort"))
    length = anchor_len(m)
    p = complete(m[m["seq_len"] == length], "batch_size", ("eager", "torchscript", "ort"), model)
    small, large = p.iloc[0], p.iloc[-1]
    decided_by(m[(m["seq_len"] == length) & m["batch_size"].isin([p.index[0], p.index[-1]])])
    ok = small.idxmin() == "ort" and large["torchscript"] < large["ort"]
    return (
        _verdict(ok),
        (
            f"{model}, {length} tokens: batch {p.index[0]}: fastest {small.idxmin()}; "
            f"batch {p.index[-1]}: eager {large.eager:.2f} / TorchScript {large.torchscript:.2f} / "
            f"ORT {large.ort:.2f} ms"
        ),
        (
            f"at batch {p.index[0]} the fastest is {small.idxmin()} (claimed: ORT); at batch {p.index[-1]} "
            f"TorchScript takes {large.torchscript:.2f} ms and ORT {large.ort:.2f} ms (claimed: TorchScript faster)"
        ),
    )


def c3(t):
    df = gpu_rows(t, "speedup", "speedup_ci_low", "speedup_ci_high")
    ort = df[df["engine"].isin(["ort", "ort-fp16"])]
    if ort.empty or ort["speedup"].isna().all():
        raise Untestable("no ORT engine was measured on the GPU")
    best = ort.loc[ort["speedup"].idxmax()]
    trt = df[df["engine"] == "ort-trt"]
    decided_by(
        ort.loc[[best.name]], trt.loc[[trt["speedup"].idxmax()]] if trt["speedup"].notna().any() else trt.iloc[:0]
    )
    ok = _roughly(best.speedup, C3_ORT)
    ours = f"best ORT: {best.engine} at batch {best.batch_size} × {best.seq_len}, {text.ci(best)}"
    reason = _against(best.speedup, C3_ORT, "best ORT ")
    if len(trt) and trt["speedup"].notna().any():
        t_best = trt.loc[trt["speedup"].idxmax()]
        ours += f"; TensorRT: {text.ci(t_best)}"
        ok = ok and _roughly(t_best.speedup, C3_TENSORRT)
        reason += "; " + _against(t_best.speedup, C3_TENSORRT, "TensorRT ")
    else:
        reason += "; TensorRT was not available, so its part is untested"
    return _verdict(ok), ours, reason


def c4(t):
    reason = "the study's INT8 engines are CPU ones (ORT dynamic and static QDQ); GPU INT8 needs QDQ graphs on TensorRT"
    try:
        gpu_rows(t)
    except Untestable as exc:
        reason += f", and {exc}"
    raise Untestable(reason)


def c5(t):
    df = cpu_rows(t, "items_per_s")
    n = anchor_len(df)
    model, m = widest(df, "batch_size", ("eager",), {"seq_len": n})
    e = m.sort_values("batch_size")
    if len(e) < 2:
        raise Untestable(f"eager was measured at one batch size only ({model}, {n} tokens)")
    decided_by(e.iloc[[0, -1]])
    gain = e["items_per_s"].iloc[-1] / e["items_per_s"].iloc[0]
    sizes = df[(df["engine"] == "eager") & (df["batch_size"] == 1) & (df["seq_len"] == n)].sort_values("n_params")
    spread = (
        (
            f"; batch 1 × {n} eager: {sizes['model'].iloc[0]} {sizes['p50_ms'].iloc[0]:.1f} ms vs "
            f"{sizes['model'].iloc[-1]} {sizes['p50_ms'].iloc[-1]:.1f} ms"
        )
        if len(sizes) > 1
        else ""
    )
    return (
        _verdict(gain >= C5_BATCHING_GAIN),
        (
            f"{model}, eager, {n} tokens: batching from {e['batch_size'].iloc[0]} to "
            f"{e['batch_size'].iloc[-1]} raises items/s {text.times(gain)}{spread}"
        ),
        (
            f"eager items/s rise {text.times(gain)} from batch {e['batch_size'].iloc[0]} to {e['batch_size'].iloc[-1]}: "
            + (
                "batching pays on this CPU"
                if gain >= C5_BATCHING_GAIN
                else f"under the {C5_BATCHING_GAIN:g}× that counts as paying (a small CPU is busy at batch 1)"
            )
        ),
    )


def c6(t):
    gen = trusted_table(
        t,
        "06_generation",
        "06_seq2seq",
        "engine",
        "new_tokens",
        "batch_size",
        "seq_len",
        "speedup",
        "speedup_ci_low",
        "speedup_ci_high",
    )
    recipe = gen[gen["engine"] == "ort-o3-int8"]
    if recipe.empty:
        raise Untestable("06 did not measure ort-o3-int8")
    top = recipe[recipe["new_tokens"] == recipe["new_tokens"].max()]
    r = top.sort_values(["batch_size", "seq_len"]).iloc[0]
    if pd.isna(r.speedup):
        raise Untestable(f"06 has no speed-up of ort-o3-int8 at batch {r.batch_size} × {r.seq_len} (no baseline there)")
    mem = t.get("06_memory")
    has_mem = mem is not None and {"engine", "status", "inference_mb", "batch_size", "seq_len"} <= set(mem.columns)
    mem = mem[mem["status"] == "ok"].set_index("engine") if has_mem else pd.DataFrame()
    decided_by(top.loc[[r.name]])
    ours = f"batch {r.batch_size} × {r.seq_len} input, {r.new_tokens} new tokens: {text.ci(r)}"
    ok = _roughly(r.speedup, C6_SPEEDUP)
    reason = _against(r.speedup, C6_SPEEDUP, "speed-up ")
    if {"torch", "ort-o3-int8"} <= set(mem.index):
        a, b = mem.loc["torch", "inference_mb"], mem.loc["ort-o3-int8", "inference_mb"]
        ours += f"; inference memory at batch {mem.loc['torch', 'batch_size']} × {mem.loc['torch', 'seq_len']}: +{a:.1f} → +{b:.1f} MB ({text.less(a, b)})"
        ok = ok and _roughly(a / b, C6_MEMORY_RATIO)
        reason += "; " + _against(a / b, C6_MEMORY_RATIO, "memory ratio ")
    else:
        reason += "; the inference memory of torch and ort-o3-int8 was not measured, so that part is untested"
    return _verdict(ok), ours, reason


def _ort_over_eager_by_size(rows: pd.DataFrame, engine: str = "ort", base: str = "eager") -> pd.Series:
    p = rows.pivot_table(index="model", columns="engine", values="p50_ms")
    if not {engine, base} <= set(p.columns):
        raise Untestable(f"{engine} and {base} were not both measured")
    return (p[base] / p[engine]).dropna()


def _grouped(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the models a size-group claim reads: small (≤ SMALL_PARAMS) or base-size (≥ LARGE_PARAMS)."""
    return rows[(rows["n_params"] <= SMALL_PARAMS) | (rows["n_params"] >= LARGE_PARAMS)]


def _size_groups(ratio: pd.Series, df: pd.DataFrame, small: float, large: float, what: str) -> tuple[bool, str, str]:
    """(holds, our figures per model, the reason: each group's median against their figure)."""
    params = df.groupby("model")["n_params"].first()
    small_r, large_r = ratio[params[ratio.index] <= SMALL_PARAMS], ratio[params[ratio.index] >= LARGE_PARAMS]
    if small_r.empty and large_r.empty:
        raise Untestable("neither small (≤ 30M) nor BERT-base-size (≥ 100M) models were measured")
    parts, reasons, ok = [], [], True
    for group, want, label in ((small_r, small, "small"), (large_r, large, "base-size")):
        if len(group):
            parts.append(f"{label}: " + ", ".join(f"{m} {text.times(v)}" for m, v in group.items()))
            reasons.append(_against(float(group.median()), want, f"{label} models' median "))
            ok = ok and _roughly(float(group.median()), want)
    return ok, f"{what} " + "; ".join(parts), "; ".join(reasons)


def c7(t):
    length, cell = one_thread_cell(t)
    ratio = _ort_over_eager_by_size(cell)
    decided_by(_grouped(cell[cell["engine"].isin(["ort", "eager"]) & cell["model"].isin(ratio.index)]))
    ok, ours, reason = _size_groups(
        ratio, cell, C7_SMALL, C7_BASE, f"ORT fp32 over eager, 1 thread, batch 1 × {length}:"
    )
    return _verdict(ok), ours, reason


def c8(t):
    df = cpu_rows(t)
    n = anchor_len(df)
    at = df[(df["batch_size"] == 1) & (df["seq_len"] == n)]
    ratio = _ort_over_eager_by_size(at, "ort-int8", "ort")
    decided_by(_grouped(at[at["engine"].isin(["ort", "ort-int8"]) & at["model"].isin(ratio.index)]))
    recipe = timed_recipe("ort-int8", df[df["engine"] == "ort-int8"], t)
    ok, ours, reason = _size_groups(ratio, df, C8_SMALL, C8_BASE, f"ORT INT8 ({recipe}) over ORT fp32, batch 1 × {n}:")
    try:
        model, m = widest(df[df["n_params"] <= SMALL_PARAMS], "seq_len", ("ort", "ort-int8"), {"batch_size": 8})
    except Untestable:
        return _verdict(ok), ours + "; no small-model length sweep", reason
    decided_by(m)
    p = pivot(m, "seq_len")
    by_len = p["ort"] / p["ort-int8"]
    ours += f"; {model} at batch 8 over lengths {by_len.index.min()}–{by_len.index.max()}: {text.times(by_len.min())}–{text.times(by_len.max())}"
    inside = sum(_roughly(v, C8_BY_LENGTH) for v in by_len)
    ok = ok and inside == len(by_len)
    reason += f"; {inside} of {len(by_len)} lengths within {C8_BY_LENGTH / ROUGHLY:.2f}–{C8_BY_LENGTH * ROUGHLY:.2f}× of their {C8_BY_LENGTH:g}×"
    return _verdict(ok), ours, reason


def c9(t):
    df = cpu_rows(t, "speedup")
    n = anchor_len(df)
    spans = (C9_SMALL_BATCH, C9_LARGE_BATCHES[1])
    model, m = widest(df, "batch_size", ("eager", "ort"), {"seq_len": n}, spans)
    s = m[m["engine"] == "ort"].set_index("batch_size")["speedup"]
    lo, hi = C9_LARGE_BATCHES
    small, large = s[s.index <= C9_SMALL_BATCH], s[(s.index >= lo) & (s.index <= hi)]
    if large.empty:
        raise Untestable(f"the batch sweep of {model} stops at batch {s.index.max()} (no batch 32–64)")
    if small.empty:
        raise Untestable(f"the batch sweep of {model} starts at batch {s.index.min()} (no batch 1–8)")
    decided_by(m[m["batch_size"].isin([*small.index, *large.index])])
    ok = small.mean() > large.mean()
    ours = f"{model}, {n} tokens: ORT over eager {text.times(small.mean())} at batch 1–8, {text.times(large.mean())} at 32–64"
    reason = (
        f"ORT's edge is {'larger' if ok else 'not larger'} at batch 1–8 ({text.times(small.mean())}) "
        f"than at 32–64 ({text.times(large.mean())})"
    )
    same = df[(df["model"] == model) & (df["seq_len"] == n) & df["engine"].isin(["ort", "ort-int8"])]
    grows, more, why = _c9_int8(same, t)
    return _verdict(ok and grows), ours + more, reason + why


def _c9_int8(same: pd.DataFrame, t) -> tuple[bool, str, str]:
    """C9's INT8 half: (grows, our figures, the reason). INT8's edge over ORT fp32 "grows above
    batch 32" when its mean above C9_INT8_FROM is more than C9_INT8_GROWS times its edge at
    C9_INT8_FROM (the largest batch measured up to it)."""
    q = pivot(same, "batch_size")
    q = (q["ort"] / q["ort-int8"]).dropna() if "ort-int8" in q else pd.Series(dtype=float)
    above, below = q[q.index > C9_INT8_FROM], q[q.index <= C9_INT8_FROM]
    if not (len(above) and len(below)):
        return True, "", f"; INT8 was not measured on both sides of batch {C9_INT8_FROM}, so that half is untested"
    at = below.index.max()
    decided_by(same[same["batch_size"].isin([at, *above.index])])
    change = above.mean() / below[at]
    trend = "grows" if change > C9_INT8_GROWS else ("shrinks" if change < 1 / C9_INT8_GROWS else "stays level")
    recipe = timed_recipe("ort-int8", same[same["engine"] == "ort-int8"], t)
    ours = (
        f"; INT8 ({recipe}) over ORT fp32 {text.times(below[at])} at batch {at}, {text.times(above.mean())} above "
        f"({', '.join(f'batch {b}: {text.times(v)}' for b, v in q.items())})"
    )
    why = (
        f"; INT8's edge over ORT fp32 {trend} above batch {C9_INT8_FROM} ({text.times(below[at])} → "
        f"{text.times(above.mean())}): a rise of more than {100 * (C9_INT8_GROWS - 1):.0f}% over its edge at "
        f"batch {at} counts"
    )
    return change > C9_INT8_GROWS, ours, why


def c10(t):
    df = cpu_rows(t, "speedup", "speedup_ci_low", "speedup_ci_high")
    model, m = widest(df, "seq_len", ("eager", "ort"), {"batch_size": 8})
    s = m[m["engine"] == "ort"].set_index("seq_len").sort_index()
    if len(s) < 2:
        raise Untestable(f"{model} at batch 8 was measured at one length only")
    short, long_ = s.iloc[0], s.iloc[-1]
    decided_by(m[m["seq_len"].isin([s.index[0], s.index[-1]])])
    grows = long_.speedup > short.speedup * C10_GROWS
    trend = "grows" if grows else ("shrinks" if long_.speedup < short.speedup / C10_GROWS else "stays level")
    return (
        _verdict(grows),
        (
            f"{model}, batch 8: ORT over eager {text.ci(short)} at {s.index[0]} tokens, {text.ci(long_)} at {s.index[-1]}"
        ),
        (
            f"ORT's advantage {trend} with length: {text.times(short.speedup)} at {s.index[0]} tokens, "
            f"{text.times(long_.speedup)} at {s.index[-1]} (a rise of more than {100 * (C10_GROWS - 1):.0f}% counts)"
        ),
    )


def c11(t):
    df = cpu_rows(t, "speedup", "speedup_ci_low", "speedup_ci_high")
    n = anchor_len(df)
    spans = (C11_BELOW - 1, C11_AT)
    model, m = widest(df, "batch_size", ("eager", "torchscript", "ort"), {"seq_len": n}, spans)
    p = complete(m, "batch_size", ("eager", "torchscript", "ort"), model)
    s = m[m["engine"] == "ort"].set_index("batch_size")
    below = s[s.index < C11_BELOW]
    if below.empty:
        raise Untestable(f"the batch sweep of {model} starts at batch {s.index.min()} (none below 32)")
    cells = m[m["batch_size"].isin(below.index) | (m["batch_size"] == p.index[p.index >= C11_AT].min())]
    decided_by(cells[cells["engine"].isin(["eager", "torchscript", "ort"])])
    ort = _engine(m, "ort")
    beats_eager = faster(ort, _engine(m, "eager"))["faster"].reindex(below.index, fill_value=False)
    beats_ts = faster(ort, _engine(m, "torchscript"))["faster"].reindex(below.index, fill_value=False)
    clear = beats_eager.all() and beats_ts.all()
    ours = f"{model}, {n} tokens: ORT over eager {text.times(below['speedup'].min())}–{text.times(below['speedup'].max())} below batch 32"
    first = (
        f"below batch 32 ORT beats eager (CI above 1) at {int(beats_eager.sum())} and TorchScript (CI above 1) at "
        f"{int(beats_ts.sum())} of {len(below)} batch sizes"
    )
    unclear = [str(b) for b in below.index[~beats_eager]]
    if unclear:
        first += f" (not clearly faster than eager at batch {', '.join(unclear)}: its CI is not above 1)"
    if p.index.max() < C11_AT:
        return (
            _verdict(clear),
            ours + f"; batch 64 not measured (largest {p.index.max()})",
            first + "; the convergence at batch 64 is untested",
        )
    row = p.loc[p.index[p.index >= C11_AT][0]]
    spread = row.max() / row.min()
    return (
        _verdict(clear and spread <= C11_WITHIN),
        ours + f"; at batch {row.name} the three are within {100 * (spread - 1):.0f}%",
        first + f"; at batch {row.name} the slowest is {100 * (spread - 1):.0f}% behind the fastest "
        f"(claimed within {100 * (C11_WITHIN - 1):.0f}%)",
    )


def c12(t):
    df = gpu_rows(t)
    model, m = largest(df, ("eager",))
    length = anchor_len(m)
    m = m[m["seq_len"] == length].assign(per_item=lambda d: d["p50_ms"] / d["batch_size"])
    knee = m[m["engine"] == "eager"].set_index("batch_size")["per_item"].sort_index()
    if len(knee) < 2:
        raise Untestable(f"eager was measured at fewer than two batch sizes ({model}, {length} tokens)")
    best = m.loc[m["per_item"].idxmin()]
    decided_by(m[(m["engine"] == "eager") & (m["batch_size"] == knee.index[0])], m.loc[[best.name]])
    knee_batch = next(
        (b for prev, b in zip(knee.index, knee.index[1:]) if knee[b] > C12_KNEE * knee[prev]), knee.index[-1]
    )
    gain = knee.iloc[0] / best.per_item
    return (
        _verdict(gain >= C12_GAIN / ROUGHLY),
        (
            f"{model}, {length} tokens: eager stops gaining 10% per doubling at batch "
            f"{knee_batch}; best per-item time {best.engine} at batch {best.batch_size}, "
            f"{text.times(gain)} over batch-{knee.index[0]} eager"
        ),
        (
            f"the best per-item time is {text.times(gain)} batch-{knee.index[0]} eager's; the claim needs at least "
            f"{C12_GAIN / ROUGHLY:g}× (their {C12_GAIN:g}× on a T4, within a factor {ROUGHLY})"
        ),
    )


def c13(t):
    model, rows = length_slope_cell(t)
    decided_by(rows[rows["batch_size"].isin([rows["batch_size"].min(), rows["batch_size"].max()])])
    slopes = length_slopes(rows)
    lo, hi = slopes.index.min(), slopes.index.max()
    s_lo, s_hi = slopes[lo], slopes[hi]
    ok = s_hi >= C13_LINEAR and s_lo < s_hi - C13_GAP
    return (
        _verdict(ok),
        (f"{model}, eager: time ∝ length^{s_hi:.2f} at batch {hi}, length^{s_lo:.2f} at batch {lo} (log-log slope)"),
        (
            f"slope {s_hi:.2f} at batch {hi} ({'at least' if s_hi >= C13_LINEAR else 'below'} {C13_LINEAR:g}, about "
            f"linear) and {s_lo:.2f} at batch {lo}, {s_hi - s_lo:.2f} lower (more than {C13_GAP:g} counts as clearly)"
        ),
    )


def per_item_change(d: pd.DataFrame) -> pd.Series | None:
    """05 rows of one distribution and engine: per strategy, the relative change of the time per
    item from batch C14_BATCHES[0] to C14_BATCHES[1] (None unless unsorted and sorted were
    both measured at both)."""
    lo, hi = C14_BATCHES
    per_item = d.pivot_table(index="batch_size", columns="strategy", values="p50_ms") / d["n_texts"].iloc[0]
    if not {lo, hi} <= set(per_item.index) or not {"unsorted", "sorted"} <= set(per_item.columns):
        return None
    return per_item.loc[hi] / per_item.loc[lo] - 1


def per_item_change_text(change: pd.Series) -> str:
    lo, hi = C14_BATCHES
    return (
        f"batch {lo} → {hi}, time per item: unsorted {100 * change['unsorted']:+.0f}%, "
        f"sorted {100 * change['sorted']:+.0f}%"
    )


def c14(t):
    df = trusted_table(
        t, "05_sorting", "05_sequence_sorting", "distribution", "engine", "strategy", "batch_size", "n_texts"
    )
    d = df[(df["distribution"] == C14_DISTRIBUTION) & (df["engine"] == C14_ENGINE)]
    if d.empty:
        measured = sorted({f"{r.distribution} × {r.engine}" for r in df.itertuples()})
        raise Untestable(
            f"05 did not measure the {C14_DISTRIBUTION} scenario with {C14_ENGINE} (measured: {', '.join(measured)})"
        )
    change = per_item_change(d)
    lo, hi = C14_BATCHES
    if change is None:
        raise Untestable(
            f"05 did not measure unsorted and sorted at batch {lo} and {hi} (batches {', '.join(str(int(b)) for b in sorted(d['batch_size'].unique()))})"
        )
    decided_by(d[d["strategy"].isin(["unsorted", "sorted"]) & d["batch_size"].isin([lo, hi])])
    ok = change["unsorted"] > change["sorted"] and change["sorted"] < C14_SORTED_MAX
    return (
        _verdict(ok),
        f"{C14_DISTRIBUTION}, {C14_ENGINE}, {per_item_change_text(change)}",
        (
            f"per item, sorted changes {100 * change['sorted']:+.0f}% and unsorted {100 * change['unsorted']:+.0f}%: "
            + (
                "sorted keeps gaining from larger batches while unsorted does not"
                if ok
                else f"the claim needs sorted below {100 * C14_SORTED_MAX:+.0f}% and under unsorted"
            )
        ),
    )


def _weights_label(row) -> str:
    """The model's name, marked where its fidelity is of random weights (not a real model's)."""
    random = str(row.get("random_weights", "")).lower() in ("true", "1")
    return f"{row['model']}, random weights" if random else str(row["model"])


def c15(t):
    v = need(t, "02_variants", "02_quantization", "model", "method", "status", "cosine_min")
    int8 = v[v["method"].str.contains("int8", na=False) & v["cosine_min"].notna()]
    if int8.empty:
        raise Untestable("02 measured no INT8 variant's fidelity")
    by = int8.pivot_table(index="method", columns="model", values="cosine_min")
    spread = float(by.max().max() - by.min().min())
    bad = int8[int8["status"] == "mismatch"]
    ok = spread > C15_SPREAD or (len(bad) and (int8["status"] == "ok").any())
    worst, best = int8.loc[int8["cosine_min"].idxmin()], int8.loc[int8["cosine_min"].idxmax()]
    return (
        _verdict(ok),
        (
            f"INT8 min cosine ranges {worst.cosine_min:.3f} ({_weights_label(worst)}, {worst.method}) to "
            f"{best.cosine_min:.3f} ({_weights_label(best)}, {best.method}); "
            f"{len(bad)} of {len(int8)} INT8 variants fail the tolerance"
        ),
        (
            f"INT8 min cosines span {spread:.3f} across models and methods and {len(bad)} of {len(int8)} fail: "
            + (
                "fidelity differs by model and method, so it must be measured"
                if ok
                else "every variant lost about the same"
            )
        ),
    )


# ---------------------------------------------------------------- the peers and OpenVINO
def _peer_rows(t) -> pd.DataFrame:
    """07's whole-corpus peer rows at C16_BATCH that were timed, one per peer."""
    df = need(t, "07_pipeline", "07_pipeline", "stage", "status")
    if "peer" not in df:
        raise Untestable("07 measured no peer (sentence-transformers backend) in these results")
    has_columns(df, "07_pipeline", "batch_size", "items_per_s", "recall_at_10", "precision")
    rows = df[(df["stage"] == "corpus") & df["peer"].fillna("").ne("") & df["items_per_s"].notna()]
    return rows[rows["batch_size"] == C16_BATCH].drop_duplicates("peer").set_index("peer")


def c16(t):
    rows = _peer_rows(t)
    missing = [p for p in ("st-torch", "st-openvino-qint8", "st-onnx-qint8") if p not in rows.index]
    if missing:
        raise Untestable(
            f"07 did not measure {' and '.join(missing)} at batch {C16_BATCH} (the full profile runs every peer)"
        )
    base = rows.loc["st-torch", "items_per_s"]
    measured = ("st-openvino-qint8", "st-onnx-qint8", "st-onnx", "st-openvino")
    ratio = {p: rows.loc[p, "items_per_s"] / base for p in measured if p in rows.index}
    int8 = {"st-openvino-qint8": C16_STATIC, "st-onnx-qint8": C16_QINT8}
    fp32 = {p: x for p, x in ratio.items() if p not in int8}
    recall = {p: float(rows.loc[p, "recall_at_10"]) for p in int8}
    fastest = max(ratio, key=ratio.get)
    speed_ok = all(_roughly(ratio[p], x) for p, x in int8.items()) and all(_roughly(x, C16_FP32) for x in fp32.values())
    kept = all(r >= C16_SCORE for r in recall.values())
    ok = speed_ok and fastest == "st-openvino-qint8" and kept
    ours = "; ".join(
        f"{p} {text.times(x)}" + (f" (ran {rows.loc[p, 'precision']})" if p == "st-openvino" else "")
        for p, x in ratio.items()
    )
    recalls = ", ".join(f"{p} {r:.3f}" for p, r in recall.items())
    return (
        _verdict(ok),
        f"over st-torch, batch {C16_BATCH}, whole corpus: {ours}; recall@10: {recalls}",
        (
            f"the fastest measured backend is {fastest}; {'every' if kept else 'not every'} INT8 one keeps recall@10 "
            f"at or above {C16_SCORE:g}. That is the workbook's proxy, recall@10 against the eager fp32 "
            "neighbours, not their benchmark score, which was not measured here; the static INT8 model is calibrated on corpus texts (their default set is "
            "on the hub), and OpenVINO fp32 runs at its plugin's default precision (bf16 on a CPU with bf16 "
            "instructions)"
        ),
    )


def c17(t):
    engines = ("ov", "ov-bf16", "ov-int8")
    df = cpu_rows(t)
    missing = [e for e in engines if e not in set(df["engine"])]
    if missing:
        raise Untestable(f"03 measured no {', '.join(missing)} rows (the OpenVINO engines) in these results")
    n = anchor_len(df)
    model, m = largest(df[df["seq_len"] == n], engines, near=BERT_BASE_PARAMS)
    p = complete(m, "batch_size", engines, model)
    b = p.index.max()  # throughput: the largest batch all three ran
    decided_by(m[(m["batch_size"] == b) & m["engine"].isin(engines)])
    bf16, int8 = p.loc[b, "ov"] / p.loc[b, "ov-bf16"], p.loc[b, "ov"] / p.loc[b, "ov-int8"]
    ok = _roughly(bf16, C17_BF16) and _roughly(int8, C17_INT8)
    order = "holds" if int8 > bf16 > 1 else "does not hold"
    return (
        _verdict(ok),
        f"{model}, batch {b} × {n} tokens: ov-bf16 {text.times(bf16)}, ov-int8 {text.times(int8)} over ov (fp32)",
        (
            f"{_against(bf16, C17_BF16, 'bf16 ')}; {_against(int8, C17_INT8, 'INT8 ')}; the order INT8 > bf16 > fp32 "
            f"{order}. Their figures are from a Xeon with AMX, whose tile units multiply bf16 and INT8 several times "
            f"faster than AVX-512; {_amx_note(t)}"
        ),
    )


def _amx_note(t) -> str:
    """Whether this run's CPU has AMX, from 00's nominal bf16 peak (which names its instructions)."""
    ceilings = t.get("00_ceilings")
    rows = (
        ceilings[(ceilings["kind"] == "nominal") & (ceilings["precision"] == "bf16")]
        if ceilings is not None and "kind" in ceilings
        else None
    )
    if rows is None or not len(rows):
        return "whether this CPU has AMX is unknown (00 has not run), so whether their sizes are expected here is too"
    how = str(rows["message"].iloc[0]).split(";")[0]
    if "AMX" in how:
        return f"this CPU has AMX too ({how}), so their sizes are expected here"
    return f"this CPU has no AMX (00's bf16 peak: {how}), so their sizes are not expected here (the verdict is on them)"
