"""Where 07_pipeline's time goes, and what bounds the speed-up any pipeline could reach on this
machine: read from results/07_time.csv (each whole-corpus pipeline timed phase by phase) and
00_environment's ceilings; it measures nothing.

The bounds remove one cost at a time from the recommended pipeline's measured pass (its
one-process, no-overlap counterpart timed phase by phase; the fastest timed one when none met
the floors), each step keeping the ones before: padding (the engine's time on padded tokens, by
their share of the FLOPs), the engine's shortfall from 00's measured GEMM rate of its precision
at this model's own shapes (the large square GEMM's rate where 00 did not measure them),
tokenization (hidden by perfect overlap), and last the precision itself (the machine's fastest
measured rate, fidelity aside).
"""

from __future__ import annotations

import math

import pandas as pd

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
    base, row = naive_row(times), focus(times, df)
    if base is None or row is None:
        return pd.DataFrame(columns=["step", "what", "ms", "speedup"])
    tokens = row["lengths_ms"] + row["tokenize_ms"]
    rest = row["other_ms"] + _pooling(row)
    real_share = row["real_gflop"] / row["computed_gflop"] if row["computed_gflop"] else 1.0
    engine = row["engine_ms"] * real_share
    steps = [
        ("naive", "eager fp32, one text at a time", base["total_ms"]),
        ("measured", f"{row['candidate']}, timed phase by phase", row["total_ms"]),
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
        f"interleaved passes: its layout {how} {abs(diff):.0f} ms against its phases in one process "
        "(processes, streams or a tokenization thread, with their Python and inter-process overhead)."
    )


def gap_takeaway(times: pd.DataFrame, df: pd.DataFrame, rates: dict[str, float], target: float) -> str:
    """What the recommended pipeline's pass is made of (tokenization, padding, engine, pooling,
    the rest, the layout), how its engine compares with 00's GEMM rate at its shapes, and how
    far the bounds reach towards `target` times the naive pipeline."""
    steps = gap_steps(times, df, rates)
    if not len(steps):
        return "The naive pipeline or the recommended one was not timed phase by phase, so there is no breakdown."
    base, row = naive_row(times), focus(times, df)
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
        f"The recommended pipeline, timed phase by phase in one process as **{row['candidate']}**, takes "
        f"{total:.0f} ms ({measured['measured']:.2f}x): tokenization {tokens:.0%} of it, the engine "
        f"{row['engine_ms'] / total:.0%} {eff}, with {row['padding_share']:.0%} of the tokens it computes being "
        f"padding; mean pooling {_pooling(row) / total:.0%} and the rest (Python, copies, normalizing) "
        f"{row['other_ms'] / total:.0%}.{layout_note(row, df)} Removing one cost after another: {bounds}. {verdict}"
    )
