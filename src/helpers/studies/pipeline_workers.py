"""07_pipeline's whole-corpus workers: each candidate pipeline and each peer in a process of its
own for the whole measurement, sent one timed pass at a time (A, B, C, A, B, C ...).

So no runtime's thread pool sits in another's process (with OpenVINO, ONNX Runtime,
CTranslate2 and torch loaded together on 2 cores, eager fp32 ran at 30 texts/s against 80
alone), and drift in the machine's speed falls on every pipeline alike. As
helpers.backends.workers does for engines: a forkserver child per pipeline, built from its
plain spec (`Pipeline.to_dict()` or `Peer.to_dict()`); the parent blocks on the pipe while the
worker measures, it never polls. A worker is not a daemon process, so it may start children of
its own (a 'processes' layout, sentence-transformers' multi-process pool, fastembed's
`parallel`); 07 drives those from its own process instead (their pools are their isolation,
and a worker's pool would start a second fork server, importing the stack again).

    with PipelineWorker(pipe.to_dict(), pipe.name) as worker:
        ms, vectors = worker.timed_pass(texts)  # one pass, tokenization included, rows in text order
"""

from __future__ import annotations

import time

import numpy as np

from helpers.backends.workers import WorkerProcess
from helpers.core import progress
from helpers.core.memory import release_free_memory
from helpers.core.tables import failure_status
from helpers.pipeline import PRELOAD as PIPELINE_PRELOAD

PRELOAD = (*PIPELINE_PRELOAD, "helpers.backends.peers", "helpers.studies.pipeline_workers")
TIMEOUT_S = 1800  # a pass (or a build) that takes longer is stopped, its worker killed


def build(spec: dict):
    """The pipeline or peer of a spec, loaded in this process (a pool starts at its first pass)."""
    from helpers.backends.peers import Peer
    from helpers.pipeline import Pipeline

    if "peer" in spec:
        runner = Peer.from_dict(spec)
        runner.load()
        return runner
    runner = Pipeline.from_dict(spec)
    if runner.layout != "processes":  # a 'processes' layout builds its engine in its own workers
        runner.engine()
    return runner


def timed_pass(runner, texts: list[str]) -> tuple[float, np.ndarray]:
    """(milliseconds, vectors) of one pass over `texts`."""
    start = time.perf_counter()
    out = runner.encode(texts)
    return (time.perf_counter() - start) * 1e3, out


def serve(conn, spec: dict) -> None:
    """The worker's loop: build, say ready (with what loading found), then one pass per request
    until None or the parent's end of the pipe closes."""
    runner = None
    try:
        import torch._inductor.config as inductor

        inductor.compile_threads = 1  # torch.compile compiles in this process, no background pool
        start = time.perf_counter()
        runner = build(spec)
        release_free_memory()
        conn.send(("ready", {"info": dict(getattr(runner, "info", {}) or {}), "build_s": time.perf_counter() - start}))
    except BaseException as exc:
        conn.send(("error", {"status": failure_status(exc), "message": f"{type(exc).__name__}: {exc}"}))
        return
    try:
        while True:
            try:
                texts = conn.recv()
            except EOFError:  # the parent is gone
                return
            if texts is None:
                return
            try:
                conn.send(("ok", timed_pass(runner, texts)))
            except BaseException as exc:  # reported for this pass; the parent decides
                conn.send(("error", {"status": failure_status(exc), "message": f"{type(exc).__name__}: {exc}"}))
    finally:
        runner.close()


class PipelineWorker(WorkerProcess):
    """A process holding one pipeline or peer; `timed_pass` blocks until it answers. A worker
    that cannot build, fails a pass, dies or stays silent past `timeout_s` raises WorkerError
    (its `status`: error, oom with evidence of memory exhaustion, skipped for an engine the
    machine cannot run)."""

    stop_s = 30  # a pool of its own stops first

    def __init__(self, spec: dict, name: str, timeout_s: float = TIMEOUT_S, wait: bool = True):
        super().__init__(name, serve, (spec,), PRELOAD, timeout_s, daemon=False)
        self.info = {}
        if wait:
            self.ready()

    def ready(self) -> dict:
        """Wait until the worker has built its pipeline; what loading found (a peer's info)."""
        if not self.info:
            with progress.phase(f"starting worker {self.name}"):
                self.info = self._receive() or {"info": {}}
        return self.info["info"]

    def timed_pass(self, texts: list[str]) -> tuple[float, np.ndarray]:
        """One timed pass over `texts` in the worker: (milliseconds, vectors)."""
        self.ready()
        return self._request(list(texts))
