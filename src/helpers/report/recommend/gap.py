"""Where 07_pipeline's time goes, and what bounds the speed-up any pipeline could reach on this
machine: read from results/07_time.csv (each whole-corpus pipeline timed phase by phase) and
00_environment's ceilings; it measures nothing.

The bounds remove one cost at a time from the recommended pipeline's measured pass (its
one-process, no-overlap counterpart timed phase by phase; the fastest timed one when none met
the floors), each step keeping the ones before: padding (the engine's time on padded tokens, by
their share of the FLOPs), the engine's shortfall from 00's measured GEMM rate of its precision
at this model's own shapes (the large square GEMM's rate where 00 did not measure them),
tokenization (hidden by perfect overlap), and last the precision itself (the machine's fastest
measured rate, fidelity aside). Totals are the interleaved passes' medians, the one measurement
every figure of 07 quotes; the phase-by-phase pass gives the phases only (`on_interleaved`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from helpers.core.machine import best_shape_rate
from helpers.report.recommend.pipeline import recommended
from helpers.studies.pipeline import NAIVE


def focus(times: pd.DataFrame, df: pd.DataFrame) -> pd.Series | None:
    """The timed row of the recommended pipeline (its one-process, no-overlap counterpart), or the
    fastest timed pipeline other than the naive one when none met the floors."""
    ok = times[(times["status"] == "ok") & (times["candidate"] != NAIVE)] if len(times) else times
    if not len(ok):
        return None
    best = recommended(df) if len(df) else None
    if best is not None:
        same = ok[
            (ok["variant"] == best["variant"])
            & (ok["strategy"] == best["strategy"])
            & (ok["batch_size"] == best["batch_size"])
        ]
        if len(same):
            return same.iloc[0]
    return ok.sort_values("total_ms").iloc[0]


def naive_row(times: pd.DataFrame) -> pd.Series | None:
    hit = times[(times["candidate"] == NAIVE) & (times["status"] == "ok")] if len(times) else times
    return hit.iloc[0] if len(hit) else None


def interleaved_ms(df: pd.DataFrame, candidate: str) -> float:
    """A pipeline's median pass in 07's interleaved whole-corpus passes (NaN when not there)."""
    hit = df[(df["candidate"] == candidate) & df["p50_ms"].notna()] if len(df) and "p50_ms" in df else df.iloc[:0]
    return float(hit["p50_ms"].iloc[0]) if len(hit) else math.nan


def on_interleaved(row: pd.Series | None, df: pd.DataFrame) -> pd.Series | None:
    """A phase-timed row held to the one measurement every figure quotes: its total is its median
    pass in the interleaved passes, its tokenization, engine and pooling phases are as timed, and
    the rest (Python, copies, normalizing) is what is left of the interleaved pass. A row 07 did
    not pass through the interleaved passes keeps its phase-timed total."""
    if row is None:
        return None
    total = interleaved_ms(df, row["candidate"])
    if math.isnan(total):
        return row
    timed = row["lengths_ms"] + row["tokenize_ms"] + row["engine_ms"] + _pooling(row)
    held = row.copy()
    held["total_ms"], held["other_ms"] = total, max(total - timed, 0.0)
    return held


def _pooling(row: pd.Series) -> float:
    """The pooling phase (0 in tables that timed it inside the engine)."""
    value = row.get("pooling_ms", 0.0)
    return 0.0 if pd.isna(value) else float(value)


def ceiling_of(row: pd.Series, rates: dict[str, float]) -> tuple[float, str]:
    """The GEMM rate the engine is held against, and where it comes from: 00's rate at this
    model's shapes where measured, else its large square GEMM's rate for the precision."""
    shape = row.get("shape_gflops", math.nan)
    if pd.notna(shape) and shape > 0:
        m = row["tokens_per_call"]
        return float(
            shape
        ), f"at this model's shapes (M ≈ {m:.0f} tokens a call, K = {int(row['hidden'])}, N = K and 4K)"
    return rates.get(row["precision"], math.nan), "of a large square GEMM (00 did not measure this model's shapes)"


def gap_steps(times: pd.DataFrame, df: pd.DataFrame, rates: dict[str, float]) -> pd.DataFrame:
    """The bounds, one row per cost removed: step, what, ms per corpus pass, speed-up over the
    naive pass (empty when the naive or the focus pipeline was not timed). `rates`: the measured
    GEMM rate per precision (core.machine.ceilings_by_precision)."""
    base, row = on_interleaved(naive_row(times), df), on_interleaved(focus(times, df), df)
    if base is None or row is None:
        return pd.DataFrame(columns=["step", "what", "ms", "speedup"])
    tokens = row["lengths_ms"] + row["tokenize_ms"]
    rest = row["other_ms"] + _pooling(row)
    real_share = row["real_gflop"] / row["computed_gflop"] if row["computed_gflop"] else 1.0
    engine = row["engine_ms"] * real_share
    steps = [
        ("naive", "eager fp32, one text at a time", base["total_ms"]),
        ("measured", f"{row['candidate']}, its interleaved pass, phases timed apart", row["total_ms"]),
        (
            "no padding",
            f"its engine time on padding removed ({1 - real_share:.0%} of its FLOPs)",
            tokens + rest + engine,
        ),
    ]
    ceiling, where = ceiling_of(row, rates)
    if ceiling == ceiling and ceiling > 0:
        at_rate = min(engine, row["real_gflop"] / ceiling * 1e3)
        what = f"the engine at 00's measured {row['precision']} GEMM rate {where} ({ceiling:.0f} GFLOP/s)"
        steps.append(("engine at ceiling", what, tokens + rest + at_rate))
        engine = at_rate
    steps.append(
        (
            "tokenization hidden",
            "tokenization overlapped perfectly with the engine",
            max(tokens, rest + engine),
        )
    )
    fastest = max(rates, key=rates.get) if rates else None
    if fastest and rates[fastest] > (ceiling if ceiling == ceiling else 0):
        best_engine = row["real_gflop"] / rates[fastest] * 1e3
        what = f"at the fastest measured rate, {fastest} ({rates[fastest]:.0f} GFLOP/s), fidelity aside"
        steps.append(("fastest precision", what, max(tokens, rest + min(engine, best_engine))))
    out = pd.DataFrame(steps, columns=["step", "what", "ms"])
    return out.assign(speedup=base["total_ms"] / out["ms"])


def layout_note(row: pd.Series, df: pd.DataFrame) -> str:
    """The recommended pipeline's own measured pass against its one-process counterpart's
    phases: what the layout (processes, the tokenization thread) adds or saves, Python and
    inter-process overhead included."""
    best = recommended(df) if len(df) else None
    if best is None or pd.isna(best.get("p50_ms")) or best["candidate"] == row["candidate"]:
        return ""
    diff = float(best["p50_ms"]) - float(row["total_ms"])
    how = "adds" if diff > 0 else "saves"
    return (
        f" The recommended pipeline itself, **{best['candidate']}**, measured {best['p50_ms']:.0f} ms a pass in the "
        f"same interleaved passes: its layout {how} {abs(diff):.0f} ms against its one-process counterpart "
        "(processes, streams or a tokenization thread, with their Python and inter-process overhead)."
    )


def gap_takeaway(times: pd.DataFrame, df: pd.DataFrame, rates: dict[str, float], target: float) -> str:
    """What the recommended pipeline's pass is made of (tokenization, padding, engine, pooling,
    the rest, the layout), how its engine compares with 00's GEMM rate at its shapes, and how
    far the bounds reach towards `target` times the naive pipeline."""
    steps = gap_steps(times, df, rates)
    if not len(steps):
        return "The naive pipeline or the recommended one was not timed phase by phase, so there is no breakdown."
    base, row = on_interleaved(naive_row(times), df), on_interleaved(focus(times, df), df)
    need = base["total_ms"] / target
    total = row["total_ms"]
    tokens = (row["lengths_ms"] + row["tokenize_ms"]) / total
    ceiling, where = ceiling_of(row, rates)
    eff = (
        f"at {row['engine_gflops']:.0f} GFLOP/s, {row['engine_gflops'] / ceiling:.0%} of 00's measured "
        f"{row['precision']} GEMM rate {where}, {ceiling:.0f} GFLOP/s"
        if ceiling == ceiling and ceiling > 0
        else f"at {row['engine_gflops']:.0f} GFLOP/s (no ceiling measured: run 00_environment)"
    )
    measured = steps.set_index("step")["speedup"]
    bound = steps["speedup"].iloc[-1]
    bounds = "; ".join(f"{s} {x:.1f}x" for s, x in zip(steps["step"].iloc[2:], steps["speedup"].iloc[2:]))
    verdict = (
        f"Even with every cost above removed the bound is {bound:.1f}x, short of {target:g}x: on this machine "
        f"{target:g}x over the naive pipeline is out of reach for this model and corpus."
        if bound < target
        else f"The bound ({bound:.1f}x) clears {target:g}x, so the gap is the costs above, not the machine."
    )
    return (
        f"{target:g}x the naive pipeline means a corpus pass of {need:.0f} ms (naive: {base['total_ms']:.0f} ms). "
        f"The recommended pipeline in one process, **{row['candidate']}**, takes {total:.0f} ms a pass in the "
        f"interleaved passes ({measured['measured']:.2f}x; its phases timed apart): tokenization {tokens:.0%} of it, the engine "
        f"{row['engine_ms'] / total:.0%} {eff}, with {row['padding_share']:.0%} of the tokens it computes being "
        f"padding; mean pooling {_pooling(row) / total:.0%} and the rest (Python, copies, normalizing) "
        f"{row['other_ms'] / total:.0%}.{layout_note(row, df)} Removing one cost after another: {bounds}. {verdict}"
    )


# ---------------------------------------------------------------- the pipeline's limit
@dataclass(frozen=True)
class Limit:
    """What this machine allows a pipeline of the recommended precision on this corpus: the
    engine at 00's best GEMM rate at the model's own shapes on the corpus's real tokens only
    (no padding), plus tokenization at its measured rate, one after the other."""

    precision: str
    rate_gflops: float  # 00's best rate at this model's shapes (harmonic mean of a layer's GEMMs)
    m: float  # the tokens per call that rate was measured at
    engine_ms: float  # the corpus's real tokens at that rate
    tokenization_ms: float  # the recommended pipeline's length pass and tokenizing, as timed
    n_texts: int

    @property
    def texts_per_s(self) -> float:
        return self.n_texts / ((self.engine_ms + self.tokenization_ms) / 1e3)

    @property
    def engine_texts_per_s(self) -> float:
        return self.n_texts / (self.engine_ms / 1e3)


def pipeline_limit(times: pd.DataFrame, df: pd.DataFrame, shapes: pd.DataFrame | None) -> Limit | None:
    """The limit for the recommended pipeline's precision (its one-process counterpart's phases),
    None where 07 or 00 did not measure what it needs (00's `gemm_hidden` must hold the model's width)."""
    row = focus(times, df) if len(times) else None
    if row is None or pd.isna(row.get("hidden", math.nan)):
        return None
    rate, m = best_shape_rate(shapes, row["precision"], int(row["hidden"]), int(row["threads"]))
    if not rate == rate:
        return None
    n = int(df.loc[df["candidate"] == row["candidate"], "n_texts"].iloc[0]) if "n_texts" in df else 0
    engine_ms = row["real_gflop"] / rate * 1e3
    return Limit(row["precision"], rate, m, engine_ms, row["lengths_ms"] + row["tokenize_ms"], n)


def with_limit_share(df: pd.DataFrame, limit: Limit | None) -> pd.DataFrame:
    """The whole-corpus rows (candidates and peers) with their share of the limit's texts/s."""
    corpus = df[df["stage"] == "corpus"] if len(df) else df
    share = corpus["items_per_s"] / limit.texts_per_s if limit is not None else math.nan
    return corpus.assign(share_of_limit=share)


def limit_text(df: pd.DataFrame, limit: Limit | None) -> str:
    """The limit in words and the recommended pipeline's share of it."""
    if limit is None:
        return "The limit is not known: 00_environment did not measure the GEMM rate at this model's width here."
    best = recommended(df) if len(df) else None
    share = (
        f" The recommended pipeline reaches {best['items_per_s'] / limit.texts_per_s:.0%} of it."
        if best is not None
        else ""
    )
    unit = "GOP/s" if limit.precision == "int8" else "GFLOP/s"
    return (
        f"**The limit** for {limit.precision} on this corpus: {limit.texts_per_s:.0f} texts/s, the engine at 00's best "
        f"{limit.precision} GEMM rate at this model's shapes ({limit.rate_gflops:.0f} {unit} at M = {limit.m:.0f} "
        f"tokens a call) on the real tokens only ({limit.engine_texts_per_s:.0f} texts/s), plus tokenization at its "
        f"measured rate ({limit.tokenization_ms:.0f} ms a pass).{share}"
    )
