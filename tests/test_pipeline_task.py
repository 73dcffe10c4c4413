"""07_pipeline's probes carry the task score (retrieval on the docstring corpus's query/document
pairs) of every variant probed, eager fp32's the reference, outside budget_s."""

import math

import pytest

from helpers.core.fidelity import TASK_COLUMNS
from helpers.core.tables import ResultTable
from helpers.studies import pipeline as study
from helpers.workloads.corpora import RANDOM_WEIGHTS_NOTE

PARAMS = dict(
    corpus="docstrings",
    text_column="text",
    encoding="utf-8",
    corpus_size=16,
    probe_size=16,
    task_size=12,
    calibration_size=4,
    max_length=64,
    cores=0,
    budget_s=600.0,
    variants=["eager", "torch-int8"],
    batch_sizes=[8],
    min_cosine=0.5,
    relaxed_min_cosine=0.5,
    min_recall_at_10=0.0,
)


def _probes(tmp_path, monkeypatch, **params):
    monkeypatch.setattr(study, "prior_fidelity", lambda model: {})  # no 02 table to prune by
    table = ResultTable(tmp_path / "07.csv", key=study.KEY)
    search = study.Search(table, PARAMS | params, log=lambda line: None)
    deadline = search.deadline
    return search, search.probe_variants().set_index("candidate"), deadline


def test_every_probed_variant_gets_the_task_score_and_its_share_of_eager_fp32s(tmp_path, monkeypatch):
    search, probes, deadline = _probes(tmp_path, monkeypatch, model="minilm")
    assert set(TASK_COLUMNS) <= set(probes.columns) and set(probes.index) == {"eager", "torch-int8"}
    eager, int8 = probes.loc["eager"], probes.loc["torch-int8"]
    assert eager["task_n"] == int8["task_n"] == 12 and eager["task_mrr_share_of_fp32"] == 1.0
    assert 0 < eager["task_mrr_at_10"] <= eager["task_recall_at_10"] <= 1
    assert int8["task_mrr_share_of_fp32"] == pytest.approx(int8["task_mrr_at_10"] / eager["task_mrr_at_10"])
    assert search.deadline > deadline  # the task score's time is given back to budget_s


def test_a_random_weight_model_records_why_it_has_no_task_score(tmp_path, monkeypatch):
    _, probes, _ = _probes(tmp_path, monkeypatch, model="bert-tiny")
    assert (probes["task_note"] == RANDOM_WEIGHTS_NOTE).all()
    assert all(math.isnan(v) for v in probes["task_mrr_share_of_fp32"])
