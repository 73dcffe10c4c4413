"""Faults recorded as what they are: a dead process is `oom` only with evidence of memory
exhaustion; a signal, a timeout or any other death is `error` and says which."""

import os
import signal
import time

import numpy as np
import pytest

from helpers.backends.workers import EngineSpec, EngineWorker, WorkerError
from helpers.core.memory import in_fresh_process
from helpers.core.tables import ProcessFailure, exit_failure, failure_row, failure_status
from helpers.studies import environment

GB = 1024.0  # MB


# -- the classification, on synthetic exits ------------------------------------------------------
def test_sigkill_with_memory_near_zero_is_oom_and_says_so():
    status, reason = exit_failure(-9, low_available_mb=45, total_mb=24 * GB)
    assert status == "oom"
    assert reason == "killed by SIGKILL while available memory was 45 MB of 24.0 GB"


def test_sigkill_with_memory_to_spare_is_an_error():
    status, reason = exit_failure(-9, low_available_mb=12 * GB, total_mb=24 * GB)
    assert status == "error" and "SIGKILL (signal 9)" in reason and "12.0 GB of 24.0 GB" in reason
    assert "no sign of memory exhaustion" in reason
    assert exit_failure(-9)[0] == "error"  # no memory evidence at all: not oom


def test_a_rise_in_the_oom_kill_count_is_evidence():
    status, reason = exit_failure(-9, low_available_mb=12 * GB, total_mb=24 * GB, oom_kills=1)
    assert status == "oom" and "OOM killer" in reason and "12.0 GB of 24.0 GB" in reason


@pytest.mark.parametrize("name", ["SIGSEGV", "SIGABRT", "SIGTERM", "SIGBUS"])
def test_other_signals_are_errors_with_their_name(name):
    # even with memory exhausted: the OOM killer sends SIGKILL, nothing else
    number = int(getattr(signal, name))
    assert exit_failure(-number, low_available_mb=10, total_mb=24 * GB) == ("error", f"{name} (signal {number})")


def test_exit_codes_are_errors():
    assert exit_failure(1) == ("error", "exit code 1 without an answer")
    assert exit_failure(None)[0] == "error"


def test_failure_status_of_exceptions():
    assert failure_status(MemoryError()) == "oom"
    assert failure_status(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")) == "oom"
    assert failure_status(RuntimeError("Failed to allocate memory for requested buffer of size 4096")) == "oom"
    assert failure_status(ValueError("shapes do not match")) == "error"
    assert failure_status(TimeoutError("no answer within 5 s")) == "error"
    assert failure_status(ProcessFailure("MemoryError: in the child", "oom")) == "oom"
    from helpers.backends.engines import EngineUnavailable

    assert failure_status(EngineUnavailable("OpenVINO's CPU plugin targets x86")) == "skipped"
    assert failure_status(ProcessFailure("worker died: SIGSEGV (signal 11)")) == "error"


# -- a fresh measurement process -----------------------------------------------------------------
def load_and_die(how):
    if how == "MemoryError":
        raise MemoryError("cannot allocate the activations")
    if how == "sleep":
        time.sleep(30)
    os.kill(os.getpid(), getattr(signal, how))
    time.sleep(30)  # the signal is delivered before this ends


def never_run(loaded):
    return loaded


@pytest.mark.parametrize(
    "how, status, text",
    [
        ("SIGSEGV", "error", "fresh process died: SIGSEGV (signal 11)"),
        ("SIGABRT", "error", "fresh process died: SIGABRT (signal 6)"),
        ("SIGKILL", "error", "no sign of memory exhaustion"),
        ("MemoryError", "oom", "MemoryError: cannot allocate the activations"),
    ],
)
def test_fresh_process_deaths_are_recorded_as_what_they_are(how, status, text):
    with pytest.raises(ProcessFailure) as info:
        in_fresh_process(load_and_die, never_run, how)
    row = failure_row(info.value)
    assert row["status"] == status and text in row["message"]


def test_fresh_process_sigkill_with_evidence_of_exhaustion_is_oom(monkeypatch):
    from types import SimpleNamespace

    from helpers.core import memory

    low = SimpleNamespace(available=45 * 2**20, total=24 * 2**30)  # as the parent sees the machine
    monkeypatch.setattr(memory.psutil, "virtual_memory", lambda: low)
    with pytest.raises(ProcessFailure) as info:
        in_fresh_process(load_and_die, never_run, "SIGKILL")
    assert failure_row(info.value) == {
        "status": "oom",
        "message": "ProcessFailure: fresh process died: killed by SIGKILL while available memory was 45 MB of 24.0 GB",
    }
    monkeypatch.undo()
    counts = iter(range(7, 100))  # the kernel's OOM-kill count rises while the child runs
    monkeypatch.setattr(memory, "oom_kill_count", lambda: next(counts))
    with pytest.raises(ProcessFailure) as info:
        in_fresh_process(load_and_die, never_run, "SIGKILL")
    assert info.value.status == "oom" and "OOM killer" in str(info.value)


def test_fresh_process_timeout_is_an_error_naming_it():
    with pytest.raises(TimeoutError) as info:
        in_fresh_process(load_and_die, never_run, "sleep", timeout_s=1)
    row = failure_row(info.value)
    assert row["status"] == "error" and "1 s timeout" in row["message"]


# -- an engine worker ---------------------------------------------------------------------------
class Poisoned:
    """An input tensor that fails the way named when the engine moves it to its device."""

    def __init__(self, how):
        self.how = how

    def to(self, device):
        load_and_die(self.how)


def poisoned_batch(how):
    shape = (1, 8)
    return {"input_ids": Poisoned(how), "attention_mask": np.ones(shape), "token_type_ids": np.zeros(shape)}


TIMING = dict(warmup=0, min_count=1, min_time_s=0, max_time_s=1)


def test_worker_memory_error_is_oom_and_a_segfault_is_an_error():
    with EngineWorker(EngineSpec("bert-tiny", "eager", 1)) as worker:
        with pytest.raises(WorkerError) as info:
            worker.measure(poisoned_batch("MemoryError"), 8, TIMING)
        assert failure_row(info.value)["status"] == "oom" and worker.alive  # it goes on
        with pytest.raises(WorkerError) as info:
            worker.measure(poisoned_batch("SIGSEGV"), 8, TIMING)
        row = failure_row(info.value)
        assert row["status"] == "error" and "eager worker died: SIGSEGV (signal 11)" in row["message"]
        assert not worker.alive
        with pytest.raises(WorkerError, match="SIGSEGV"):  # asked again: the same answer, no BrokenPipeError
            worker.measure(poisoned_batch("MemoryError"), 8, TIMING)


def test_worker_timeout_is_an_error_and_stops_the_worker():
    with EngineWorker(EngineSpec("bert-tiny", "eager", 1)) as worker:
        worker.timeout_s = 1
        with pytest.raises(WorkerError) as info:
            worker.measure(poisoned_batch("sleep"), 8, TIMING)
        row = failure_row(info.value)
        assert row["status"] == "error" and "no answer within the 1 s timeout" in row["message"]
        worker.proc.join(5)
        assert not worker.alive  # stopped, so its late answer cannot pass for the next request's


# -- 00's ceilings ------------------------------------------------------------------------------
def raises(exc):
    raise exc


@pytest.mark.parametrize(
    "exc, status",
    [
        (environment.Mismatch("gemm: 3 elements differ from the exact reference"), "mismatch"),
        (ValueError("matmul: operands could not be broadcast together"), "error"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "oom"),
        (MemoryError(), "oom"),
    ],
)
def test_ceilings_only_a_failed_check_is_a_mismatch(exc, status):
    row = environment._safe(raises, {"kind": "gemm", "value": float("nan")}, exc=exc)
    assert row["status"] == status and row["kind"] == "gemm"
    assert row["message"].startswith(type(exc).__name__)


def test_check_result_raises_a_mismatch():
    x = np.zeros((2, 2))
    with pytest.raises(environment.Mismatch):
        environment.check_result(x + 1, x, "gemm")
