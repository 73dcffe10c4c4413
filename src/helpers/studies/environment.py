"""This machine's ceilings: GEMM rates per library and precision, memory bandwidth, and the
timing harness's own overhead. Every later efficiency number is held against these.

Each function returns one tidy row (a dict). Something that cannot run here (no CUDA, no
bf16 matmul) gives a row with value NaN, status="skipped" and the reason in `message`,
so the table shows what was not measured instead of silently dropping it.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from helpers.core import machine
from helpers.core.machine import ceiling_for
from helpers.core.tables import failure_row
from helpers.core.timing import STAT_COLUMNS, Timing, cuda_sync_for, measure, timing_columns

MiB = 2**20


DEFAULT_BANDWIDTH_BYTES = 512 * MiB


PRECISION = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "int8": "int8"}


def _row(
    kind: str,
    library: str,
    precision: str,
    size,
    threads,
    unit: str,
    value: float = math.nan,
    timing: Timing | None = None,
    device: str = "cpu",
    status: str = "ok",
    message: str = "",
) -> dict:
    row = {
        "kind": kind,
        "library": library,
        "precision": precision,
        "device": device,
        "size": size,
        "threads": threads,
        "value": value,
        "unit": unit,
        "status": status,
        "message": message,
    }
    stats = timing.stats if timing is not None else {k: math.nan for k in STAT_COLUMNS}
    row.update(stats)
    row["cold_ms"] = timing.cold_ms if timing is not None else math.nan
    return row


def _rate(work: float, timing: Timing) -> float:
    """work units per second / 1e9 (GFLOP/s, GOP/s, GB/s) from the median time."""
    return work / (timing.median_ms / 1e3) / 1e9


def skipped(
    kind: str, library: str, precision: str, size, threads, unit: str, message: str, device: str = "cpu"
) -> dict:
    return _row(kind, library, precision, size, threads, unit, device=device, status="skipped", message=message)


class Mismatch(ValueError):
    """A measured kernel's output differs from its reference: the row's status is mismatch."""


def check_result(actual: np.ndarray, expected: np.ndarray, what: str, exact: bool = False, rtol: float = 1e-4) -> None:
    """Raise Mismatch unless actual matches expected (exactly, or to rtol of max |expected|)."""
    if actual.shape != expected.shape:
        raise Mismatch(f"{what}: shape {actual.shape} != expected {expected.shape}")
    if exact:
        bad = int(np.count_nonzero(actual != expected))
        if bad:
            raise Mismatch(f"{what}: {bad} elements differ from the exact reference")
        return
    err = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    scale = float(np.max(np.abs(expected))) or 1.0
    if not err <= rtol * scale:  # also catches NaN
        raise Mismatch(f"{what}: max abs diff {err:.3g} > {rtol:g} x max |ref| {scale:.3g}")


def _matmul_f64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) @ b.astype(np.float64)


def _matmul_int32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Same integers as an int32 matmul, via BLAS: every partial sum is < 2**53, so float64
    # is exact, and numpy's integer matmul (no BLAS) would take seconds at n=2048.
    return _matmul_f64(a, b).astype(np.int32)


@contextmanager
def torch_threads(threads: int | None):
    """Set torch's intra-op threads for the block and restore them afterwards."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def _torch_skip_reason(dtype, device: str) -> str | None:
    """Why an n x n matmul of dtype cannot run on device, or None if it can."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return "torch sees no CUDA device"
        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            return "this GPU has no bf16 matmul"
    try:
        x = torch.ones(8, 8, dtype=dtype, device=device)
        x @ x
    except Exception as exc:  # e.g. dtype not implemented for matmul on this device
        return f"{dtype} matmul unsupported on {device}: {exc}"
    return None


EMULATED_BF16_N = 512  # the bf16 ceiling's n where the CPU has no bf16 instructions


def _bf16_note(device: str) -> str:
    """bf16 on a CPU without bf16 instructions runs, but converted: say so in the row."""
    if device != "cpu":
        return ""
    from helpers.core.fingerprint import cpu_info

    flags = cpu_info()["flags"]
    if flags.get("avx512_bf16") or flags.get("amx_bf16"):
        return ""
    return "no native bf16 instructions detected: kernels convert/emulate"


def _mkn(n) -> tuple[int, int, int]:
    """(m, k, n) of a GEMM given as n (square) or as (m, k, n)."""
    return tuple(n) if isinstance(n, (tuple, list)) else (n, n, n)


def torch_gemm(
    n: int | tuple = 2048, dtype=None, threads: int | None = None, device: str = "cpu", timing: dict | None = None
) -> dict:
    """GFLOP/s of an n x n @ n x n torch matmul (2 n^3 FLOPs / median time); n may be a shape
    (m, k, n): m x k @ k x n, 2 m k n FLOPs."""
    import torch

    dtype = dtype or torch.float32
    precision = PRECISION.get(str(dtype).removeprefix("torch."), str(dtype))
    device = str(device)
    m, k, n_ = _mkn(n)
    with torch_threads(threads) as used:
        reason = _torch_skip_reason(dtype, device)
        if reason:
            return skipped("gemm", "torch", precision, n, used, "GFLOP/s", reason, device)
        gen = torch.Generator(device=device).manual_seed(0)
        a = torch.randn(m, k, generator=gen, device=device).to(dtype)
        b = torch.randn(k, n_, generator=gen, device=device).to(dtype)
        c = torch.empty(m, n_, dtype=dtype, device=device)
        # out= keeps allocation out of the timed call
        t = measure(lambda: torch.matmul(a, b, out=c), sync=cuda_sync_for(device), **(timing or {}))
    message = _bf16_note(device) if dtype == torch.bfloat16 else ""
    if device.startswith("cuda") and dtype == torch.float32:
        # "high"/"medium" let CUDA fp32 matmuls run in TF32: a different ceiling
        message = f"float32_matmul_precision={torch.get_float32_matmul_precision()}"
    return _row(
        "gemm", "torch", precision, n, used, "GFLOP/s", _rate(2 * m * k * n_, t), t, device=device, message=message
    )


def _matmul_model(op: str, a_type: int, b_type: int, y_type: int, n: int | tuple) -> bytes:
    """A one-node ONNX graph Y = op(A, B) on n x n inputs (or m x k and k x n), serialised."""
    from onnx import helper

    m, k, n_ = _mkn(n)
    node = helper.make_node(op, ["A", "B"], ["Y"])
    graph = helper.make_graph(
        [node],
        f"{op.lower()}_{m}x{k}x{n_}",
        [helper.make_tensor_value_info("A", a_type, [m, k]), helper.make_tensor_value_info("B", b_type, [k, n_])],
        [helper.make_tensor_value_info("Y", y_type, [m, n_])],
    )
    # IR 8 / opset 17: loadable by any onnxruntime of the last few years.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


def _ort_session(model: bytes, threads: int | None):
    from helpers.backends.onnxrt import cpu_session, session_options

    return cpu_session(model, session_options(threads or 0))  # 0 = ORT's default (physical cores)


def _ort_gemm(
    op: str,
    a: np.ndarray,
    b: np.ndarray,
    out: np.ndarray,
    threads: int | None,
    reference: Callable,
    exact: bool,
    precision: str,
    unit: str,
    timing: dict | None,
) -> dict:
    """Build, verify against `reference`, then time a one-node ORT GEMM on the CPU."""
    from onnx import helper

    (m, k), n = a.shape, b.shape[1]
    types = [helper.np_dtype_to_tensor_dtype(x.dtype) for x in (a, b, out)]
    sess = _ort_session(_matmul_model(op, *types, (m, k, n)), threads)
    # IO binding with a preallocated output: no allocation or copy-out in the timed call.
    binding = sess.io_binding()
    binding.bind_cpu_input("A", a)
    binding.bind_cpu_input("B", b)
    binding.bind_output("Y", "cpu", 0, out.dtype, list(out.shape), out.ctypes.data)
    run = lambda: sess.run_with_iobinding(binding)  # noqa: E731
    run()
    check_result(out, reference(a, b), f"onnxruntime {op} {precision} {m}x{k}x{n}", exact=exact)
    t = measure(run, **(timing or {}))
    used = threads or sess.get_session_options().intra_op_num_threads or None
    size = n if m == k == n else (m, k, n)
    return _row("gemm", "onnxruntime", precision, size, used, unit, _rate(2 * m * k * n, t), t)


def ort_gemm_fp32(
    n: int | tuple = 2048, threads: int | None = None, reference: Callable = _matmul_f64, timing: dict | None = None
) -> dict:
    """GFLOP/s of a one-node ONNX MatMul (fp32) in onnxruntime's CPU provider (n x n, or the
    shape (m, k, n)), output checked against `reference(a, b)` (numpy) before timing."""
    m, k, n_ = _mkn(n)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n_), dtype=np.float32)
    out = np.empty((m, n_), np.float32)
    return _ort_gemm("MatMul", a, b, out, threads, reference, False, "fp32", "GFLOP/s", timing)


def ort_gemm_int8(
    n: int | tuple = 2048, threads: int | None = None, reference: Callable = _matmul_int32, timing: dict | None = None
) -> dict:
    """GOP/s of a one-node MatMulInteger (uint8 A x int8 B -> int32), the integer GEMM of ORT's
    dynamic INT8 quantization (n x n, or the shape (m, k, n)); output checked exactly against
    `reference(a, b)`."""
    m, k, n_ = _mkn(n)
    rng = np.random.default_rng(0)
    # A in 0..127, as ORT's reduce_range does: AVX2 kernels without VNNI sum u8*s8 pairs in
    # saturating int16, so full-range inputs would not be exact there. Same speed either way.
    a = rng.integers(0, 128, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (k, n_), dtype=np.int8)
    out = np.empty((m, n_), np.int32)
    return _ort_gemm("MatMulInteger", a, b, out, threads, reference, True, "int8", "GOP/s", timing)


def last_level_cache_bytes() -> int | None:
    """Size of the largest CPU cache (Linux sysfs), or None if unknown."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = f.read_text().strip().upper()
            mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
            sizes.append(int(text.rstrip("KMG")) * mult)
        except (OSError, ValueError):
            pass
    return max(sizes) if sizes else None


def bandwidth_bytes_for(requested: int, llc: int | None, available: int) -> int | None:
    """The array size that measures memory, not the cache: at least `requested` and 4x the
    last-level cache; None when the two arrays of that size do not fit in half of `available`."""
    nbytes = max(requested, 4 * llc) if llc else requested
    return nbytes if 2 * nbytes <= available // 2 else None


def memory_bandwidth(nbytes: int = DEFAULT_BANDWIDTH_BYTES, timing: dict | None = None) -> dict:
    """GB/s of a single-threaded numpy copy, counting read + write (2 x nbytes), STREAM-style.
    The array is raised to 4x the last-level cache when `nbytes` is smaller (a smaller copy
    measures the cache); where that does not fit in memory the row is skipped, saying why."""
    import psutil

    llc = last_level_cache_bytes()
    size = bandwidth_bytes_for(nbytes, llc, psutil.virtual_memory().available)
    if size is None:
        message = (
            f"two arrays of 4x the last-level cache ({4 * llc / MiB:.0f} MiB each) do not fit in half the "
            "available memory; a smaller copy would measure the cache, not memory"
        )
        return _row("bandwidth", "numpy", "fp64", nbytes, 1, "GB/s", status="skipped", message=message)
    src = np.ones(size // 8, dtype=np.float64)
    dst = np.zeros_like(src)  # touch every page now, not in the first timed call
    t = measure(lambda: np.copyto(dst, src), **(timing or {}))
    raised = f"array raised from {nbytes / MiB:.0f} MiB to 4x the last-level cache ({llc / MiB:.0f} MiB)"
    message = raised if size > nbytes else ""
    return _row("bandwidth", "numpy", "fp64", size, 1, "GB/s", _rate(2 * size, t), t, message=message)


def timing_overhead(timing: dict | None = None) -> dict:
    """Per-call cost of the timing harness itself: median time of an empty callable, in us."""
    t = measure(lambda: None, **(timing or {}))
    return _row("overhead", "python", "", 0, 1, "us", t.median_ms * 1e3, t)


def _safe(fn: Callable, fallback: dict, **kwargs) -> dict:
    """fn(**kwargs), or the fallback row with the failure: mismatch for a failed output check,
    oom for memory exhaustion, error for anything else."""
    try:
        return fn(**kwargs)
    except Mismatch as exc:
        return dict(fallback, status="mismatch", message=f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        return dict(fallback, **failure_row(exc))


def measure_ceilings(
    n: int = 2048,
    threads: int | None = None,
    bandwidth_bytes: int = DEFAULT_BANDWIDTH_BYTES,
    cuda: bool | None = None,
    timing: dict | None = None,
) -> list[dict]:
    """All ceilings of this machine as tidy rows: torch fp32/bf16, ORT fp32/int8 GEMM on the CPU,
    torch fp32/bf16/fp16 GEMM on CUDA (if `cuda`, default: when available; skipped rows
    otherwise), memory bandwidth and timing overhead. `threads` applies to torch and ORT."""
    import torch

    threads = threads or torch.get_num_threads()
    if cuda is None:
        cuda = torch.cuda.is_available()

    def gemm(fn, library, precision, unit, device="cpu", size=n, **kw):
        fallback = _row("gemm", library, precision, size, threads, unit, device=device)
        return _safe(fn, fallback, n=size, threads=threads, timing=timing, **kw)

    # bf16 without bf16 instructions is converted in software: seconds a call at 2048, the same rate smaller
    bf16_n = n if not _bf16_note("cpu") else min(n, EMULATED_BF16_N)
    rows = [
        gemm(torch_gemm, "torch", "fp32", "GFLOP/s", dtype=torch.float32),
        gemm(torch_gemm, "torch", "bf16", "GFLOP/s", size=bf16_n, dtype=torch.bfloat16),
        gemm(ort_gemm_fp32, "onnxruntime", "fp32", "GFLOP/s"),
        gemm(ort_gemm_int8, "onnxruntime", "int8", "GOP/s"),
    ]
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        precision = PRECISION[str(dtype).removeprefix("torch.")]
        if cuda:
            rows.append(gemm(torch_gemm, "torch", precision, "GFLOP/s", device="cuda", dtype=dtype))
        else:
            rows.append(skipped("gemm", "torch", precision, n, threads, "GFLOP/s", "no CUDA device", device="cuda"))
    rows.append(
        _safe(
            memory_bandwidth,
            _row("bandwidth", "numpy", "fp64", bandwidth_bytes, 1, "GB/s"),
            nbytes=bandwidth_bytes,
            timing=timing,
        )
    )
    rows.append(timing_overhead(timing))
    return rows


def layer_shapes(hidden: int) -> tuple[tuple[int, int], ...]:
    """(K, N) of a BERT layer's GEMMs: the attention projections (hidden -> hidden), the FFN's
    up (hidden -> 4 hidden) and down (4 hidden -> hidden) projections. Each kind does the same
    FLOPs per layer (8 M hidden^2), so an encoder's GEMM rate is their harmonic mean."""
    return ((hidden, hidden), (hidden, 4 * hidden), (4 * hidden, hidden))


def shape_gemms(hidden: list[int], tokens: list[int], threads: int, timing: dict | None = None) -> list[dict]:
    """Rows of the GEMM rate at a model's own shapes (M = tokens per call, i.e. batch x length;
    K, N from `layer_shapes`): torch fp32 and bf16, ONNX Runtime fp32 and int8, at `threads`."""
    import torch

    kinds = (
        (torch_gemm, "torch", "fp32", "GFLOP/s", {"dtype": torch.float32}),
        (torch_gemm, "torch", "bf16", "GFLOP/s", {"dtype": torch.bfloat16}),
        (ort_gemm_fp32, "onnxruntime", "fp32", "GFLOP/s", {}),
        (ort_gemm_int8, "onnxruntime", "int8", "GOP/s", {}),
    )
    emulated = _bf16_note("cpu")  # seconds a call in software: its rate is 00_ceilings' (EMULATED_BF16_N)
    rows = []
    for h in hidden:
        for m in tokens:
            for k, n in layer_shapes(h):
                for fn, library, precision, unit, kw in kinds:
                    fallback = _row("gemm-shape", library, precision, (m, k, n), threads, unit)
                    if precision == "bf16" and emulated:
                        row = skipped("gemm", library, precision, (m, k, n), threads, unit, f"{emulated}: not timed")
                    else:
                        row = _safe(fn, fallback, n=(m, k, n), threads=threads, timing=timing, **kw)
                    rows.append({**row, "kind": "gemm-shape", "hidden": h, "m": m, "k": k, "n": n})
    return rows


def harness_overhead(
    model: str = "bert-tiny",
    engine: str = "eager",
    threads: int | None = None,
    batch_size: int = 1,
    seq_len: int = 16,
    timing: dict | None = None,
) -> dict:
    """The harness's per-call cost next to the shortest configuration the study times
    (the smallest shape in eager PyTorch on real text), as one result row."""
    import torch

    from helpers.workloads.corpora import load_corpus, texts_at_length
    from helpers.workloads.models import load_model

    if engine != "eager":
        raise ValueError(f"engine={engine!r}; accepted: eager")
    loaded = load_model(model)
    batch, real_tokens = texts_at_length(load_corpus().texts[:500], loaded.tokenizer, batch_size, seq_len)
    batch = {k: v for k, v in batch.items() if k in loaded.input_names}
    empty = timing_overhead(timing)
    with torch_threads(threads) as used, torch.inference_mode():
        t = measure(lambda: loaded.model(**batch), **(timing or {}))
    share = empty["value"] / 1e3 / t.median_ms
    return {
        "model": model,
        "engine": engine,
        "precision": "fp32",
        "device": "cpu",
        "threads": used,
        "batch_size": batch_size,
        "seq_len": seq_len,
        **timing_columns(t.samples_ms, batch_size, real_tokens, flag_noisy=False),
        "cold_ms": t.cold_ms,
        "overhead_us": empty["value"],
        "overhead_share": share,
        "status": "ok",
        "message": f"{loaded.label}",
    }


def takeaway(df) -> str:
    """One computed sentence per comparison the later notebooks rely on."""
    top = df["threads"].max()

    def rate(library, precision):
        return ceiling_for(df, precision, threads=top, library=library)

    torch32, ort32, bf16, int8 = (
        rate("torch", "fp32"),
        rate("onnxruntime", "fp32"),
        rate("torch", "bf16"),
        rate("onnxruntime", "int8"),
    )
    bw = df.loc[(df["kind"] == "bandwidth") & (df["status"] == "ok"), "value"].max()
    lines = [
        f"At {top} thread(s): torch fp32 GEMM **{torch32:.0f} GFLOP/s**, ONNX Runtime fp32 "
        f"**{ort32:.0f} GFLOP/s** ({ort32 / torch32:.2f}× torch), torch bf16 **{bf16:.0f} GFLOP/s** "
        f"({bf16 / torch32:.2f}× fp32), ONNX Runtime int8 **{int8:.0f} GOP/s** ({int8 / ort32:.2f}× ORT fp32)."
    ]
    if not math.isnan(bw):
        lines.append(f"Memory bandwidth (one-thread copy): **{bw:.1f} GB/s**.")
    skipped_rows = df[df["status"] != "ok"]
    if len(skipped_rows):
        reasons = sorted(
            {f"{r.library} {r.precision} on {r.device} ({r.status}: {r.message})" for r in skipped_rows.itertuples()}
        )
        lines.append("Not measured here: " + "; ".join(reasons) + ".")
    lines.append(
        "An engine's fp32 speed-up over PyTorch eager that is close to the ORT/torch GEMM ratio "
        "is largely a GEMM-library difference, not a graph optimisation."
    )
    return " ".join(lines)


# -- the notebook's steps ---------------------------------------------------------------------
def timing_kwargs(params: Mapping[str, Any]) -> dict:
    """The timing settings of every ceiling and of the harness check, from 00's parameters."""
    min_time_s = params["min_time_s"]
    return dict(warmup=2, min_count=5, min_time_s=min_time_s, max_time_s=max(10.0, 3 * min_time_s))


def thread_counts(params: Mapping[str, Any]) -> list[int]:
    """The thread counts 00's parameters ask for (`threads` empty: 1, 2, 4 ... up to the logical cores)."""
    return machine.thread_counts(params["threads"])


def machine_summary(profile: str):
    """(the CPU's instruction-set line in bold, the machine's fingerprint as a one-column table)."""
    import pandas as pd

    from helpers.core import fingerprint

    env = fingerprint.fingerprint(profile=profile)
    return f"**{fingerprint.cpu_isa_summary(env)}**", pd.Series(fingerprint.summary(env), name="value").to_frame()


def measure_missing_ceilings(table, params: Mapping[str, Any]) -> None:
    """Measure the ceilings (`gemm_size`, `bandwidth_mb`) at each of 00's thread counts the table
    does not hold yet (one resumable step per thread count), appending each row not yet recorded."""
    from helpers.core.progress import track

    measured = set(table.read().get("threads", []))
    todo = [] if table.frozen else [t for t in thread_counts(params) if t not in measured]
    size, nbytes, timing = params["gemm_size"], params["bandwidth_mb"] * 2**20, timing_kwargs(params)
    for t in track(todo, desc="ceilings", label=lambda t: f"{t} thread(s)"):
        table.append_new(measure_ceilings(size, threads=t, bandwidth_bytes=nbytes, timing=timing))


def measure_missing_shapes(table, params: Mapping[str, Any]) -> None:
    """The GEMMs at each model shape (`gemm_hidden`, M in `gemm_tokens`) the table does not hold
    yet (one resumable step each), at the most threads; short timings: there are many of them
    and each is small."""
    from helpers.core.progress import track

    done = table.read()
    have = set(zip(done["hidden"], done["m"])) if len(done) and "hidden" in done else set()
    todo = [] if table.frozen else [(h, m) for h in params["gemm_hidden"] for m in params["gemm_tokens"]]
    todo = [hm for hm in todo if hm not in have]
    timing = timing_kwargs(params)
    short = dict(timing, min_time_s=min(timing.get("min_time_s", 0.1), 0.1))
    threads = max(thread_counts(params))
    for h, m in track(todo, desc="GEMM shapes", label=lambda hm: f"hidden {hm[0]}, M {hm[1]}"):
        table.append_new(shape_gemms([h], [m], threads, short))


def shapes_view(shapes, ceilings):
    """Per hidden size, M, library and precision: the rate of an encoder layer's GEMMs (the
    harmonic mean of its three shapes) and its share of the large square GEMM's rate at the
    same threads."""
    import pandas as pd

    ok = shapes[shapes["status"] == "ok"] if len(shapes) else shapes
    if not len(ok):
        return pd.DataFrame(columns=["hidden", "m", "library", "precision", "layer_rate", "share_of_square"])
    rows = []
    for (h, m, library, precision, threads), g in ok.groupby(["hidden", "m", "library", "precision", "threads"]):
        square = ceilings[
            (ceilings["kind"] == "gemm")
            & (ceilings["library"] == library)
            & (ceilings["precision"] == precision)
            & (ceilings["device"] == "cpu")
            & (ceilings["threads"] == threads)
        ]["value"]
        layer = len(g) / float((1 / g["value"]).sum()) if len(g) == 3 else math.nan
        share = layer / float(square.iloc[0]) if len(square) else math.nan
        rows.append({"hidden": h, "m": m, "library": library, "precision": precision, "threads": threads})
        rows[-1] |= {"layer_rate": layer, "share_of_square": share}
    return pd.DataFrame(rows)


def measure_harness(table, params: Mapping[str, Any]):
    """The harness overhead next to the shortest configuration (bert-tiny, eager, batch 1 x 16
    tokens, the most of 00's threads), measured unless the table holds it; returns its row."""
    shortest = dict(model="bert-tiny", engine="eager", threads=max(thread_counts(params)), batch_size=1, seq_len=16)
    if not table.done(**shortest):
        table.append(harness_overhead(**shortest, timing=timing_kwargs(params)))
    return table.read().iloc[0]


def harness_text(h) -> str:
    """What the harness row says, and whether the harness stays under 1% of the shortest call."""
    verdict = "under" if h.overhead_share < 0.01 else "NOT under"
    return (
        f"An empty call costs the harness **{h.overhead_us:.2f} µs**; the shortest configuration "
        f"({h.model}, batch {h.batch_size} × {h.seq_len} tokens, {h.engine}, {h.threads} threads) takes "
        f"**{h.p50_ms:.3f} ms**, so the harness is **{100 * h.overhead_share:.3f}%** of it "
        f"({verdict} the 1% the study requires)."
    )
