"""02_quantization's loop over models: every model's variants and timings are written, and a
resumed run does only what is missing (the models' work stood in for by a recorder)."""

from types import SimpleNamespace

from helpers.core.tables import ResultTable
from helpers.studies import quantization as study


class RecordedModel:
    """Stands in for ModelVariants: records what it was asked to do, returns rows."""

    calls: list = []

    def __init__(self, model_name, seq_len, fidelity_texts, task):
        self.model, self.seq_len = model_name, seq_len
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
    monkeypatch.setattr("helpers.workloads.corpora.texts_at_length", lambda *args: ({}, None))
    RecordedModel.calls = []
    variants = ResultTable(tmp_path / "v.csv", key=["model", "method"])
    speed = ResultTable(tmp_path / "s.csv", key=["model", "method", "batch_size", "seq_len"])
    study.measure_models(
        variants,
        speed,
        SimpleNamespace(texts=["a text"]),
        [],
        [],
        models=models,
        methods=["eager", "ort-int8-pc"],
        batch_sizes=[1, 8],
        seq_len=128,
        fidelity_size=10,
        calibration_size=4,
        measure_memory=False,
        rounds=1,
        timing_kwargs={},
    )
    return variants.read(), speed.read()


def test_every_model_gets_its_variants_and_timings(tmp_path, monkeypatch):
    variants, speed = run_study(tmp_path, monkeypatch, ["minilm", "bert-base"])
    assert sorted(variants.groupby("model").size().items()) == [("bert-base", 2), ("minilm", 2)]
    assert sorted(speed.groupby("model").size().items()) == [("bert-base", 4), ("minilm", 4)]


def test_a_resumed_run_does_only_the_missing_models(tmp_path, monkeypatch):
    run_study(tmp_path, monkeypatch, ["minilm"])
    run_study(tmp_path, monkeypatch, ["minilm", "bert-base"])
    assert {call[1] for call in RecordedModel.calls} == {"bert-base"}
