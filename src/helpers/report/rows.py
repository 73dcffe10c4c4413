"""Which rows of a result table are trusted, and which cells they belong to: the one place that
selects rows for the charts, the claims' checks (report.claims.rules), the recommendations
(report.recommend) and the prose alike. A selector for a claim or a recommendation raises
Untestable, with the reason, when the results hold no such rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from helpers.core.policy import POLICY


# ---------------------------------------------------------------- trusted rows, any table
def trusted(df: pd.DataFrame) -> pd.DataFrame:
    """The rows a chart, takeaway or claim may quote as a time: status ok and a median time
    (p50_ms) measured. A table without either column has no trusted row (an empty frame)."""
    if "status" not in df or "p50_ms" not in df:
        return df.iloc[:0]
    return df[(df["status"] == "ok") & df["p50_ms"].notna()]


def at_most_threads(df: pd.DataFrame) -> pd.DataFrame:
    """Model-only rows (scope "model": tokenization excluded) at each model's largest thread
    count among them: the slice the sweeps' charts, takeaways and claims compare engines on."""
    model = df[df["scope"] == "model"]
    return model[model["threads"] == model.groupby("model")["threads"].transform("max")]


def thread_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Model-only measured rows of the shapes that were measured at more than one thread count."""
    ok = df[(df["scope"] == "model") & df["p50_ms"].notna()]
    counts = ok.groupby(["model", "engine", "batch_size", "seq_len"])["threads"].transform("nunique")
    return ok[counts > 1]


class Untestable(Exception):
    """The results cannot test this claim; str is why."""


def has_columns(df: pd.DataFrame, name: str, *columns: str) -> None:
    """Untestable unless table `name` has every one of `columns` (a column appears only
    once some row has a value for it, e.g. no `speedup` where the baseline never ran)."""
    missing = [c for c in columns if c not in df]
    if missing:
        raise Untestable(f"{name}.csv has no {', '.join(missing)} column{'s' * (len(missing) > 1)} in these results")


def need(t: dict, name: str, notebook: str, *columns: str) -> pd.DataFrame:
    df = t.get(name)
    if df is None or df.empty:
        raise Untestable(f"{notebook} has not produced {name}.csv in these results")
    has_columns(df, name, *columns)
    return df


def trusted_table(t: dict, name: str, notebook: str, *columns: str) -> pd.DataFrame:
    """The trusted rows (status ok, with a time) of table `name`, which must have `columns`."""
    ok = trusted(need(t, name, notebook, "status"))  # no p50_ms column: nothing was timed
    if ok.empty:
        raise Untestable(f"{name}.csv has no trusted measurement (status ok, with a time) in these results")
    has_columns(ok, name, *columns)
    return ok


CPU_COLUMNS = ("model", "engine", "threads", "batch_size", "seq_len", "scope", "n_params")


def cpu_rows(t: dict, *columns: str) -> pd.DataFrame:
    """03's trusted model-only rows at each model's most threads, one per configuration."""
    df = at_most_threads(trusted_table(t, "03_cpu_sweep", "03_cpu_sweeps", *CPU_COLUMNS, *columns))
    if df.empty:
        raise Untestable("03 has no trusted model-only measurement in these results")
    return df.drop_duplicates(["model", "engine", "batch_size", "seq_len"])


def gpu_rows(t: dict, *columns: str) -> pd.DataFrame:
    """04's trusted rows (which must have `columns`); untestable, with 04's own reason, when none."""
    df = t.get("04_gpu_sweep")
    if df is None or df.empty:
        raise Untestable("04_gpu_sweeps has not run")
    ok = trusted(df)
    if ok.empty:
        said = df["message"].dropna() if "message" in df else []
        why = said.iloc[0] if len(said) else "no configuration was measured"
        raise Untestable(f"no GPU results: {why}")
    has_columns(ok, "04_gpu_sweep", "model", "engine", "batch_size", "seq_len", "n_params", *columns)
    return ok


def largest(df: pd.DataFrame, engines: tuple[str, ...], near: float | None = None) -> tuple[str, pd.DataFrame]:
    """The largest model for which all `engines` were measured; with `near` (parameters), the
    one closest to that size (a claim about BERT-base is judged on bert-base, not bert-large)."""
    have = df.groupby("model")["engine"].apply(set)
    models = [m for m, e in have.items() if set(engines) <= e]
    if not models:
        raise Untestable(f"no model has all of {', '.join(engines)} measured")
    params = df[df["model"].isin(models)].groupby("model")["n_params"].first()
    if near:
        model = min(params.index, key=lambda m: (abs(math.log(params[m] / near)), -params[m]))
    else:
        model = params.idxmax()
    return model, df[df["model"] == model]


def widest(
    df: pd.DataFrame, column: str, engines: tuple[str, ...], fixed: dict, spans: tuple | None = None
) -> tuple[str, pd.DataFrame]:
    """The model with the widest range of `column` measured for `engines` at `fixed` values
    (ties: the larger model). With `spans` (lo, hi): the largest model measured from lo or
    below to hi or above, the range a claim needs, so a claim about BERT-base is judged on the
    model nearest it; the widest one when none spans it."""
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
    if spans:
        bounds = full.groupby("model")[column].agg(["min", "max"])
        covering = bounds[(bounds["min"] <= spans[0]) & (bounds["max"] >= spans[1])].index
        model = max(covering, key=lambda m: params[m], default=model)
    keep = full[full["model"] == model][column]
    return model, sub[(sub["model"] == model) & sub[column].isin(keep)]


def anchor_len(df: pd.DataFrame, prefer: int = 128) -> int:
    """03's batch sweep runs at 128 tokens; profiles without 128 use their most measured length."""
    return prefer if prefer in set(df["seq_len"]) else int(df["seq_len"].mode().iloc[0])


def pivot(rows: pd.DataFrame, index: str, values: str = "p50_ms") -> pd.DataFrame:
    return rows.pivot_table(index=index, columns="engine", values=values)


def complete(rows: pd.DataFrame, index: str, engines: tuple[str, ...], model: str) -> pd.DataFrame:
    """p50_ms by `index` and engine, at the values of `index` where every one of `engines` was measured."""
    p = pivot(rows[rows["engine"].isin(engines)], index).reindex(columns=list(engines)).dropna()
    if p.empty:
        raise Untestable(f"{model}: {', '.join(engines)} were never all measured at the same {index.replace('_', ' ')}")
    return p


def one_thread_cell(t: dict) -> tuple[int, pd.DataFrame]:
    """C7's cell: 03's trusted model-only rows at 1 thread and batch 1, at the length measured
    most there, and that length (the claim's check and its figure read the same rows)."""
    df = trusted_table(t, "03_cpu_sweep", "03_cpu_sweeps", *CPU_COLUMNS)
    one = df[(df["scope"] == "model") & (df["threads"] == 1) & (df["batch_size"] == 1)]
    if one.empty:
        raise Untestable("03 measured nothing at 1 thread, batch 1")
    length = int(one["seq_len"].mode().iloc[0])
    return length, one[one["seq_len"] == length].drop_duplicates(["model", "engine"])


def length_slope_cell(t: dict) -> tuple[str, pd.DataFrame]:
    """C13's cell: eager rows of the model measured at 3 or more lengths for the most batch
    sizes (at its most threads, model only), only the batch sizes with 3 or more lengths."""
    eager = cpu_rows(t)
    eager = eager[eager["engine"] == "eager"]
    counts = eager.groupby(["model", "batch_size"])["seq_len"].nunique()
    grid = counts[counts >= 3].reset_index()
    if grid.empty or grid.groupby("model")["batch_size"].nunique().max() < 2:
        raise Untestable("no model was measured at 3+ lengths for two batch sizes")
    model = grid.groupby("model")["batch_size"].nunique().idxmax()
    sizes = grid[grid["model"] == model]["batch_size"]
    return model, eager[(eager["model"] == model) & eager["batch_size"].isin(sizes)]


def length_slopes(rows: pd.DataFrame) -> pd.Series:
    """Per batch size: the log-log slope of median latency against sequence length."""
    return rows.groupby("batch_size").apply(
        lambda r: float(np.polyfit(np.log(r["seq_len"].astype(float)), np.log(r["p50_ms"].astype(float)), 1)[0])
    )


# engines that run another engine's 02 method as it is: compile-bf16 compiles torch-bf16's bf16 weights
SAME_RECIPE = {"compile-bf16": "torch-bf16"}


def timed_recipe(engine: str, rows: pd.DataFrame, t: dict) -> str:
    """The 02_quantization method an engine's timed rows ran: their `recipe` column (03 records
    it for ort-int8); else the engine's own name (torch-bf16, torch-int8, ov-int8 ... are 02 methods
    too), or the method it compiles (SAME_RECIPE).
    ort-int8 rows written before 03 recorded its recipe ran the method best_int8_method chose by
    the rule of that time (within tolerance on any model)."""
    from helpers.backends.variants import best_int8_method

    recorded = rows["recipe"].dropna().astype(str) if "recipe" in rows else pd.Series(dtype=str)
    recorded = recorded[recorded != ""]
    if len(recorded):
        return recorded.iloc[0]
    if engine == "ort-int8":
        return best_int8_method(t.get("02_variants"), t.get("02_speed"), real_weights_only=False)[0]
    return SAME_RECIPE.get(engine, engine)


# ---------------------------------------------------------------- 04's cells
def measured_rows(sweep: pd.DataFrame) -> pd.DataFrame:
    """The rows of configurations that ran (ok or mismatch): what the charts draw."""
    return sweep[sweep["status"].isin(["ok", "mismatch"])] if len(sweep) else sweep


def largest_batch_that_fits(df: pd.DataFrame) -> pd.DataFrame:
    """Per model, engine and length: the largest batch measured without running out of memory,
    and whether some batch did run out (else the grid's top is a lower bound)."""
    measured = df[df["status"].isin(["ok", "mismatch"])]
    fits = measured.groupby(["model", "engine", "seq_len"])["batch_size"].max().rename("largest_batch")
    oom = (
        df[df["status"] == "oom"].groupby(["model", "engine", "seq_len"])["batch_size"].min().rename("first_oom_batch")
    )
    return fits.to_frame().join(oom, how="outer").reset_index()


def fits_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """`largest_batch_that_fits` of the measured rows (empty when nothing was measured)."""
    return largest_batch_that_fits(sweep) if len(measured_rows(sweep)) else sweep.iloc[:0]


# ---------------------------------------------------------------- noisy rows decide nothing
CELL_KEYS = ("model", "distribution", "engine", "strategy")


# A row decides a verdict only when its median is known (the decision policy's rule: at least
# POLICY.deciding_n timed calls or passes, a 95% CI within POLICY.deciding_ci of the median).
# The spread of the calls themselves (CV, the `noisy` flag) is not the question: 350 calls with
# a CV of 12% still pin the median to within 3%.


def flagged_noisy(rows: pd.DataFrame) -> pd.Series:
    """Per row, whether its median is too uncertain to decide a verdict (POLICY.decides: too few
    timings, or a 95% CI too wide). A table without those columns falls back to its `noisy`
    flag; one with neither flags nothing."""
    if "ci_half_width" in rows and "n" in rows:
        return ~pd.Series(map(POLICY.decides, rows["n"], rows["ci_half_width"]), index=rows.index, dtype=bool)
    if "noisy" not in rows:
        return pd.Series(False, index=rows.index)
    return rows["noisy"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))


def cell_label(r: pd.Series) -> str:
    """A row's cell as a claim's reason names it: model, engine ..., batch × length, and its spread."""
    name = " ".join(str(r[k]) for k in CELL_KEYS if k in r and pd.notna(r[k]))
    if "batch_size" in r:
        name += f" batch {r['batch_size']}" + (f" × {r['seq_len']}" if "seq_len" in r else "")
    spread = [f"n = {r['n']:.0f}"] if "n" in r and pd.notna(r["n"]) else []
    if pd.notna(r.get("speedup_ci_low")) and pd.notna(r.get("speedup_ci_high")):
        spread.append(f"CI {r['speedup_ci_low']:.2f}–{r['speedup_ci_high']:.2f}")
    elif "cv" in r and pd.notna(r["cv"]):
        spread.append(f"CV {100 * r['cv']:.0f}%")
    return name + (f" ({', '.join(spread)})" if spread else "")


def decided_by(*frames: pd.DataFrame) -> None:
    """The one rule on noisy rows: a verdict resting on `frames` (the rows that decide it) is
    Untestable, "cannot be decided: noisy (the cells)", when any of them is flagged noisy."""
    flagged = [r for f in frames for _, r in f[flagged_noisy(f)].iterrows()]
    if flagged:
        raise Untestable(f"cannot be decided: noisy ({'; '.join(cell_label(r) for r in flagged)})")
