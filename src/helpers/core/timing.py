"""Timing: warm-up, repeats until a target precision, raw samples, robust statistics,
speed-up ratios.

Every number the study prints about speed comes through `measure` (one engine, one
configuration) and `ratio_of_medians` (speed-ups from measurements interleaved in time);
`timing_columns` turns raw samples into a result row's timing columns, in every study.
With `target_ci`, `measure` repeats until the 95% CI of the median is within that share of
the median (or a cap is reached), so a tiny model is not timed thousands of times and a
large one is not left at n = 6; rows record the achieved half-width and flag capped ones.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

STAT_COLUMNS = ("n", "mean_ms", "std_ms", "cv", "p50_ms", "p90_ms", "p99_ms", "min_ms", "ci_low_ms", "ci_high_ms")
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_MAX_N = 2000
NOISY_CV = 0.10  # a measurement whose CV is above this is flagged as noisy
MIN_CI_SAMPLES = 5  # below this many samples a median's CI says little: such a row is flagged capped


def bootstrap_median_ci(
    samples, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median. Above BOOTSTRAP_MAX_N samples
    (tiny calls timed thousands of times) the distribution-free order-statistic interval is
    used instead: the same answer at that size, without resampling millions of values."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size > BOOTSTRAP_MAX_N:
        return _order_statistic_median_ci(x, confidence)
    rng = np.random.default_rng(seed)
    medians = np.median(x[rng.integers(0, x.size, size=(resamples, x.size))], axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(medians, alpha)), float(np.quantile(medians, 1 - alpha))


def _order_statistic_median_ci(x: np.ndarray, confidence: float) -> tuple[float, float]:
    """Ranks n/2 -/+ z*sqrt(n)/2 of the sorted samples (normal approximation to the binomial)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    x = np.sort(x)
    half = z * np.sqrt(x.size) / 2
    lo = int(np.floor(x.size / 2 - half))
    hi = int(np.ceil(x.size / 2 + half))
    return float(x[max(lo, 0)]), float(x[min(hi, x.size - 1)])


def relative_half_width(samples) -> float:
    """Half the width of the median's 95% CI as a share of the median: the interval the rows
    record (`summarize`), so a measurement stopped at the target is recorded at it. Infinite
    below 2 samples."""
    x = np.asarray(samples, dtype=float)
    if x.size < 2:
        return float("inf")
    low, high = bootstrap_median_ci(x)
    median = float(np.percentile(x, 50))
    return (high - low) / 2 / median if median > 0 else float("inf")


def all_precise(samples: dict, target_ci: float | None, min_samples: int = 1) -> bool:
    """Whether every sample set (e.g. interleaved passes of several strategies) has at least
    `min_samples` samples and its median known to within target_ci (never, without a target)."""
    return target_ci is not None and all(
        len(x) >= min_samples and relative_half_width(x) <= target_ci for x in samples.values()
    )


def _check_due(n: int) -> bool:
    """Check precision after every call up to 50 samples, then about every 10% more samples
    (each check resamples the median: cheap at first, not after thousands of samples)."""
    return n < 50 or n % max(n // 10, 1) == 0


def summarize(samples_ms) -> dict:
    """Statistics of raw samples in ms: n, mean, std, CV, p50/p90/p99, min, 95% CI of the median."""
    x = np.asarray(samples_ms, dtype=float)
    if x.size == 0:
        raise ValueError("summarize needs at least one sample")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    ci_low, ci_high = bootstrap_median_ci(x)
    return {
        "n": int(x.size),
        "mean_ms": mean,
        "std_ms": std,
        "cv": std / mean if mean > 0 else float("nan"),
        "p50_ms": float(np.percentile(x, 50)),
        "p90_ms": float(np.percentile(x, 90)),
        "p99_ms": float(np.percentile(x, 99)),
        "min_ms": float(x.min()),
        "ci_low_ms": ci_low,
        "ci_high_ms": ci_high,
    }


@dataclass
class Timing:
    """Raw samples of one measurement (warm-up excluded) and the first call's time."""

    samples_ms: np.ndarray
    cold_ms: float
    warmup: int = 0
    capped: bool = False  # stopped by max_count / max_time_s before reaching target_ci

    @cached_property
    def stats(self) -> dict:
        return summarize(self.samples_ms)

    @property
    def median_ms(self) -> float:
        return self.stats["p50_ms"]

    @property
    def noisy(self) -> bool:
        return self.stats["cv"] > NOISY_CV


def _timed_call(fn: Callable, sync: Callable | None) -> float:
    """One call of fn in ms; sync (e.g. torch.cuda.synchronize) brackets device work."""
    if sync is not None:
        sync()
    start = time.perf_counter_ns()
    fn()
    if sync is not None:
        sync()
    return (time.perf_counter_ns() - start) / 1e6


def measure(
    fn: Callable,
    *,
    warmup: int = 2,
    min_count: int = 5,
    min_time_s: float = 0.5,
    max_count: int = 10_000,
    max_time_s: float = 10.0,
    sync: Callable | None = None,
    target_ci: float | None = None,
    prior_ms=(),
) -> Timing:
    """Time fn(): the first call is the cold start, `warmup` more calls are discarded, then
    repeat until `min_count` samples and `min_time_s` seconds are reached and, with
    `target_ci`, the 95% CI of the median is within target_ci x the median; stopping at
    `max_count` samples or `max_time_s` seconds (whichever comes first, never below 1 sample:
    a stop before the target is `capped`). `prior_ms`: samples of earlier rounds of the same
    measurement, judged together with this round's against the target (not returned).
    """
    if min_count < 1 or max_count < min_count:
        raise ValueError(f"measure: need 1 <= min_count <= max_count, got {min_count}, {max_count}")
    cold_ms = _timed_call(fn, sync)
    for _ in range(warmup):
        _timed_call(fn, sync)
    samples: list[float] = []
    prior = list(prior_ms)
    start = time.perf_counter()
    precise = target_ci is None
    while True:
        samples.append(_timed_call(fn, sync))
        elapsed = time.perf_counter() - start
        enough = len(samples) >= min_count and elapsed >= min_time_s
        if enough and not precise and _check_due(len(prior) + len(samples)):
            precise = relative_half_width(prior + samples) <= target_ci
        if enough and precise:
            break
        if len(samples) >= max_count or elapsed >= max_time_s:
            break
    return Timing(np.array(samples), cold_ms, warmup, capped=not (enough and precise))


def cuda_sync_for(device: str) -> Callable | None:
    """The synchronisation to bracket timed calls with on `device` (None on CPU)."""
    if not str(device).startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was requested but torch sees no CUDA device")
    return torch.cuda.synchronize


def ratio_of_medians(
    baseline_ms, candidate_ms, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> dict:
    """Speed-up of candidate over baseline = median(baseline) / median(candidate), with a
    bootstrap CI that resamples both sample sets independently (NaN with a single sample on
    either side: resampling one value gives a zero-width interval that says nothing)."""
    a = np.asarray(baseline_ms, dtype=float)
    b = np.asarray(candidate_ms, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("ratio_of_medians needs samples on both sides")
    if min(a.size, b.size) < 2:
        speedup = float(np.median(a) / np.median(b))
        return {"speedup": speedup, "speedup_ci_low": float("nan"), "speedup_ci_high": float("nan")}
    rng = np.random.default_rng(seed)
    ma = np.median(a[rng.integers(0, a.size, size=(resamples, a.size))], axis=1)
    mb = np.median(b[rng.integers(0, b.size, size=(resamples, b.size))], axis=1)
    ratios = ma / mb
    alpha = (1 - confidence) / 2
    return {
        "speedup": float(np.median(a) / np.median(b)),
        "speedup_ci_low": float(np.quantile(ratios, alpha)),
        "speedup_ci_high": float(np.quantile(ratios, 1 - alpha)),
    }


def timing_columns(
    samples_ms,
    items: float,
    tokens: float | None = None,
    baseline_ms=None,
    *,
    flag_noisy: bool = True,
    target_ci: float | None = None,
) -> dict:
    """A result row's timing columns from raw samples (ms per call, `items` texts and
    `tokens` real tokens per call): the statistics of `summarize`, `ci_half_width` (of the
    median's 95% CI, a share of the median), items_per_s and tokens_per_s at the median,
    `noisy` (CV above NOISY_CV; left out with flag_noisy=False), with `target_ci` the flag
    `ci_capped` (the half-width missed the target, or fewer than MIN_CI_SAMPLES samples: the
    cap stopped it first), and with
    baseline samples the speed-up over them with its bootstrap CI."""
    columns = summarize(samples_ms)
    columns["ci_half_width"] = (columns["ci_high_ms"] - columns["ci_low_ms"]) / 2 / columns["p50_ms"]
    if target_ci is not None:
        columns["ci_capped"] = bool(columns["ci_half_width"] > target_ci or columns["n"] < MIN_CI_SAMPLES)
    per_s = 1e3 / columns["p50_ms"]
    columns["items_per_s"] = items * per_s
    if tokens is not None:
        columns["tokens_per_s"] = tokens * per_s
    if flag_noisy:
        columns["noisy"] = columns["cv"] > NOISY_CV
    if baseline_ms is not None:
        columns.update(ratio_of_medians(baseline_ms, samples_ms))
    return columns


def timing_settings(params: dict, *, warmup: int = 1, min_count: int = 3, max_time_s: float | None = None) -> dict:
    """`measure`'s keyword arguments from a notebook's parameters: its min_time_s, its
    max_time_s (or the cap given) and its target_ci (None where the notebook has none)."""
    return dict(
        warmup=warmup,
        min_count=min_count,
        min_time_s=params["min_time_s"],
        max_time_s=params["max_time_s"] if max_time_s is None else max_time_s,
        target_ci=params.get("target_ci"),
    )


def round_kwargs(kwargs: dict, r: int, rounds: int = 1, prior_ms=()) -> dict:
    """measure()'s settings for round r (from 0) of `rounds` interleaved ones: only the first
    pays (and reports) the cold start and the warm-up. With a target_ci, round r stops once its
    samples and the earlier rounds' (`prior_ms`) are within target_ci x sqrt(rounds / (r + 1)):
    the rounds share the samples the pooled row needs to reach target_ci (each round reaching
    it alone took about `rounds` times as many), and the last round judges the pooled ones."""
    out = dict(kwargs) if r == 0 else {**kwargs, "warmup": 0}
    if out.get("target_ci") is not None:
        out["target_ci"] *= math.sqrt(rounds / (r + 1))
        out["prior_ms"] = list(prior_ms)
    return out


def interleaved(fns: dict[str, Callable], *, rounds: int = 5, **measure_kwargs) -> dict[str, Timing]:
    """Measure several callables in rounds A, B, C, A, B, C ... so drift in machine speed falls
    on each alike; returns one Timing per name with the samples of all rounds pooled."""
    pooled: dict[str, list[Timing]] = {name: [] for name in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            prior = [x for t in pooled[name] for x in t.samples_ms]
            pooled[name].append(measure(fn, **round_kwargs(measure_kwargs, r, rounds, prior)))
    return {
        name: Timing(np.concatenate([t.samples_ms for t in ts]), ts[0].cold_ms, ts[0].warmup)
        for name, ts in pooled.items()
    }
