"""Peak memory: of a block in this process (a sampling thread), of a callable in a fresh
process (a clean peak, nothing left over from earlier engines), and of CUDA work."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil

from helpers.core.tables import ProcessFailure, exit_failure, failure_status

MB = 1024 * 1024

# glibc hands large freed buffers back to the OS and faults them in again on the next call: in
# a fresh worker that cost about 20% of a bert-mini batch 8 x 128 call on 2 cores, while a
# process that has run for a while (a notebook kernel, a service) had stopped doing it, so 00's
# harness self-check found workers 25-30% slower than a plain loop in the kernel. Every process
# the study starts keeps freed memory instead: each engine is timed in that steady state.
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(2**32), "MALLOC_TRIM_THRESHOLD_": str(2**32)}


def release_free_memory() -> None:
    """Hand the allocator's free memory back to the OS (glibc's malloc_trim; elsewhere nothing).
    Under STEADY_MALLOC a process keeps every byte it frees, so after a build (an export, a
    quantization, an engine's load) it would hold that step's peak for good: 03's seven
    bert-large workers beside a kernel that had exported bert-large did not fit in 24 GiB.
    Called between phases, never while timing (warm-up faults the buffers in again)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def steady_allocator() -> None:
    """Put STEADY_MALLOC in this process's environment, for every process it starts from now
    on (glibc reads it at process start; a value already set is kept)."""
    for name, value in STEADY_MALLOC.items():
        os.environ.setdefault(name, value)


def forkserver(preload=()):
    """The multiprocessing context every process the study starts comes from: a fork server
    that has imported `preload` (children start in a second, holding nothing of this process)
    and runs with the steady allocator."""
    steady_allocator()  # before the fork server starts: it passes its environment on
    ctx = mp.get_context("forkserver")
    if preload:
        ctx.set_forkserver_preload(list(preload))
    return ctx


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


class _Sampler:
    """A daemon thread that calls `_sample()` every `interval_s` between `_start()` and
    `_halt()`. It sleeps between samples (it never spins), so it costs the measured code
    almost nothing; an event shorter than the interval can be missed."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self._stop = threading.Event()

    def _sample(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        self._stop.set()
        self._thread.join()


class PeakRSS(_Sampler):
    """Context manager sampling this process's resident memory in a background thread.

    with PeakRSS() as mem:
        run()
    mem.peak_mb, mem.increment_mb   # highest RSS seen, and its rise over the start
    """

    def __init__(self, interval_s: float = 0.002):
        super().__init__(interval_s)
        self.start_mb = self.peak_mb = 0.0
        self._proc = psutil.Process()

    def _sample(self) -> None:
        self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / MB)

    def __enter__(self) -> "PeakRSS":
        self.start_mb = self.peak_mb = rss_mb()
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt()
        self._sample()

    @property
    def increment_mb(self) -> float:
        return self.peak_mb - self.start_mb


# The kernel's count of OOM kills: this container's memory cgroup (v2, then v1), else the
# machine's. psutil sees the machine's memory, not a container's limit: a kill at that limit
# shows in these counts only.
OOM_KILL_COUNTERS = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control", "/proc/vmstat")


def oom_kill_count() -> int | None:
    """The first readable of OOM_KILL_COUNTERS (None where there is none, e.g. not Linux)."""
    for path in OOM_KILL_COUNTERS:
        try:
            for line in Path(path).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return None


class MemoryWatch(_Sampler):
    """The evidence for calling a child's death out of memory: the lowest available memory of
    the machine while the parent waited on the child, and the rise of the OOM-kill count.

        with MemoryWatch() as watch:
            wait_for_the_child()
        status, reason = results.exit_failure(proc.exitcode, **watch.evidence())

    A sample reads /proc/meminfo (about 30 us), so it takes next to nothing from the child's
    measurement.
    """

    def __init__(self, interval_s: float = 0.1):
        super().__init__(interval_s)

    def _sample(self) -> None:
        self.low_mb = min(self.low_mb, psutil.virtual_memory().available / MB)

    def __enter__(self) -> "MemoryWatch":
        vm = psutil.virtual_memory()
        self.low_mb, self.total_mb = vm.available / MB, vm.total / MB
        self.kills_before = oom_kill_count()
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt()

    def evidence(self) -> dict:
        """exit_failure's memory arguments, as of now."""
        self._sample()
        after = oom_kill_count()
        kills = after - self.kills_before if after is not None and self.kills_before is not None else 0
        return {"low_available_mb": self.low_mb, "total_mb": self.total_mb, "oom_kills": kills}


def death_of(proc, watch: MemoryWatch) -> tuple[str, str]:
    """Status and reason for a child process that closed its pipe without answering."""
    proc.join(5)
    return exit_failure(proc.exitcode, **watch.evidence())


@dataclass
class ProcessMemory:
    """What a fresh process measured: RSS before loading, after loading, and the peak."""

    result: object
    base_mb: float
    loaded_mb: float
    peak_mb: float

    @property
    def load_increment_mb(self) -> float:
        return self.loaded_mb - self.base_mb

    @property
    def inference_increment_mb(self) -> float:
        return self.peak_mb - self.loaded_mb


def _child(conn, load: Callable, run: Callable, args: tuple) -> None:
    try:
        base = rss_mb()
        with PeakRSS() as mem:
            loaded = load(*args)
            loaded_mb = rss_mb()
            result = run(loaded)
        conn.send(("ok", ProcessMemory(result, base, loaded_mb, mem.peak_mb)))
    except BaseException as exc:  # sent back so the parent can record the failure
        conn.send(
            (
                "error",
                {
                    "status": failure_status(exc),
                    "message": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
                },
            )
        )
    finally:
        conn.close()


def in_fresh_process(
    load: Callable, run: Callable, *args, timeout_s: float = 600, preload: tuple[str, ...] = ()
) -> ProcessMemory:
    """Call load(*args) then run(loaded) in a new process and return its memory record.

    Both callables must be importable (module-level functions). The process is forked from
    a clean server that has imported only `preload` (e.g. torch): it starts in a second
    instead of re-importing the stack, and holds nothing of this process's memory. The
    parent blocks on the pipe while the child works: it does not poll, so it takes no CPU
    from the measurement.
    """
    ctx = forkserver(preload)
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, load, run, args))
    proc.start()
    child.close()
    try:
        with MemoryWatch() as watch:
            if not parent.poll(timeout_s):
                proc.kill()
                raise TimeoutError(f"fresh-process measurement exceeded its {timeout_s} s timeout")
            try:
                kind, payload = parent.recv()
            except EOFError:
                status, reason = death_of(proc, watch)
                raise ProcessFailure(f"fresh process died: {reason}", status) from None
    finally:
        if proc.is_alive():
            proc.join(5)
            if proc.is_alive():
                proc.kill()
    if kind == "error":
        raise ProcessFailure(payload["message"], payload["status"])
    return payload


def cuda_peak_mb(device=None) -> dict:
    """torch's peak allocated and reserved CUDA memory since the last reset (empty on CPU)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    return {
        "peak_gpu_mb": torch.cuda.max_memory_allocated(device) / MB,
        "peak_gpu_reserved_mb": torch.cuda.max_memory_reserved(device) / MB,
    }


def reset_cuda_peak(device=None) -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats(device)


def nvml_process_mb(pid: int | None = None) -> float | None:
    """GPU memory used by a process according to NVML (what ORT uses, outside torch's view)."""
    try:
        import pynvml
    except ImportError:
        return None
    pid = pid or os.getpid()
    try:
        pynvml.nvmlInit()
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if p.pid == pid and p.usedGpuMemory is not None:
                    return p.usedGpuMemory / MB
        return 0.0
    except pynvml.NVMLError:
        return None


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS counter (Linux: VmHWM via /proc/self/clear_refs).
    Returns False where that is not possible; peak_rss_mb then reports the lifetime peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process since start or the last reset_peak_rss()."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024
