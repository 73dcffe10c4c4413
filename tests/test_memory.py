import mmap

import numpy as np
import pytest

from helpers.core.memory import PeakRSS, in_fresh_process

ALLOC_MB = 200


def allocate(mb=ALLOC_MB):
    """`mb` of new resident memory, freed on return. An anonymous mapping, not malloc: an
    allocator may hand back memory it kept from an earlier test, which adds nothing to RSS."""
    with mmap.mmap(-1, mb * 1024 * 1024) as block:
        pages = np.frombuffer(block, dtype=np.uint8)
        pages[:: mmap.PAGESIZE] = 1  # touch every page
        total = float(pages[:: mmap.PAGESIZE].sum())
        del pages  # the mapping closes only once no array views it
    return total


def load_block(mb):
    return np.ones(mb * 1024 * 1024 // 8)


def run_on_block(block):
    extra = np.ones_like(block)  # inference-like: a second buffer the size of the first
    return float((block + extra).sum())


def test_peak_rss_detects_known_allocation():
    with PeakRSS() as mem:
        allocate()
    assert mem.increment_mb == pytest.approx(ALLOC_MB, rel=0.10)


def test_peak_rss_block_sees_freed_memory():
    with PeakRSS() as mem:
        allocate()  # freed on return; only the sampler saw it
    assert mem.increment_mb >= 0.9 * ALLOC_MB


def test_fresh_process_load_and_inference_increments():
    rec = in_fresh_process(load_block, run_on_block, 100)
    assert rec.result == pytest.approx(2 * 100 * 1024 * 1024 / 8)
    assert rec.load_increment_mb == pytest.approx(100, rel=0.15)
    # block + extra + their sum: ~200 MB above the loaded state
    assert 180 <= rec.inference_increment_mb <= 330


def fail(_):
    raise ValueError("broken engine")


def test_fresh_process_reports_child_errors():
    with pytest.raises(RuntimeError, match="broken engine"):
        in_fresh_process(load_block, fail, 1)


def busy_load(seconds):
    return seconds


def busy_run(seconds):
    import time

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return seconds


def test_parent_blocks_instead_of_polling_while_the_child_measures():
    # On a 2-core machine a spinning parent would steal a core from the measurement.
    import time

    before = time.process_time()
    in_fresh_process(busy_load, busy_run, 1.5)
    parent_cpu = time.process_time() - before
    assert parent_cpu < 0.15, f"parent used {parent_cpu:.2f} s of CPU while the child worked"


def test_peak_counter_resets_and_sees_a_known_allocation():
    from helpers.core.memory import peak_rss_mb, reset_peak_rss, rss_mb

    allocate(300)
    if not reset_peak_rss():
        pytest.skip("this OS cannot reset the peak-RSS counter")
    assert peak_rss_mb() < rss_mb() + 50  # the 300 MB peak is forgotten
    before = rss_mb()
    allocate()
    assert peak_rss_mb() - before == pytest.approx(ALLOC_MB, rel=0.10)


RELEASE_SCRIPT = """
from helpers.core.memory import release_free_memory, rss_mb
base = rss_mb()
chunks = [bytearray(1 << 20) for _ in range(300)]  # 300 MiB in 1 MiB blocks, written
del chunks
kept = rss_mb() - base
release_free_memory()
print(kept, rss_mb() - base)
"""


def test_released_memory_leaves_a_steady_process():
    """Under the steady allocator a process keeps what it frees (300 MiB here) until
    release_free_memory hands it back."""
    import os
    import subprocess
    import sys

    from helpers.core.memory import STEADY_MALLOC

    env = {**os.environ, **STEADY_MALLOC}
    out = subprocess.run([sys.executable, "-c", RELEASE_SCRIPT], env=env, capture_output=True, text=True, check=True)
    kept, after = map(float, out.stdout.split())
    assert kept > 250 and after < 50, (kept, after)
