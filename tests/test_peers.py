"""The peers (sentence-transformers' backends) beside 07's candidates, and the cost-weighted
recommendation."""

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
    assert (
        "No peer (sentence-transformers) was measured on the whole corpus. st-openvino did not run: st-openvino needs"
        in text
    )
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
