"""Where a whole pipeline's time goes (07_pipeline, results/07_time.csv): each pipeline measured
on the whole corpus, timed again phase by phase in one process: the length pass, tokenizing the
batches, the engine, mean pooling and the rest (Python, copies, normalizing); the tokens it
computes against the real ones (padding left); and the engine's GFLOP/s against 00_environment's
measured GEMM rate for its precision, both the large square GEMM's (`ceiling_gflops`) and the
rate at this model's own shapes (`shape_gflops`: M = the tokens of an engine call, K = hidden,
N = hidden and 4 x hidden). The report turns these rows into the bounds of what any pipeline
could buy.
"""

from __future__ import annotations

import math
import time

import pandas as pd

from helpers.core import progress
from helpers.core.machine import ceilings_by_precision, shape_rate
from helpers.core.tables import read_table
from helpers.workloads.batching import new_phases
from helpers.workloads.models import encoder_flops

TABLE = "07_time"
KEY = ["candidate"]


def timed_phases(pipe, texts, passes: int) -> dict:
    """The phases of the pass with the median total time, of `passes` passes after a warm-up."""
    pipe.encode(texts)
    runs = []
    for _ in range(max(int(passes), 1)):
        phases = new_phases()
        start = time.perf_counter()
        pipe.encode(texts, phases=phases)
        runs.append(phases | {"total_s": time.perf_counter() - start})
    return sorted(runs, key=lambda r: r["total_s"])[(len(runs) - 1) // 2]


def phase_columns(phases: dict, config, ceiling_gflops: float) -> dict:
    """Milliseconds per phase and their shares, real and computed tokens and GFLOP, the
    tokens of an average engine call, and the engine's GFLOP/s against the ceiling
    (efficiency; NaN without a ceiling)."""
    ms = {k: phases.get(f"{k}_s", 0.0) * 1e3 for k in ("total", "lengths", "tokenize", "engine", "pooling")}
    other = max(ms["total"] - ms["lengths"] - ms["tokenize"] - ms["engine"] - ms["pooling"], 0.0)
    real = int(sum(phases["lengths"]))
    computed = int(sum(rows * length for rows, length in phases["shapes"]))
    real_gflop = sum(encoder_flops(config, 1, n) for n in phases["lengths"]) / 1e9
    computed_gflop = sum(encoder_flops(config, rows, length) for rows, length in phases["shapes"]) / 1e9
    engine_gflops = computed_gflop / (ms["engine"] / 1e3) if ms["engine"] else math.nan
    return {
        "total_ms": ms["total"],
        "lengths_ms": ms["lengths"],
        "tokenize_ms": ms["tokenize"],
        "engine_ms": ms["engine"],
        "pooling_ms": ms["pooling"],
        "other_ms": other,
        "tokenization_share": (ms["lengths"] + ms["tokenize"]) / ms["total"],
        "real_tokens": real,
        "computed_tokens": computed,
        "padding_share": 1 - real / computed if computed else math.nan,
        "real_gflop": real_gflop,
        "computed_gflop": computed_gflop,
        "engine_gflops": engine_gflops,
        "ceiling_gflops": ceiling_gflops,
        "efficiency": engine_gflops / ceiling_gflops if ceiling_gflops == ceiling_gflops else math.nan,
        "n_batches": len(phases["shapes"]),
        "tokens_per_call": computed / len(phases["shapes"]) if phases["shapes"] else math.nan,
    }


def ceilings(threads: int) -> dict[str, float]:
    """00_environment's best measured GEMM rate per precision at `threads` ({} when 00 did not
    run in this results folder)."""
    return ceilings_by_precision(read_table("00_ceilings"), threads)


def measure(run, search, corpus: pd.DataFrame, log=progress.note) -> pd.DataFrame:
    """A row per whole-corpus pipeline of `search`: its phases in one process (`passes`
    passes), or why not."""
    table = run.table(TABLE, KEY)
    rates = ceilings(search.cores)
    for _, r in corpus.iterrows():
        if table.done(candidate=r["candidate"]):
            continue
        row = {"candidate": r["candidate"], "model": search.p["model"]}
        row |= {k: r[k] for k in ("variant", "precision", "strategy", "batch_size", "layout", "threads", "overlap")}
        reason = _not_timed(r)
        if reason:
            table.append(row | {"status": "skipped", "message": reason})
            continue
        log(f"  where the time goes: {r['candidate']}")
        pipe = search.pipeline(r["variant"], r["strategy"], int(r["batch_size"]))
        phases = timed_phases(pipe, search.texts, search.p["passes"])
        ceiling = rates.get(r["precision"], math.nan)  # INT8 recipes keep some fp32 MatMuls: an upper bound
        message = "" if rates else "no ceiling: 00_environment did not run in this results folder"
        columns = phase_columns(phases, search.loaded.config, ceiling)
        columns |= at_shapes(columns, r["precision"], search.loaded.config, search.cores)
        table.append(row | columns | {"status": "ok", "message": message})
    return table.read()


def at_shapes(columns: dict, precision: str, config, threads: int) -> dict:
    """The GEMM rate at this model's shapes and the engine's share of it (NaN where 00 did not
    measure this hidden size: `gemm_hidden`)."""

    rate = shape_rate(read_table("00_gemm_shapes"), precision, config.hidden_size, columns["tokens_per_call"], threads)
    share = columns["engine_gflops"] / rate if rate == rate else math.nan
    return {"hidden": config.hidden_size, "shape_gflops": rate, "shape_efficiency": share}


def _not_timed(row: pd.Series) -> str:
    if isinstance(row.get("peer"), str) and row["peer"]:
        return "a peer: sentence-transformers' encode is timed whole, not phase by phase"
    if row["status"] not in ("ok", "mismatch"):
        return f"not measured on the whole corpus ({row['status']})"
    if row["layout"] == "processes":
        return "phases are timed in one process; its one-process counterpart shows them"
    if row["layout"] == "streams":
        return "phases are timed one after another; its one-stream counterpart (layout threads) shows them"
    if bool(row["overlap"]):
        return "phases are timed one after the other; its counterpart without overlap shows them"
    return ""
