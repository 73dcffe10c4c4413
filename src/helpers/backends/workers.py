"""Engine workers: each engine lives in its own process for a whole sweep, and the parent
sends it measurement rounds in turn (A, B, C, A, B, C ...).

So engines are isolated (each worker's memory is its own: load increment, per-configuration
peak) and interleaved in time (drift in machine speed falls on every engine alike). The
parent blocks on the pipe while a worker measures: it never polls, so on a 2-core machine
it takes no CPU from the measurement.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from helpers.core import progress
from helpers.core.memory import (
    MemoryWatch,
    death_of,
    forkserver,
    peak_rss_mb,
    release_free_memory,
    reset_peak_rss,
    rss_mb,
)
from helpers.core.tables import ProcessFailure, failure_status

PRELOAD = ("helpers.backends.workers", "helpers.backends.engines")

# Idle runtime threads spin for a while after a run before they block (ONNX Runtime ~40 ms): the
# next measurer starts only after that, so it never shares the cores with a spinning neighbour.
SETTLE_S = 0.05


@dataclass
class EngineSpec:
    """What a worker builds: `engine` of `model` at `threads`, from `onnx_path` (its file) for
    ORT and OpenVINO engines."""

    model: str
    engine: str
    threads: int
    onnx_path: str | None = None
    device: str = "cpu"


@dataclass
class Measurement:
    samples_ms: list
    cold_ms: float
    peak_rss_mb: float
    check: dict = field(default_factory=dict)  # hidden states of the first rows, for checking


# -- the worker process ---------------------------------------------------------------------
def _build(spec: EngineSpec):
    from helpers.backends import engines
    from helpers.workloads.models import load_model

    if spec.engine.startswith(engines.FILE_ENGINES) and spec.onnx_path:
        from transformers import AutoTokenizer

        from helpers.workloads.models import describe_model_name, minilm_dir

        kind = describe_model_name(spec.model)
        source = spec.model if kind in ("local", "hub") else minilm_dir()
        engine = engines.engine_for_file(spec.engine, spec.onnx_path, None, device=spec.device, threads=spec.threads)
        return engine, AutoTokenizer.from_pretrained(source)
    loaded = load_model(spec.model)
    return engines.build_engine(spec.engine, loaded, device=spec.device, threads=spec.threads), loaded.tokenizer


def _timed_fn(engine, tokenizer, batch: dict, texts: list[str] | None, seq_len: int):
    """Model-only scope: inputs prepared once. End-to-end: tokenization inside every call."""
    if texts is None:
        prepared = engine.prepare(batch)
        return lambda: engine.run_prepared(prepared)

    def end_to_end():
        enc = tokenizer(texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="pt")
        return engine.run_prepared(engine.prepare(dict(enc)))

    return end_to_end


def _measure(engine, tokenizer, request: dict) -> Measurement:
    from helpers.core.timing import cuda_sync_for, measure

    reset_peak_rss()
    fn = _timed_fn(engine, tokenizer, request["batch"], request.get("texts"), request["seq_len"])
    t = measure(fn, sync=cuda_sync_for(engine.device), **request["timing"])
    check = {}
    if request.get("check_rows"):
        rows = {k: v[: request["check_rows"]] for k, v in request["batch"].items()}
        check = {"hidden": engine(rows), "attention_mask": rows["attention_mask"].numpy()}
    return Measurement(t.samples_ms.tolist(), t.cold_ms, peak_rss_mb(), check)


def _quiet_background_threads() -> None:
    """Nothing in a worker may compete with another worker's measurement: torch.compile
    compiles in-process (no pool of compile subprocesses warming up in the background)."""
    import torch._inductor.config as inductor

    inductor.compile_threads = 1


def _serve(conn, spec: EngineSpec) -> None:
    try:
        _quiet_background_threads()
        base = rss_mb()
        start = time.perf_counter()
        engine, tokenizer = _build(spec)
        release_free_memory()  # what loading and building left (the engine's own memory stays)
        conn.send(
            (
                "ready",
                {**engine.describe(), "build_s": time.perf_counter() - start, "base_mb": base, "loaded_mb": rss_mb()},
            )
        )
    except BaseException as exc:
        conn.send(("error", {"status": failure_status(exc), "message": f"{type(exc).__name__}: {exc}"}))
        return
    while True:
        request = conn.recv()
        if request is None:
            return
        try:
            conn.send(("ok", _measure(engine, tokenizer, request)))
        except BaseException as exc:  # reported for this configuration; the worker goes on
            conn.send(
                (
                    "error",
                    {
                        "status": failure_status(exc),
                        "message": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}",
                    },
                )
            )


# -- the parent's handle ----------------------------------------------------------------------
class WorkerError(ProcessFailure):
    """A worker could not build its engine or measure a configuration, or died (message says
    why; `status` is `oom` only with evidence of memory exhaustion)."""


class WorkerProcess:
    """The parent's end of one worker process (a forkserver child running `target(conn, *args)`):
    requests go down the pipe one at a time and the parent blocks on the answer, never polling.
    A worker that fails a request, dies or stays silent past `timeout_s` raises WorkerError."""

    stop_s = 10  # how long a worker asked to stop may take before it is killed

    def __init__(self, name: str, target, args: tuple, preload, timeout_s: float, daemon: bool = True):
        ctx = forkserver(preload)
        self.name, self.timeout_s = name, timeout_s
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(child, *args), daemon=daemon)
        self.proc.start()
        child.close()

    def _receive(self):
        with MemoryWatch() as watch:
            try:
                if not self.conn.poll(self.timeout_s):  # blocks in the kernel, no spinning
                    self.proc.kill()  # its late answer would be taken for the next request's
                    raise WorkerError(f"{self.name}: no answer within the {self.timeout_s:g} s timeout; worker stopped")
                kind, payload = self.conn.recv()
            except (EOFError, ConnectionError):
                status, reason = death_of(self.proc, watch)
                raise WorkerError(f"{self.name} worker died: {reason}", status) from None
        if kind == "error":
            raise WorkerError(payload["message"], payload["status"])
        return payload

    def _request(self, request):
        """Send one request and wait for its answer."""
        try:
            self.conn.send(request)
        except OSError:
            pass  # it died while idle: _receive finds the pipe closed and says how it died
        return self._receive()

    @property
    def alive(self) -> bool:
        return self.proc.is_alive()

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self.proc.join(self.stop_s)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EngineWorker(WorkerProcess):
    """A process holding one engine; `measure` blocks until the worker answers."""

    def __init__(self, spec: EngineSpec, timeout_s: float = 1800):
        self.spec = spec
        with progress.phase(f"starting worker {spec.engine} ({spec.model}, {spec.threads} thread(s))"):
            super().__init__(spec.engine, _serve, (spec,), PRELOAD, timeout_s)
            self.info = self._receive()

    def measure(
        self, batch: dict, seq_len: int, timing: dict, texts: list[str] | None = None, check_rows: int = 0
    ) -> Measurement:
        return self._request(
            {"batch": batch, "seq_len": seq_len, "timing": timing, "texts": texts, "check_rows": check_rows}
        )


def pooled_samples(measurements: list[Measurement]) -> np.ndarray:
    """Every round's samples in one array (empty before the first round)."""
    return np.concatenate([np.asarray(m.samples_ms) for m in measurements]) if measurements else np.empty(0)
