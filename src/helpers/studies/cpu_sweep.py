"""The CPU/GPU engine sweep: which configurations, how they are measured, what a row holds.

Engines run in workers (helpers.backends.workers), one process per engine and thread count, measured
in interleaved rounds per configuration; eager fp32 is always among them (the baseline of
every speed-up) and the reference every engine's output is checked against.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from helpers.backends import engines
from helpers.backends.variants import prepare_files
from helpers.backends.workers import SETTLE_S, EngineSpec, EngineWorker, Measurement, WorkerError, pooled_samples
from helpers.core.machine import ceilings_by_precision, cell_ceiling, nominal_by_precision, thread_counts
from helpers.core.tables import SAMPLES, failure_row, read_table
from helpers.core.timing import round_kwargs, timing_columns, timing_settings
from helpers.workloads.models import model_config

SCOPES = ("model", "end_to_end")


BASELINE = "eager"


CHECK_ROWS = 2


@dataclass(frozen=True)
class Config:
    model: str
    threads: int
    batch_size: int
    seq_len: int
    part: str  # which chart the configuration serves: batch, length, threads, heatmap

    @property
    def tokens(self) -> int:
        return self.batch_size * self.seq_len


def _anchor(values: list[int], preferred: int) -> int:
    return preferred if preferred in values else sorted(values)[len(values) // 2]


def sweep_configs(
    models: list[str], batch_sizes: list[int], seq_lens: list[int], threads: list[int], heatmap_model: str = ""
) -> list[Config]:
    """Per model, at the most threads: a batch sweep at the anchor length (128) and a length
    sweep at the anchor batch (8); at every thread count: batch 1 and the anchor batch at the
    anchor length; for `heatmap_model`, every batch x length pair. Ordered by model and
    thread count (one set of workers each), then by size."""
    top, b0, s0 = max(threads), _anchor(batch_sizes, 8), _anchor(seq_lens, 128)
    configs = []
    for model in models:
        configs += [Config(model, top, b, s0, "batch") for b in batch_sizes]
        configs += [Config(model, top, b0, s, "length") for s in seq_lens]
        configs += [Config(model, t, b, s0, "threads") for t in threads for b in sorted({1, b0})]
        if model == heatmap_model:
            configs += [Config(model, top, b, s, "heatmap") for b in batch_sizes for s in seq_lens]
    unique = {}
    for c in configs:  # the first part that asks for a configuration names it
        unique.setdefault((c.model, c.threads, c.batch_size, c.seq_len), c)
    order = {m: i for i, m in enumerate(models)}
    return sorted(unique.values(), key=lambda c: (order[c.model], c.threads, c.tokens, c.batch_size))


# -- measuring one configuration ---------------------------------------------------------------
def measure_config(
    workers: dict[str, EngineWorker],
    batch: dict,
    texts: list[str],
    seq_len: int,
    scope: str,
    rounds: int,
    timing_kwargs: dict,
) -> dict[str, list[Measurement] | Exception]:
    """Interleaved rounds over the workers; a worker that fails gives its exception."""
    results: dict = {name: [] for name in workers}
    for r in range(rounds):
        for name, worker in workers.items():
            if isinstance(results[name], Exception):
                continue
            time.sleep(SETTLE_S)
            try:
                results[name].append(
                    worker.measure(
                        batch,
                        seq_len,
                        round_kwargs(timing_kwargs, r, rounds, pooled_samples(results[name])),
                        texts if scope == "end_to_end" else None,
                        CHECK_ROWS if r == 0 and scope == "model" else 0,
                    )
                )
            except (WorkerError, MemoryError) as exc:
                results[name] = exc
    return results


def efficiency(flops: int, median_ms: float, ceiling_gflops: float) -> tuple[float, float]:
    """Achieved GFLOP/s and its fraction of the machine's ceiling for that precision."""
    achieved = flops / (median_ms / 1e3) / 1e9
    return achieved, achieved / ceiling_gflops if ceiling_gflops and not math.isnan(ceiling_gflops) else math.nan


def config_rows(
    config: Config,
    scope: str,
    results: dict,
    worker_info: dict,
    real_tokens: int,
    flops: int,
    ceilings: dict[str, float],
    target_ci: float | None = None,
    nominal: dict[str, float] | None = None,
) -> list[dict]:
    """One row per engine: statistics (the CI half-width flagged against `target_ci`), speed-up
    over eager with CI, agreement, memory, efficiency."""
    base = results.get(BASELINE)
    base_ok = isinstance(base, list) and base
    reference = base[0].check if base_ok and base[0].check else None
    rows = []
    for name, outcome in results.items():
        row = _base_row(config, scope, name)
        info = worker_info.get(name, {})
        row.update({k: info[k] for k in ("precision", "graph", "provider", "runtime", "cold_start") if k in info})
        if isinstance(outcome, Exception):
            rows.append({**row, **failure_row(outcome)})
            continue
        samples = pooled_samples(outcome)
        baseline = pooled_samples(base) if base_ok else None
        timing = timing_columns(samples, config.batch_size, real_tokens, baseline, target_ci=target_ci)
        precision = info.get("precision", "fp32")
        ceiling, peak = ceilings.get(precision, math.nan), (nominal or {}).get(precision, math.nan)
        achieved, share = efficiency(flops, timing["p50_ms"], ceiling)
        row.update(
            cold_ms=outcome[0].cold_ms,
            build_s=info.get("build_s"),
            load_mb=info.get("loaded_mb", 0) - info.get("base_mb", 0),
            peak_rss_mb=max(m.peak_rss_mb for m in outcome),
            gflops=achieved,
            ceiling_gflops=ceiling,
            efficiency=share,
            nominal_gflops=peak,
            nominal_efficiency=efficiency(flops, timing["p50_ms"], peak)[1],
            above_ceiling=bool(share > 1),  # the measured ceiling is too low: it is not the limit
            status="ok",
            message="",
        )
        row.update(timing)
        row[SAMPLES] = samples
        check = outcome[0].check
        if reference and check:
            agreement = engines.check_against_reference(
                check["hidden"],
                reference["hidden"],
                reference["attention_mask"],
                precision=info.get("precision", "fp32"),
            )
            row.update(
                max_abs_diff=agreement["max_abs_diff"],
                cosine_min=agreement["cosine_min"],
                status=agreement["status"],
                message=agreement["message"],
            )
        rows.append(row)
    return rows


def _base_row(config: Config, scope: str, engine: str) -> dict:
    return {
        "model": config.model,
        "engine": engine,
        "threads": config.threads,
        "batch_size": config.batch_size,
        "seq_len": config.seq_len,
        "scope": scope,
        "part": config.part,
        "device": "cpu",
    }


def skipped_rows(config: Config, scope: str, names: list[str], reason: str) -> list[dict]:
    return [{**_base_row(config, scope, name), "status": "skipped", "message": reason} for name in names]


def stop(workers: dict[str, EngineWorker]) -> None:
    for worker in workers.values():
        worker.close()


def worker_memory_mb(n_params: int) -> float:
    """Rough memory an engine worker needs while it loads: the fp32 weights twice (the model and
    the engine built from it) and a runtime."""
    return 2 * n_params * 4 / 2**20 + 1024


def start_workers(model: str, names: list[str], threads: int, files: dict[str, str], need_mb: float = 0.0):
    """Workers for every engine; an engine that cannot be built gives its exception instead,
    and so does one that would not fit: with less than `need_mb` available it is not started
    (rather than the kernel being killed for memory, seven bert-large workers on 24 GiB)."""
    import psutil

    from helpers.core import progress

    workers, failed = {}, {}
    with progress.phase(f"starting workers {', '.join(names)} ({model}, {threads} thread(s))"):
        for name in names:
            available = psutil.virtual_memory().available / 2**20
            if available < need_mb:
                failed[name] = MemoryError(
                    f"{name} not started: {available:.0f} MB available, a {model} worker needs about "
                    f"{need_mb:.0f} MB while it loads (the other engines' workers hold the rest)"
                )
                continue
            try:
                workers[name] = EngineWorker(EngineSpec(model, name, threads, files.get(name)))
            except (WorkerError, MemoryError) as exc:
                failed[name] = exc
    return workers, failed


@dataclass
class Pending:
    config: Config
    scope: str
    engines: list[str]  # the engines whose row is still missing

    def __str__(self) -> str:
        c = self.config
        return f"{c.model} {c.threads}t b{c.batch_size}x{c.seq_len} {self.scope}"


# Only for the progress bar's time left: a rough fp32 rate (GFLOP/s) and samples per engine
# and round. A call's FLOPs alone would make a bert-base call weigh 10^5 bert-tiny ones, whose
# time is the minimum measuring time instead: the bar would first promise days.
ROUGH_GFLOPS = 100.0
ROUGH_SAMPLES = 20


def expected_seconds(gflop: float, engines: int, rounds: int, timing_kwargs: dict) -> float:
    """Rough seconds to measure one configuration: each engine, each round, measures for
    min_time_s to max_time_s (ROUGH_SAMPLES calls in between), and at least one call."""
    call_s = gflop / ROUGH_GFLOPS
    low, high = timing_kwargs.get("min_time_s", 0.0), timing_kwargs.get("max_time_s", float("inf"))
    per_round = max(min(max(low, ROUGH_SAMPLES * call_s), high), call_s)
    return engines * rounds * per_round


class Sweep:
    """Runs pending configurations in order, keeping one set of workers alive per (model,
    threads) and appending each configuration's rows as soon as it is measured."""

    def __init__(
        self,
        table,
        names: list[str],
        scopes: list[str],
        texts,
        *,
        rounds: int,
        timing_kwargs: dict,
        max_gflop: float,
        end_to_end_max_gflop: float | None = None,
        ceilings: pd.DataFrame | None,
        ort_level: str,
        int8_method: str,
        calibration_texts,
    ):
        self.table, self.texts, self.rounds, self.timing_kwargs = table, texts, rounds, timing_kwargs
        self.names = [BASELINE] + [n for n in names if n != BASELINE]
        self.scopes, self.max_gflop, self.ceilings = scopes, max_gflop, ceilings
        self.shapes = read_table("00_gemm_shapes")  # 00's GEMM rates at encoder shapes: each cell's ceiling
        self.end_to_end_max_gflop = max_gflop if end_to_end_max_gflop is None else end_to_end_max_gflop
        self.ort_level, self.int8_method = ort_level, int8_method
        self.calibration_texts = calibration_texts
        self.group, self.workers, self.failed = None, {}, {}

    @classmethod
    def from_params(
        cls, table, params: Mapping[str, Any], texts, *, ceilings: pd.DataFrame | None, int8_method: str
    ) -> Sweep:
        """The sweep 03's parameters describe, on `texts` (its odd ones calibrate static INT8),
        with what the earlier notebooks chose (`earlier_results`: 00's ceilings, 02's method)."""
        return cls(
            table,
            params["engines"],
            params["scopes"],
            texts,
            rounds=params["rounds"],
            timing_kwargs=timing_kwargs(params),
            max_gflop=params["max_gflop"],
            end_to_end_max_gflop=params["end_to_end_max_gflop"],
            ceilings=ceilings,
            ort_level=params["ort_level"],
            int8_method=int8_method,
            calibration_texts=texts[1::2],
        )

    def items(self, configs: list[Config]) -> list[tuple[Config, str]]:
        """Every (configuration, scope) the sweep measures: the heatmap grid is timed
        model-only (end to end is covered by the sweeps)."""
        return [(c, s) for c in configs for s in self.scopes if c.part != "heatmap" or s == "model"]

    def pending(self, configs: list[Config]) -> list[Pending]:
        items = []
        for c, scope in self.items(configs):
            key = dict(model=c.model, threads=c.threads, batch_size=c.batch_size, seq_len=c.seq_len, scope=scope)
            missing = [e for e in self.names if not self.table.done(engine=e, **key)]
            if missing:
                items.append(Pending(c, scope, missing))
        return items

    def expected_seconds(self, item: Pending) -> float:
        """What measuring a pending item should take, the progress bar's weight (nearly nothing
        above max_gflop: it is recorded as skipped)."""
        from helpers.workloads.models import encoder_flops, model_config

        c = item.config
        gflop = encoder_flops(model_config(c.model), c.batch_size, c.seq_len) / 1e9
        if gflop > self.max_gflop:
            return 1e-3
        return expected_seconds(gflop, len(item.engines), self.rounds, self.timing_kwargs)

    def _held(self, row: dict) -> dict:
        """A timed row's ceiling at the model's own shapes (held_to_shapes), as it is written."""
        if row.get("gflops") is None or row["gflops"] != row["gflops"]:
            return {}
        return held_to_shapes(pd.DataFrame([row]), self.shapes)[HELD_COLUMNS].iloc[0].to_dict()

    def _enter_group(self, model: str, threads: int) -> None:
        from helpers.core.memory import release_free_memory
        from helpers.workloads.corpora import token_lengths
        from helpers.workloads.models import load_model

        if self.group == (model, threads):
            return
        self.close()
        loaded = load_model(model)
        self.tokenizer, self.model_config, self.n_params = loaded.tokenizer, loaded.config, loaded.n_params
        self.lengths = token_lengths(self.texts, loaded.tokenizer)
        try:
            files = prepare_files(loaded, self.names, self.ort_level, self.int8_method, self.calibration_texts)
        except Exception as exc:  # the ORT engines of this model are recorded as errors
            files, ort_failure = {}, exc
        else:
            ort_failure = None
        del loaded  # the workers hold their own copies
        release_free_memory()  # the exports' and quantizations' peak, before the workers load
        names = [n for n in self.names if not (ort_failure and n.startswith("ort"))]
        need = worker_memory_mb(self.n_params)
        self.workers, self.failed = start_workers(model, names, threads, files, need)
        self.failed.update({n: ort_failure for n in self.names if ort_failure and n.startswith("ort")})
        self.group = (model, threads)

    def run(self, item: Pending) -> None:
        from helpers.workloads.corpora import texts_at_length
        from helpers.workloads.models import encoder_flops, model_config

        c = item.config
        gflop = encoder_flops(model_config(c.model), c.batch_size, c.seq_len) / 1e9
        reason = self._over_budget(gflop, item.scope)
        if reason:
            for row in skipped_rows(c, item.scope, item.engines, reason):
                self.table.append(row)
            return
        self._enter_group(c.model, c.threads)
        batch, real_tokens = texts_at_length(self.texts, self.tokenizer, c.batch_size, c.seq_len, lengths=self.lengths)
        raw = self.tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
        active = {n: self.workers[n] for n in self.names if n in self.workers and (n in item.engines or n == BASELINE)}
        results = measure_config(active, batch, raw, c.seq_len, item.scope, self.rounds, self.timing_kwargs)
        results.update({n: self.failed[n] for n in item.engines if n in self.failed})
        info = {n: w.info for n, w in self.workers.items()}
        flops = encoder_flops(self.model_config, c.batch_size, c.seq_len)
        ceilings = ceilings_by_precision(self.ceilings, c.threads)
        nominal = nominal_by_precision(self.ceilings, c.threads)
        target = self.timing_kwargs.get("target_ci")
        for row in config_rows(c, item.scope, results, info, real_tokens, flops, ceilings, target, nominal):
            if row["engine"] in item.engines:
                recipe = self.int8_method if row["engine"] == "ort-int8" else ""  # the 02 method it timed
                row = {**row, "n_params": self.n_params, "flops": flops, "recipe": recipe}
                self.table.append(row | self._held(row))
        self._replace_dead_workers()

    def _over_budget(self, gflop: float, scope: str) -> str:
        """Why a configuration is left out for time, or ''."""
        if gflop > self.max_gflop:
            return f"{gflop:.0f} GFLOP per call is above max_gflop={self.max_gflop:g} (the time budget)"
        if scope == "end_to_end" and gflop > self.end_to_end_max_gflop:
            return (
                f"{gflop:.0f} GFLOP per call is above end_to_end_max_gflop={self.end_to_end_max_gflop:g}: "
                "tokenization is a negligible share at this size; the model scope is measured"
            )
        return ""

    def _replace_dead_workers(self) -> None:
        """A worker killed (e.g. out of memory) is started again for the next configuration."""
        for name, worker in list(self.workers.items()):
            if not worker.alive:
                worker.close()
                del self.workers[name]
                new, failed = start_workers(
                    worker.spec.model,
                    [name],
                    worker.spec.threads,
                    {name: worker.spec.onnx_path} if worker.spec.onnx_path else {},
                    worker_memory_mb(self.n_params),
                )
                self.workers.update(new)
                self.failed.update(failed)

    def close(self) -> None:
        stop(self.workers)
        self.workers, self.group = {}, None


# -- the notebook's steps ---------------------------------------------------------------------
def timing_kwargs(params: Mapping[str, Any]) -> dict:
    """The timing settings of every engine and round, from 03's parameters."""
    return timing_settings(params)


def corpus_texts(params: Mapping[str, Any]) -> list[str]:
    """The texts of the corpus 03's parameters name (packed to each configuration's length)."""
    from helpers.workloads.corpora import corpus_from_params

    return corpus_from_params(params).texts


def configs(params: Mapping[str, Any]) -> list[Config]:
    """`sweep_configs` of 03's parameters (`threads` empty: 1, 2, 4 ... up to the logical cores)."""
    return sweep_configs(
        params["models"],
        params["batch_sizes"],
        params["seq_lens"],
        thread_counts(params["threads"]),
        params["heatmap_model"],
    )


def earlier_results(ort_level: str) -> tuple[str, pd.DataFrame | None, str]:
    """What 03 takes from earlier notebooks of this run: the ORT INT8 method 02 found fastest
    within tolerance, 00's ceilings (None when 00 has not run), and a line saying both."""
    from helpers.backends.variants import best_int8_method
    from helpers.core.tables import read_table

    int8_method, int8_reason = best_int8_method(read_table("02_variants"), read_table("02_speed"))
    ceilings = read_table("00_ceilings")
    efficiency_note = (
        "Efficiency uses the ceilings of 00_environment."
        if ceilings is not None
        else "**00_environment has not run: efficiency is left empty.**"
    )
    note = f"ORT INT8 engine: {int8_reason}. ORT fp32 engine: graph level {ort_level}. {efficiency_note}"
    return int8_method, ceilings, note


def run_sweep(sweep: Sweep, configs: list[Config], desc: str = "03 sweep") -> None:
    """Measure every configuration the table does not hold yet, with a progress bar weighed
    by each one's expected seconds (its time left is by work, not by count); a resumed run says
    how many it already holds. The engine workers are stopped at the end, also when one raises."""
    from helpers.core import progress

    pending, total = sweep.pending(configs), len(sweep.items(configs))
    progress.resumed(total - len(pending), total)
    try:
        for item in progress.track(pending, desc=desc, label=str, weight=sweep.expected_seconds):
            sweep.run(item)
    finally:
        sweep.close()


HELD_COLUMNS = ["ceiling_gflops", "ceiling_at", "efficiency", "above_ceiling"]  # what held_to_shapes sets


def held_to_shapes(sweep: pd.DataFrame, shapes: pd.DataFrame | None) -> pd.DataFrame:
    """03's rows with their efficiency held against 00's GEMM rate at the engine's precision and
    the model's own layer shapes (`ceiling_at` says which: model shapes, the nearest width 00
    measured, or the square GEMM where 00 measured no shapes); `above_ceiling` where a cell
    still outruns it (the engine's kernels beat 00's libraries at that shape)."""
    if not len(sweep) or "gflops" not in sweep:
        return sweep
    widths = {}
    for model in sweep["model"].unique():
        try:
            widths[model] = int(model_config(model).hidden_size)
        except Exception:  # a user model whose config is not here: held to the square GEMM
            widths[model] = 0
    held = [
        cell_ceiling(shapes, r.ceiling_gflops, r.precision, widths[r.model], r.batch_size * r.seq_len, r.threads)
        if widths[r.model]
        else (r.ceiling_gflops, "square GEMM")
        for r in sweep.itertuples()
    ]
    ceiling = pd.Series([c for c, _ in held], index=sweep.index, dtype=float)
    efficiency = sweep["gflops"] / ceiling
    return sweep.assign(
        ceiling_gflops=ceiling, ceiling_at=[w for _, w in held], efficiency=efficiency, above_ceiling=efficiency > 1
    )


def results(table) -> pd.DataFrame:
    """03's table as every chart and text reads it: efficiency held to the model's own shapes
    (tables written before 03 did so are held to them here)."""
    return held_to_shapes(table.read(), read_table("00_gemm_shapes"))
