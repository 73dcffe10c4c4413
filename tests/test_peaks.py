"""Nominal peaks from the instruction set and the clock, and 00's checks of its own yardsticks."""

import pandas as pd
import pytest

from helpers.core import peaks
from helpers.core.machine import nominal_by_precision
from helpers.report.prose.takeaways import _efficiency_text
from helpers.studies import environment_checks

SAPPHIRE_RAPIDS = {
    "avx2": True,
    "avx512f": True,
    "avx512_vnni": True,
    "avx512_bf16": True,
    "amx_bf16": True,
    "amx_int8": True,
}
ZEN4 = {"avx2": True, "avx512f": True, "avx512_vnni": True, "avx512_bf16": True}


def test_operations_per_cycle_follow_the_instruction_set():
    spr = peaks.per_cycle(SAPPHIRE_RAPIDS, "GenuineIntel")
    assert {p: ops for p, (ops, _) in spr.items()} == {"fp32": 64, "bf16": 2048, "int8": 4096}
    zen4 = peaks.per_cycle(ZEN4, "AuthenticAMD")
    assert {p: ops for p, (ops, _) in zen4.items()} == {"fp32": 32, "bf16": 64, "int8": 128}
    avx2 = peaks.per_cycle({"avx2": True}, "GenuineIntel")
    assert avx2["fp32"][0] == 32 and avx2["bf16"][0] == 32 and "no bf16 instructions" in avx2["bf16"][1]
    assert avx2["int8"][0] == 64


def test_the_clock_says_where_it_comes_from(tmp_path):
    named = "model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\ncpu MHz\t\t: 2600.000\n"
    assert peaks.clock_mhz(named, tmp_path) == (2000.0, "nominal clock in the CPU's model name")
    mhz, source = peaks.clock_mhz("model name\t: Intel(R) Xeon(R) Processor\ncpu MHz\t\t: 2600.000\n", tmp_path)
    assert mhz == 2600.0 and "turbo can exceed it" in source
    (tmp_path / "cpufreq").mkdir()
    (tmp_path / "cpufreq" / "cpuinfo_max_freq").write_text("3500000\n")
    assert peaks.clock_mhz(named, tmp_path) == (3500.0, "maximum clock (cpufreq cpuinfo_max_freq)")
    assert peaks.clock_mhz("", tmp_path / "none")[0] != peaks.clock_mhz("", tmp_path / "none")[0]  # NaN


def _ceilings() -> pd.DataFrame:
    rows = peaks.nominal_rows(SAPPHIRE_RAPIDS, "GenuineIntel", [2], (2600.0, "cpu MHz in /proc/cpuinfo"))
    measured = [
        {"kind": "gemm", "library": "torch", "precision": "fp32", "device": "cpu", "threads": 2, "value": 343.0},
        {"kind": "gemm", "library": "torch", "precision": "bf16", "device": "cpu", "threads": 2, "value": 2100.0},
    ]
    return pd.DataFrame(rows + [m | {"unit": "GFLOP/s", "status": "ok", "message": ""} for m in measured])


def test_nominal_peaks_and_a_measured_rate_above_one():
    df = _ceilings()
    nominal = nominal_by_precision(df, 2)
    assert nominal["fp32"] == pytest.approx(64 * 2.6 * 2) and nominal["bf16"] == pytest.approx(2048 * 2.6 * 2)
    text = environment_checks.nominal_text(df)
    assert "fp32 343 of 333 (103%)" in text and "bf16 2100 of 10650 (20%)" in text
    assert "**Above the nominal peak: fp32**" in text and "clock 2600 MHz: cpu MHz in /proc/cpuinfo" in text
    assert "Above" not in environment_checks.nominal_text(df[df["precision"] != "fp32"])


def test_a_clock_below_what_the_measured_rates_need_is_raised_and_labelled():
    measured = [("fp32", 1, 186.0), ("fp32", 2, 359.0), ("bf16", 2, 400.0)]
    mhz, why = peaks.clock_needed(measured, SAPPHIRE_RAPIDS, "GenuineIntel")
    assert mhz == pytest.approx(186e3 / 64) and why.startswith("the measured fp32 GEMM rate at 1 core(s), 186")
    os_clock = (2600.0, "cpu MHz in /proc/cpuinfo")
    raised, source = peaks.running_clock(os_clock, (mhz, why))
    assert raised == mhz and "at least the clock the measured fp32" in source and "the OS says 2600 MHz" in source
    assert peaks.running_clock((3500.0, "cpufreq"), (mhz, why)) == (3500.0, "cpufreq")  # the OS's figure suffices
    assert peaks.running_clock(os_clock, peaks.clock_needed([], SAPPHIRE_RAPIDS, "GenuineIntel")) == os_clock
    rows = peaks.nominal_rows(SAPPHIRE_RAPIDS, "GenuineIntel", [1, 2], (raised, source))
    fp32 = {r["threads"]: r["value"] for r in rows if r["precision"] == "fp32"}
    assert fp32[1] == pytest.approx(186.0) and 359.0 < fp32[2]  # every measured rate within its peak


def test_the_harness_check_row_and_its_verdict():
    row = environment_checks.harness_check(threads=1, timing=dict(warmup=1, min_count=3, min_time_s=0.02), rounds=2)
    assert row["worker_p50_ms"] > 0 and row["inprocess_p50_ms"] > 0 and row["n_worker"] >= 6
    assert row["ratio"] == pytest.approx(row["worker_p50_ms"] / row["inprocess_p50_ms"])
    assert row["ratio_ci_low"] <= row["ratio"] <= row["ratio_ci_high"]
    assert row["agrees"] == (0.95 <= row["ratio"] <= 1.05)
    agrees = row | {"ratio": 1.01, "ratio_ci_low": 0.99, "ratio_ci_high": 1.03, "agrees": True}
    assert "1.010 (95% CI 0.990–1.030), within ±5%" in environment_checks.harness_check_text(agrees)
    off = row | {"ratio": 1.2, "ratio_ci_low": 1.15, "ratio_ci_high": 1.25, "agrees": False}
    assert "**outside ±5%**" in environment_checks.harness_check_text(off)


def test_efficiency_takeaway_flags_rows_above_the_measured_rate():
    rows = [
        ("fp32", "ort", 1.05, 0.9),
        ("fp32", "eager", 0.7, 0.6),
        ("bf16", "torch-bf16", 0.4, 0.08),
    ]
    eff = pd.DataFrame(
        [
            {"precision": p, "engine": e, "efficiency": x, "nominal_efficiency": n, "model": "bert-base"}
            | {"batch_size": 8, "seq_len": 128, "gflops": 100 * x}
            for p, e, x, n in rows
        ]
    )
    text = _efficiency_text(eff)
    assert (
        "fp32: ort on bert-base at batch 8 × 128, 105 GFLOP/s = 105% of the measured GEMM rate, 90% of its nominal peak"
        in text
    )
    assert "**1 row(s) run above 00's measured GEMM rate** (up to 105%)" in text
    assert "Below 80% of the GEMM rate at every measured shape: bf16 (40% at best)" in text
    assert "above the nominal peak" not in text
    over = _efficiency_text(eff.assign(nominal_efficiency=[1.02, 0.6, 0.08]))
    assert "**1 row(s) run above the nominal peak** (up to 102%)" in over


def test_peaks_from_a_derived_clock_are_labelled_derived_not_a_test():
    mhz, why = peaks.clock_needed([("fp32", 2, 343.0)], SAPPHIRE_RAPIDS, "GenuineIntel")
    clock = peaks.running_clock((2600.0, "cpu MHz in /proc/cpuinfo"), (mhz, why))
    assert peaks.is_derived(clock[1]) and not peaks.is_derived("cpu MHz in /proc/cpuinfo")
    rows = peaks.nominal_rows(SAPPHIRE_RAPIDS, "GenuineIntel", [2], clock)
    assert all(peaks.DERIVED in r["message"] for r in rows)
    measured = {"kind": "gemm", "library": "torch", "precision": "fp32", "device": "cpu", "threads": 2}
    df = pd.DataFrame(rows + [measured | {"value": 343.0, "unit": "GFLOP/s", "status": "ok", "message": ""}])
    text = environment_checks.nominal_text(df)
    assert text.startswith("**The nominal peaks here are derived, not independent**") and "fp32 343 of 343" in text
