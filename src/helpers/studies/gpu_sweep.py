"""The engine comparison on a CUDA GPU (04_gpu_sweeps): device-synchronised timing of device
work only (inputs are copied to the GPU before timing; the copy is timed on its own), memory
per engine from torch's allocator and NVML, and out-of-memory configurations recorded as
`oom` while the sweep goes on.

The same code runs on a CPU device (tests do this): synchronisation and GPU memory are then
no-ops, so everything but the CUDA calls themselves is exercised without a GPU.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import torch

from helpers.backends import engines as engine_lib
from helpers.core import fidelity
from helpers.core.memory import cuda_peak_mb, nvml_process_mb, reset_cuda_peak
from helpers.core.progress import track
from helpers.core.tables import SAMPLES, failure_row
from helpers.core.timing import cuda_sync_for, interleaved, timing_columns, timing_settings
from helpers.workloads.corpora import load_corpus, texts_at_length
from helpers.workloads.models import load_model

BASELINE = "eager"
COPIES_NOTE = "host-to-device copies excluded from the timed calls (timed on their own: h2d_ms)"


def cuda_unavailable_reason(device: str = "cuda") -> str | None:
    """Why `device` cannot be used (None when it can)."""
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        return f"no CUDA device was found (torch {torch.__version__}, {build}: torch.cuda.is_available() is False)"
    index = torch.device(device).index or 0
    if index >= torch.cuda.device_count():
        return f"device {device!r} does not exist ({torch.cuda.device_count()} CUDA device(s))"
    return None


def device_label(device: str) -> str:
    """'NVIDIA H100 80GB HBM3 (cuda:0)' on a GPU, 'cpu' otherwise."""
    if torch.device(device).type != "cuda":
        return "cpu"
    index = torch.device(device).index or 0
    return f"{torch.cuda.get_device_name(index)} (cuda:{index})"


def skipped_rows(models: list[str], names: list[str], reason: str) -> list[dict]:
    """One `skipped` row per model and engine, with the reason: nothing silently dropped."""
    return [
        {
            "model": m,
            "engine": e,
            "batch_size": 0,
            "seq_len": 0,
            "scope": "model",
            "status": "skipped",
            "message": reason,
        }
        for m in models
        for e in names
    ]


def grid(batch_sizes: list[int], seq_lens: list[int], max_length: int | None) -> list[tuple[int, int]]:
    """(batch, length) pairs, length-major and batch ascending, so that an out-of-memory batch
    is met before the larger ones at the same length."""
    lens = [n for n in sorted(seq_lens) if not max_length or n <= max_length]
    return [(b, n) for n in lens for b in sorted(batch_sizes)]


class OomTracker:
    """The smallest batch that ran out of memory, per (engine, length): larger batches at that
    length are not attempted (they are recorded as skipped, with the reason)."""

    def __init__(self):
        self.smallest: dict[tuple[str, int], int] = {}

    def record(self, engine: str, seq_len: int, batch_size: int) -> None:
        key = (engine, seq_len)
        self.smallest[key] = min(batch_size, self.smallest.get(key, batch_size))

    def blocked(self, engine: str, seq_len: int, batch_size: int) -> str | None:
        limit = self.smallest.get((engine, seq_len))
        if limit is not None and batch_size > limit:
            return f"not attempted: batch {limit} at {seq_len} tokens already ran out of memory"
        return None


def build_all(names: list[str], loaded, device: str) -> dict[str, Any]:
    """Every engine on `device`, or the exception that stopped it (EngineUnavailable: the
    piece is missing here, recorded as skipped; anything else: an error)."""
    built: dict[str, Any] = {}
    for name in names:
        try:
            built[name] = engine_lib.build_engine(name, loaded, device=device)
        except Exception as exc:
            built[name] = exc
    return built


def _failure(exc: Exception) -> dict:
    if isinstance(exc, engine_lib.EngineUnavailable):
        return {"status": "skipped", "message": f"unavailable here: {exc}"}
    return failure_row(exc)


def _free_after_oom() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _memory_pass(engine, prepared, device: str) -> tuple[dict, Any]:
    """One call with the peak counters reset: torch's peak allocated/reserved, NVML's figure
    for the whole process (the only view of ORT's own allocations), and the call's output
    on the host (copied after the peaks are read, so the copy does not count)."""
    reset_cuda_peak(device)
    output = engine.run_prepared(prepared)
    row = cuda_peak_mb(device)
    if torch.device(device).type == "cuda":
        row["nvml_process_mb"] = nvml_process_mb()
    return row, engine.to_numpy(output)


def _copy_ms(engine, batch: dict, sync: Callable | None) -> tuple[Any, float]:
    """prepare(batch) (the host-to-device copy on a GPU), timed on its own."""
    if sync:
        sync()
    start = time.perf_counter()
    prepared = engine.prepare(batch)
    if sync:
        sync()
    return prepared, (time.perf_counter() - start) * 1e3


def measure_config(
    built: dict[str, Any],
    batch: dict,
    device: str,
    rounds: int,
    timing_kwargs: dict,
    skip: dict[str, str] | None = None,
) -> dict[str, dict]:
    """Every engine on one batch: copy time, a memory pass (which also finds out-of-memory
    before timing and gives the output for checking), then interleaved timed rounds of
    device work.
    Returns per engine {"timing", "memory", "h2d_ms", "output"} or {"error": exception}
    or {"skipped": reason}."""
    sync = cuda_sync_for(device)
    outcome: dict[str, dict] = {}
    prepared_of = {}
    for name, engine in built.items():
        if isinstance(engine, Exception):
            outcome[name] = {"error": engine}
            continue
        if skip and name in skip:
            outcome[name] = {"skipped": skip[name]}
            continue
        try:
            prepared, h2d_ms = _copy_ms(engine, batch, sync)
            memory, output = _memory_pass(engine, prepared, device)
        except Exception as exc:
            _free_after_oom()
            outcome[name] = {"error": exc}
            continue
        prepared_of[name] = prepared
        outcome[name] = {"memory": memory, "h2d_ms": h2d_ms, "output": output}
    fns = {name: (lambda e=built[name], p=p: e.run_prepared(p)) for name, p in prepared_of.items()}
    for name, result in interleaved(fns, rounds=rounds, sync=sync, **timing_kwargs).items():
        outcome[name]["timing"] = result
    return outcome


def config_rows(
    outcome: dict[str, dict],
    built: dict[str, Any],
    model: str,
    batch_size: int,
    seq_len: int,
    real_tokens: int,
    mask,
    n_params: int,
    device: str,
    target_ci: float | None = None,
) -> list[dict]:
    """One row per engine: statistics (CI half-width flagged against `target_ci`), throughput,
    speed-up over eager fp32 with CI, memory, copy time, and agreement of this batch's output
    with eager fp32's."""
    base = outcome.get(BASELINE, {})
    rows = []
    for name, result in outcome.items():
        engine = built[name]
        row = {
            "model": model,
            "engine": name,
            "batch_size": batch_size,
            "seq_len": seq_len,
            "scope": "model",
            "device": device,
            "gpu": device_label(device),
            "n_params": n_params,
            "copies": COPIES_NOTE,
        }
        if not isinstance(engine, Exception):
            row.update(
                {k: v for k, v in engine.describe().items() if k in ("precision", "graph", "provider", "threads")}
            )
        if "error" in result:
            rows.append({**row, **_failure(result["error"])})
            continue
        if "skipped" in result:
            rows.append({**row, "status": "skipped", "message": result["skipped"]})
            continue
        samples = result["timing"].samples_ms
        row.update(
            **result["memory"],
            cold_ms=result["timing"].cold_ms,
            h2d_ms=result["h2d_ms"],
            status="ok",
            message="",
        )
        row.update(
            timing_columns(
                samples,
                batch_size,
                real_tokens,
                base["timing"].samples_ms if "timing" in base else None,
                target_ci=target_ci,
            )
        )
        row[SAMPLES] = samples
        if "timing" in base:
            check = engine_lib.check_against_reference(
                result["output"], base["output"], mask, precision=row.get("precision", "fp32")
            )
            row.update(
                max_abs_diff=check["max_abs_diff"],
                cosine_min=check["cosine_min"],
                status=check["status"],
                message=check["message"],
            )
        rows.append(row)
    return rows


def run_sweep(
    table,
    loaded,
    built: dict[str, Any],
    texts,
    configs: list[tuple[int, int]],
    device: str,
    rounds: int,
    timing_kwargs: dict,
    progress=lambda items: items,
) -> None:
    """Every (batch, length) not yet in `table`, rows appended per configuration; an engine's
    out-of-memory stops its larger batches at that length (recorded as skipped)."""
    tracker = OomTracker()
    for row in table.read().to_dict("records") if len(table) else []:  # a resumed run knows its OOMs
        if row.get("model") == loaded.name and row.get("status") == "oom":
            tracker.record(row["engine"], int(row["seq_len"]), int(row["batch_size"]))
    pending = [
        (b, n)
        for b, n in configs
        if any(not table.done(model=loaded.name, engine=e, batch_size=b, seq_len=n) for e in built)
    ]
    for batch_size, seq_len in progress(pending):
        batch, real_tokens = texts_at_length(texts, loaded.tokenizer, batch_size, seq_len)
        skip = {e: why for e in built if (why := tracker.blocked(e, seq_len, batch_size))}
        outcome = measure_config(built, batch, device, rounds, timing_kwargs, skip)
        rows = config_rows(
            outcome,
            built,
            loaded.name,
            batch_size,
            seq_len,
            real_tokens,
            batch["attention_mask"],
            loaded.n_params,
            device,
            timing_kwargs.get("target_ci"),
        )
        for row in rows:
            if row["status"] == "oom":
                tracker.record(row["engine"], seq_len, batch_size)
        table.append_new(rows)


def fidelity_rows(built: dict[str, Any], loaded, texts, batch_size: int = 32, max_length: int = 128) -> list[dict]:
    """Sentence embeddings of real texts from every engine against eager fp32's (as in 02):
    cosine (mean, min) and recall@10 of nearest-neighbour retrieval."""

    def embed(engine):
        return fidelity.embed_texts(engine, texts, loaded.tokenizer, batch_size, max_length, loaded.input_names)

    reference = embed(built[BASELINE])
    rows = []
    for name, engine in built.items():
        row = {"model": loaded.name, "engine": name, "texts": len(texts)}
        try:
            if isinstance(engine, Exception):
                raise engine
            emb = embed(engine)
            row.update(
                fidelity.embedding_agreement(reference, emb),
                recall_at_10=fidelity.recall_at_k(reference, emb, 10),
                precision=engine.precision,
            )
            bound = engine_lib.TOLERANCES[engine.precision]["min_cosine"]
            ok = row["cosine_min"] >= bound
            row.update(
                status="ok" if ok else "mismatch",
                message="" if ok else f"cosine_min {row['cosine_min']:.6f} < {bound:g}",
            )
        except Exception as exc:
            _free_after_oom()
            row.update(_failure(exc))
        rows.append(row)
    return rows


# -- the notebook's steps ---------------------------------------------------------------------
def device_note(device: str) -> tuple[str | None, str]:
    """(why CUDA cannot be used, or None; the line the notebook shows about the device)."""
    no_gpu = cuda_unavailable_reason(device)
    note = f"**Not measured here:** {no_gpu}." if no_gpu else f"Device: {device_label(device)}; {COPIES_NOTE}."
    return no_gpu, note


def record_skipped(sweep_table, fidelity_table, models: list[str], names: list[str], reason: str) -> None:
    """No CUDA device: one `skipped` row per model and engine in both tables, with the reason."""
    rows = skipped_rows(models, names, reason)
    sweep_table.append_new(rows)
    fidelity_table.append_new({k: r[k] for k in ("model", "engine", "status", "message")} for r in rows)


def timing_kwargs(params: Mapping[str, Any]) -> dict:
    """The timing settings of every engine and round, from 04's parameters."""
    return timing_settings(params, warmup=params["warmup_count"], min_count=5)


def measure_models(sweep_table, fidelity_table, params: Mapping[str, Any]) -> None:
    """The sweep of 04's parameters, one model at a time: build every engine on the device,
    check their fidelity on real text (unless a resumed run has it), measure every missing
    (batch, length) configuration, then free the engines and return the cached GPU memory to
    the device (`torch.cuda.empty_cache`) before the next model is loaded."""

    texts = load_corpus().texts
    engines, device, timing = params["engines"], params["device"], timing_kwargs(params)
    for model in params["models"]:
        loaded = load_model(model)
        built = build_all(engines, loaded, device)
        if any(not fidelity_table.done(model=model, engine=e) for e in engines):
            fidelity_table.append_new(fidelity_rows(built, loaded, texts[: params["fidelity_size"]]))
        configs = grid(params["batch_sizes"], params["seq_lens"], loaded.max_length)
        run_sweep(
            sweep_table,
            loaded,
            built,
            texts,
            configs,
            device,
            params["rounds"],
            timing,
            progress=lambda items, model=model: track(items, desc=f"04 {model}"),
        )
        del built
        torch.cuda.empty_cache()


def measure_or_skip(sweep_table, fidelity_table, params: Mapping[str, Any], no_gpu: str | None) -> None:
    """`measure_models` with 04's parameters, or, without a usable CUDA device (`no_gpu` says
    why), `record_skipped` for every model and engine."""
    if no_gpu:
        record_skipped(sweep_table, fidelity_table, params["models"], params["engines"], no_gpu)
    else:
        measure_models(sweep_table, fidelity_table, params)
