"""Nominal compute peaks of this CPU per precision: operations per cycle per core from the
instruction set (FMA width and units, VNNI and BF16 dot products, AMX tiles), times the clock,
times the cores. A measured GEMM rate is only a ceiling if it stays below this; a rate above it
means the clock figure is below the running clock (turbo) or the unit count assumed is wrong,
and is flagged as such rather than shown as if it were fine.

The clock comes from the best source the OS offers, and every figure says which it used. Where
that figure is below the running clock (a hypervisor reporting the base clock while turbo runs),
00's measured GEMM rates prove it: the clock is then raised to the lowest one at which every
measured rate fits its peak (`clock_needed`), and labelled so.
"""

from __future__ import annotations

import re
from pathlib import Path

# (flag, operations per cycle per core, what it assumes); the first flag present wins
FP32 = [
    ("avx512f", {"intel": 64, "amd": 32}, "AVX-512 FMA: {units} x 16 fp32 lanes x 2"),
    ("avx2", 32, "AVX2 FMA: 2 units x 8 fp32 lanes x 2"),
    ("sse2", 16, "SSE: 2 units x 4 fp32 lanes x 2"),
]
BF16 = [
    ("amx_bf16", 2048, "AMX-BF16 tiles: 1024 bf16 multiply-adds per cycle"),
    ("avx512_bf16", {"intel": 128, "amd": 64}, "AVX512-BF16 dot products: twice the fp32 FMA rate"),
]
INT8 = [
    ("amx_int8", 4096, "AMX-INT8 tiles: 2048 int8 multiply-adds per cycle"),
    ("avx512_vnni", {"intel": 256, "amd": 128}, "AVX512-VNNI: 4 int8 multiply-adds per fp32 lane"),
    ("avx_vnni", 128, "AVX-VNNI (256-bit): 2 units x 8 lanes x 4 int8 multiply-adds x 2"),
    ("avx2", 64, "AVX2 without VNNI: about half the VNNI rate (three instructions per dot product)"),
]


def _vendor(vendor: str | None) -> str:
    return "amd" if "amd" in str(vendor).lower() else "intel"


def per_cycle(flags: dict, vendor: str | None) -> dict[str, tuple[float, str]]:
    """Operations per cycle per core and the assumption behind it, per precision; bf16 and int8
    fall back to the fp32 rate when the CPU has no instruction for them."""
    v = _vendor(vendor)
    units = "1 unit (two 256-bit halves)" if v == "amd" else "2 units"
    out = {}
    for precision, table in (("fp32", FP32), ("bf16", BF16), ("int8", INT8)):
        for flag, ops, basis in table:
            if flags.get(flag):
                out[precision] = (ops[v] if isinstance(ops, dict) else ops, basis.format(units=units))
                break
        else:
            if "fp32" in out:
                fp32_ops, fp32_basis = out["fp32"]
                out[precision] = (fp32_ops, f"no {precision} instructions: the fp32 rate ({fp32_basis})")
    return out


def clock_mhz(cpuinfo: str | None = None, sys_cpu: Path = Path("/sys/devices/system/cpu/cpu0")) -> tuple[float, str]:
    """(MHz, where it comes from): the maximum clock from cpufreq, else the clock in the model
    name, else the current clock /proc/cpuinfo reports (under a hypervisor often the base
    clock: turbo may run faster). NaN when none is known."""
    max_khz = sys_cpu / "cpufreq" / "cpuinfo_max_freq"
    try:
        return float(max_khz.read_text()) / 1e3, "maximum clock (cpufreq cpuinfo_max_freq)"
    except (OSError, ValueError):
        pass
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    named = re.search(r"model name\s*:.*@\s*([\d.]+)\s*GHz", cpuinfo)
    if named:
        return float(named.group(1)) * 1e3, "nominal clock in the CPU's model name"
    current = re.search(r"cpu MHz\s*:\s*([\d.]+)", cpuinfo)
    if current:
        return float(current.group(1)), "cpu MHz in /proc/cpuinfo (may be the base clock: turbo can exceed it)"
    return float("nan"), "no clock figure available"


def clock_needed(measured: list[tuple[str, int, float]], flags: dict, vendor: str | None) -> tuple[float, str]:
    """(MHz, which rate needs it): the lowest clock at which every measured (precision, cores,
    GOP/s) rate fits within its nominal peak, i.e. the largest rate / (ops per cycle x cores)."""
    ops = per_cycle(flags, vendor)
    best, why = float("nan"), ""
    for precision, cores, rate in measured:
        if precision in ops and rate == rate and cores:
            mhz = rate * 1e3 / (ops[precision][0] * cores)
            if not mhz <= best:
                best, why = mhz, f"the measured {precision} GEMM rate at {cores} core(s), {rate:.0f} GOP/s"
    return best, why


DERIVED = "derived from a measured rate"  # how a clock source (and its rows' message) says so


def running_clock(clock: tuple[float, str], needed: tuple[float, str]) -> tuple[float, str]:
    """The OS's clock figure, or the clock the measured rates need when that is higher (the
    OS's figure then cannot be the running clock). A clock from the measured rates is labelled
    DERIVED: a peak computed from it is not independent of those rates (the rate that set it
    sits at 100% of its peak by construction)."""
    (mhz, source), (need, why) = clock, needed
    if need == need and not need <= mhz:
        return need, (
            f"{DERIVED}: at least the clock {why} needs; the OS says {mhz:.0f} MHz ({source}), below the running clock"
        )
    return clock


def is_derived(clock_source: str) -> bool:
    """Whether a nominal row's clock was derived from a measured rate (tables written before the
    DERIVED label say "at least the clock")."""
    return str(clock_source).startswith((DERIVED, "at least the clock"))


def nominal_rows(flags: dict, vendor: str | None, cores: list[int], clock: tuple[float, str]) -> list[dict]:
    """One row per precision and core count: the nominal peak in GFLOP/s (int8: GOP/s)."""
    mhz, source = clock
    rows = []
    for precision, (ops, basis) in per_cycle(flags, vendor).items():
        for n in cores:
            rows.append(
                {
                    "kind": "nominal",
                    "library": "isa",
                    "precision": precision,
                    "device": "cpu",
                    "threads": n,
                    "value": ops * mhz * 1e6 * n / 1e9,
                    "unit": "GOP/s" if precision == "int8" else "GFLOP/s",
                    "clock_mhz": mhz,
                    "clock_source": source,
                    "status": "ok" if mhz == mhz else "skipped",
                    "message": f"{ops} ops/cycle/core ({basis}); {n} core(s); clock {mhz:.0f} MHz: {source}",
                }
            )
    return rows


def above_nominal(measured: float, nominal: float) -> bool:
    """A measured rate above the nominal peak: the clock or unit count behind the peak is wrong."""
    return bool(nominal == nominal and measured > nominal)
