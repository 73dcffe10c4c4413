"""04_gpu_sweeps without a GPU: the skip path, the CUDA branch of timing and memory with a
fake device, out-of-memory handling, resume, and the computed takeaways."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.backends import engines
from helpers.core import timing
from helpers.core.tables import ResultTable
from helpers.report.charts import gpu_sweep as gpu_charts
from helpers.report.prose import takeaways
from helpers.report.rows import largest_batch_that_fits
from helpers.runner import session
from helpers.studies import gpu_sweep as study
from helpers.workloads import corpora

KEY = ["model", "engine", "batch_size", "seq_len"]
FAST = dict(warmup=0, min_count=2, min_time_s=0.0, max_time_s=0.2)


@pytest.fixture(scope="module")
def texts_300():
    """The first 300 texts of the docstring corpus (room for 256-text batches)."""
    return corpora.load_corpus().texts[:300]


@dataclasses.dataclass
class OomAbove(engines.TorchEngine):
    """Eager, except that batches above `limit` raise the error torch raises on a full GPU."""

    limit: int = 2

    def run_prepared(self, prepared):
        if prepared[0].shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().run_prepared(prepared)


def built_engines(tiny, limit=2):
    eager = engines.build_engine("eager", tiny)
    fake = OomAbove(**{f.name: getattr(eager, f.name) for f in dataclasses.fields(eager)}, limit=limit)
    fake.name = "fragile"
    return {
        "eager": eager,
        "ort": engines.build_engine("ort", tiny),
        "fragile": fake,
        "ort-trt": engines.EngineUnavailable("onnxruntime has no TensorrtExecutionProvider"),
    }


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_without_cuda_every_model_and_engine_gets_a_skipped_row():
    reason = study.cuda_unavailable_reason("cuda")
    assert "no CUDA device" in reason and torch.__version__ in reason
    rows = study.skipped_rows(["bert-base", "minilm"], ["eager", "ort"], reason)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"skipped"} and all(r["message"] == reason for r in rows)


def test_without_a_device_measure_or_skip_writes_skipped_rows_from_the_parameters(tmp_path):
    sweep, fidelity = ResultTable(tmp_path / "s.csv", KEY), ResultTable(tmp_path / "f.csv", ["model", "engine"])
    params = {"models": ["bert-tiny", "minilm"], "engines": ["eager", "ort"], "focus_seq_len": 128}
    study.measure_or_skip(sweep, fidelity, params, "no CUDA device was found")
    assert len(sweep.read()) == 4 and (sweep.read()["status"] == "skipped").all()
    assert sorted(zip(fidelity.read()["model"], fidelity.read()["engine"])) == [
        ("bert-tiny", "eager"),
        ("bert-tiny", "ort"),
        ("minilm", "eager"),
        ("minilm", "ort"),
    ]
    timing = study.timing_kwargs(params | dict(warmup_count=10, min_time_s=0.1, max_time_s=1.0, target_ci=0.05))
    assert timing == dict(warmup=10, min_count=5, min_time_s=0.1, max_time_s=1.0, target_ci=0.05)


def test_cuda_sync_is_chosen_by_device(monkeypatch):
    assert timing.cuda_sync_for("cpu") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="cuda:1"):
        timing.cuda_sync_for("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert timing.cuda_sync_for("cuda") is torch.cuda.synchronize


def test_cuda_branch_with_a_fake_device(tiny, texts_300, monkeypatch):
    """On 'cuda' the timed calls are bracketed by synchronisation, the peak counters are reset
    before the memory pass and read after it, and NVML's figure is recorded."""
    events = []
    monkeypatch.setattr(study, "cuda_sync_for", lambda device: lambda: events.append("sync"))
    monkeypatch.setattr(study, "reset_cuda_peak", lambda device: events.append("reset"))
    monkeypatch.setattr(study, "cuda_peak_mb", lambda device: {"peak_gpu_mb": 10.0, "peak_gpu_reserved_mb": 16.0})
    monkeypatch.setattr(study, "nvml_process_mb", lambda: 123.0)
    monkeypatch.setattr(study, "device_label", lambda device: "Fake GPU (cuda:0)")
    built = {"eager": engines.build_engine("eager", tiny)}
    batch, real = corpora.texts_at_length(texts_300, tiny.tokenizer, 2, 16)
    outcome = study.measure_config(built, batch, "cuda:0", rounds=2, timing_kwargs=FAST)
    assert events[:3] == ["sync", "sync", "reset"]  # the copy is timed between two syncs, then the memory pass
    timed = outcome["eager"]["timing"].stats["n"] + 2  # + cold call of each round
    assert events.count("sync") >= 2 + 2 * timed
    row = study.config_rows(outcome, built, "bert-tiny", 2, 16, real, batch["attention_mask"], tiny.n_params, "cuda:0")[
        0
    ]
    assert row["peak_gpu_mb"] == 10.0 and row["nvml_process_mb"] == 123.0 and row["gpu"] == "Fake GPU (cuda:0)"
    assert row["h2d_ms"] >= 0 and row["speedup"] == 1.0 and "excluded" in row["copies"]


def test_sweep_records_oom_skips_larger_batches_and_resumes(tiny, texts_300, tmp_path):
    built = built_engines(tiny)
    table = ResultTable(tmp_path / "sweep.csv", KEY)
    configs = study.grid([1, 4, 8], [16, 600], tiny.max_length)
    assert configs == [(1, 16), (4, 16), (8, 16)]  # 600 is above the model's maximum
    study.run_sweep(table, tiny, built, texts_300, configs, "cpu", 1, FAST)
    df = table.read().set_index(["engine", "batch_size"])
    assert len(df) == 4 * 3
    assert df.loc[("fragile", 1), "status"] == "ok" and df.loc[("fragile", 4), "status"] == "oom"
    assert df.loc[("fragile", 8), "status"] == "skipped" and "batch 4 at 16 tokens" in df.loc[("fragile", 8), "message"]
    assert (df.xs("ort-trt", level="engine")["status"] == "skipped").all()
    assert (df.xs("ort", level="engine")["status"] == "ok").all() and (
        df.xs("eager", level="engine")["speedup"] == 1
    ).all()
    assert df.xs("ort", level="engine")["max_abs_diff"].lt(1e-2).all()
    fits = largest_batch_that_fits(table.read()).set_index("engine")
    assert fits.loc["fragile", "largest_batch"] == 1 and fits.loc["fragile", "first_oom_batch"] == 4
    assert fits.loc["eager", "largest_batch"] == 8 and np.isnan(fits.loc["eager", "first_oom_batch"])
    seen = []
    study.run_sweep(
        table,
        tiny,
        built,
        texts_300,
        configs + [(16, 16)],
        "cpu",
        1,
        FAST,
        progress=lambda items: seen.extend(items) or items,
    )
    assert seen == [(16, 16)]
    again = table.read().set_index(["engine", "batch_size"])
    assert again.loc[("fragile", 16), "status"] == "skipped"  # the OOM at batch 4 was remembered


def test_fidelity_rows_compare_embeddings_with_eager(tiny, texts_300, tmp_path):
    built = {
        "eager": engines.build_engine("eager", tiny),
        "torch-bf16": engines.build_engine("torch-bf16", tiny),
        "ort-fp16": engines.EngineUnavailable("ort-fp16 runs on CUDA only"),
    }
    rows = {r["engine"]: r for r in study.fidelity_rows(built, tiny, texts_300[:40], batch_size=8)}
    assert rows["eager"]["cosine_min"] == pytest.approx(1.0) and rows["eager"]["recall_at_10"] == 1.0
    assert rows["torch-bf16"]["status"] == "ok" and 0.99 < rows["torch-bf16"]["cosine_min"] < 1.0
    assert rows["ort-fp16"]["status"] == "skipped" and "CUDA only" in rows["ort-fp16"]["message"]


def test_gpu_takeaway_finds_the_crossover():
    rows = []
    for bs, ort_ms, ts_ms in ((1, 1.0, 2.0), (8, 3.0, 4.0), (64, 20.0, 15.0), (256, 80.0, 50.0)):
        for engine, ms in (("eager", 2 * ts_ms), ("ort", ort_ms), ("torchscript", ts_ms)):
            s = 2 * ts_ms / ms
            rows.append(
                {
                    "model": "bert-base",
                    "engine": engine,
                    "batch_size": bs,
                    "seq_len": 128,
                    "p50_ms": ms,
                    "status": "ok",
                    "speedup": s,
                    "speedup_ci_low": s * 0.95,
                    "speedup_ci_high": s * 1.05,
                    "message": "",
                }
            )
    rows.append(
        {
            "model": "bert-base",
            "engine": "ort",
            "batch_size": 512,
            "seq_len": 128,
            "status": "oom",
            "message": "CUDA out of memory",
        }
    )
    df = pd.DataFrame(rows)
    text = takeaways.gpu_takeaway(df, largest_batch_that_fits(df), 128)
    assert "ORT is faster up to batch 8, TorchScript from batch 64" in text
    assert "fastest at batch 1: **ort**" in text and "at batch 256: **torchscript**" in text
    assert "Best speed-up over eager fp32: ort at batch 1 × 128, 4.00×" in text
    assert "ort at 128 tokens from batch 512 (largest that fits: 256)" in text


def test_without_cuda_the_figures_are_one_notice_saved_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_OUT", str(tmp_path))
    sweep = pd.DataFrame(study.skipped_rows(["bert-tiny"], ["eager"], "no CUDA device"))
    figures = gpu_charts.notebook_figures(sweep, ["bert-tiny"], 128, "no CUDA device")
    assert list(figures) == ["04_gpu_sweep"]
    entries = session.Run("04_gpu_sweeps", "smoke", "r1", "host", caption="c").save_figures(figures)
    assert [e["name"] for e in entries] == ["04_gpu_sweep"]
    assert (tmp_path / "figures" / "04_gpu_sweep.png").exists()


def test_measured_rows_give_every_figure_with_one_heatmap_per_model():
    rows = [
        {
            "model": model,
            "engine": engine,
            "batch_size": bs,
            "seq_len": 128,
            "scope": "model",
            "threads": 1,
            "status": "ok",
            "p50_ms": bs * (1.0 if engine == "eager" else 0.5),
            "speedup": 1.0 if engine == "eager" else 2.0,
            "speedup_ci_low": 0.9,
            "speedup_ci_high": 2.1,
            "gpu": "cuda:0 fake",
            "peak_gpu_mb": 100.0,
            "nvml_process_mb": 300.0,
        }
        for model in ("bert-tiny", "org/model")
        for engine in ("eager", "ort")
        for bs in (1, 8)
    ]
    figures = gpu_charts.notebook_figures(pd.DataFrame(rows), ["bert-tiny", "org/model"], 128, None)
    assert list(figures) == [
        "04_per_item_vs_batch",
        "04_speedup_vs_batch",
        "04_speedup_heatmap_bert-tiny",
        "04_speedup_heatmap_org__model",
        "04_memory",
    ]
