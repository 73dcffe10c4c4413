"""Sweep design and the engine workers: configurations, isolation, a parent that blocks."""

import time

import pandas as pd
import pytest

from helpers.backends.variants import best_int8_method
from helpers.backends.workers import EngineSpec, EngineWorker, WorkerError
from helpers.core import paths
from helpers.studies import cpu_sweep as study
from helpers.workloads.corpora import load_corpus, texts_at_length
from helpers.workloads.models import load_model


def test_sweep_configs_cross_threads_and_heatmap():
    configs = study.sweep_configs(["bert-tiny", "bert-mini"], [1, 8, 32], [16, 128, 512], [1, 2], "bert-mini")
    keys = [(c.model, c.threads, c.batch_size, c.seq_len) for c in configs]
    assert len(keys) == len(set(keys))
    tiny = {k[1:] for k in keys if k[0] == "bert-tiny"}
    # batch sweep at 128 and length sweep at batch 8, at 2 threads; batch 1 and 8 at 128 at 1 thread
    assert tiny == {(2, 1, 128), (2, 8, 128), (2, 32, 128), (2, 8, 16), (2, 8, 512), (1, 1, 128), (1, 8, 128)}
    mini = {k[1:] for k in keys if k[0] == "bert-mini"}
    assert {(2, b, s) for b in (1, 8, 32) for s in (16, 128, 512)} <= mini  # the heatmap grid
    assert [c.model for c in configs] == sorted([c.model for c in configs], key=["bert-tiny", "bert-mini"].index)
    groups = [(c.model, c.threads) for c in configs]
    assert groups == sorted(groups, key=lambda g: (["bert-tiny", "bert-mini"].index(g[0]), g[1]))


def test_the_sweep_and_its_configurations_come_from_the_notebook_parameters():
    params = dict(
        models=["bert-tiny"],
        engines=["ort", "eager"],
        scopes=["model"],
        batch_sizes=[1, 8],
        seq_lens=[16, 128],
        threads=[1, 2],
        heatmap_model="",
        rounds=2,
        min_time_s=0.05,
        max_time_s=0.75,
        target_ci=0.05,
        max_gflop=60.0,
        end_to_end_max_gflop=2.0,
        ort_level="O2",
    )
    texts = [f"text {i}" for i in range(6)]
    sweep = study.Sweep.from_params(None, params, texts, ceilings=None, int8_method="ort-int8-pc")
    assert sweep.names == ["eager", "ort"] and sweep.scopes == ["model"] and sweep.rounds == 2
    assert sweep.timing_kwargs == dict(warmup=1, min_count=3, min_time_s=0.05, max_time_s=0.75, target_ci=0.05)
    assert (sweep.max_gflop, sweep.end_to_end_max_gflop, sweep.ort_level) == (60.0, 2.0, "O2")
    assert sweep.int8_method == "ort-int8-pc" and sweep.calibration_texts == texts[1::2]
    assert study.configs(params) == study.sweep_configs(["bert-tiny"], [1, 8], [16, 128], [1, 2], "")


def test_best_int8_method_reads_02_results():
    variants = pd.DataFrame(
        {
            "model": ["m"] * 4,
            "method": ["ort-int8-pt", "ort-int8-pc", "torch-int8", "ort-fp32"],
            "status": ["mismatch", "ok", "ok", "ok"],
        }
    )
    speed = pd.DataFrame(
        {
            "model": ["m"] * 4,
            "method": ["ort-int8-pt", "ort-int8-pc", "torch-int8", "ort-fp32"],
            "speedup": [5.0, 3.0, 4.0, 1.2],
        }
    )
    assert best_int8_method(variants, speed)[0] == "ort-int8-pc"  # the faster one is a mismatch
    assert best_int8_method(None, None)[0] == "ort-int8-pc"
    # an OpenVINO INT8 method, faster and within tolerance, is not an ORT engine's file
    ov = pd.DataFrame({"model": ["m"], "method": ["ov-int8"], "status": ["ok"], "speedup": [9.0]})
    for runtimes in (None, ["onnxruntime", "onnxruntime", "torch", "onnxruntime", "openvino"]):
        rows = pd.concat([variants, ov[["model", "method", "status"]]], ignore_index=True)
        if runtimes:
            rows["runtime"] = runtimes
        assert best_int8_method(rows, pd.concat([speed, ov[["model", "method", "speedup"]]]))[0] == "ort-int8-pc"


@pytest.fixture(scope="module")
def tiny_batch():
    loaded = load_model("bert-tiny")
    batch, _ = texts_at_length(load_corpus().texts[:300], loaded.tokenizer, 2, 32)
    return batch


TIMING = dict(warmup=1, min_count=3, min_time_s=0.05, max_time_s=2)


def test_worker_measures_checks_and_reports_memory(tiny_batch):
    with EngineWorker(EngineSpec("bert-tiny", "eager", 1)) as worker:
        assert worker.info["precision"] == "fp32" and worker.info["loaded_mb"] > worker.info["base_mb"]
        m = worker.measure(tiny_batch, 32, TIMING, check_rows=2)
        assert len(m.samples_ms) >= 3 and m.cold_ms > 0 and m.peak_rss_mb > 100
        assert m.check["hidden"].shape == (2, 32, 128)
        e2e = worker.measure(tiny_batch, 32, TIMING, texts=["a short text", "another text"])
        assert len(e2e.samples_ms) >= 3


def test_parent_blocks_while_a_worker_measures(tiny_batch):
    # the parent's own CPU time during a 1.5 s measurement must stay near zero
    with EngineWorker(EngineSpec("bert-tiny", "eager", 1)) as worker:
        before = time.process_time()
        worker.measure(tiny_batch, 32, dict(warmup=0, min_count=1, min_time_s=1.5, max_time_s=3))
        assert time.process_time() - before < 0.15


def test_an_engine_that_cannot_be_built_is_reported():
    with pytest.raises(WorkerError, match="torch-fp16 runs on CUDA only"):
        EngineWorker(EngineSpec("bert-tiny", "torch-fp16", 1))


def test_a_worker_that_would_not_fit_in_memory_is_not_started(monkeypatch):
    """With less memory available than a worker needs while it loads, the engine is an oom
    failure with the reason, and no process is started (the kernel is not killed)."""
    import types

    import psutil

    from helpers.core.tables import failure_row

    monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(available=2 * 2**30))
    need = study.worker_memory_mb(335_000_000)  # bert-large
    assert 3500 < need < 4000
    workers, failed = study.start_workers("bert-large", ["eager", "ort"], 2, {}, need)
    assert workers == {} and set(failed) == {"eager", "ort"}
    row = failure_row(failed["eager"])
    assert row["status"] == "oom" and "2048 MB available" in row["message"], row


def test_heatmap_takeaway_says_when_an_engine_has_fewer_cells():
    from helpers.report.prose.takeaways import sweep_takeaways

    df = pd.read_csv(paths.REFERENCE / "xeon-spr-2c-full" / "results" / "03_cpu_sweep.csv")
    text = sweep_takeaways(df, "bert-base")["heatmap"]
    # compile's cells past torch's recompile limit are error rows in this reference (41: the rest are over max_gflop)
    assert "compile 100% of its 8 measured cells (of 41)" in text
    assert "ort-int8 100%," in text and "of its" not in text.split("compile")[0]


def test_best_int8_method_is_chosen_on_real_weights_only():
    variants = pd.DataFrame(
        {
            "model": ["bert-base", "bert-base", "minilm", "minilm"],
            "method": ["ort-int8-pt", "ort-int8-pc"] * 2,
            "status": ["ok", "ok", "mismatch", "ok"],
        }
    )
    speed = pd.DataFrame({"model": "bert-base", "method": ["ort-int8-pt", "ort-int8-pc"], "speedup": [5.0, 3.0]})
    assert best_int8_method(variants, speed)[0] == "ort-int8-pc"  # -pt passes on random weights only
    assert best_int8_method(variants, speed, real_weights_only=False)[0] == "ort-int8-pt"
    random_only = variants[variants["model"] == "bert-base"]
    method, why = best_int8_method(random_only, speed)
    assert method == "ort-int8-pc" and "no real-weight model" in why


def test_bf16_engines_are_set_against_autocast_at_the_same_cells():
    from helpers.report.prose.takeaways import bf16_cells, bf16_takeaway

    rows = []
    for engine, p50 in (("eager", 40.0), ("torch-bf16-autocast", 20.0), ("torch-bf16", 10.0), ("ov-bf16", 25.0)):
        for threads in (1, 2):  # the cells are read at the most threads
            rows.append(
                dict(model="m", engine=engine, threads=threads, batch_size=8, seq_len=128, scope="model", status="ok")
                | dict(p50_ms=p50 * (3 - threads), speedup=40.0 / p50, speedup_ci_low=40 / p50 - 0.1)
                | dict(speedup_ci_high=40 / p50 + 0.1)
            )
    rows.append({**rows[-1], "seq_len": 64, "engine": "torch-bf16"})  # no autocast at this cell: left out
    cells = bf16_cells(pd.DataFrame(rows))
    assert len(cells) == 1 and cells.loc[0, "threads"] == 2
    assert cells.loc[0, "autocast / torch-bf16"] == 2.0 and cells.loc[0, "autocast / ov-bf16"] == 0.8
    assert cells.loc[0, "torch-bf16"].startswith("4.00× (95% CI 3.90–4.10")
    said = bf16_takeaway(cells)
    assert "torch-bf16 is faster than autocast in 1 of 1 cells" in said
    assert "ov-bf16 is faster than autocast in 0 of 1 cells" in said
    assert "not both measured" in bf16_takeaway(cells.iloc[:0])


class FakeWorker:
    """Records each measure call in a shared log; fails on the call numbered `fail_on`."""

    def __init__(self, name, log, fail_on=None):
        self.name, self.log, self.fail_on, self.calls = name, log, fail_on, 0

    def measure(self, batch, seq_len, kwargs, texts, check_rows):
        from helpers.backends.workers import Measurement

        self.calls += 1
        self.log.append((self.name, kwargs.get("warmup"), len(kwargs["prior_ms"]), texts is not None, check_rows))
        if self.calls == self.fail_on:
            raise WorkerError(f"{self.name} died")
        return Measurement(samples_ms=[1.0, 2.0], cold_ms=5.0, peak_rss_mb=100.0)


def test_a_configuration_is_measured_in_interleaved_rounds_and_a_failing_worker_drops_out(monkeypatch):
    monkeypatch.setattr(study, "SETTLE_S", 0.0)
    log = []
    workers = {name: FakeWorker(name, log, fail_on=2 if name == "ort" else None) for name in ("eager", "ort", "ov")}
    kwargs = dict(warmup=1, min_count=3, min_time_s=0.0, target_ci=0.05)
    results = study.measure_config(workers, {}, ["a text"], 16, "model", 3, kwargs)
    # rounds A, B, C, A, B, C ...: warm-up and the output check in the first round only, each
    # round told the samples of the earlier ones; ort fails in round 2 and is not asked again
    assert [entry[0] for entry in log] == ["eager", "ort", "ov", "eager", "ort", "ov", "eager", "ov"]
    assert [(w, prior, rows) for _, w, prior, _, rows in log[:3]] == [(1, 0, study.CHECK_ROWS)] * 3
    assert [(w, prior, rows) for name, w, prior, _, rows in log[3:] if name == "eager"] == [(0, 2, 0), (0, 4, 0)]
    assert isinstance(results["ort"], WorkerError) and len(results["eager"]) == len(results["ov"]) == 3
    log.clear()
    study.measure_config({"eager": FakeWorker("eager", log)}, {}, ["a text"], 16, "end_to_end", 1, kwargs)
    assert log == [("eager", 1, 0, True, 0)]  # end to end: the texts are tokenized in the timing, no check


def test_each_cell_is_held_to_the_gemm_rate_at_its_models_own_shapes():
    from helpers.studies.cpu_sweep import held_to_shapes

    layer = ((128, 128), (128, 512), (512, 128))  # bert-tiny's width: a layer's three GEMMs (k, n)
    shapes = pd.DataFrame(
        [
            {"status": "ok", "precision": "fp32", "hidden": 128, "threads": 2, "m": m, "k": k, "n": n, "value": v}
            for m, v in ((64, 100.0), (1024, 300.0))
            for k, n in layer
        ]
    )
    cell = {"model": "bert-tiny", "precision": "fp32", "threads": 2, "seq_len": 128, "ceiling_gflops": 50.0}
    sweep = pd.DataFrame(
        [
            cell | {"batch_size": 8, "gflops": 150.0},  # M = 1024: held to 300, not to the square GEMM's 50
            cell | {"batch_size": 1, "gflops": 150.0},  # M = 128, nearest 64: 100, outrun
            cell | {"batch_size": 8, "gflops": 40.0, "threads": 1},  # 00 measured no shapes at 1 thread
        ]
    )
    held = held_to_shapes(sweep, shapes)
    assert list(held["ceiling_gflops"]) == [300.0, 100.0, 50.0]
    assert list(held["ceiling_at"]) == ["model shapes", "model shapes", "square GEMM"]
    assert list(held["efficiency"]) == pytest.approx([0.5, 1.5, 0.8]) and list(held["above_ceiling"]) == [0, 1, 0]
    assert held_to_shapes(held, shapes)["ceiling_gflops"].tolist() == [300.0, 100.0, 50.0]  # read again: the same
    assert list(held_to_shapes(sweep, None)["ceiling_gflops"]) == [50.0] * 3
