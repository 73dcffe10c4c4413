"""Facts about this machine that later studies read from 00_environment's table: the thread
counts to sweep and the measured ceilings per precision."""

from __future__ import annotations

import math
import os

import pandas as pd


def ceilings_by_precision(ceilings: pd.DataFrame | None, threads: int) -> dict[str, float]:
    """The best GEMM rate per precision at `threads` from 00_ceilings (empty if not measured)."""
    if ceilings is None or ceilings.empty:
        return {}
    return {p: ceiling_for(ceilings, p, threads=threads) for p in ("fp32", "bf16", "int8", "fp16")}


def nominal_by_precision(ceilings: pd.DataFrame | None, threads: int) -> dict[str, float]:
    """The nominal peak per precision at `threads` from 00_ceilings' 'nominal' rows (empty if
    00 did not compute them)."""
    if ceilings is None or ceilings.empty:
        return {}
    rows = ceilings[(ceilings["kind"] == "nominal") & (ceilings["threads"] == threads) & (ceilings["status"] == "ok")]
    return dict(zip(rows["precision"], rows["value"].astype(float)))


def default_thread_counts(cores: int | None = None) -> list[int]:
    """1, 2, 4 ... and the machine's logical core count itself."""
    cores = cores or os.cpu_count() or 1
    counts = [1 << i for i in range(cores.bit_length()) if 1 << i <= cores]
    return counts if counts[-1] == cores else counts + [cores]


def thread_counts(threads: list[int]) -> list[int]:
    """The thread counts to measure: `threads`, or 1, 2, 4 ... up to the logical cores when empty."""
    return threads or default_thread_counts()


def ceiling_for(
    df, precision: str, device: str = "cpu", threads: int | None = None, library: str | None = None
) -> float:
    """The best measured GEMM rate (GFLOP/s or GOP/s) for a precision, from 00_ceilings rows:
    the ceiling later notebooks divide achieved FLOP/s by. NaN if it was not measured."""
    rows = df[
        (df["kind"] == "gemm") & (df["precision"] == precision) & (df["device"] == device) & (df["status"] == "ok")
    ]
    if threads is not None:
        rows = rows[rows["threads"] == threads]
    if library is not None:
        rows = rows[rows["library"] == library]
    return float(rows["value"].max()) if len(rows) else math.nan


def cell_ceiling(shapes, square_rate: float, precision: str, hidden: int, m: float, threads: int) -> tuple[float, str]:
    """The GEMM rate a timed cell is held against, and where it comes from: 00's rate at the
    model's own layer shapes (its width, the M nearest the cell's tokens per call; the nearest
    width 00 measured where it did not measure this one), else the square GEMM's rate."""
    widths = [] if shapes is None or not len(shapes) or "hidden" not in shapes else shapes["hidden"].unique()
    if len(widths):
        nearest = int(min(widths, key=lambda h: abs(math.log(h / max(hidden, 1)))))
        rate = shape_rate(shapes, precision, nearest, m, threads)
        if rate == rate:
            return rate, "model shapes" if nearest == hidden else f"shapes of width {nearest}"
    return square_rate, "square GEMM"


def best_shape_rate(df, precision: str, hidden: int, threads: int) -> tuple[float, float]:
    """The best GEMM rate 00 measured for an encoder layer of width `hidden` in `precision` at
    `threads`, over the tokens per call it tried, and that M: (rate, m), NaNs where not measured."""
    if df is None or not len(df) or "hidden" not in df:
        return math.nan, math.nan
    ok = df[(df["status"] == "ok") & (df["precision"] == precision) & (df["hidden"] == hidden)]
    rates = {m: shape_rate(df, precision, hidden, m, threads) for m in ok["m"].unique()}
    rates = {m: r for m, r in rates.items() if r == r}
    if not rates:
        return math.nan, math.nan
    m = max(rates, key=rates.get)
    return rates[m], float(m)


def shape_rate(df, precision: str, hidden: int, m: float, threads: int) -> float:
    """The GEMM rate of an encoder layer of width `hidden` at about `m` tokens per call in
    `precision` (the best library), from 00_gemm_shapes: the harmonic mean over the layer's
    three shapes at the measured M nearest `m` (log scale). NaN where 00 did not measure it."""
    if df is None or not len(df) or "hidden" not in df:
        return math.nan
    ok = df[(df["status"] == "ok") & (df["precision"] == precision) & (df["hidden"] == hidden)]
    ok = ok[ok["threads"] == threads] if (ok["threads"] == threads).any() else ok.iloc[:0]
    if not len(ok):
        return math.nan
    nearest = min(ok["m"].unique(), key=lambda x: abs(math.log(x / max(m, 1))))
    best = ok[ok["m"] == nearest].groupby(["k", "n"])["value"].max()
    return len(best) / float((1 / best).sum()) if len(best) == 3 else math.nan
