"""The reusable pipeline (helpers.pipeline) and 07_pipeline's search decisions."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from transformers import AutoTokenizer, RobertaConfig, RobertaModel

from helpers.backends import export, ov
from helpers.backends.engines import EngineUnavailable
from helpers.backends.quantize import excluded_nodes
from helpers.core.fidelity import cosines
from helpers.core.fingerprint import cpu_info
from helpers.pipeline import Pipeline, make_variant_file
from helpers.report.prose.takeaways import pipeline_takeaway
from helpers.report.recommend import pipeline as recommend
from helpers.studies import pipeline as study
from helpers.workloads.batching import new_phases
from helpers.workloads.corpora import load_corpus
from helpers.workloads.models import load_model, minilm_dir

TEXTS = load_corpus().texts[:30]


@pytest.fixture(scope="module")
def minilm_files():
    loaded = load_model("minilm")
    made = make_variant_file("ort-int8-skip-ffn-down", loaded)
    assert made["status"] == "ok" and made["excluded"] == 6, made  # one FFN down-projection per layer
    return loaded, made["file"]


def test_a_recipe_keeps_its_nodes_in_fp32_and_stays_within_the_floor(minilm_files):
    loaded, file = minilm_files
    last = excluded_nodes(export.produce("onnx", loaded).path, "last-layer")
    assert last and all("layer.5/" in n for n in last)
    reference = study.naive("minilm", 128, 2).encode(TEXTS)
    pipe = Pipeline("minilm", "ort-int8-skip-ffn-down", "sorted", 8, 128, onnx_file=file)
    out = pipe.encode(TEXTS)
    assert out.shape == reference.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert cosines(reference, out).min() >= int8_floor()


def int8_floor() -> float:
    """07's default floor (min cosine 0.99) where the CPU has VNNI; 0.98 on AVX2 alone, where ONNX
    Runtime's u8s8 kernels (VPMADDUBSW) saturate 16-bit partial sums (0.989 measured on an EPYC
    Zen 3). PyTorch's dynamic INT8 of MiniLM is far below either (about 0.92)."""
    flags = cpu_info()["flags"]
    return 0.99 if flags.get("avx512_vnni") or flags.get("avx_vnni") else 0.98


def test_round_trip_through_json(minilm_files, tmp_path):
    _, file = minilm_files
    local = tmp_path / "files"
    local.mkdir()
    shutil.copy(file, local / "ort-int8-skip-ffn-down.onnx")
    pipe = Pipeline(
        "minilm",
        "ort-int8-skip-ffn-down",
        "token_budget",
        4,
        64,
        overlap=True,
        onnx_file=str(local / "ort-int8-skip-ffn-down.onnx"),
        info={"speedup": 2.0},
    )
    path = pipe.to_json(tmp_path / "recommended_pipeline.json")
    stored = json.loads(path.read_text())
    assert stored["onnx_file"] == "files/ort-int8-skip-ffn-down.onnx"  # relative: the folder can move
    assert stored["recipe"]["exclude"] == "ffn-down" and stored["precision"] == "int8"
    again = Pipeline.from_json(path)
    assert again.to_dict() == pipe.to_dict()
    assert np.allclose(again.encode(TEXTS[:6]), pipe.encode(TEXTS[:6]), atol=1e-6)


def test_a_corpus_smaller_than_the_batch_and_every_layout():
    texts = ["short", "a somewhat longer text than the first one", "mid length text"]
    reference = study.naive("bert-tiny", 64, 1).encode(texts)
    layouts = [("threads", False), ("threads", True)]
    for strategy in ("unsorted", "sorted", "token_budget", "fixed"):  # the process pool once: it is slow to start
        for layout, overlap in layouts + ([("processes", False)] if strategy == "sorted" else []):
            pipe = Pipeline("bert-tiny", "eager", strategy, 8, 64, layout, 2, overlap)
            out = pipe.encode(texts)
            pipe.close()
            assert cosines(reference, out).min() > 0.9999, (strategy, layout, overlap)
    assert Pipeline("bert-tiny").encode([]).shape == (0, 0)


def test_a_model_without_token_type_ids(tmp_path):
    folder = tmp_path / "tiny-roberta"
    config = RobertaConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        type_vocab_size=1,
        pad_token_id=0,
        max_position_embeddings=130,
    )
    RobertaModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_dir(), model_input_names=["input_ids", "attention_mask"]).save_pretrained(
        folder
    )
    assert load_model(str(folder)).input_names == ["input_ids", "attention_mask"]
    reference = study.naive(str(folder), 64, 1).encode(TEXTS[:12])
    made = make_variant_file("ort-int8-matmul", load_model(str(folder)))
    assert made["status"] == "ok", made
    for variant, file in (("ort-o2", ""), ("ort-int8-matmul", made["file"])):
        pipe = Pipeline(str(folder), variant, "sorted", 4, 64, onnx_file=file)
        assert pipe.encode(TEXTS[:12]).shape == reference.shape


def _corpus_rows(cosines_by_name: dict) -> pd.DataFrame:
    rows = [
        {
            "stage": "corpus",
            "candidate": "naive",
            "variant": "eager",
            "status": "ok",
            "cosine_min": 1.0,
            "recall_at_10": 1.0,
            "items_per_s": 10.0,
            "speedup": 1.0,
            "speedup_ci_low": 0.9,
            "speedup_ci_high": 1.1,
            "waterfall_step": "naive",
        }
    ]
    for i, (name, cos) in enumerate(cosines_by_name.items()):
        ok = cos >= 0.999
        rows.append(
            {
                "stage": "corpus",
                "candidate": name,
                "variant": name.split()[0],
                "precision": "int8",
                "strategy": "sorted",
                "batch_size": 8,
                "layout": "threads",
                "threads": 2,
                "overlap": False,
                "status": "ok" if ok else "mismatch",
                "cosine_min": cos,
                "recall_at_10": 0.97,
                "items_per_s": 20.0 + i,
                "speedup": 2.0 + i,
                "speedup_ci_low": 1.8 + i,
                "speedup_ci_high": 2.2 + i,
                "n_texts": 40,
                "waterfall_step": "precision" if i == 0 else "",
            }
        )
    return pd.DataFrame(rows)


def test_no_pipeline_meets_the_floor(tmp_path):
    df = _corpus_rows({"ort-int8-pc sorted@8": 0.995, "ort-int8-skip-last sorted@8": 0.998})
    path = tmp_path / "recommended_pipeline.json"
    path.write_text("{}")  # an older recommendation must not survive
    assert recommend.write_recommendation(df, path, {"model": "minilm"}, "machine") is None and not path.exists()
    text = pipeline_takeaway(df, 0.999, 0.95)
    assert (
        text.startswith("No pipeline meets min_cosine 0.999")
        and "the closest is **ort-int8-skip-last sorted@8**" in text
    )
    assert "0.99800" in text
    steps = recommend.waterfall(df)
    assert list(steps["waterfall_step"]) == ["naive"]


def test_the_recommendation_is_the_fastest_that_meets_the_floor():
    df = _corpus_rows({"ort-int8-skip-ffn-down sorted@8": 0.9995, "ort-int8-pc sorted@8": 0.99})
    best = recommend.recommended(df)
    assert best["candidate"] == "ort-int8-skip-ffn-down sorted@8"  # the faster one is below the floor
    text = pipeline_takeaway(df, 0.999, 0.95)
    assert "**ort-int8-skip-ffn-down**" in text and "**2.00x**" in text and "95% CI 1.80–2.20" in text
    assert list(recommend.waterfall(df)["waterfall_step"]) == ["naive", "precision"]


def test_the_report_reads_the_whole_pipeline():
    from helpers.report.recommend import workload

    df = _corpus_rows({"ort-int8-skip-ffn-down sorted@8": 0.9995}).assign(
        model="minilm", peak_rss_mb=float("nan"), memory_note=""
    )
    row = workload.whole_pipeline({"07_pipeline": df}).iloc[0]
    assert row["speedup_over_naive"] == 2.0 and (row["ci_low"], row["ci_high"]) == (1.8, 2.2)
    assert row["pipeline"].startswith("ort-int8-skip-ffn-down (int8), sorted batches of 8, 2 threads")
    below = _corpus_rows({"ort-int8-pc sorted@8": 0.99}).assign(model="minilm", peak_rss_mb=1.0, memory_note="")
    assert workload.whole_pipeline({"07_pipeline": below}).empty and workload.whole_pipeline({}).empty


@pytest.mark.skipif(bool(ov.unavailable()), reason="OpenVINO cannot run here")
@pytest.mark.parametrize("variant", ["ov-bf16", "ov-int8", "compile-bf16"])
def test_openvino_and_compiled_pipelines_rerun_from_their_json(variant, tmp_path):
    texts = TEXTS[:4] if variant.startswith("compile") else TEXTS[:12]  # compiled: one batch, one shape to compile
    reference = study.naive("bert-tiny", 64, 1).encode(texts)
    calibration = load_corpus().texts[1:40:2] if variant == "ov-int8" else []
    pipe = Pipeline("bert-tiny", variant, "sorted", 4, 64, calibration_texts=calibration)
    try:
        first = pipe.encode(texts)
    except EngineUnavailable as exc:  # ov-bf16 where the CPU has no bf16: OpenVINO would run f32
        pytest.skip(str(exc))
    assert pipe.precision == ("int8" if "int8" in variant else "bf16") == pipe.engine().precision
    path = pipe.to_json(tmp_path / "recommended_pipeline.json")
    assert json.loads(path.read_text()).get("calibration_texts", []) == calibration
    again = Pipeline.from_json(path)
    out = again.encode(texts)
    assert again.engine().name == variant and np.allclose(out, first, atol=1e-3)
    assert cosines(reference, out).min() >= 0.95


def test_openvino_streams_agree_with_one_stream_and_only_openvino_has_them():
    pytest.importorskip("openvino")
    texts = TEXTS[:40]
    one = Pipeline("bert-tiny", "ov", "sorted", 4, 64, "threads", 2)
    streams = Pipeline("bert-tiny", "ov", "sorted", 4, 64, "streams", 2)
    assert streams.engine().streams == 2 and streams.engine().compiled.get_property("PERFORMANCE_HINT") == "THROUGHPUT"
    assert one.engine().streams == 1
    assert np.allclose(streams.encode(texts), one.encode(texts), atol=1e-5)  # every answer in its text's row
    assert streams.encode(texts[:1]).shape == (1, one.encode(texts[:1]).shape[1])
    with pytest.raises(ValueError, match="phases are timed one after another"):
        streams.encode(texts, phases=new_phases())
    with pytest.raises(ValueError, match=r"layout='streams' is OpenVINO's own; variant='eager'; accepted: ov, ov-bf16"):
        Pipeline("bert-tiny", "eager", layout="streams")


# -- each pipeline and peer in a worker process of its own ------------------------------------
def test_a_worker_gives_the_answers_of_this_process_and_stops_cleanly():
    from helpers.backends.peers import Peer
    from helpers.studies.pipeline_workers import PipelineWorker

    texts = TEXTS[:12]
    pipe = Pipeline("bert-tiny", "eager", "sorted", 4, 64, "threads", 1)
    peer = Peer("ct2-float32", "bert-tiny", 4, 64, 1)
    for runner in (pipe, peer):
        with PipelineWorker(runner.to_dict(), runner.name) as worker:
            ms, out = worker.timed_pass(texts)
            assert ms > 0 and worker.alive
            assert np.allclose(out, runner.encode(texts), atol=1e-6)  # the same answers, rows in text order
            if runner is peer:
                assert worker.ready()["compute_type"] == "float32"  # what loading found, told to the parent
        assert not worker.alive


def test_a_worker_that_dies_is_an_error_row_and_the_others_are_measured_in_turn(tmp_path, monkeypatch):
    from test_peers import _search

    from helpers.studies import pipeline_workers

    search = _search(tmp_path)
    plan = [
        (search.pipeline("eager", "unsorted", 1), "naive"),
        (search.pipeline("eager", "unsorted", 8), "batching"),
        (search.pipeline("eager", "sorted", 8), "sorting"),
    ]
    monkeypatch.setattr(search, "_fit_budget", lambda plan: (plan, 2))
    order, real = [], pipeline_workers.PipelineWorker.timed_pass

    def timed_pass(worker, texts):
        order.append(worker.name)
        if worker.name.startswith("eager sorted@8") and len(order) > 3:  # dies in its first timed pass
            worker.proc.kill()
        return real(worker, texts)

    monkeypatch.setattr(pipeline_workers.PipelineWorker, "timed_pass", timed_pass)
    rows = search.measure_corpus(plan).set_index("candidate")
    naive, batched, dead = "naive", plan[1][0].name, plan[2][0].name
    assert order[:6] == [plan[0][0].name, batched, dead] * 2  # interleaved: a pass of each, in turn
    assert rows.loc[dead, "status"] == "error" and "worker died: killed by SIGKILL" in rows.loc[dead, "message"]
    assert rows.loc[naive, "status"] == rows.loc[batched, "status"] == "ok" and rows.loc[batched, "passes"] == 2
    assert rows.loc[batched, "cosine_min"] > 0.9999 and rows.loc[naive, "speedup"] == 1.0
    shared = search.rows(study.IN_PROCESS_STAGE).iloc[0]  # the naive pipeline in this process, beside it
    assert shared["candidate"] == study.IN_PROCESS and shared["cosine_min"] > 0.9999 and shared["passes"] == 2
    assert shared["speedup"] > 0 and "in a worker of its own" in shared["message"]
    assert study.IN_PROCESS not in set(recommend.candidates(search.table.read().drop(columns="peer"))["candidate"])
