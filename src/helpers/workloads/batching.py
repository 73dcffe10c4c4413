"""Batching strategies over a whole dataset, processed exactly once, answers in the
original order: what sorting and bucketing by length buy, and what padding costs.

Lengths are token counts with special tokens, truncated at the model's maximum length.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

STRATEGIES = ("fixed", "unsorted", "sorted", "bucketed", "token_budget")


BUCKET_EDGES = (16, 32, 64, 128, 256, 512)


@dataclass
class Batch:
    indices: list[int]  # positions in the dataset
    length: int  # padded length of every row


def _chunks(order: Sequence[int], size: int) -> list[list[int]]:
    return [list(order[i : i + size]) for i in range(0, len(order), size)]


def bucket_of(length: int, edges: Sequence[int] = BUCKET_EDGES) -> int:
    """Index of the first bucket edge the length fits under (the last bucket takes the rest)."""
    return next((i for i, edge in enumerate(edges) if length <= edge), len(edges))


def plan(
    lengths: Sequence[int],
    strategy: str,
    batch_size: int,
    max_length: int,
    *,
    seed: int = 0,
    edges: Sequence[int] = BUCKET_EDGES,
) -> list[Batch]:
    """The batches of `strategy`; every index appears exactly once.

    fixed: arrival order, padded to max_length. unsorted: arrival order, padded to the
    longest in the batch (dynamic padding). sorted: globally by length. bucketed: length
    buckets (edges), shuffled within each bucket and across batches (seeded). token_budget:
    sorted by length, each batch as many texts as fit in batch_size x the median length
    padded tokens (at least one text).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r}; accepted: {', '.join(STRATEGIES)}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}; accepted: an integer >= 1")
    lengths = np.minimum(np.asarray(lengths, dtype=int), max_length)
    if lengths.size == 0:
        return []
    arrival = list(range(lengths.size))
    by_length = list(np.argsort(lengths, kind="stable"))
    rng = np.random.default_rng(seed)
    if strategy in ("fixed", "unsorted"):
        groups = _chunks(arrival, batch_size)
    elif strategy == "sorted":
        groups = _chunks(by_length, batch_size)
    elif strategy == "bucketed":
        groups = []
        for b in sorted({bucket_of(n, edges) for n in lengths}):
            members = [i for i in arrival if bucket_of(lengths[i], edges) == b]
            groups += _chunks(list(rng.permutation(members)), batch_size)
        groups = [groups[i] for i in rng.permutation(len(groups))]
    else:
        groups = _token_budget(by_length, lengths, batch_size * max(int(np.median(lengths)), 1))
    pad_to = (lambda g: max_length) if strategy == "fixed" else (lambda g: int(lengths[g].max()))
    return [Batch([int(i) for i in g], pad_to(np.asarray(g))) for g in groups]


def _token_budget(order: list[int], lengths: np.ndarray, budget: int) -> list[list[int]]:
    groups, current = [], []
    for i in order:  # ascending length: the batch's padded length is the newest text's
        if current and (len(current) + 1) * lengths[i] > budget:
            groups.append(current)
            current = []
        current.append(i)
    return groups + ([current] if current else [])


def padding(batches: list[Batch], lengths: Sequence[int], max_length: int) -> dict:
    """Real and padded token counts; padding_waste = pad tokens / real tokens."""
    lengths = np.minimum(np.asarray(lengths, dtype=int), max_length)
    real = int(lengths.sum())
    total = sum(b.length * len(b.indices) for b in batches)
    return {
        "real_tokens": real,
        "padded_tokens": total - real,
        "padding_waste": (total - real) / real if real else 0.0,
        "n_batches": len(batches),
    }


def new_phases() -> dict:
    """Where one pass's time went, filled by `run_dataset` (and the length pass of
    `helpers.pipeline.encode_with`): seconds tokenizing the batches, in the engine, mean
    pooling its output and measuring lengths; each batch's (rows, padded length) as the engine
    saw it, and each text's real length in tokens."""
    return {"tokenize_s": 0.0, "engine_s": 0.0, "pooling_s": 0.0, "lengths_s": 0.0, "shapes": [], "lengths": []}


def run_dataset(
    run_batch: Callable[[dict], np.ndarray],
    texts: Sequence[str],
    tokenizer,
    batches: list[Batch],
    input_names: Sequence[str],
    *,
    padding: bool | str = "max_length",
    overlap: bool = False,
    phases: dict | None = None,
) -> np.ndarray:
    """Mean-pooled embeddings of every text, in the dataset's original order. Each batch is
    padded to its planned length ("max_length") or to its longest text (True); with `overlap`,
    a background thread tokenizes the next batch while the engine runs this one. `phases`, when
    given, gathers where the time went (see `new_phases`)."""
    from concurrent.futures import ThreadPoolExecutor
    from functools import partial

    from helpers.core.fidelity import mean_pool

    tokenized = partial(tokenize_batch, tokenizer, texts, padding=padding, phases=phases)
    out = None
    with ThreadPoolExecutor(1, thread_name_prefix="tokenize") if overlap else nullcontext() as pool:
        pending = pool.submit(tokenized, batches[0]) if pool and batches else None
        for i, batch in enumerate(batches):
            if pool:
                enc = pending.result()
                if i + 1 < len(batches):
                    pending = pool.submit(tokenized, batches[i + 1])
            else:
                enc = tokenized(batch)
            start = time.perf_counter()
            hidden = run_batch({k: enc[k] for k in input_names})
            pooled = time.perf_counter()
            emb = mean_pool(hidden, enc["attention_mask"])
            if phases is not None:
                phases["engine_s"] += pooled - start
                phases["pooling_s"] += time.perf_counter() - pooled
                phases["shapes"].append(tuple(enc["input_ids"].shape))
                phases["lengths"].extend(int(n) for n in enc["attention_mask"].sum(1))
            if out is None:
                out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
            out[batch.indices] = emb
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def tokenize_batch(tokenizer, texts: Sequence[str], batch: Batch, padding: bool | str, phases: dict | None = None):
    """The batch's texts tokenized to torch tensors at its planned length (padded to it, or to
    its longest text with padding=True); the time goes to phases["tokenize_s"] when given."""
    start = time.perf_counter()
    enc = tokenizer(
        [texts[i] for i in batch.indices],
        padding=padding,
        truncation=True,
        max_length=batch.length,
        return_tensors="pt",
    )
    if phases is not None:
        phases["tokenize_s"] += time.perf_counter() - start
    return enc


def run_dataset_queued(
    engine,
    texts: Sequence[str],
    tokenizer,
    batches: list[Batch],
    input_names: Sequence[str],
    *,
    padding: bool | str = True,
) -> np.ndarray:
    """`run_dataset` for an engine with several streams (an OpenVINO engine's `queue`): this
    thread tokenizes each batch and hands it to a free stream while the others compute; each
    answer is pooled as it completes (no phases: the engine's time overlaps the rest)."""
    from helpers.core.fidelity import mean_pool

    pooled: dict[int, np.ndarray] = {}
    failures: list[BaseException] = []

    def done(hidden: np.ndarray, userdata) -> None:
        i, mask = userdata
        try:
            pooled[i] = mean_pool(hidden, mask)
        except BaseException as exc:  # raised below, in the calling thread
            failures.append(exc)

    jobs = engine.queue(done)
    for i, batch in enumerate(batches):
        enc = tokenize_batch(tokenizer, texts, batch, padding)
        jobs.start_async(engine.prepare({k: enc[k] for k in input_names}), (i, enc["attention_mask"]))
    jobs.wait_all()
    if failures:
        raise failures[0]
    if not pooled:
        return np.zeros((0, 0), dtype=np.float32)
    out = np.zeros((len(texts), pooled[0].shape[1]), dtype=np.float32)
    for i, batch in enumerate(batches):
        out[batch.indices] = pooled[i]
    return out


def token_lengths_capped(texts: Sequence[str], tokenizer, max_length: int) -> tuple[np.ndarray, int]:
    """Token counts truncated at max_length, and how many texts were truncated."""
    from helpers.workloads.corpora import token_lengths

    full = token_lengths(texts, tokenizer) if len(texts) else np.zeros(0, dtype=int)
    return np.minimum(full, max_length), int((full > max_length).sum())


# -- synthetic length scenarios ---------------------------------------------------------------
SCENARIOS = {  # median tokens and spread (lognormal sigma) of common workloads
    "short_queries": (10, 0.4),
    "sentences": (28, 0.5),
    "long_documents": (300, 0.5),
}


def synthetic_texts(scenario: str, n: int, words: Sequence[str], seed: int = 0) -> list[str]:
    """n texts of real words (taken in order from `words` at seeded positions) whose lengths
    follow the scenario's lognormal distribution (about 1.3 tokens per word)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario={scenario!r}; accepted: {', '.join(SCENARIOS)}")
    median, sigma = SCENARIOS[scenario]
    rng = np.random.default_rng(seed)
    counts = np.clip(np.round(rng.lognormal(np.log(median / 1.3), sigma, n)), 1, 2000).astype(int)
    starts = rng.integers(0, max(len(words) - counts.max(), 1), n)
    return [" ".join(words[s : s + c]) for s, c in zip(starts, counts)]


def datasets(
    corpus: str, scenarios: Sequence[str], n: int, seed: int = 0, text_column: str = "text", encoding: str = "utf-8"
) -> dict[str, list[str]]:
    """The datasets 05 measures, by the name its tables give them: n texts of the corpus (built-in
    or a user file, named by its file name; drawn reproducibly, in a random arrival order), then
    n texts of each named scenario (synthetic lengths, real words of the built-in corpus)."""
    from pathlib import Path

    from helpers.workloads.corpora import load_corpus

    texts = load_corpus(corpus, text_column=text_column, encoding=encoding).texts
    picks = np.random.default_rng(seed).permutation(len(texts))[:n]
    out = {Path(str(corpus)).name: [texts[i] for i in picks]}
    if scenarios:
        words = " ".join(load_corpus().texts).split()
        out |= {s: synthetic_texts(s, n, words, seed) for s in scenarios}
    return out
