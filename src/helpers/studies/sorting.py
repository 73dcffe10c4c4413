"""05_sequence_sorting: whole datasets batched by each strategy, timed, and checked against
one-by-one answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from helpers.core.tables import SAMPLES, failure_row, read_table
from helpers.workloads import batching
from helpers.workloads.batching import BUCKET_EDGES, Batch, padding, plan, run_dataset, token_lengths_capped


# -- measuring strategies ---------------------------------------------------------------------
def reference_embeddings(engine, texts, tokenizer, lengths, input_names) -> np.ndarray:
    """One text at a time, unpadded: what every strategy's answers are checked against."""
    singles = [Batch([i], int(lengths[i])) for i in range(len(texts))]
    return run_dataset(engine, texts, tokenizer, singles, input_names)


def agreement(got: np.ndarray, expected: np.ndarray, precision: str) -> dict:
    """Largest difference and smallest cosine of the strategy's embeddings against one-by-one.
    fp32: only summation order may differ (atol 1e-3); reduced precision: the engine's cosine
    bound (dynamic INT8 picks its ranges per batch, so batch neighbours legitimately matter)."""
    from helpers.backends.engines import TOLERANCES
    from helpers.core.fidelity import cosines

    diff = float(np.abs(got - expected).max()) if got.size else 0.0
    cos = float(cosines(got, expected).min()) if got.size else 1.0
    bound = TOLERANCES.get(precision, TOLERANCES["fp32"])["min_cosine"]
    ok = diff <= 1e-3 if precision == "fp32" else cos >= bound
    return {
        "max_abs_diff": diff,
        "cosine_min": cos,
        "status": "ok" if ok else "mismatch",
        "message": "" if ok else f"differs from one-by-one processing: max diff {diff:.3g}, cosine {cos:.5f}",
    }


def time_pass(engine, texts, tokenizer, batches, input_names) -> tuple[float, float, np.ndarray]:
    """Seconds for one pass over the dataset, the pass's peak memory increment (MB), answers."""
    import time

    from helpers.core.memory import peak_rss_mb, reset_peak_rss, rss_mb

    before = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    out = run_dataset(engine, texts, tokenizer, batches, input_names)
    return time.perf_counter() - start, peak_rss_mb() - before, out


def ideal_seconds(
    engine, texts, tokenizer, real_tokens: int, batch_size: int, mean_length: int, min_time_s: float
) -> float:
    """The time the engine needs for the real tokens alone: real tokens divided by its
    tokens/s on batches packed with real text and no padding, at this batch size and the
    dataset's mean length."""
    from helpers.core.timing import measure
    from helpers.workloads.corpora import texts_at_length

    seq = max(int(round(mean_length)), 8)
    batch, packed = texts_at_length(texts, tokenizer, batch_size, seq, pack=True)
    prepared = engine.prepare(batch)
    t = measure(lambda: engine.run_prepared(prepared), warmup=1, min_count=3, min_time_s=min_time_s)
    return real_tokens / (packed / (t.median_ms / 1e3))


MIN_PASSES = 3  # timed passes before the precision target may stop a batch size early


@dataclass(frozen=True)
class Settings:
    """How 05 measures each dataset, from its parameters."""

    strategies: Sequence[str]
    batch_sizes: Sequence[int]
    passes: int  # timed passes per strategy, at most
    max_length: int  # truncation length
    min_time_s: float  # measuring time of the ideal (packed) reference
    target_ci: float | None = None  # stop after MIN_PASSES once every median is this precise

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Settings:
        return cls(
            params["strategies"],
            params["batch_sizes"],
            params["passes"],
            params["max_length"],
            params["min_time_s"],
            params.get("target_ci"),
        )


def measure_distribution(
    table,
    distribution: str,
    texts: Sequence[str],
    built: dict,
    tokenizer,
    input_names: Sequence[str],
    settings: Settings,
    *,
    capped: tuple[np.ndarray, int],
) -> None:
    """For every engine and batch size: up to `settings.passes` timed passes of each strategy over
    the whole dataset, interleaved (strategy A, B, C, A, B, C ...) after one untimed pass whose
    answers are checked against one-by-one processing; rows go to `table` as each batch size
    ends. `capped`: the texts' token lengths at max_length and how many were truncated."""
    from helpers.core.timing import all_precise, timing_columns

    strategies, max_length, target_ci = settings.strategies, settings.max_length, settings.target_ci
    lengths, truncated = capped
    for name, engine in built.items():
        todo = {
            (s, b)
            for b in settings.batch_sizes
            for s in strategies
            if not table.done(distribution=distribution, engine=name, strategy=s, batch_size=b)
        }
        if not todo or not len(texts):
            continue
        expected = reference_embeddings(engine, texts, tokenizer, lengths, input_names)
        for b in sorted({b for _, b in todo}):
            plans = {s: plan(lengths, s, b, max_length) for s in strategies}
            samples, peaks, checks = {s: [] for s in strategies}, {s: 0.0 for s in strategies}, {}
            for p in range(settings.passes + 1):
                if all_precise(samples, target_ci, MIN_PASSES):
                    break
                for s in strategies:
                    seconds, peak, out = time_pass(engine, texts, tokenizer, plans[s], input_names)
                    if p == 0:  # warm-up, and the answers to check
                        checks[s] = agreement(out, expected, engine.precision)
                        continue
                    samples[s].append(seconds * 1e3)
                    peaks[s] = max(peaks[s], peak)
            pad = {s: padding(plans[s], lengths, max_length) for s in strategies}
            ideal = ideal_seconds(
                engine,
                texts,
                tokenizer,
                pad[strategies[0]]["real_tokens"],
                b,
                float(np.mean(lengths)),
                settings.min_time_s,
            )
            for s in strategies:
                if (s, b) not in todo:
                    continue
                timing = timing_columns(
                    samples[s],
                    len(texts),
                    pad[s]["real_tokens"],
                    samples.get("unsorted"),
                    flag_noisy=False,
                    target_ci=target_ci,
                )
                seconds = timing["p50_ms"] / 1e3
                row = {
                    "distribution": distribution,
                    "engine": name,
                    "strategy": s,
                    "batch_size": b,
                    "precision": engine.precision,
                    "recipe": engine.recipe,
                    "threads": engine.threads,
                    "n_texts": len(texts),
                    "n_truncated": truncated,
                    **pad[s],
                    "peak_increment_mb": peaks[s],
                    "ideal_s": ideal,
                    "over_ideal": seconds / ideal,
                    **checks[s],
                    **timing,
                    SAMPLES: samples[s],
                }
                table.append(row)


# -- the notebook's steps ---------------------------------------------------------------------
def prepare(params: Mapping[str, Any]):
    """From 05's parameters: (the loaded model, the texts of each dataset, corpus first, the
    built engines, a line naming the model and the INT8 method). ORT files come from the build
    cache; the INT8 method is the one 02 found fastest within tolerance, calibrated on odd
    corpus texts."""
    from helpers.backends import engines as engine_lib
    from helpers.backends.variants import best_int8_method, prepare_files
    from helpers.workloads.models import load_model

    engines = params["engines"]
    loaded = load_model(params["model"])
    int8_method, int8_reason = best_int8_method(read_table("02_variants"), read_table("02_speed"))
    texts_of = batching.datasets(
        params["corpus"],
        params["scenarios"],
        params["dataset_size"],
        seed=0,
        text_column=params.get("text_column", "text"),
        encoding=params.get("encoding", "utf-8"),
    )
    corpus_texts = next(iter(texts_of.values()))  # the corpus comes first
    files = prepare_files(loaded, engines, "O2", int8_method, corpus_texts[1::2])
    built = {name: _build(engine_lib, name, loaded, files) for name in engines}
    if isinstance(built.get("ort-int8"), engine_lib.Engine):
        built["ort-int8"].recipe = int8_method
    return loaded, texts_of, built, f"Model: {loaded.label}. ORT INT8: {int8_reason}."


def _build(engine_lib, name: str, loaded, files: dict):
    """The engine, or the EngineUnavailable that says why it cannot run here (its rows are skipped)."""
    try:
        if name in files:
            return engine_lib.engine_for_file(name, files[name], loaded)
        return engine_lib.build_engine(name, loaded)
    except engine_lib.EngineUnavailable as exc:
        return exc


def bucket_edges() -> tuple[int, ...]:
    """The length-bucket edges of the bucketed strategy (drawn on the length histograms)."""

    return BUCKET_EDGES


def record_lengths(table, texts_of: dict, tokenizer) -> None:
    """The untruncated token length of every text of every dataset, one row each."""
    for d, texts in texts_of.items():
        tokens, _ = token_lengths_capped(texts, tokenizer, 10**6)
        table.append_new({"distribution": d, "index": i, "tokens": int(n)} for i, n in enumerate(tokens))


def measure_datasets(table, params: Mapping[str, Any], texts_of: dict, built: dict, loaded) -> None:
    """`measure_distribution` over every dataset and engine (rows a resumed run holds are kept,
    and counted in a resume message), with a progress bar that advances as each engine of a
    dataset ends, weighed by its work left: the dataset's real tokens times the rows it still needs."""
    from helpers.core import progress

    settings = Settings.from_params(params)
    cells = [(s, b) for s in settings.strategies for b in settings.batch_sizes]
    left = {
        (d, e): sum(not table.done(distribution=d, engine=e, strategy=s, batch_size=b) for s, b in cells)
        for d in texts_of
        for e in built
    }
    total = len(cells) * len(built) * len(texts_of)
    progress.resumed(total - sum(left.values()), total)
    steps = [step for step, n in left.items() if n]
    capped = {
        d: token_lengths_capped(texts_of[d], loaded.tokenizer, settings.max_length) for d in {d for d, _ in steps}
    }
    for d, e in progress.track(
        steps, desc="05 engines", weight=lambda step: float(capped[step[0]][0].sum()) * left[step], label=" · ".join
    ):
        if isinstance(built[e], Exception):  # it cannot run here: every row says why
            rows = ({"distribution": d, "engine": e, "strategy": s, "batch_size": b} for s, b in cells)
            table.append_new(row | failure_row(built[e]) for row in rows)
            continue
        measure_distribution(
            table,
            d,
            texts_of[d],
            {e: built[e]},
            loaded.tokenizer,
            loaded.input_names,
            settings,
            capped=capped[d],
        )
