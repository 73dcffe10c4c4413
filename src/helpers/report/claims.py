"""08_report: verdicts on the published claims C1-C15 (the CLAIMS registry below), computed from
result tables (the recommendation is in report.recommend, the gallery in report.figures).

A claim's numbers belong to its authors' hardware; what is tested is its shape (which engine
wins, by roughly how much, where the cross-over is). "Roughly" is within a factor of
ROUGHLY of their figure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

HOLDS, FAILS, UNTESTABLE = "holds", "does not hold", "cannot be tested here"


ROUGHLY = 1.5


TABLES = (
    "00_ceilings",
    "01_export",
    "02_variants",
    "02_speed",
    "03_cpu_sweep",
    "04_gpu_sweep",
    "04_fidelity",
    "05_sorting",
    "06_generation",
    "06_memory",
    "06_agreement",
)


SMALL_PARAMS, LARGE_PARAMS = 30e6, 100e6  # "small BERTs" (3.6M-29M) and BERT-base size


class Untestable(Exception):
    """The results cannot test this claim; str is why."""


@dataclass
class Verdict:
    id: str
    claim: str
    theirs: str
    ours: str
    verdict: str
    reason: str
    figure: str


# ---------------------------------------------------------------- loading
def load_tables(results_dir: str | Path) -> dict[str, pd.DataFrame | None]:
    """Every result table of a run (None where its notebook has not run)."""
    from helpers.core.tables import read_one_run

    return {name: read_one_run(Path(results_dir) / f"{name}.csv") for name in TABLES}


def _has(df: pd.DataFrame, name: str, *columns: str) -> None:
    """Untestable unless table `name` has every one of `columns` (a column appears only
    once some row has a value for it, e.g. no `speedup` where the baseline never ran)."""
    missing = [c for c in columns if c not in df]
    if missing:
        raise Untestable(f"{name}.csv has no {', '.join(missing)} column{'s' * (len(missing) > 1)} in these results")


def _need(t: dict, name: str, notebook: str, *columns: str) -> pd.DataFrame:
    df = t.get(name)
    if df is None or df.empty:
        raise Untestable(f"{notebook} has not produced {name}.csv in these results")
    _has(df, name, *columns)
    return df


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["status"] == "ok") & df["p50_ms"].notna()]


def _trusted(t: dict, name: str, notebook: str, *columns: str) -> pd.DataFrame:
    """The ok, timed rows of table `name`, which must have `columns`."""
    df = _need(t, name, notebook, "status")
    ok = _ok(df) if "p50_ms" in df else df.iloc[:0]  # no p50_ms column: nothing was timed
    if ok.empty:
        raise Untestable(f"{name}.csv has no trusted measurement (status ok, with a time) in these results")
    _has(ok, name, *columns)
    return ok


def _cpu(t: dict, *columns: str) -> pd.DataFrame:
    """03's trusted model-only rows at each model's most threads, one per configuration."""
    df = _trusted(
        t,
        "03_cpu_sweep",
        "03_cpu_sweeps",
        "model",
        "engine",
        "threads",
        "batch_size",
        "seq_len",
        "scope",
        "n_params",
        *columns,
    )
    df = df[df["scope"] == "model"]
    df = df[df["threads"] == df.groupby("model")["threads"].transform("max")]
    if df.empty:
        raise Untestable("03 has no trusted model-only measurement in these results")
    return df.drop_duplicates(["model", "engine", "batch_size", "seq_len"])


def _gpu(t: dict, *columns: str) -> pd.DataFrame:
    df = t.get("04_gpu_sweep")
    if df is None or df.empty:
        raise Untestable("04_gpu_sweeps has not run")
    ok = _ok(df) if {"status", "p50_ms"} <= set(df.columns) else df.iloc[:0]
    if ok.empty:
        said = df["message"].dropna() if "message" in df else []
        why = said.iloc[0] if len(said) else "no configuration was measured"
        raise Untestable(f"no GPU results: {why}")
    _has(ok, "04_gpu_sweep", "model", "engine", "batch_size", "seq_len", "n_params", *columns)
    return ok


def _largest(df: pd.DataFrame, engines: tuple[str, ...]) -> tuple[str, pd.DataFrame]:
    """The largest model for which all `engines` were measured."""
    have = df.groupby("model")["engine"].apply(set)
    models = [m for m, e in have.items() if set(engines) <= e]
    if not models:
        raise Untestable(f"no model has all of {', '.join(engines)} measured")
    model = df[df["model"].isin(models)].sort_values("n_params")["model"].iloc[-1]
    return model, df[df["model"] == model]


def _widest(df: pd.DataFrame, column: str, engines: tuple[str, ...], fixed: dict) -> tuple[str, pd.DataFrame]:
    """The model with the widest range of `column` measured for `engines` at `fixed` values
    (ties: the larger model)."""
    sub = df[df["engine"].isin(engines)]
    for k, v in fixed.items():
        sub = sub[sub[k] == v]
    full = sub.groupby(["model", column])["engine"].nunique()
    full = full[full == len(engines)].reset_index()
    if full.empty:
        raise Untestable(f"no model has {', '.join(engines)} measured across {column} at {fixed}")
    span = full.groupby("model")[column].agg(lambda s: s.max() / s.min())
    params = sub.groupby("model")["n_params"].first()
    model = max(span.index, key=lambda m: (span[m], params[m]))
    keep = full[full["model"] == model][column]
    return model, sub[(sub["model"] == model) & sub[column].isin(keep)]


def _anchor_len(df: pd.DataFrame, prefer: int = 128) -> int:
    """03's batch sweep runs at 128 tokens; profiles without 128 use their most measured length."""
    return prefer if prefer in set(df["seq_len"]) else int(df["seq_len"].mode().iloc[0])


def _pivot(rows: pd.DataFrame, index: str, values: str = "p50_ms") -> pd.DataFrame:
    return rows.pivot_table(index=index, columns="engine", values=values)


def _complete(rows: pd.DataFrame, index: str, engines: tuple[str, ...], model: str) -> pd.DataFrame:
    """p50_ms by `index` and engine, at the values of `index` where every one of `engines` was measured."""
    p = _pivot(rows[rows["engine"].isin(engines)], index).reindex(columns=list(engines)).dropna()
    if p.empty:
        raise Untestable(f"{model}: {', '.join(engines)} were never all measured at the same {index.replace('_', ' ')}")
    return p


def _x(v: float) -> str:
    return f"{v:.2f}×"


def _ci(r) -> str:
    return f"{r.speedup:.2f}× (CI {r.speedup_ci_low:.2f}–{r.speedup_ci_high:.2f})"


def _less(before: float, after: float) -> str:
    return f"{_x(before / after)} less" if after <= before else f"{_x(after / before)} more"


def _roughly(ours: float, theirs: float) -> bool:
    return theirs / ROUGHLY <= ours <= theirs * ROUGHLY


def _verdict(ok: bool) -> str:
    return HOLDS if ok else FAILS


# ---------------------------------------------------------------- the claims
def c1(t):
    df = _cpu(t)
    n = _anchor_len(df)
    model, m = _largest(df[df["seq_len"] == n], ("eager", "torchscript", "ort"))
    p = _complete(m, "batch_size", ("eager", "torchscript", "ort"), model)
    wins = p["ort"] < p[["eager", "torchscript"]].min(axis=1)
    ours = "; ".join(
        f"batch {b}: eager {r.eager:.1f} ms, TorchScript {r.torchscript:.1f}, ORT {r.ort:.1f}" for b, r in p.iterrows()
    )
    return (
        _verdict(wins.all()),
        f"{model}, {n} tokens: {ours}",
        (
            f"ORT is the fastest of the three at {'every' if wins.all() else 'only some'} measured batch size "
            f"({', '.join(str(b) for b in p.index[wins]) or 'none'}); its margin is {_x((p['eager'] / p['ort']).min())}–"
            f"{_x((p['eager'] / p['ort']).max())} over eager, not the 50× of their setup"
        ),
    )


def c2(t):
    df = _gpu(t)
    model, m = _largest(df, ("eager", "torchscript", "ort"))
    length = _anchor_len(m)
    p = _complete(m[m["seq_len"] == length], "batch_size", ("eager", "torchscript", "ort"), model)
    small, large = p.iloc[0], p.iloc[-1]
    ok = small.idxmin() == "ort" and large["torchscript"] < large["ort"]
    return (
        _verdict(ok),
        (
            f"{model}, {length} tokens: batch {p.index[0]}: fastest {small.idxmin()}; "
            f"batch {p.index[-1]}: eager {large.eager:.2f} / TorchScript {large.torchscript:.2f} / "
            f"ORT {large.ort:.2f} ms"
        ),
        "ORT first at small batch and TorchScript ahead of ORT at large batch"
        + ("" if ok else " is not what was measured"),
    )


def c3(t):
    df = _gpu(t, "speedup", "speedup_ci_low", "speedup_ci_high")
    ort = df[df["engine"].isin(["ort", "ort-fp16"])]
    if ort.empty or ort["speedup"].isna().all():
        raise Untestable("no ORT engine was measured on the GPU")
    best = ort.loc[ort["speedup"].idxmax()]
    trt = df[df["engine"] == "ort-trt"]
    ok = _roughly(best.speedup, 3.0)
    ours = f"best ORT: {best.engine} at batch {best.batch_size} × {best.seq_len}, {_ci(best)}"
    if len(trt) and trt["speedup"].notna().any():
        t_best = trt.loc[trt["speedup"].idxmax()]
        ours += f"; TensorRT: {_ci(t_best)}"
        ok = ok and _roughly(t_best.speedup, 5.0)
        note = ""
    else:
        note = "; TensorRT was not available, so its part is untested"
    return (
        _verdict(ok),
        ours,
        f"2–4× for ORT{', about 5× for TensorRT' if not note else ''}, within a factor {ROUGHLY}{note}",
    )


def c4(t):
    reason = "the study's INT8 engines are CPU ones (ORT dynamic and static QDQ); GPU INT8 needs QDQ graphs on TensorRT"
    try:
        _gpu(t)
    except Untestable as exc:
        reason += f", and {exc}"
    raise Untestable(reason)


def c5(t):
    df = _cpu(t, "items_per_s")
    n = _anchor_len(df)
    model, m = _widest(df, "batch_size", ("eager",), {"seq_len": n})
    e = m.sort_values("batch_size")
    if len(e) < 2:
        raise Untestable(f"eager was measured at one batch size only ({model}, {n} tokens)")
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
        _verdict(gain >= 1.2),
        (
            f"{model}, eager, {n} tokens: batching from {e['batch_size'].iloc[0]} to "
            f"{e['batch_size'].iloc[-1]} raises items/s {_x(gain)}{spread}"
        ),
        (
            "batching pays on this CPU"
            if gain >= 1.2
            else "batching adds little throughput on this CPU (a 2-core CPU is busy at batch 1)"
        ),
    )


def c6(t):
    gen = _trusted(
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
    ours = f"batch {r.batch_size} × {r.seq_len} input, {r.new_tokens} new tokens: {_ci(r)}"
    ok = _roughly(r.speedup, 5.0)
    reason = f"5× faster and 2.2× less inference memory, each within a factor {ROUGHLY}"
    if {"torch", "ort-o3-int8"} <= set(mem.index):
        a, b = mem.loc["torch", "inference_mb"], mem.loc["ort-o3-int8", "inference_mb"]
        ours += f"; inference memory at batch {mem.loc['torch', 'batch_size']} × {mem.loc['torch', 'seq_len']}: +{a:.1f} → +{b:.1f} MB ({_less(a, b)})"
        ok = ok and _roughly(a / b, 2.2)
    else:
        reason += "; the inference memory of torch and ort-o3-int8 was not measured, so that part is untested"
    return _verdict(ok), ours, reason


def _ort_over_eager_by_size(rows: pd.DataFrame, engine: str = "ort", base: str = "eager") -> pd.Series:
    p = rows.pivot_table(index="model", columns="engine", values="p50_ms")
    if not {engine, base} <= set(p.columns):
        raise Untestable(f"{engine} and {base} were not both measured")
    return (p[base] / p[engine]).dropna()


def _size_groups(ratio: pd.Series, df: pd.DataFrame, small: float, large: float, what: str) -> tuple[bool, str]:
    params = df.groupby("model")["n_params"].first()
    small_r, large_r = ratio[params[ratio.index] <= SMALL_PARAMS], ratio[params[ratio.index] >= LARGE_PARAMS]
    if small_r.empty and large_r.empty:
        raise Untestable("neither small (≤ 30M) nor BERT-base-size (≥ 100M) models were measured")
    parts, ok = [], True
    for group, want, label in ((small_r, small, "small"), (large_r, large, "base-size")):
        if len(group):
            parts.append(f"{label}: " + ", ".join(f"{m} {_x(v)}" for m, v in group.items()))
            ok = ok and _roughly(float(group.median()), want)
    return ok, f"{what} " + "; ".join(parts)


def c7(t):
    df = _trusted(
        t, "03_cpu_sweep", "03_cpu_sweeps", "model", "engine", "scope", "threads", "batch_size", "seq_len", "n_params"
    )
    one = df[(df["scope"] == "model") & (df["threads"] == 1) & (df["batch_size"] == 1)]
    if one.empty:
        raise Untestable("03 measured nothing at 1 thread, batch 1")
    length = int(one["seq_len"].mode().iloc[0])
    ratio = _ort_over_eager_by_size(one[one["seq_len"] == length])
    ok, ours = _size_groups(ratio, df, 2.2, 1.8, f"ORT fp32 over eager, 1 thread, batch 1 × {length}:")
    return _verdict(ok), ours, f"about 2.2× for small models and 1.8× for BERT-base size, within a factor {ROUGHLY}"


def c8(t):
    df = _cpu(t)
    n = _anchor_len(df)
    at = df[(df["batch_size"] == 1) & (df["seq_len"] == n)]
    ratio = _ort_over_eager_by_size(at, "ort-int8", "ort")
    ok, ours = _size_groups(ratio, df, 1.45, 2.4, f"ORT INT8 over ORT fp32, batch 1 × {n}:")
    try:
        model, m = _widest(df[df["n_params"] <= SMALL_PARAMS], "seq_len", ("ort", "ort-int8"), {"batch_size": 8})
        p = _pivot(m, "seq_len")
        by_len = p["ort"] / p["ort-int8"]
        ours += f"; {model} at batch 8 over lengths {by_len.index.min()}–{by_len.index.max()}: {_x(by_len.min())}–{_x(by_len.max())}"
        ok = ok and all(_roughly(v, 1.25) for v in by_len)
    except Untestable:
        ours += "; no small-model length sweep"
    return (
        _verdict(ok),
        ours,
        f"1.4–1.5× (small), 2.4× (base size), about 1.25× at every length, within a factor {ROUGHLY}",
    )


def c9(t):
    df = _cpu(t, "speedup")
    n = _anchor_len(df)
    model, m = _widest(df, "batch_size", ("eager", "ort"), {"seq_len": n})
    s = m[m["engine"] == "ort"].set_index("batch_size")["speedup"]
    small, large = s[s.index <= 8], s[(s.index >= 32) & (s.index <= 64)]
    if large.empty:
        raise Untestable(f"the batch sweep of {model} stops at batch {s.index.max()} (no batch 32–64)")
    if small.empty:
        raise Untestable(f"the batch sweep of {model} starts at batch {s.index.min()} (no batch 1–8)")
    ok = small.mean() > large.mean()
    ours = f"{model}, {n} tokens: ORT over eager {_x(small.mean())} at batch 1–8, {_x(large.mean())} at 32–64"
    p = _pivot(m, "batch_size")
    if "ort-int8" in p:
        q = (p["ort"] / p["ort-int8"]).dropna()
        above, below = q[q.index > 32], q[q.index <= 32]
        if len(above) and len(below):
            ours += f"; INT8 over ORT fp32 {_x(below.mean())} up to batch 32, {_x(above.mean())} above"
            ok = ok and above.mean() > below.mean()
    return _verdict(ok), ours, "ORT's edge is largest at small batch, and INT8's grows above batch 32"


def c10(t):
    df = _cpu(t, "speedup", "speedup_ci_low", "speedup_ci_high")
    model, m = _widest(df, "seq_len", ("eager", "ort"), {"batch_size": 8})
    s = m[m["engine"] == "ort"].set_index("seq_len").sort_index()
    if len(s) < 2:
        raise Untestable(f"{model} at batch 8 was measured at one length only")
    short, long_ = s.iloc[0], s.iloc[-1]
    grows = long_.speedup > short.speedup * 1.1
    trend = "grows" if grows else ("shrinks" if long_.speedup < short.speedup / 1.1 else "stays level")
    return (
        _verdict(grows),
        (f"{model}, batch 8: ORT over eager {_ci(short)} at {s.index[0]} tokens, {_ci(long_)} at {s.index[-1]}"),
        f"ORT's advantage {trend} with length (more than 10% counts)",
    )


def c11(t):
    df = _cpu(t, "speedup", "speedup_ci_low")
    n = _anchor_len(df)
    model, m = _widest(df, "batch_size", ("eager", "torchscript", "ort"), {"seq_len": n})
    p = _complete(m, "batch_size", ("eager", "torchscript", "ort"), model)
    s = m[m["engine"] == "ort"].set_index("batch_size")
    below = s[s.index < 32]
    if below.empty:
        raise Untestable(f"the batch sweep of {model} starts at batch {s.index.min()} (none below 32)")
    clear = (below["speedup_ci_low"] > 1).all() and (
        p.loc[below.index, "ort"] < p.loc[below.index, "torchscript"]
    ).all()
    ours = (
        f"{model}, {n} tokens: ORT over eager {_x(below['speedup'].min())}–{_x(below['speedup'].max())} below batch 32"
    )
    if p.index.max() < 64:
        return (
            _verdict(clear),
            ours + f"; batch 64 not measured (largest {p.index.max()})",
            (
                "the first half (ONNX wins below 32) "
                + ("holds" if clear else "does not hold")
                + "; the convergence at 64 is untested"
            ),
        )
    row = p.loc[p.index[p.index >= 64][0]]
    spread = row.max() / row.min()
    return (
        _verdict(clear and spread <= 1.1),
        ours + f"; at batch {row.name} the three are within {100 * (spread - 1):.0f}%",
        ("ONNX wins clearly below 32, and the three are within about 10% by batch 64"),
    )


def c12(t):
    df = _gpu(t)
    model, m = _largest(df, ("eager",))
    length = _anchor_len(m)
    m = m[m["seq_len"] == length].assign(per_item=lambda d: d["p50_ms"] / d["batch_size"])
    knee = m[m["engine"] == "eager"].set_index("batch_size")["per_item"].sort_index()
    if len(knee) < 2:
        raise Untestable(f"eager was measured at fewer than two batch sizes ({model}, {length} tokens)")
    best = m.loc[m["per_item"].idxmin()]
    knee_batch = next((b for prev, b in zip(knee.index, knee.index[1:]) if knee[b] > 0.9 * knee[prev]), knee.index[-1])
    gain = knee.iloc[0] / best.per_item
    return (
        _verdict(gain >= 12 / ROUGHLY),
        (
            f"{model}, {length} tokens: eager stops gaining 10% per doubling at batch "
            f"{knee_batch}; best per-item time {best.engine} at batch {best.batch_size}, "
            f"{_x(gain)} over batch-{knee.index[0]} eager"
        ),
        "12× (T4) to 28× (V100) over batch-1 PyTorch",
    )


def _slope(x: pd.Series, y: pd.Series) -> float:
    return float(np.polyfit(np.log(x.astype(float)), np.log(y.astype(float)), 1)[0])


def c13(t):
    df = _cpu(t)
    eager = df[df["engine"] == "eager"]
    counts = eager.groupby(["model", "batch_size"])["seq_len"].nunique()
    grid = counts[counts >= 3].reset_index()
    if grid.empty or grid.groupby("model")["batch_size"].nunique().max() < 2:
        raise Untestable("no model was measured at 3+ lengths for two batch sizes")
    model = grid.groupby("model")["batch_size"].nunique().idxmax()
    sizes = grid[grid["model"] == model]["batch_size"]
    lo, hi = sizes.min(), sizes.max()
    rows = eager[eager["model"] == model]
    s_lo = _slope(rows[rows["batch_size"] == lo]["seq_len"], rows[rows["batch_size"] == lo]["p50_ms"])
    s_hi = _slope(rows[rows["batch_size"] == hi]["seq_len"], rows[rows["batch_size"] == hi]["p50_ms"])
    ok = s_hi >= 0.8 and s_lo < s_hi - 0.15
    return (
        _verdict(ok),
        (f"{model}, eager: time ∝ length^{s_hi:.2f} at batch {hi}, length^{s_lo:.2f} at batch {lo} (log-log slope)"),
        "slope about 1 (or more) at large batch, clearly lower at batch 1",
    )


def c14(t):
    df = _trusted(t, "05_sorting", "05_sequence_sorting", "distribution", "engine", "strategy", "batch_size", "n_texts")
    dist = df["distribution"].iloc[0]
    d = df[(df["distribution"] == dist) & (df["engine"] == df["engine"].iloc[0])]
    per_item = d.pivot_table(index="batch_size", columns="strategy", values="p50_ms") / d["n_texts"].iloc[0]
    if not {16, 64} <= set(per_item.index) or not {"unsorted", "sorted"} <= set(per_item.columns):
        raise Untestable(
            f"05 did not measure unsorted and sorted at batch 16 and 64 (batches {sorted(per_item.index)})"
        )
    change = per_item.loc[64] / per_item.loc[16] - 1
    ok = change["unsorted"] > change["sorted"] and change["sorted"] < 0.05
    return (
        _verdict(ok),
        (
            f"{dist}, {d['engine'].iloc[0]}, batch 16 → 64, time per item: unsorted "
            f"{100 * change['unsorted']:+.0f}%, sorted {100 * change['sorted']:+.0f}%"
        ),
        ("sorted data keeps gaining from larger batches while unsorted data does not"),
    )


def c15(t):
    v = _need(t, "02_variants", "02_quantization", "model", "method", "status", "cosine_min")
    int8 = v[v["method"].str.contains("int8", na=False) & v["cosine_min"].notna()]
    if int8.empty:
        raise Untestable("02 measured no INT8 variant's fidelity")
    by = int8.pivot_table(index="method", columns="model", values="cosine_min")
    spread = float(by.max().max() - by.min().min())
    bad = int8[int8["status"] == "mismatch"]
    ok = spread > 0.01 or (len(bad) and (int8["status"] == "ok").any())
    worst, best = int8.loc[int8["cosine_min"].idxmin()], int8.loc[int8["cosine_min"].idxmax()]
    return (
        _verdict(ok),
        (
            f"INT8 min cosine ranges {worst.cosine_min:.3f} ({worst.model}, {worst.method}) to "
            f"{best.cosine_min:.3f} ({best.model}, {best.method}); "
            f"{len(bad)} of {len(int8)} INT8 variants fail the tolerance"
        ),
        (
            "fidelity differs by model and method, so it must be measured"
            if ok
            else "every INT8 variant lost about the same"
        ),
    )


CLAIMS: dict[str, tuple[str, str, str, Callable]] = {
    "C1": (
        "CPU: ORT beats eager and TorchScript for BERT-base",
        "b1: eager 1870 ms, TS 2200, ONNX 36.2",
        "03_latency_vs_batch",
        c1,
    ),
    "C2": (
        "GPU: ORT fastest at small batch, TorchScript at large",
        "b1: 5.6/4.0/2.0 ms; b256: 22.3/21.8/25.2",
        "04_speedup_vs_batch",
        c2,
    ),
    "C3": (
        "GPU: ORT/Triton 2–4× over PyTorch, TensorRT about 5×",
        "2–4×; TensorRT 5× (up to 10×)",
        "04_speedup_vs_batch",
        c3,
    ),
    "C4": ("GPU INT8 (QDQ) 4.5× faster for −0.4 accuracy points", "RTX 3090: 77 → 17 ms", "", c4),
    "C5": ("CPU inference is weak without batching, short sequences, small models", "qualitative", "03_throughput", c5),
    "C6": (
        "T5-small: ONNX + O3 + INT8 about 5× faster, 2.2× less inference memory",
        "0.497 → 0.099 s; +11.3 → +4.9 MiB",
        "06_speedups",
        c6,
    ),
    "C7": (
        "1 CPU core: ORT 2.1–2.3× over PyTorch (small BERTs), 1.8× (base size)",
        "i5-1135G7, 1 thread",
        "03_model_size",
        c7,
    ),
    "C8": (
        "Dynamic INT8 adds 1.4–1.5× (small), 2.4× (base) over ORT fp32; ~1.25× at every length",
        "",
        "03_latency_vs_length",
        c8,
    ),
    "C9": (
        "ORT's edge largest at batch 1–8; INT8's edge grows above batch 32",
        "rubert-tiny2, batch 1…128",
        "03_throughput",
        c9,
    ),
    "C10": ("ORT's edge grows with sequence length, largest at 512", "16…512 tokens", "03_latency_vs_length", c10),
    "C11": (
        "CPU: ONNX wins below batch 32; the three formats within ~10% by batch 64",
        "camemBERT",
        "03_latency_vs_batch",
        c11,
    ),
    "C12": (
        "GPU: best batch depends on the GPU; 12× (T4) to 28× (V100) over batch-1",
        "T4: batch 8; V100: 32–64",
        "04_per_item_vs_batch",
        c12,
    ),
    "C13": ("Per-item time grows ~linearly with length at large batch, not at batch 1", "", "03_speedup_heatmap", c13),
    "C14": (
        "Sorting by length: batch 16→64, unsorted ~20% slower per item, sorted ~10% faster",
        "1k sentences",
        "05_throughput_eager",
        c14,
    ),
    "C15": ("Quantization costs a small, model-dependent accuracy loss: measure it per model", "", "02_pareto", c15),
}


def evaluate_claims(t: dict, figures_dir: str | Path | None = None) -> list[Verdict]:
    """Every claim with a verdict and its reason; nothing left blank."""
    out = []
    for cid, (claim, theirs, figure, fn) in CLAIMS.items():
        try:
            verdict, ours, reason = fn(t)
        except Untestable as exc:  # anything else is a bug, and raises
            verdict, ours, reason = UNTESTABLE, "—", str(exc)
        exists = figure and (figures_dir is None or (Path(figures_dir) / f"{figure}.png").exists())
        out.append(Verdict(cid, claim, theirs or "—", ours, verdict, reason, f"{figure}.png" if exists else ""))
    return out


def claims_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([asdict(v) for v in verdicts])


def _link(figure: str, prefix: str) -> str:
    return f"[{figure.removesuffix('.png')}]({prefix}{figure})" if figure else "—"


def claims_markdown(verdicts: list[Verdict], figure_prefix: str = "../figures/") -> str:
    lines = ["| claim | their figure | ours, on this hardware | verdict | why | figure |", "|---|---|---|---|---|---|"]
    lines += [
        f"| **{v.id}** {v.claim} | {v.theirs} | {v.ours} | **{v.verdict}** | {v.reason} | {_link(v.figure, figure_prefix)} |"
        for v in verdicts
    ]
    return "\n".join(lines)
