"""00_environment's checks of its own yardsticks.

- The nominal peaks: the measured GEMM rates against what the instruction set and the clock
  allow (helpers.core.peaks); a measured rate above its nominal peak is flagged.
- The harness self-check: one small model timed through the engine worker the sweeps use (a
  separate process, answers over a pipe) and through a plain in-process loop, interleaved in
  rounds; the ratio of their medians with a bootstrap CI should be 1 within +-5%.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import pandas as pd

from helpers.core import peaks
from helpers.core.machine import ceiling_for, nominal_by_precision

AGREEMENT = 0.05  # the harness and a plain loop agree when their ratio is within 1 +- this
CHECK_SHAPE = dict(model="bert-mini", engine="eager", batch_size=8, seq_len=128)


# -- nominal peaks -------------------------------------------------------------------------------
def nominal_rows(thread_counts: list[int], measured: pd.DataFrame | None = None) -> list[dict]:
    """00_ceilings rows of kind 'nominal' at each thread count (physical cores at most), at a
    clock no lower than the one the `measured` GEMM rows need."""
    from helpers.core.fingerprint import cpu_info

    cpu = cpu_info()
    flags, vendor = cpu.get("flags") or {}, cpu.get("vendor")
    physical = cpu.get("physical_cores") or max(thread_counts)

    def cores(threads) -> int:
        return min(int(threads), physical)

    rates = []
    if measured is not None and "kind" in measured:
        gemm = measured[(measured["kind"] == "gemm") & (measured["device"] == "cpu") & (measured["status"] == "ok")]
        rates = [(r.precision, cores(r.threads), float(r.value)) for r in gemm.itertuples()]
    clock = peaks.running_clock(peaks.clock_mhz(), peaks.clock_needed(rates, flags, vendor))
    rows = []
    for t in thread_counts:
        for row in peaks.nominal_rows(flags, vendor, [cores(t)], clock):
            rows.append(row | {"threads": t})
    return rows


def append_nominal_rows(table, params: Mapping[str, Any]) -> None:
    """The nominal rows at 00's thread counts, at a clock no lower than the one the GEMM rows
    `table` holds need (so measure those first)."""
    from helpers.studies.environment import thread_counts

    table.append_new(nominal_rows(thread_counts(params), measured=table.read()))


def nominal_text(df: pd.DataFrame) -> str:
    """Each precision's best measured GEMM rate as a share of its nominal peak, at the most
    threads, with the flag for a rate above it."""
    top = df["threads"].max()
    parts, above = [], []
    for precision in ("fp32", "bf16", "int8"):
        measured = ceiling_for(df, precision, threads=top)
        nominal = nominal_by_precision(df, top).get(precision, float("nan"))
        if measured != measured or nominal != nominal:
            continue
        parts.append(f"{precision} {measured:.0f} of {nominal:.0f} ({measured / nominal:.0%})")
        if peaks.above_nominal(measured, nominal):
            above.append(precision)
    if not parts:
        return "No nominal peak could be computed here (no clock figure or no known instruction set)."
    clock = df[df["kind"] == "nominal"].iloc[0]
    source = f"clock {clock['clock_mhz']:.0f} MHz: {clock['clock_source']}"
    if peaks.is_derived(clock["clock_source"]):
        return (
            f"**The nominal peaks here are derived, not independent**: the OS gives no clock as high as the one "
            f"the measured rates need, so the clock is set from a measured rate ({source}). That rate sits at "
            f"100% of its peak by construction, and the shares below test nothing: " + "; ".join(parts) + "."
        )
    text = f"Measured GEMM rate against the nominal peak at {top} thread(s): " + "; ".join(parts) + f" ({source})."
    if above:
        text += (
            f" **Above the nominal peak: {', '.join(above)}**: the clock figure is below the running clock "
            "(turbo) or the units assumed are wrong, so that nominal peak is not a ceiling here."
        )
    return text


# -- the harness self-check ------------------------------------------------------------------------
def harness_check(threads: int, timing: dict, rounds: int = 5) -> dict:
    """CHECK_SHAPE timed through an EngineWorker and in this process, interleaved in rounds: one
    result row with both medians and in-process / worker with its 95% CI."""
    from helpers.backends import engines
    from helpers.backends.workers import SETTLE_S, EngineSpec, EngineWorker
    from helpers.core.timing import measure, ratio_of_medians, round_kwargs, summarize
    from helpers.studies.environment import torch_threads
    from helpers.workloads.corpora import load_corpus, texts_at_length
    from helpers.workloads.models import load_model

    shape = CHECK_SHAPE
    loaded = load_model(shape["model"])
    batch, _ = texts_at_length(load_corpus().texts[:500], loaded.tokenizer, shape["batch_size"], shape["seq_len"])
    batch = {k: v for k, v in batch.items() if k in loaded.input_names}
    local = engines.build_engine("eager", loaded, threads=threads)
    prepared = local.prepare(batch)
    worker_ms, local_ms = [], []
    with EngineWorker(EngineSpec(shape["model"], "eager", threads)) as worker, torch_threads(threads):
        for r in range(rounds):
            time.sleep(SETTLE_S)
            worker_ms += worker.measure(batch, shape["seq_len"], round_kwargs(timing, r, rounds, worker_ms)).samples_ms
            time.sleep(SETTLE_S)
            kwargs = round_kwargs(timing, r, rounds, local_ms)
            local_ms += list(measure(lambda: local.run_prepared(prepared), **kwargs).samples_ms)
    ratio = ratio_of_medians(worker_ms, local_ms)  # worker median / in-process median
    low, high = ratio["speedup_ci_low"], ratio["speedup_ci_high"]
    row = {
        **shape,
        "threads": threads,
        "rounds": rounds,
        "worker_p50_ms": summarize(worker_ms)["p50_ms"],
        "inprocess_p50_ms": summarize(local_ms)["p50_ms"],
        "n_worker": len(worker_ms),
        "n_inprocess": len(local_ms),
        "ratio": ratio["speedup"],
        "ratio_ci_low": low,
        "ratio_ci_high": high,
        "agrees": bool(1 - AGREEMENT <= ratio["speedup"] <= 1 + AGREEMENT),
        "status": "ok",
    }
    return row | {"message": harness_check_text(row)}  # the sentence 08_report quotes


def measure_harness_check(table, params: Mapping[str, Any]) -> pd.Series:
    """The self-check at the most of 00's threads, measured unless the table holds it; returns
    its row."""
    from helpers.studies.environment import thread_counts, timing_kwargs

    threads = max(thread_counts(params))
    if not table.done(model=CHECK_SHAPE["model"], threads=threads):
        table.append(harness_check(threads, timing_kwargs(params)))
    return table.read().iloc[-1]


def harness_check_text(row) -> str:
    """The self-check's verdict in one sentence (also quoted by 08_report)."""
    shape = f"{row['model']}, batch {int(row['batch_size'])} × {int(row['seq_len'])}, {int(row['threads'])} threads"
    ratio = f"{row['ratio']:.3f} (95% CI {row['ratio_ci_low']:.3f}–{row['ratio_ci_high']:.3f})"
    if row["agrees"]:
        return (
            f"Harness self-check ({shape}): the worker harness's median over a plain in-process loop's is "
            f"{ratio}, within ±{AGREEMENT:.0%}: the sweeps' worker processes time what a plain loop would."
        )
    return (
        f"Harness self-check ({shape}): the worker harness's median over a plain in-process loop's is "
        f"{ratio}, **outside ±{AGREEMENT:.0%}**: timings through the workers differ from a plain loop's by "
        "that much, so speed-ups across the two (e.g. 03 against 05) carry that difference."
    )
