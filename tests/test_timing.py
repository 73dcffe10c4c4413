import time

import numpy as np
import pandas as pd
import pytest

from helpers.core import timing
from helpers.core.timing import (
    NOISY_CV,
    bootstrap_median_ci,
    interleaved,
    measure,
    ratio_of_medians,
    summarize,
    timing_columns,
)


def test_summarize_known_samples():
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s["n"] == 5
    assert s["mean_ms"] == pytest.approx(3.0)
    assert s["std_ms"] == pytest.approx(np.sqrt(2.5))
    assert s["cv"] == pytest.approx(np.sqrt(2.5) / 3)
    assert s["p50_ms"] == 3.0
    assert s["p90_ms"] == pytest.approx(4.6)
    assert s["p99_ms"] == pytest.approx(4.96)
    assert s["min_ms"] == 1.0
    assert 1.0 <= s["ci_low_ms"] <= 3.0 <= s["ci_high_ms"] <= 5.0


def test_summarize_constant_and_single():
    s = summarize([7.0] * 10)
    assert s["std_ms"] == 0 and s["cv"] == 0 and s["ci_low_ms"] == s["ci_high_ms"] == 7.0
    one = summarize([4.0])
    assert one["n"] == 1 and one["std_ms"] == 0.0 and one["p99_ms"] == 4.0
    with pytest.raises(ValueError):
        summarize([])


def test_median_ci_covers_truth_on_synthetic_data():
    # lognormal samples with known median exp(mu); a 95% CI should cover it ~95% of the time
    rng = np.random.default_rng(1)
    mu, covered, trials = np.log(10.0), 0, 200
    for _ in range(trials):
        x = rng.lognormal(mu, 0.3, size=60)
        lo, hi = bootstrap_median_ci(x, resamples=500, seed=int(rng.integers(1 << 30)))
        covered += lo <= 10.0 <= hi
    assert 0.88 <= covered / trials <= 0.995


def test_measure_known_sleep():
    t = measure(lambda: time.sleep(0.01), warmup=1, min_count=8, min_time_s=0.05, max_time_s=5)
    assert t.stats["n"] >= 8
    assert 9.5 <= t.stats["p50_ms"] <= 16.0
    assert t.stats["min_ms"] >= 9.9
    assert t.cold_ms >= 9.9


def test_measure_respects_min_time_and_caps():
    t = measure(lambda: None, warmup=0, min_count=3, min_time_s=0.05, max_count=10_000_000, max_time_s=5)
    assert t.samples_ms.sum() < 50 and t.stats["n"] > 100  # kept going until 0.05 s had passed
    capped = measure(lambda: time.sleep(0.005), warmup=0, min_count=2, min_time_s=10, max_count=4)
    assert capped.stats["n"] == 4
    timed_out = measure(lambda: time.sleep(0.02), warmup=0, min_count=1000, min_time_s=0, max_time_s=0.1)
    assert 2 <= timed_out.stats["n"] <= 8


def test_measure_calls_sync_around_each_call():
    calls = []
    measure(lambda: calls.append("fn"), warmup=1, min_count=2, min_time_s=0, sync=lambda: calls.append("sync"))
    # cold + warm-up + 2 samples, each bracketed by two synchronisations
    assert calls == ["sync", "fn", "sync"] * 4


def test_ratio_of_medians():
    rng = np.random.default_rng(0)
    base = rng.normal(100, 5, 200)
    fast = rng.normal(50, 2.5, 200)
    r = ratio_of_medians(base, fast)
    assert r["speedup"] == pytest.approx(np.median(base) / np.median(fast))
    assert r["speedup_ci_low"] < 2.0 < r["speedup_ci_high"]
    assert r["speedup_ci_high"] - r["speedup_ci_low"] < 0.2
    same = ratio_of_medians(base, base)
    assert same["speedup"] == 1.0 and same["speedup_ci_low"] <= 1.0 <= same["speedup_ci_high"]


def test_a_single_sample_gives_a_ratio_without_a_ci_and_the_text_says_so():
    from helpers.report.prose import text

    one = ratio_of_medians([100.0], [40.0, 50.0, 60.0])
    assert one["speedup"] == 2.0 and np.isnan(one["speedup_ci_low"]) and np.isnan(one["speedup_ci_high"])
    assert text.interval(one["speedup_ci_low"], one["speedup_ci_high"]) == "no CI: a single timed pass"
    assert text.interval(1.9, 2.1) == "95% CI 1.90–2.10"
    row = pd.Series(one)
    assert text.ci(row) == "2.00× (no CI: a single timed pass)"


def test_interleaved_runs_rounds_in_turn():
    order = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    res = interleaved(fns, rounds=3, warmup=0, min_count=2, min_time_s=0)
    assert res["a"].stats["n"] == 6 and res["b"].stats["n"] == 6
    # each round: cold call + 2 samples of a, then of b
    assert "".join(order) == "aaabbb" * 3


def test_harness_overhead_is_small():
    t = measure(lambda: None, warmup=10, min_count=1000, min_time_s=0.05)
    assert t.stats["p50_ms"] < 0.02  # < 20 µs per call, far under a 1 ms model call


def test_large_sample_median_ci_agrees_with_bootstrap():
    rng = np.random.default_rng(3)
    x = rng.lognormal(0, 0.5, size=20_000)
    fast = bootstrap_median_ci(x)  # order-statistic path
    small = x[:2000]
    boot_lo, boot_hi = bootstrap_median_ci(small)
    assert fast[0] < np.median(x) < fast[1]
    # width shrinks like 1/sqrt(n): 10x the samples, about 1/sqrt(10) of the bootstrap width
    ratio = (fast[1] - fast[0]) / (boot_hi - boot_lo)
    assert 0.2 < ratio < 0.5


def test_timing_columns_on_constant_samples():
    cols = timing_columns([4.0] * 20, items=8, tokens=256, baseline_ms=[4.0] * 20)
    assert cols["p50_ms"] == 4.0 and cols["n"] == 20
    assert cols["items_per_s"] == pytest.approx(2000.0) and cols["tokens_per_s"] == pytest.approx(64_000.0)
    assert cols["noisy"] is False
    assert cols["speedup"] == 1.0 and cols["speedup_ci_low"] == cols["speedup_ci_high"] == 1.0
    assert list(cols)[:10] == list(summarize([4.0] * 20))


def test_timing_columns_speedup_ci_contains_the_point():
    rng = np.random.default_rng(3)
    base, fast = rng.normal(10.0, 0.5, 200), rng.normal(5.0, 0.5, 200)
    cols = timing_columns(fast, items=1, baseline_ms=base)
    assert cols["speedup_ci_low"] <= cols["speedup"] <= cols["speedup_ci_high"]
    assert cols["speedup"] == pytest.approx(2.0, rel=0.05)
    assert {k: cols[k] for k in ("speedup", "speedup_ci_low", "speedup_ci_high")} == ratio_of_medians(base, fast)
    assert "tokens_per_s" not in cols


def test_timing_columns_optional_columns():
    noisy = timing_columns([1.0, 10.0, 1.0, 10.0], items=2)
    assert noisy["noisy"] is True and noisy["cv"] > NOISY_CV and "speedup" not in noisy
    plain = timing_columns([2.0, 2.0], items=2, tokens=10, flag_noisy=False)
    assert "noisy" not in plain and plain["items_per_s"] == pytest.approx(1000.0)


def _noisy(spread: float, seed: int = 0, fake_ms: float = 10.0):
    """A callable whose 'duration' is fake_ms x (1 + uniform noise of +-spread), read from a
    patched clock: deterministic, and no real waiting."""
    rng = np.random.default_rng(seed)
    clock = {"ns": 0}

    def fn():
        clock["ns"] += int(fake_ms * 1e6 * (1 + rng.uniform(-spread, spread)))

    return fn, clock


def test_measure_stops_once_the_median_is_known_to_the_target(monkeypatch):
    fn, clock = _noisy(0.10)
    monkeypatch.setattr(timing.time, "perf_counter_ns", lambda: clock["ns"])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["ns"] / 1e9)
    t = timing.measure(fn, warmup=0, min_count=3, min_time_s=0, max_time_s=100, target_ci=0.02)
    assert not t.capped and timing.relative_half_width(t.samples_ms) <= 0.02
    assert 10 < t.samples_ms.size < 500  # +-10% noise needs tens of samples for +-2%, not thousands
    cols = timing.timing_columns(t.samples_ms, 1, target_ci=0.02)
    assert cols["ci_half_width"] <= 0.02 and not cols["ci_capped"]  # recorded as stopped
    tighter = timing.measure(_noisy(0.10, seed=1)[0], warmup=0, min_count=3, min_time_s=0, max_time_s=100)
    assert tighter.samples_ms.size >= 3  # without a target: min_count and min_time_s only


def test_a_measurement_the_cap_stops_is_flagged(monkeypatch):
    fn, clock = _noisy(0.50)
    monkeypatch.setattr(timing.time, "perf_counter_ns", lambda: clock["ns"])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["ns"] / 1e9)
    t = timing.measure(fn, warmup=0, min_count=3, min_time_s=0, max_time_s=0.1, target_ci=0.01)
    assert t.capped and t.samples_ms.size == pytest.approx(10, abs=3)  # 0.1 s of ~10 ms calls
    cols = timing.timing_columns(t.samples_ms, 1, target_ci=0.01)
    assert cols["ci_half_width"] > 0.01 and cols["ci_capped"]
    assert "ci_capped" not in timing.timing_columns(t.samples_ms, 1)  # no target, no flag
    two = timing.timing_columns([100.0, 100.1], 1, target_ci=0.01)  # a narrow interval from 2 samples
    assert two["ci_half_width"] < 0.01 and two["ci_capped"]


def test_relative_half_width_of_known_samples():
    assert timing.relative_half_width([10.0]) == float("inf")
    assert timing.relative_half_width([10.0] * 30) == 0.0
    x = [9.0, 9.5, 10.0, 10.5, 11.0]
    low, high = bootstrap_median_ci(x)  # the interval the rows record
    assert timing.relative_half_width(x) == pytest.approx((high - low) / 2 / 10.0) and 0 < high - low <= 2


def test_a_speedup_whose_ci_holds_one_is_no_detectable_difference():
    from types import SimpleNamespace

    from helpers.report.prose import text

    same = SimpleNamespace(speedup=1.01, speedup_ci_low=0.96, speedup_ci_high=1.06)
    assert text.ci(same) == "1.01× (95% CI 0.96–1.06: no detectable difference)"
    faster = SimpleNamespace(speedup=1.2, speedup_ci_low=1.1, speedup_ci_high=1.3)
    assert text.ci(faster) == "1.20× (95% CI 1.10–1.30)"


def test_all_precise_needs_every_set_within_the_target_and_enough_samples():
    rng = np.random.default_rng(0)
    tight = 100 + rng.normal(0, 0.5, 40)  # CI of the median well within 2%
    noisy = 100 * rng.lognormal(0, 0.5, 40)  # far outside 2%
    assert timing.all_precise({"a": tight, "b": tight[::-1]}, 0.02)
    assert not timing.all_precise({"a": tight, "b": noisy}, 0.02)  # one imprecise set holds all back
    assert not timing.all_precise({"a": tight[:4]}, 0.02, min_samples=5)  # too few samples for a CI
    assert not timing.all_precise({"a": tight}, None)  # no target: never stop early


def test_interleaved_rounds_share_the_samples_the_pooled_target_needs(monkeypatch):
    kwargs = dict(warmup=0, min_count=5, min_time_s=0, max_time_s=100, target_ci=0.02)
    shared, alone = [], []
    for seed in range(12):  # stopping times vary widely from seed to seed: compare means
        fn, clock = _noisy(0.10, seed=seed)
        monkeypatch.setattr(timing.time, "perf_counter_ns", lambda: clock["ns"])
        monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["ns"] / 1e9)
        pooled = interleaved({"a": fn}, rounds=2, **kwargs)["a"].samples_ms
        assert timing.relative_half_width(pooled) <= 0.02  # the row (both rounds pooled) meets the target
        shared.append(pooled.size)
        alone.append(sum(timing.measure(fn, **kwargs).samples_ms.size for _ in range(2)))  # each round alone
    assert np.mean(shared) < 0.75 * np.mean(alone)  # about half: no round measures past what the row needs
    first = timing.round_kwargs(kwargs, 0, 2)
    last = timing.round_kwargs(kwargs, 1, 2, prior_ms=[1.0, 2.0])
    assert first["target_ci"] == pytest.approx(0.02 * 2**0.5) and first["prior_ms"] == []
    assert last["target_ci"] == pytest.approx(0.02) and last["prior_ms"] == [1.0, 2.0] and last["warmup"] == 0


def test_timing_settings_come_from_a_notebooks_parameters():
    params = {"min_time_s": 0.1, "max_time_s": 0.5, "target_ci": 0.05}
    assert timing.timing_settings(params) == dict(warmup=1, min_count=3, min_time_s=0.1, max_time_s=0.5, target_ci=0.05)
    capped = timing.timing_settings({"min_time_s": 0.1}, warmup=2, min_count=5, max_time_s=1.0)
    assert capped == dict(warmup=2, min_count=5, min_time_s=0.1, max_time_s=1.0, target_ci=None)
