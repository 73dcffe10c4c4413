"""06_seq2seq: generation timed per engine and token count, agreement with PyTorch fp32, and
memory per fresh process."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from helpers.backends import generation, registry
from helpers.backends.generation import FIRST_STEP_RTOL, GenerationEngine, batch_of, precision_of
from helpers.core.progress import resumed, track
from helpers.core.tables import SAMPLES, failure_row
from helpers.core.timing import interleaved, timing_columns, timing_settings
from helpers.workloads.models import LoadedSeq2Seq, load_seq2seq


# ---------------------------------------------------------------- agreement
def agreement_row(
    engine: GenerationEngine,
    reference: GenerationEngine,
    batch: dict,
    new_tokens: int,
    start_id: int,
    reference_tokens=None,
    reference_logits=None,
) -> dict:
    """Generated tokens against the reference's (exact-match rate of whole sequences, and
    per-position agreement) and the first step's logits (max abs diff, relative, top-1)."""
    ref_tokens = reference.generate(batch, new_tokens) if reference_tokens is None else reference_tokens
    ref_logits = reference.first_logits(batch, start_id) if reference_logits is None else reference_logits
    tokens = engine.generate(batch, new_tokens)
    logits = engine.first_logits(batch, start_id)
    diff = float(np.abs(logits - ref_logits).max())
    relative = diff / float(np.abs(ref_logits).max())
    ok = tokens.shape == ref_tokens.shape and relative <= FIRST_STEP_RTOL[engine.precision]
    return {
        "engine": engine.name,
        "precision": engine.precision,
        "generated_tokens": int(tokens.shape[1]),
        "reference_distinct_tokens": int(torch.unique(ref_tokens).numel()),
        "exact_match": float((tokens == ref_tokens).all(dim=1).float().mean()),
        "token_agreement": float((tokens == ref_tokens).float().mean()),
        "first_step_max_abs_diff": diff,
        "first_step_rel_diff": relative,
        "first_step_top1": float((logits.argmax(-1) == ref_logits.argmax(-1)).mean()),
        "tolerance": FIRST_STEP_RTOL[engine.precision],
        "status": "ok" if ok else "mismatch",
    }


def agreement_rows(built: dict[str, Any], batch: dict, new_tokens: int, start_id: int) -> list[dict]:
    """agreement_row for every engine against the baseline's (PyTorch fp32); build or run failures become
    error rows."""
    reference = built[registry.baseline("generate")]
    ref_tokens = reference.generate(batch, new_tokens)
    ref_logits = reference.first_logits(batch, start_id)
    rows = []
    for name, engine in built.items():
        try:
            if isinstance(engine, Exception):
                raise engine
            row = agreement_row(engine, reference, batch, new_tokens, start_id, ref_tokens, ref_logits)
            rows.append({**row, "engine": name})
        except Exception as exc:
            rows.append({"engine": name, "precision": precision_of(name), **failure_row(exc)})
    return rows


def measure_cell(
    built: dict[str, Any], batch: dict, new_tokens: list[int], rounds: int, timing_kwargs: dict
) -> dict[tuple[str, int], Any]:
    """Every engine × every token count on one batch, interleaved in rounds; an engine that
    failed to build (an exception in `built`) or fails here keeps its exception."""
    fns, outcome = {}, {}
    for name, engine in built.items():
        if isinstance(engine, Exception):
            outcome.update({(name, n): engine for n in new_tokens})
            continue
        for n in new_tokens:
            fns[(name, n)] = lambda engine=engine, n=n: engine.generate(batch, n)
    try:
        outcome.update(interleaved(fns, rounds=rounds, **timing_kwargs))
    except Exception:  # find the culprit(s) so the others are still measured
        broken = {}
        for key, fn in fns.items():
            try:
                fn()
            except Exception as exc:
                broken[key] = exc
        if not broken:
            raise
        outcome.update(broken)
        outcome.update(interleaved({k: f for k, f in fns.items() if k not in broken}, rounds=rounds, **timing_kwargs))
    return outcome


def cell_rows(
    outcome: dict, statuses: dict[str, dict], batch_size: int, input_len: int, target_ci: float | None = None
) -> list[dict]:
    """One row per (engine, new tokens): statistics, time to first token (the 1-token call),
    per-token decode time (the rest, divided by the extra tokens), throughput, and the
    speed-up over PyTorch fp32 with a bootstrap CI."""
    rows, order = [], registry.names("generate")
    for (name, n), result in sorted(outcome.items(), key=lambda kv: (kv[0][1], order.index(kv[0][0]))):
        row = {
            "engine": name,
            "precision": precision_of(name),
            "device": "cpu",
            "batch_size": batch_size,
            "seq_len": input_len,
            "new_tokens": n,
        }
        if isinstance(result, Exception):
            rows.append({**row, **failure_row(result)})
            continue
        base = outcome.get((registry.baseline("generate"), n))
        base_ms = base.samples_ms if base is not None and not isinstance(base, Exception) else None
        timing = timing_columns(result.samples_ms, batch_size, batch_size * n, base_ms, target_ci=target_ci)
        first = outcome.get((name, 1))
        ttft = first.median_ms if first is not None and not isinstance(first, Exception) else float("nan")
        row.update(
            cold_ms=result.cold_ms,
            ttft_ms=ttft,
            per_token_ms=(timing["p50_ms"] - ttft) / (n - 1) if n > 1 else float("nan"),
            status=statuses.get(name, {}).get("status", "ok"),
            message=statuses.get(name, {}).get("message", ""),
        )
        row.update(timing)
        row[SAMPLES] = result.samples_ms
        rows.append(row)
    return rows


def measure_grid(
    table,
    params: Mapping[str, Any],
    loaded: LoadedSeq2Seq,
    built: dict[str, Any],
    texts,
    statuses: dict[str, dict],
    threads: int,
    progress: Callable | None = None,
) -> None:
    """Every batch size × input length cell of 06's parameters not yet complete in `table` (a
    resumed run re-measures only those), its rows appended as the cell finishes; a resumed run
    says how many cells it already holds. `progress` wraps the cells (default: a bar)."""

    batch_sizes, input_lens, counts = params["batch_sizes"], params["input_lens"], token_counts(params["new_tokens"])
    timing = timing_kwargs(params)

    def missing(bs: int, n_in: int) -> bool:
        return any(
            not table.done(model=loaded.name, batch_size=bs, seq_len=n_in, engine=e, new_tokens=n)
            for e in built
            for n in counts
        )

    cells = [(bs, n_in) for n_in in input_lens for bs in batch_sizes if missing(bs, n_in)]
    total = len(input_lens) * len(batch_sizes)
    resumed(total - len(cells), total, "batch size x input length cells")
    for bs, n_in in progress(cells) if progress else track(cells, desc="06 cells"):
        batch = batch_of(loaded, texts, bs, n_in)
        outcome = measure_cell(built, batch, counts, params["rounds"], timing)
        rows = cell_rows(outcome, statuses, bs, n_in, timing.get("target_ci"))
        table.append_new({"model": loaded.name, "threads": threads, **row} for row in rows)


# -- the notebook's steps ---------------------------------------------------------------------
def prepare(params: Mapping[str, Any]):
    """From 06's parameters: (threads, the loaded model, the corpus texts); one thread count,
    every core, for PyTorch and ONNX Runtime alike."""
    import os

    from helpers.workloads.corpora import corpus_from_params

    threads = os.cpu_count()
    loaded = load_seq2seq(params["seq2seq_model"])
    texts = corpus_from_params(params).texts
    return threads, loaded, texts


def token_counts(new_tokens: list[int]) -> list[int]:
    """The generated-token counts measured: `new_tokens` and 1 (the time to first token)."""
    return sorted({1, *new_tokens})


def timing_kwargs(params: Mapping[str, Any]) -> dict:
    """The timing settings of every engine, token count and round, from 06's parameters."""
    return timing_settings(params)


def largest(params: Mapping[str, Any]) -> dict:
    """The largest configuration of 06's parameters, where memory is measured."""
    return dict(
        batch_size=max(params["batch_sizes"]),
        seq_len=max(params["input_lens"]),
        new_tokens=max(token_counts(params["new_tokens"])),
    )


def model_note(loaded, threads: int) -> str:
    return (
        f"Model: {loaded.label}, {loaded.n_params / 1e6:.1f} M parameters. "
        f"{threads} threads for PyTorch and ONNX Runtime alike."
    )


def record_files(table, params: Mapping[str, Any], loaded) -> dict:
    """The ONNX files 06's engines need, from the build cache or built into it, with a row per
    file set (its build's time, and whether this run reused it); name -> directory."""

    files, records = generation.produce_files(loaded, generation.needed_files(params["generation_engines"]))
    table.append_new({"model": params["seq2seq_model"], **r.row()} for r in records.values())
    return files


def build_engines(params: Mapping[str, Any], files: dict, threads: int, loaded) -> dict:
    return generation.build_all(params["generation_engines"], files, threads, loaded.model)


def record_agreement(table, params: Mapping[str, Any], built: dict, loaded, texts) -> None:
    """Unless a resumed run holds them: each engine's generated sequences on `check_size` real
    texts at the shortest input length, the most new tokens each, against PyTorch fp32's
    (`agreement_rows`)."""

    model = params["seq2seq_model"]
    if all(table.done(model=model, engine=e) for e in params["generation_engines"]):
        return
    check_batch = generation.batch_of(loaded, texts, params["check_size"], min(params["input_lens"]))
    new_tokens = max(token_counts(params["new_tokens"]))
    rows = agreement_rows(built, check_batch, new_tokens, loaded.config.decoder_start_token_id)
    table.append_new({"model": model, **r} for r in rows)


def engine_statuses(agreement) -> dict:
    """engine -> {status, message} of the agreement check, which the timing rows carry."""
    return agreement.set_index("engine")[["status", "message"]].fillna("").to_dict("index")


def record_memory(table, params: Mapping[str, Any], loaded, texts, files: dict, threads: int) -> None:
    """Each engine's memory increments in a fresh process at the `largest` configuration
    (skipped rows when `measure_memory` is off); engines a resumed run holds are kept."""

    model, engines, at = params["seq2seq_model"], params["generation_engines"], largest(params)
    if not params["measure_memory"]:
        table.append_new(
            {"model": model, "engine": e, **at, "status": "skipped", "message": "measure_memory is off"}
            for e in engines
        )
        return
    memory_batch = generation.batch_of(loaded, texts, at["batch_size"], at["seq_len"])
    for name in track([e for e in engines if not table.done(model=model, engine=e)], desc="06 memory"):
        row = generation.fresh_process_memory(name, files, threads, memory_batch, at["new_tokens"])
        table.append({"model": model, **at, **row})
