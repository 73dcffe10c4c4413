"""Every batching strategy processes each text once and returns one-by-one's answers in order."""

import numpy as np
import pytest

from helpers.backends import engines
from helpers.workloads import batching
from helpers.workloads.batching import STRATEGIES, plan
from helpers.workloads.corpora import load_corpus


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_plan_covers_every_index_once(strategy):
    lengths = [5, 300, 17, 17, 64, 8, 512, 40, 33, 2]
    batches = plan(lengths, strategy, 3, 256)
    indices = sorted(i for b in batches for i in b.indices)
    assert indices == list(range(len(lengths)))
    for b in batches:
        assert b.length >= max(min(lengths[i], 256) for i in b.indices)
        assert b.length <= 256
    if strategy != "token_budget":
        assert all(len(b.indices) <= 3 for b in batches)


def test_padding_counts_and_strategy_order():
    lengths = [10, 100, 10, 100, 10, 100]
    waste = {s: batching.padding(plan(lengths, s, 2, 128), lengths, 128)["padding_waste"] for s in STRATEGIES}
    assert waste["bucketed"] == 0.0  # 10s and 100s never share a batch
    assert waste["sorted"] == pytest.approx(90 / 330)  # only the middle pair (10, 100) pads
    assert waste["unsorted"] == pytest.approx((3 * 90) / 330)  # each pair pads one 10 to 100
    assert waste["fixed"] == pytest.approx((6 * 128 - 330) / 330)
    assert batching.padding([], [], 128) == {"real_tokens": 0, "padded_tokens": 0, "padding_waste": 0.0, "n_batches": 0}


def test_token_budget_sizes_batches_by_tokens():
    lengths = [8] * 10 + [64] * 4
    batches = plan(lengths, "token_budget", 4, 128)  # budget 4 x median 8 = 32 padded tokens
    assert [len(b.indices) for b in batches] == [4, 4, 2, 1, 1, 1, 1]


def test_bucketed_is_seeded():
    lengths = list(np.random.default_rng(0).integers(1, 300, 50))
    a = [b.indices for b in plan(lengths, "bucketed", 4, 256, seed=1)]
    assert a == [b.indices for b in plan(lengths, "bucketed", 4, 256, seed=1)]
    assert a != [b.indices for b in plan(lengths, "bucketed", 4, 256, seed=2)]


def test_bad_strategy_and_batch_size():
    with pytest.raises(ValueError, match="strategy='random'; accepted: fixed"):
        plan([1], "random", 2, 8)
    with pytest.raises(ValueError, match="batch_size=0"):
        plan([1], "sorted", 0, 8)


@pytest.fixture(scope="module")
def tiny_eager(tiny):
    """bert-tiny and its eager fp32 engine."""
    return tiny, engines.build_engine("eager", tiny)


def one_by_one(engine, loaded, texts, max_length):
    lengths, _ = batching.token_lengths_capped(texts, loaded.tokenizer, max_length)
    singles = [batching.Batch([i], int(lengths[i])) for i in range(len(texts))]
    return batching.run_dataset(engine, texts, loaded.tokenizer, singles, loaded.input_names)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("dataset", ["mixed", "empty", "single", "too_long"])
def test_strategies_return_one_by_one_answers_in_order(tiny_eager, strategy, dataset):
    loaded, engine = tiny_eager
    corpus = load_corpus().texts
    max_length = 64
    texts = {
        "mixed": corpus[:25],
        "empty": [],
        "single": corpus[3:4],
        "too_long": [" ".join(corpus[:40]), corpus[5], " ".join(corpus[40:60])],
    }[dataset]
    lengths, truncated = batching.token_lengths_capped(texts, loaded.tokenizer, max_length)
    if dataset == "too_long":
        assert truncated == 2 and lengths.max() == max_length  # truncated, and said so
    batches = plan(lengths, strategy, 4, max_length)
    got = batching.run_dataset(engine, texts, loaded.tokenizer, batches, loaded.input_names)
    if not texts:
        assert got.shape[0] == 0 and batches == []
        return
    expected = one_by_one(engine, loaded, texts, max_length)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_synthetic_scenarios_have_their_lengths(tiny_eager):
    loaded, _ = tiny_eager
    words = " ".join(load_corpus().texts[:2000]).split()
    medians = {}
    for scenario in batching.SCENARIOS:
        texts = batching.synthetic_texts(scenario, 200, words, seed=0)
        assert texts == batching.synthetic_texts(scenario, 200, words, seed=0)
        medians[scenario] = np.median(batching.token_lengths_capped(texts, loaded.tokenizer, 512)[0])
    assert medians["short_queries"] < medians["sentences"] < medians["long_documents"]
    assert 5 <= medians["short_queries"] <= 25 and 150 <= medians["long_documents"] <= 512


def test_an_engine_that_cannot_run_here_gets_skipped_rows_with_the_reason(tiny_eager, tmp_path):
    from helpers.core.tables import ResultTable
    from helpers.studies import sorting

    table = ResultTable(tmp_path / "05.csv", key=["distribution", "engine", "strategy", "batch_size"])
    reason = engines.EngineUnavailable("OpenVINO's CPU plugin targets x86; this machine is riscv64")
    texts_of = {"docstrings": load_corpus().texts[:8]}
    params = dict(strategies=["unsorted", "sorted"], batch_sizes=[4], passes=1, max_length=32, min_time_s=0.01)
    sorting.measure_datasets(table, params, texts_of, {"ov-bf16": reason}, tiny_eager[0])
    rows = table.read()
    assert len(rows) == 2 and (rows["status"] == "skipped").all() and rows["message"].str.contains("riscv64").all()
