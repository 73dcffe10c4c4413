"""02_quantization's loop over models: every model's variants and timings are written, and a
resumed run does only what is missing (the models' work stood in for by a recorder)."""

from types import SimpleNamespace

from helpers.core.tables import ResultTable
from helpers.studies import quantization as study


class RecordedModel:
    """Stands in for ModelVariants: records what it was asked to do, returns rows."""

    calls: list = []

    def __init__(self, model_name, seq_len, fidelity_texts, task, retrieval):
        self.model, self.seq_len = model_name, seq_len
        assert retrieval == ("docstrings", 12)  # the corpus and task_size, read when a variant is scored
        self.loaded = SimpleNamespace(tokenizer=None)

    def evaluate(self, method, calibration_texts, calibration_size, measure_memory, memory_batch):
        self.calls.append(("evaluate", self.model, method))
        return {"model": self.model, "method": method, "status": "ok"}

    def speed(self, variant_rows, batch_size, pending, texts, timing_kwargs, rounds):
        self.calls.append(("speed", self.model, batch_size, tuple(pending)))
        return [
            {"model": self.model, "method": m, "batch_size": batch_size, "seq_len": self.seq_len, "status": "ok"}
            for m in pending
        ]


def run_study(tmp_path, monkeypatch, models):
    monkeypatch.setattr(study, "ModelVariants", RecordedModel)
    monkeypatch.setattr(study, "classification_task", lambda *args: None)
    monkeypatch.setattr(study, "texts_at_length", lambda *args: ({}, None))
    RecordedModel.calls = []
    variants = ResultTable(tmp_path / "v.csv", key=["model", "method"])
    speed = ResultTable(tmp_path / "s.csv", key=["model", "method", "batch_size", "seq_len"])
    params = dict(
        models=models,
        methods=["eager", "ort-int8-pc"],
        batch_sizes=[1, 8],
        seq_len=128,
        fidelity_size=10,
        task_size=12,
        corpus="docstrings",
        calibration_size=4,
        measure_memory=False,
        rounds=1,
        min_time_s=0.1,
        target_ci=0.05,
    )
    study.measure_models(variants, speed, params, SimpleNamespace(texts=["a text"]))
    return variants.read(), speed.read()


def test_every_model_gets_its_variants_and_timings(tmp_path, monkeypatch):
    variants, speed = run_study(tmp_path, monkeypatch, ["minilm", "bert-base"])
    assert sorted(variants.groupby("model").size().items()) == [("bert-base", 2), ("minilm", 2)]
    assert sorted(speed.groupby("model").size().items()) == [("bert-base", 4), ("minilm", 4)]


def test_a_resumed_run_does_only_the_missing_models(tmp_path, monkeypatch):
    run_study(tmp_path, monkeypatch, ["minilm"])
    run_study(tmp_path, monkeypatch, ["minilm", "bert-base"])
    assert {call[1] for call in RecordedModel.calls} == {"bert-base"}


class _AgreeingEngine:
    """An int8 engine whose output on the check batch equals the reference's."""

    precision, graph = "int8", "onnx"

    def __init__(self, hidden):
        self.hidden = hidden

    def __call__(self, batch):
        return self.hidden


def test_a_variants_status_and_message_judge_the_figures_its_row_shows(monkeypatch):
    """The padded check batch (a few texts) can agree better than the whole fidelity set: the
    row's status and message judge the cosine_min it shows (over every fidelity text)."""
    import numpy as np
    import pytest

    from helpers.backends import engines
    from helpers.core import fidelity

    hidden, mask = np.ones((2, 3, 4), dtype=np.float32), np.ones((2, 3), dtype=np.int64)
    ref_emb = np.eye(3, 4, dtype=np.float32)
    worse = ref_emb.copy()
    worse[0] = [0.882, np.sqrt(1 - 0.882**2), 0, 0]  # one fidelity text at cosine 0.882
    monkeypatch.setattr(fidelity, "embed_texts", lambda *a, **k: worse)
    monkeypatch.setattr(fidelity, "recall_at_k", lambda *a, **k: 1.0)
    loaded = SimpleNamespace(tokenizer=None, input_names=())
    row = study.fidelity_row(
        _AgreeingEngine(hidden), loaded, ref_emb, {"attention_mask": mask}, hidden, ["a", "b", "c"], 16
    )
    assert row["cosine_min"] == pytest.approx(0.882, abs=1e-4)
    assert row["status"] == "mismatch" and "cosine_min 0.882" in row["message"]
    assert engines.tolerance_verdict(0.5, 0.99, atol=3.0, min_cosine=0.95) == ("ok", "")


def _scored_variants(model: str, retrieval):
    """ModelVariants holding only what `task_scores` reads (no ONNX export, no fidelity texts)."""
    from helpers.backends.variants import build
    from helpers.workloads.models import load_model

    mv = study.ModelVariants.__new__(study.ModelVariants)
    mv.loaded, mv.seq_len, mv.retrieval = load_model(model), 64, retrieval
    mv.pairs, mv.task_note, mv.task_reference = None, "", None
    mv.built = {"eager": build("eager", mv.loaded, None)}
    return mv


def test_every_variant_on_real_weights_gets_the_task_score_and_its_share_of_fp32s():
    import pytest

    from helpers.backends.variants import build

    mv = _scored_variants("minilm", ("docstrings", 16))
    eager = mv.task_scores("eager", mv.built["eager"])
    assert eager["task_n"] == 16 and eager["task_note"] == "" and eager["task_mrr_share_of_fp32"] == 1.0
    assert 0.5 < eager["task_recall_at_10"] <= 1 and 0 < eager["task_mrr_at_10"] <= eager["task_recall_at_10"]
    int8 = mv.task_scores("torch-int8", build("torch-int8", mv.loaded, None))  # the engine that is timed
    assert int8["task_n"] == 16 and 0 < int8["task_mrr_share_of_fp32"] < 1.2
    assert int8["task_mrr_share_of_fp32"] == pytest.approx(int8["task_mrr_at_10"] / eager["task_mrr_at_10"])


def test_random_weights_and_a_user_corpus_get_no_task_score_but_the_reason(tmp_path):
    import math

    from helpers.workloads.corpora import RANDOM_WEIGHTS_NOTE

    mv = _scored_variants("bert-tiny", ("docstrings", 16))
    row = mv.task_scores("eager", mv.built["eager"])
    assert math.isnan(row["task_mrr_share_of_fp32"]) and row["task_note"] == RANDOM_WEIGHTS_NOTE
    user = tmp_path / "tickets.txt"
    user.write_text("one ticket\nanother ticket\n", encoding="utf-8")
    mv = _scored_variants("minilm", (str(user), 16))
    row = mv.task_scores("eager", mv.built["eager"])
    assert math.isnan(row["task_mrr_at_10"]) and "no query/document pairs" in row["task_note"]
