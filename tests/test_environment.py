import math

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.studies import environment

N = 256
SMALL_TIMING = dict(warmup=1, min_count=3, min_time_s=0.05, max_time_s=1.0)
QUICK_TIMING = dict(warmup=1, min_count=3, min_time_s=0.2, max_time_s=3.0)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    yield environment.measure_ceilings(n=N, bandwidth_bytes=32 * environment.MiB, timing=QUICK_TIMING)
    mp.undo()


def _find(rows, kind, library, precision="", device="cpu"):
    found = [
        r
        for r in rows
        if (r["kind"], r["library"], r["device"]) == (kind, library, device)
        and (not precision or r["precision"] == precision)
    ]
    assert len(found) == 1, (kind, library, precision, device)
    return found[0]


def test_every_row_is_a_value_or_an_explained_skip(rows):
    for r in rows:
        if r["status"] == "ok":
            assert math.isfinite(r["value"]) and r["value"] > 0, r
            assert r["n"] >= 1 and r["p50_ms"] > 0, r
        else:
            assert r["status"] == "skipped" and r["message"], r
            assert math.isnan(r["value"])
    assert len({tuple(r) for r in rows}) == 1  # same columns in every row


def test_cpu_ceilings_all_measured(rows):
    threads = torch.get_num_threads()
    for library, precision, unit in [
        ("torch", "fp32", "GFLOP/s"),
        ("onnxruntime", "fp32", "GFLOP/s"),
        ("onnxruntime", "int8", "GOP/s"),
    ]:
        r = _find(rows, "gemm", library, precision)
        assert r["status"] == "ok" and r["unit"] == unit and r["size"] == N
        assert r["threads"] == threads
    assert _find(rows, "gemm", "torch", "bf16")["status"] in ("ok", "skipped")
    bw = _find(rows, "bandwidth", "numpy")
    llc = environment.last_level_cache_bytes() or 0
    assert bw["status"] == "ok" and bw["unit"] == "GB/s" and bw["size"] == max(32 * environment.MiB, 4 * llc)


def test_the_bandwidth_array_measures_memory_not_the_cache():
    mib = environment.MiB
    assert environment.bandwidth_bytes_for(512 * mib, 480 * mib, 64 * 1024 * mib) == 1920 * mib  # raised to 4x LLC
    assert environment.bandwidth_bytes_for(4096 * mib, 480 * mib, 64 * 1024 * mib) == 4096 * mib
    assert environment.bandwidth_bytes_for(512 * mib, None, 64 * 1024 * mib) == 512 * mib  # cache size unknown
    assert environment.bandwidth_bytes_for(512 * mib, 480 * mib, 4 * 1024 * mib) is None  # 4x LLC does not fit


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_rows_are_skipped_without_a_gpu(rows):
    cuda = [r for r in rows if r["device"] == "cuda"]
    assert {r["precision"] for r in cuda} == {"fp32", "bf16", "fp16"}
    assert all(r["status"] == "skipped" for r in cuda)
    assert environment.torch_gemm(64, device="cuda")["status"] == "skipped"


def test_timing_overhead_is_negligible(rows):
    r = _find(rows, "overhead", "python")
    assert r["unit"] == "us" and 0 < r["value"] < 50


def test_torch_threads_are_restored():
    before = torch.get_num_threads()
    r = environment.torch_gemm(64, threads=1, timing=SMALL_TIMING)
    assert r["threads"] == 1 and torch.get_num_threads() == before


@pytest.mark.parametrize("fn", [environment.ort_gemm_fp32, environment.ort_gemm_int8])
def test_ort_gemm_checks_its_output(fn):
    ok = fn(64, threads=1, timing=SMALL_TIMING)
    assert ok["status"] == "ok" and ok["threads"] == 1
    off_by_one = lambda a, b: (a.astype(np.float64) @ b.astype(np.float64) + 1).astype(  # noqa: E731
        np.int32 if a.dtype == np.uint8 else np.float64
    )
    with pytest.raises(ValueError, match="differ|max abs diff"):
        fn(64, threads=1, reference=off_by_one, timing=SMALL_TIMING)


def test_check_result():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    environment.check_result(x, x.copy(), "same", exact=True)
    y = x.copy()
    y[0, 0] += 1
    with pytest.raises(ValueError, match="1 elements differ"):
        environment.check_result(y, x, "exact", exact=True)
    f = x.astype(np.float32)
    environment.check_result(f * (1 + 1e-6), f, "close")
    with pytest.raises(ValueError):
        environment.check_result(f + 0.1, f, "far")
    with pytest.raises(ValueError):
        environment.check_result(np.full_like(f, np.nan), f, "nan")
    with pytest.raises(ValueError, match="shape"):
        environment.check_result(f.T, f, "shape")


def test_gemms_at_a_models_own_shapes_and_the_layer_rate_from_them(monkeypatch):
    from helpers.core.machine import shape_rate
    from helpers.studies import environment
    from helpers.studies.environment import layer_shapes, shape_gemms

    monkeypatch.setattr(environment, "_bf16_note", lambda device: "")  # bf16 timed at these tiny shapes on any CPU

    assert layer_shapes(384) == ((384, 384), (384, 1536), (1536, 384))
    rows = pd.DataFrame(shape_gemms([16], [32], 1, dict(warmup=1, min_count=3, min_time_s=0.01, max_time_s=0.5)))
    assert len(rows) == 12 and (rows["status"] == "ok").all() and (rows["value"] > 0).all()
    assert set(rows["library"] + " " + rows["precision"]) == {
        "torch fp32",
        "torch bf16",
        "onnxruntime fp32",
        "onnxruntime int8",
    }
    # the harmonic mean of the three shapes (equal FLOPs each), at the measured M nearest the call's
    known = pd.DataFrame(
        [
            {"status": "ok", "precision": "bf16", "hidden": 384, "threads": 2, "m": m, "k": k, "n": n, "value": v}
            for m, scale in ((512, 1.0), (4096, 2.0))
            for (k, n), v in zip(layer_shapes(384), (100.0 * scale, 200.0 * scale, 400.0 * scale))
        ]
    )
    assert shape_rate(known, "bf16", 384, 700, 2) == pytest.approx(3 / (1 / 100 + 1 / 200 + 1 / 400))
    assert shape_rate(known, "bf16", 384, 3000, 2) == pytest.approx(2 * 3 / (1 / 100 + 1 / 200 + 1 / 400))
    for args in (("fp32", 384, 700, 2), ("bf16", 768, 700, 2), ("bf16", 384, 700, 1)):  # not measured
        assert math.isnan(shape_rate(known, *args))


def test_bf16_converted_in_software_is_timed_small_and_not_at_every_shape(monkeypatch):
    from helpers.studies import environment

    monkeypatch.setattr(environment, "_bf16_note", lambda device: "no native bf16 instructions detected")
    timing = {"min_time_s": 0.01, "max_time_s": 0.05}
    rows = environment.measure_ceilings(1024, threads=1, bandwidth_bytes=2**20, cuda=False, timing=timing)
    bf16 = _find(rows, "gemm", "torch", "bf16")
    assert bf16["size"] == environment.EMULATED_BF16_N and _find(rows, "gemm", "torch", "fp32")["size"] == 1024
    shapes = environment.shape_gemms([128], [64], 1, timing)
    assert {r["status"] for r in shapes if r["precision"] == "bf16"} == {"skipped"}
    assert {r["status"] for r in shapes if r["precision"] != "bf16"} == {"ok"}
