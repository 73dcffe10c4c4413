"""The peers (sentence-transformers' backends, fastembed, CTranslate2) beside 07's candidates, their
settings and parallel layouts, and the cost-weighted recommendation."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers.backends import peers
from helpers.backends.peers import Peer
from helpers.core.fidelity import cosines
from helpers.report.prose.takeaways import pipeline_takeaway
from helpers.report.recommend import pipeline as recommend
from helpers.runner import params
from helpers.runner.checks import ParameterError, check_value
from helpers.studies import pipeline as study
from helpers.workloads.corpora import load_corpus
from helpers.workloads.models import minilm_dir

TEXTS = load_corpus().texts[:20]


def test_a_random_weight_shape_becomes_a_sentence_transformer_that_matches_the_naive_pipeline():
    reference = study.naive("bert-tiny", 64, 1).encode(TEXTS)
    peer = Peer("st-torch", "bert-tiny", batch_size=8, max_length=64, threads=1)
    out = peer.encode(TEXTS)
    assert out.shape == reference.shape and cosines(reference, out).min() > 0.9999
    assert (peers.st_folder(peer._loaded) / "modules.json").is_file()  # built in the cache
    assert peer.name == "st-torch @8" and peer.with_batch(32).name == "st-torch @32 (default)"
    assert peer.with_batch(32)._st is peer._st  # the model is loaded once per peer


def test_exports_go_to_the_build_cache_never_into_the_model_package(tmp_path):
    import os

    before = sorted(p.name for p in minilm_dir().rglob("*"))
    peer = Peer("st-onnx-qint8", "minilm", batch_size=8, max_length=64, threads=1)
    out = peer.encode(TEXTS)
    assert sorted(p.name for p in minilm_dir().rglob("*")) == before
    folder, file = peers.exported_folder(peer._loaded, "onnx", peers.quantization_config())
    assert str(folder).startswith(os.environ["WORKBOOK_CACHE"]) and (folder / file).is_file()
    assert (
        file.endswith(f"int8_{peers.quantization_config()}.onnx")
        and peer.precision == "int8"
        and peer.info["quantization"] == peers.quantization_config()
    )
    reference = study.naive("minilm", 64, 1).encode(TEXTS)
    assert 0.9 < cosines(reference, out).min() < 1 - 1e-6  # INT8: close, not equal


def test_the_quantization_config_follows_the_cpu():
    assert peers.quantization_config({"avx512_vnni": True, "avx512f": True}, "x86_64") == "avx512_vnni"
    assert peers.quantization_config({"avx512f": True}, "x86_64") == "avx512"
    assert peers.quantization_config({}, "x86_64") == "avx2"
    assert peers.quantization_config({}, "aarch64") == "arm64"


def test_a_peer_that_cannot_run_is_refused_before_anything_runs(monkeypatch):
    with pytest.raises(ParameterError, match="peers: unknown value 'st-tensorrt'; accepted: st-torch, "):
        check_value("peers", ["st-torch", "st-tensorrt"], {})
    check_value("peers", [], {})  # no peers at all is allowed
    monkeypatch.setattr(peers, "_importable", lambda module: not module.startswith(("openvino", "optimum.intel")))
    assert "st-openvino needs the package openvino" in peers.unavailable("st-openvino")
    with pytest.raises(ParameterError, match=r"peers: st-openvino needs the package openvino.*accepted here: st-torch"):
        check_value("peers", ["st-openvino"], {})
    with pytest.raises(RuntimeError, match="needs the package openvino"):
        Peer("st-openvino", "bert-tiny").encode(["x"])
    with pytest.raises(ValueError, match="peers='onnx'; accepted: st-torch"):
        Peer("onnx")
    assert "peers" in params.notebook_parameters(params.paths.NOTEBOOKS / "07_pipeline.ipynb")


def test_an_openvino_engine_or_variant_is_refused_where_openvino_is_missing(monkeypatch):
    from helpers import pipeline
    from helpers.backends.catalog import engine_registry

    assert {"ov", "ov-bf16"} <= set(engine_registry().names("encode"))  # helpers.backends.ov adds them
    monkeypatch.setattr(pipeline, "VARIANTS", {**pipeline.VARIANTS, "ov-int8": "OpenVINO INT8"})
    check_value("engines", ["eager", "ov-bf16"], {})  # installed here: accepted
    check_value("variants", ["eager", "ov-int8"], {})
    monkeypatch.setattr(peers, "_importable", lambda module: module != "openvino")
    with pytest.raises(ParameterError, match=r"engines: 'ov-bf16' needs OpenVINO: OpenVINO is not installed") as err:
        check_value("engines", ["eager", "ov-bf16"], {})
    assert "accepted here: " in str(err.value) and "ov" not in str(err.value).split("accepted here: ")[1].split(", ")
    with pytest.raises(ParameterError, match=r"variants: 'ov-int8' needs OpenVINO"):
        check_value("variants", ["ov-int8"], {})
    with pytest.raises(ParameterError, match=r"variants: unknown value 'ov-fp64'; accepted: eager"):
        check_value("variants", ["ov-fp64"], {})
    check_value("engines", ["eager", "ort"], {})  # nothing of OpenVINO asked: fine


def _row(name, speedup, low, high, **extra):
    base = {
        "stage": "corpus",
        "candidate": name,
        "variant": name.split()[0],
        "precision": "bf16",
        "strategy": "sorted",
        "batch_size": 32,
        "layout": "threads",
        "threads": 2,
        "overlap": False,
        "status": "ok",
        "cosine_min": 0.9999,
        "recall_at_10": 0.99,
        "items_per_s": 100 * speedup,
        "speedup": speedup,
        "speedup_ci_low": low,
        "speedup_ci_high": high,
        "n_texts": 64,
        "peak_rss_mb": 500.0,
        "peer": "",
        "waterfall_step": "",
    }
    return base | extra


def _table(*rows):
    naive = _row("naive", 1.0, 0.95, 1.05, variant="eager", waterfall_step="naive")
    return pd.DataFrame([naive, *rows])


def test_a_cheaper_pipeline_within_the_fastest_ones_ci_is_recommended_and_the_fastest_named():
    fast = _row("torch-bf16 sorted@32 processesx2", 5.0, 4.5, 5.6, layout="processes", peak_rss_mb=900.0)
    one = _row("torch-bf16 sorted@32 threadsx2", 4.7, 4.2, 5.2)
    slow = _row("ort-o2 sorted@32 threadsx2", 3.0, 2.8, 3.2, peak_rss_mb=300.0)
    df = _table(fast, one, slow)
    assert recommend.fastest(df)["candidate"] == fast["candidate"]
    assert recommend.recommended(df)["candidate"] == one["candidate"]  # 4.7 lies within 4.5-5.6, one process
    note = recommend.cost_note(df)
    assert "**torch-bf16 sorted@32 processesx2** (5.00x" in note and "1 process instead of 2" in note
    assert "peak RSS 500 MB instead of 900" in note
    text = pipeline_takeaway(df, 0.99, 0.95)
    assert "recommended whole pipeline (the cheapest within the fastest's CI)" in text and note in text
    # outside the CI, the fastest stays
    assert (
        recommend.recommended(_table(fast, _row("x sorted@32 threadsx2", 4.4, 4.0, 4.8)))["candidate"]
        == fast["candidate"]
    )
    # memory alone counts only when clearly lower: 480 of 500 MB is not
    same = _row("y sorted@32 threadsx2", 4.9, 4.4, 5.4, peak_rss_mb=480.0)
    assert recommend.recommended(_table(_row("z sorted@32 threadsx2", 5.0, 4.5, 5.5), same))["candidate"].startswith(
        "z"
    )
    lighter = same | {"peak_rss_mb": 300.0}
    assert recommend.recommended(_table(_row("z sorted@32 threadsx2", 5.0, 4.5, 5.5), lighter))["candidate"].startswith(
        "y"
    )


def test_a_faster_peer_is_never_recommended_and_is_said_plainly(tmp_path):
    over = {"best_peer": "st-openvino @16", "speedup_over_peer": 0.8}
    best = _row("torch-bf16 sorted@32 threadsx2", 4.0, 3.8, 4.2, waterfall_step="precision")
    best |= over | {"speedup_over_peer_ci_low": 0.75, "speedup_over_peer_ci_high": 0.86}
    peer = _row("st-openvino @16", 5.0, 4.7, 5.3, peer="st-openvino", waterfall_step=study.PEER_STEP)
    slow_peer = _row("st-torch @32 (default)", 1.5, 1.4, 1.6, peer="st-torch", waterfall_step=study.PEER_STEP)
    df = _table(best, peer, slow_peer)
    assert recommend.recommended(df)["candidate"] == best["candidate"]
    assert recommend.best_peer(df)["candidate"] == "st-openvino @16"
    text = pipeline_takeaway(df, 0.99, 0.95)
    assert "best peer at the floors is **st-openvino @16**" in text and "**the peer is faster**" in text
    assert "0.80x its speed (95% CI 0.75–0.86" in text
    steps = recommend.waterfall(df)
    assert list(steps["waterfall_step"]) == ["naive", "precision", recommend.BEST_PEER]
    written = recommend.write_recommendation(df, tmp_path / "r.json", _params(), "machine")
    import json

    info = json.loads(written.read_text())["info"]
    assert info["speedup_over_best_peer"] == {
        "peer": "st-openvino @16",
        "speedup": 0.8,
        "ci_low": 0.75,
        "ci_high": 0.86,
    }
    assert info["best_peer"]["candidate"] == "st-openvino @16" and info["fastest"]["candidate"] == best["candidate"]
    # the recommended pipeline faster than the peer, with a CI above 1
    faster = best | {"speedup_over_peer": 1.6, "speedup_over_peer_ci_low": 1.4, "speedup_over_peer_ci_high": 1.8}
    assert "the recommended pipeline is **1.60x** faster (95% CI 1.40–1.80" in pipeline_takeaway(
        _table(faster, peer), 0.99, 0.95
    )


def test_a_peer_that_could_not_run_is_named_in_the_answer():
    skipped = {"stage": "probe-peer", "candidate": "st-openvino", "peer": "st-openvino", "status": "skipped"}
    skipped["message"] = "st-openvino needs the package openvino, which is not installed"
    df = pd.concat([_table(_row("eager sorted@32 threadsx2", 3.0, 2.8, 3.2)), pd.DataFrame([skipped])])
    text = pipeline_takeaway(df, 0.99, 0.95)
    assert "No peer was measured on the whole corpus. st-openvino did not run: st-openvino needs" in text
    broken = _row("st-onnx @32 (default)", 1.0, 1.0, 1.0, peer="st-onnx", status="error", items_per_s=float("nan"))
    broken["message"] = "RuntimeError: the onnx export failed"
    text = pipeline_takeaway(pd.concat([df, pd.DataFrame([broken])]), 0.99, 0.95)
    assert "No peer met the floors on the whole corpus." in text
    assert "st-onnx @32 (default) did not run: RuntimeError: the onnx export failed." in text


def test_the_speedup_over_the_best_peer_comes_from_the_same_passes():
    rng = np.random.default_rng(0)
    peer_ms, mine = list(100 + rng.normal(0, 1, 9)), list(50 + rng.normal(0, 1, 9))
    cols = study.over_peer(("st-onnx @32 (default)", peer_ms), mine, "precision")
    assert cols["best_peer"] == "st-onnx @32 (default)"
    assert cols["speedup_over_peer_ci_low"] < cols["speedup_over_peer"] < cols["speedup_over_peer_ci_high"]
    assert 1.9 < cols["speedup_over_peer"] < 2.1
    assert study.over_peer(("p", peer_ms), mine, study.PEER_STEP) == {} and study.over_peer(None, mine, "") == {}


def _params():
    return {"model": "minilm", "max_length": 128, "min_cosine": 0.99, "min_recall_at_10": 0.95, "corpus": "docstrings"}


def test_the_static_int8_openvino_peer_is_calibrated_on_the_corpus_in_the_build_cache(monkeypatch):
    import os

    pytest.importorskip("openvino")
    monkeypatch.setattr(peers, "STATIC_TEXTS", 8)  # the recipe, on fewer texts (a key of its own in the cache)
    peer = Peer("st-openvino-qint8", "bert-tiny", batch_size=8, max_length=64, threads=1)
    out = peer.encode(TEXTS)
    folder, file = peers.exported_folder(peer._loaded, "openvino", "static")
    assert str(folder).startswith(os.environ["WORKBOOK_CACHE"]) and file.endswith("openvino_model_qint8_quantized.xml")
    assert (folder / file).is_file() and (folder / file).with_suffix(".bin").is_file()
    xml = (folder / file).read_text()
    assert "FakeQuantize" in xml or "FakeConvert" in xml  # quantized, not a plain export
    assert peer.precision == "int8" and "static" in peer.info["quantization"] and peers.needs_openvino(peer.peer)
    reference = study.naive("bert-tiny", 64, 1).encode(TEXTS)
    assert 0.9 < cosines(reference, out).min() < 1 - 1e-6  # INT8: close, not equal


def test_the_peers_probes_leave_the_search_budget_whole(monkeypatch):
    clock, left_at_plan = [0.0], []
    monkeypatch.setattr(study.time, "perf_counter", lambda: clock[0])

    class Search(study.Search):
        def __init__(self, table, params, log):
            self.start, self.deadline, self.p = 0.0, float(params["budget_s"]), params

        def probe_variants(self):
            clock[0] += 30.0

        def passing(self, min_cosine=None):
            return []

        def _row(self, *args, **values):
            return {}

        def probe_peers(self):
            clock[0] += 500.0  # slower than the whole budget

        def plan_finalists(self):
            left_at_plan.append(self.left_s())
            return []

        def measure_corpus(self, plan):
            return pd.DataFrame()

        memory = rows = lambda self, *args: pd.DataFrame()

    class Run:
        params = {"budget_s": 100.0, "strategies": ["sorted"], "peers": ["st-torch"]}

        def table(self, *args, **kwargs):
            return type("Table", (), {"read": lambda self: pd.DataFrame()})()

    monkeypatch.setattr(study, "Search", Search)
    monkeypatch.setattr(study.pipeline_time, "measure", lambda *args: pd.DataFrame())
    study.run_search(Run(), log=lambda line: None)
    assert left_at_plan == [70.0]  # 100 s of budget less the variants' 30 s: the peers' 500 s are outside it


# -- fastembed and CTranslate2 ----------------------------------------------------------------
@pytest.mark.parametrize(("name", "floor"), [("fastembed", 0.999), ("ct2-float32", 0.999), ("ct2-int8", 0.95)])
def test_fastembed_and_ctranslate2_encode_close_to_eager_fp32_from_files_in_the_build_cache(name, floor):
    import os

    reference = study.naive("bert-tiny", 64, 1).encode(TEXTS)
    peer = Peer(name, "bert-tiny", batch_size=8, max_length=64, threads=1)
    out = peer.encode(TEXTS)
    assert out.shape == reference.shape and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert cosines(reference, out).min() > floor
    if name == "fastembed":
        folder = peers.fastembed_folder(peer._loaded, 64)
        config = json.loads((folder / "tokenizer_config.json").read_text())
        assert config["model_max_length"] == 64 and (folder / "model.onnx").is_file()  # truncated like every pipeline
        assert peer.info["registered"].startswith("add_custom_model")  # bert-tiny: not a model fastembed knows
    else:
        folder = peers.ct2_folder(peer._loaded, peers.COMPUTE_TYPE[name])
        assert (folder / "model.bin").is_file()
        assert peer.info["compute_type"] == ("float32" if name == "ct2-float32" else "int8_float32")
    assert str(folder).startswith(os.environ["WORKBOOK_CACHE"])
    assert peer.precision == ("int8" if name == "ct2-int8" else "fp32") and peer.strategy == "unsorted"
    assert cosines(out, peer.with_batch(3).encode(TEXTS)).min() > 0.9999  # the batch size changes no answer


def test_each_peers_parallel_layout_gives_the_same_answers_and_names_itself():
    ct2 = Peer("ct2-float32", "bert-tiny", batch_size=4, max_length=64, threads=2)
    one = ct2.encode(TEXTS)
    replicas = ct2.with_settings(4, 2)
    assert replicas.name == "ct2-float32 @4 inter_threads=2" and replicas.layout == "threads"
    assert replicas.settings == {"batch_size": 4, "workers": 2, "parallel": "inter_threads=2", "intra_threads": 1}
    assert np.allclose(replicas.encode(TEXTS), one, atol=1e-5)
    fe = Peer("fastembed", "bert-tiny", batch_size=4, max_length=64, threads=2)
    alone, parallel = fe.encode(TEXTS), fe.with_settings(4, 2)
    assert parallel.name == "fastembed @4 parallel=2" and parallel.layout == "processes"
    assert np.allclose(parallel.encode(TEXTS), alone, atol=1e-5)  # two worker processes, rows in text order
    assert Peer("fastembed").name == "fastembed @256 (default)" and Peer("ct2-int8").name == "ct2-int8 @32 (default)"
    assert (
        Peer("st-torch", workers=2).name == "st-torch @32 pool x2" and Peer("st-torch", workers=2).layout == "processes"
    )
    assert peers.default_batch("fastembed") == 256 and peers.default_batch("st-onnx") == peers.DEFAULT_BATCH == 32


def test_an_absent_package_or_an_unsupported_precision_is_refused_with_its_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(peers, "_importable", lambda module: module not in ("fastembed", "ctranslate2"))
    assert peers.unavailable("fastembed") == (
        "fastembed needs the package fastembed, which is not installed (make install installs it)"
    )
    assert "ct2-int8 needs the package ctranslate2" in peers.unavailable("ct2-int8")
    assert peers.unavailable("st-torch") == ""
    with pytest.raises(ParameterError, match=r"peers: ct2-int8 needs the package ctranslate2.*accepted here: st-torch"):
        check_value("peers", ["st-torch", "ct2-int8"], {})
    with pytest.raises(RuntimeError, match="fastembed needs the package fastembed"):
        Peer("fastembed", "bert-tiny").encode(["x"])
    search = _search(tmp_path, peers=["fastembed", "ct2-int8"])
    rows = search.probe_peers()
    assert list(rows["status"]) == ["skipped", "skipped"] and "needs the package" in rows["message"].iloc[0]
    assert search.peer_plan() == []
    monkeypatch.undo()
    # CTranslate2's bf16 where its CPU build runs none: its wheels would run fp32 under a bf16 name
    monkeypatch.setattr(peers, "ct2_compute_types", lambda: ["float32", "int8", "int8_float32"])
    assert peers.unsupported("ct2-int8") == "" and peers.unsupported("fastembed") == ""
    assert "CTranslate2 runs no bfloat16 on this CPU" in peers.unsupported("ct2-bf16")
    assert "no int8_bfloat16" in peers.unsupported("ct2-int8-bf16")
    check_value("peers", ["ct2-bf16"], {})  # installed: a parameter, refused per machine as a skipped row
    with pytest.raises(RuntimeError, match="runs no bfloat16"):
        Peer("ct2-bf16", "bert-tiny").encode(["x"])
    assert peers.PRECISION["ct2-bf16"] == "bf16" and peers.PRECISION["ct2-int8-bf16"] == "int8"


def test_a_peer_is_probed_in_its_parallel_layout_and_measured_at_its_default_and_best_settings(tmp_path):
    search = _search(tmp_path, peers=["ct2-int8"], cores=2)
    assert search.peer_settings("ct2-int8") == [(8, 1), (32, 1), (8, 2), (32, 2)]
    rows = search.probe_peers()
    assert list(rows["candidate"]) == [
        "ct2-int8 @8",
        "ct2-int8 @32 (default)",
        "ct2-int8 @8 inter_threads=2",
        "ct2-int8 @32 inter_threads=2",
    ]
    assert (rows["status"] == "ok").all() and rows["items_per_s"].notna().all()
    assert [json.loads(i)["workers"] for i in rows["peer_info"]] == [1, 1, 2, 2]
    plan = search.peer_plan()
    assert plan[0][0].name == "ct2-int8 @32 (default)" and {s for _, s in plan} == {study.PEER_STEP}
    best = rows.sort_values("items_per_s").iloc[-1]["candidate"]
    assert plan[-1][0].name == best and search.chosen[best].endswith("fastest probed")
    assert search.chosen["ct2-int8 @32 (default)"].startswith("default settings")
    assert study.describe(plan[0][0], "default settings")["peer_info"].count('"chosen": "default settings"') == 1
    assert _search(tmp_path / "off", peers=["ct2-int8"], cores=2, peer_parallel=False).peer_settings("ct2-int8") == [
        (8, 1),
        (32, 1),
    ]


def test_the_peers_whole_corpus_passes_are_outside_the_search_budget(tmp_path, monkeypatch):
    search = _search(tmp_path, passes=2, budget_s=100.0)
    rates = {("eager", False): 0.5, ("eager", True): 0.1, ("st-torch", True): 10.0}  # seconds per text
    monkeypatch.setattr(search, "_seconds_per_text", lambda: rates)
    plan = [
        (search.pipeline("eager", "unsorted", 1), "naive"),
        (search.pipeline("eager", "sorted", 8), ""),  # a finalist: the first to go when time is short
        (search.peer("st-torch", 32), study.PEER_STEP),  # 160 s a pass, far beyond the budget
    ]
    keep, passes = search._fit_budget(plan)
    assert [p.name for p, _ in keep] == [p.name for p, _ in plan] and passes == 2


def _search(folder, **params) -> study.Search:
    """A real search of bert-tiny on a few docstrings, writing to a table of its own."""
    from helpers.core.tables import ResultTable

    values = {
        "model": "bert-tiny",
        "corpus": "docstrings",
        "text_column": "text",
        "encoding": "utf-8",
        "corpus_size": 16,
        "probe_size": 16,
        "task_size": 0,
        "calibration_size": 8,
        "budget_s": 60.0,
        "max_length": 64,
        "cores": 1,
        "passes": 1,
        "target_ci": 0.05,
        "min_cosine": 0.99,
        "min_recall_at_10": 0.95,
        "batch_sizes": [8],
        "peers": [],
        "peer_parallel": True,
    }
    folder.mkdir(parents=True, exist_ok=True)
    return study.Search(ResultTable(folder / "07_pipeline.csv", study.KEY), values | params, log=lambda line: None)
