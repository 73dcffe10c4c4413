"""Every notebook, executed headless with the smoke profile, produces sane tables and figures."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch

from helpers.core import paths
from helpers.runner.params import discover_notebooks

pytestmark = pytest.mark.smoke


def check_00_environment(out):
    ceilings = pd.read_csv(out / "results" / "00_ceilings.csv")
    ok = ceilings[ceilings["status"] == "ok"]
    for library, precision in [("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")]:
        rate = ok[
            (ok["kind"] == "gemm")
            & (ok["library"] == library)
            & (ok["precision"] == precision)
            & (ok["device"] == "cpu")
        ]["value"]
        assert len(rate) == 2 and rate.between(1, 1e6).all(), (library, precision)  # one per thread count
    assert ok[ok["kind"] == "bandwidth"]["value"].between(0.1, 1e4).all()
    cuda = ceilings[ceilings["device"] == "cuda"]
    assert len(cuda) == 3 * 2 and ((cuda["status"] == "ok") | (cuda["message"].str.len() > 0)).all()
    harness = pd.read_csv(out / "results" / "00_harness.csv").iloc[0]
    assert harness["p50_ms"] > 0 and 0 < harness["overhead_share"] < 0.01
    env = json.loads((out / "results" / "environment.json").read_text())
    assert env["profile"] == "smoke" and env["notebooks"]["00_environment"]["gemm_size"] == 256
    shapes = pd.read_csv(out / "results" / "00_gemm_shapes.csv")
    untimed = shapes[shapes["status"] != "ok"]  # bf16 converted in software (no bf16 instructions): not timed
    assert len(shapes) == 3 * 4 and (shapes.loc[shapes["status"] == "ok", "value"] > 0).all()
    assert set(untimed["precision"]) <= {"bf16"} and untimed["message"].str.contains("no native bf16").all()
    assert set(zip(shapes["k"], shapes["n"])) == {(128, 128), (128, 512), (512, 128)} and set(shapes["m"]) == {64}
    assert set(ceilings["threads"]) == {1, 2}
    nominal = ceilings[ceilings["kind"] == "nominal"]
    assert set(nominal["precision"]) == {"fp32", "bf16", "int8"} and (nominal["message"].str.contains("clock")).all()
    fp32 = nominal[(nominal["precision"] == "fp32") & (nominal["threads"] == 1)]["value"]
    assert fp32.iloc[0] > 1 or fp32.isna().all()  # GFLOP/s, or no clock figure on this OS
    check = pd.read_csv(out / "results" / "00_harness_check.csv").iloc[0]
    assert check["worker_p50_ms"] > 0 and check["inprocess_p50_ms"] > 0 and check["ratio_ci_low"] <= check["ratio"]
    assert "Harness self-check (bert-mini" in check["message"]
    return ["00_ceilings"]


def check_01_export(out):
    df = pd.read_csv(out / "results" / "01_export.csv").set_index("format")
    assert set(df.index) == {
        "torchscript",
        "onnx",
        "optimum-api",
        "optimum-cli",
        "onnx-O1",
        "onnx-O2",
        "onnx-O3",
        "onnx-O4",
        "openvino",
    }
    produced = df.drop(index="onnx-O4")
    assert (produced["status"] == "ok").all(), produced[["status", "message"]]
    assert (produced["max_abs_diff"] < 1e-2).all() and (produced["cosine_min"] > 0.9999).all()
    assert (produced["size_mb"] > 1).all() and (produced["export_seconds"] > 0).all()
    assert df.loc["onnx-O2", "fused_Attention"] > 0 and df.loc["onnx-O2", "node_count"] < df.loc["onnx", "node_count"]
    o4 = df.loc["onnx-O4"]
    assert o4["status"] == "ok" or (o4["status"] == "skipped" and "CUDA" in o4["message"])
    ov = df.loc["openvino"]  # converted from the plain export; true fp32, checked at untraced shapes
    assert (ov["precision"], ov["graph"]) == ("fp32", "openvino-f32") and ov["max_abs_diff"] < 1e-3
    return ["01_export_costs", "01_fusions"]


def bf16_refused(rows: pd.DataFrame) -> bool:
    """OpenVINO's rows on a CPU without bf16: it answers f32 to the bf16 hint, so the engine is
    recorded as skipped with that reason, never timed as bf16 (an EPYC Zen 3, for one)."""
    return len(rows) > 0 and (rows["status"] == "skipped").all() and rows["message"].str.contains("bf16").all()


def check_02_quantization(out):
    variants = pd.read_csv(out / "results" / "02_variants.csv").set_index("method")
    speed = pd.read_csv(out / "results" / "02_speed.csv")
    assert len(variants) == 16 and variants.loc["eager", "recall_at_10"] == 1.0
    built = variants[variants["status"].isin(["ok", "mismatch"])]
    assert built["cosine_min"].between(0, 1.0 + 1e-6).all() and built["recall_at_10"].between(0, 1).all()
    assert (built["peak_rss_mb"] > built["load_increment_mb"]).all() and (built["size_mb"] > 0).all()
    int8 = variants.loc["ort-int8-pc"]
    assert int8["status"] == "ok" and int8["size_mb"] < 0.5 * variants.loc["ort-fp32", "size_mb"]
    assert set(speed["method"]) == set(built.index) and set(speed["batch_size"]) == {1, 4}
    precision = {"ov": "fp32", "ov-bf16": "bf16", "ov-int8": "int8", "ov-int8-ac": "int8", "torch-bf16": "bf16"}
    if bf16_refused(variants.loc[["ov-bf16"]]):
        precision.pop("ov-bf16")
    assert (variants.loc[list(precision), "precision"] == pd.Series(precision)).all()
    nncf = ["ov-int8", "ov-int8-ac", "ov-int8-skip-ffn-down"]
    assert variants.loc[nncf, "message"].str.contains(r"MatMuls INT8 \(\d+ FakeQuantize nodes\); fp32:").all()
    kept = variants.loc[nncf, "excluded_nodes"]
    assert kept["ov-int8-skip-ffn-down"] >= kept["ov-int8"] + 2  # bert-tiny's two FFN down-projections
    assert variants.loc["ov", "max_abs_diff"] < 1e-3  # the hint is f32: no silent bf16
    assert variants.loc["torch-bf16", "size_mb"] < 0.6 * variants.loc["torch-bf16-autocast", "size_mb"]
    eager = speed[speed["method"] == "eager"]
    assert (eager["speedup"] == 1.0).all()
    assert (speed["speedup_ci_low"] <= speed["speedup"]).all() and (speed["speedup"] <= speed["speedup_ci_high"]).all()
    return ["02_pareto", "02_size", "02_per_channel"]


def check_03_cpu_sweeps(out):
    df = pd.read_csv(out / "results" / "03_cpu_sweep.csv")
    engines = {"eager", "torchscript", "compile", "torch-bf16", "torch-bf16-autocast", "torch-int8", "ort", "ort-int8"}
    engines |= {"ov", "ov-bf16"}
    assert set(df["engine"]) == engines and set(df["scope"]) == {"model", "end_to_end"}
    if bf16_refused(df[df["engine"] == "ov-bf16"]):
        df = df[df["engine"] != "ov-bf16"]
        engines -= {"ov-bf16"}
    ov = df[df["engine"].str.startswith("ov")].drop_duplicates("engine").set_index("engine")
    claimed = {"ov": "fp32", "ov-bf16": "bf16"}
    assert all(ov.loc[engine, "precision"] == claimed[engine] for engine in claimed if engine in engines)
    assert (ov["runtime"] == "openvino").all() and (ov["cold_ms"] > 0).all()
    assert ov["cold_start"].str.contains("new input shape").all()  # what the first call at a shape includes
    cells = json.loads((out / "runs" / "smoke" / "03_cpu_sweeps.ipynb").read_text())["cells"]
    printed = json.dumps([c.get("outputs", []) for c in cells])
    assert "At the same cells, model only, at the most threads: torch-bf16 is faster than autocast in" in printed
    assert (df["status"] == "ok").all(), df.loc[df["status"] != "ok", ["engine", "status", "message"]]
    per_config = df.groupby(["threads", "batch_size", "seq_len", "scope"])["engine"].nunique()
    assert (per_config == len(engines)).all() and set(df["threads"]) == {1, 2}
    assert set(df.loc[df["part"] == "heatmap", "scope"]) == {"model"}  # the grid is timed model-only
    assert (df.loc[df["part"] != "heatmap"].groupby(["threads", "batch_size", "seq_len"])["scope"].nunique() == 2).all()
    assert (df.loc[df["engine"] == "eager", "speedup"] == 1.0).all()
    model = df[df["scope"] == "model"]
    assert model["max_abs_diff"].notna().all() and (model["p50_ms"] > 0).all()
    assert (df["tokens_per_s"] > df["items_per_s"]).all() and (df["peak_rss_mb"] > df["load_mb"]).all()
    assert model["efficiency"].notna().any()  # 00's ceilings were used where thread counts match
    assert model["nominal_efficiency"].notna().any() and (model["above_ceiling"] == (model["efficiency"] > 1)).all()
    assert (
        (df["ci_half_width"] >= 0).all()  # above 1 too on a loaded machine: a CI beyond twice the median
        and (df["ci_capped"] == ((df["ci_half_width"] > 0.1) | (df["n"] < 5))).all()
    )
    return [
        "03_latency_vs_batch",
        "03_latency_vs_length",
        "03_speedup_heatmap",
        "03_throughput",
        "03_threads",
        "03_model_size",
        "03_efficiency",
        "03_memory",
    ]


def check_04_gpu_sweeps(out):
    df = pd.read_csv(out / "results" / "04_gpu_sweep.csv")
    fidelity = pd.read_csv(out / "results" / "04_fidelity.csv")
    engines = {"eager", "torch-fp16", "torchscript", "ort"}
    assert set(df["engine"]) == engines == set(fidelity["engine"]) and set(df["model"]) == {"bert-tiny"}
    if not torch.cuda.is_available():
        assert len(df) == 4 and (df["status"] == "skipped").all() and df["message"].str.contains("no CUDA device").all()
        assert (fidelity["status"] == "skipped").all()
        return ["04_gpu_sweep"]
    measured = df[df["status"] == "ok"]
    assert len(measured) == 4 * 2 * 2 and (measured["p50_ms"] > 0).all() and (measured["h2d_ms"] >= 0).all()
    assert measured["gpu"].str.contains("cuda:0").all()
    return ["04_per_item_vs_batch", "04_speedup_vs_batch", "04_speedup_heatmap_bert-tiny", "04_memory"]


def check_05_sequence_sorting(out):
    df = pd.read_csv(out / "results" / "05_sorting.csv")
    assert len(df) == 2 * 3 * 5 * 2  # datasets (the corpus, one scenario) x engines x strategies x batch sizes
    assert (df["status"] == "ok").all(), df.loc[df["status"] != "ok", ["strategy", "message"]]
    assert (df["n_texts"] == 40).all() and (df["p50_ms"] > 0).all() and (df["ideal_s"] > 0).all()
    waste = df.groupby(["distribution", "strategy", "batch_size"])["padding_waste"].first()
    for dist in ("docstrings", "short_queries"):  # the corpus and the scenario, named in `distribution`
        assert waste[dist, "fixed", 8] >= waste[dist, "unsorted", 8] >= waste[dist, "sorted", 8]
        assert waste[dist, "unsorted", 1] == 0.0
    assert (df.loc[df["strategy"] == "unsorted", "speedup"] == 1.0).all()
    lengths = pd.read_csv(out / "results" / "05_lengths.csv")
    assert lengths.groupby("distribution").size().to_dict() == {"docstrings": 40, "short_queries": 40}
    return ["05_lengths", "05_throughput_eager", "05_throughput_ort", "05_throughput_ov-int8", "05_padding_waste"]


def check_06_seq2seq(out):
    engines = {"torch", "torch-bf16-autocast", "ort", "ort-nopast", "ort-o3", "ort-int8", "ort-o3-int8"}
    files = pd.read_csv(out / "results" / "06_files.csv").set_index("variant")
    assert set(files.index) == {"onnx", "onnx-O3", "onnx-int8", "onnx-O3-int8"} and (files["status"] == "ok").all()
    assert (
        files.loc["onnx-O3", "node_count"] < files.loc["onnx", "node_count"] and files.loc["onnx-O3", "fused_ops"] > 0
    )
    assert files.loc["onnx-int8", "size_mb"] < 0.5 * files.loc["onnx", "size_mb"]
    assert not files.astype(str).apply(lambda c: c.str.contains(str(out))).any().any()  # no machine paths
    agreement = pd.read_csv(out / "results" / "06_agreement.csv").set_index("engine")
    assert set(agreement.index) == engines and (agreement["status"] == "ok").all(), agreement["message"]
    assert (agreement["generated_tokens"] == 4).all()
    assert (agreement.loc[["ort", "ort-nopast", "ort-o3"], "exact_match"] == 1.0).all()
    gen = pd.read_csv(out / "results" / "06_generation.csv")
    assert len(gen) == len(engines) * 2 * 2 and (gen["status"] == "ok").all()  # x batch sizes x {1, 4} tokens
    assert set(gen["new_tokens"]) == {1, 4} and (gen["p50_ms"] > 0).all()
    assert (gen.loc[gen["engine"] == "torch", "speedup"] == 1.0).all()
    longest = gen[gen["new_tokens"] == 4]
    assert longest["per_token_ms"].notna().all() and gen.loc[gen["new_tokens"] == 1, "per_token_ms"].isna().all()
    assert (longest["tokens_per_s"] == 4 * longest["items_per_s"]).all()
    memory = pd.read_csv(out / "results" / "06_memory.csv").set_index("engine")
    assert set(memory.index) == engines and (memory["status"] == "ok").all(), memory["message"]
    assert (memory["inference_mb"] >= 0).all() and (memory["peak_rss_mb"] > memory["load_mb"]).all()
    return ["06_per_token", "06_total_vs_new_tokens", "06_speedups", "06_memory"]


def check_07_pipeline(out):
    from helpers.pipeline import Pipeline

    df = pd.read_csv(out / "results" / "07_pipeline.csv")
    assert set(df["stage"]) == {
        "probe-variant",
        "probe-batching",
        "probe-peer",
        "corpus",
        "corpus-in-process",
        "memory",
    }
    shared = df[df["stage"] == "corpus-in-process"].set_index("candidate").loc["naive (in-process)"]
    assert shared["status"] == "ok" and shared["cosine_min"] > 0.9999  # the naive pipeline beside every runtime
    probes = df[df["stage"] == "probe-variant"].set_index("candidate")
    assert set(probes.index) == {"eager", "ort-o2", "ort-int8-pc", "ov-bf16"}  # a row per variant, whatever its fate
    assert probes.loc["ov-bf16", "precision"] == "bf16"
    assert (probes["status"].isin(["ok", "mismatch", "error", "skipped"])).all()
    assert (probes.loc[probes["status"] != "ok", "message"].str.len() > 0).all()
    corpus = df[df["stage"] == "corpus"].set_index("candidate")
    naive = corpus.loc["naive"]
    assert naive["status"] == "ok" and naive["speedup"] == 1.0 and naive["waterfall_step"] == "naive"
    assert naive["batch_size"] == 1 and naive["variant"] == "eager" and naive["n_texts"] == 24
    measured = corpus[corpus["status"].isin(["ok", "mismatch"])]
    assert (measured["cosine_min"] <= 1 + 1e-6).all()
    assert (measured["n"] == 1).all() and measured["ci_capped"].all()  # 1 pass (smoke): below the 5 a CI needs
    assert measured[["speedup_ci_low", "speedup_ci_high"]].isna().all().all()  # a single pass gives no CI
    printed = json.dumps(
        [c.get("outputs", []) for c in json.loads((out / "runs" / "smoke" / "07_pipeline.ipynb").read_text())["cells"]]
    )
    assert "no CI: a single timed pass" in printed and "95% CI nan" not in printed
    assert {"threads", "processes"} <= set(measured["layout"]) and measured["overlap"].any()
    memory = df[df["stage"] == "memory"].set_index("candidate")
    assert set(memory.index) == set(corpus.index) and (memory.loc[measured.index, "peak_rss_mb"] > 100).all()
    recommended = json.loads((out / "results" / "recommended_pipeline.json").read_text())
    assert recommended["info"]["floors"] == {"min_cosine": 0.99, "min_recall_at_10": 0.95}
    assert recommended["info"]["speedup_over_naive"]["speedup"] > 1 and " cores " in recommended["info"]["machine"]
    best = corpus.loc[recommended["info"]["candidate"]]
    candidates = measured[measured["peer"].fillna("") == ""]
    assert (
        best["status"] == "ok"
        and best["items_per_s"] == candidates.loc[candidates["status"] == "ok", "items_per_s"].max()
    )
    peer = corpus.loc["st-torch @32 (default)"]  # the smoke profile's peer, at its default batch size
    assert peer["peer"] == "st-torch" and peer["status"] == "ok" and peer["cosine_min"] > 0.9999
    best_peer = recommended["info"]["speedup_over_best_peer"]["peer"]  # st-torch at 32 or at its best probed batch
    assert best_peer.startswith("st-torch @") and corpus.loc[best_peer, "peer"] == "st-torch"
    assert (candidates.loc[candidates.index != "naive", "best_peer"] == best_peer).all()
    pipe = Pipeline.from_json(out / "results" / "recommended_pipeline.json")
    assert pipe.encode(["one text", "and another one"]).shape == (2, 128)
    pipe.close()
    cells = json.loads((out / "runs" / "smoke" / "07_pipeline.ipynb").read_text())["cells"]
    printed = json.dumps([c.get("outputs", []) for c in cells])
    assert "The fastest whole pipeline meeting min_cosine 0.99 and min_recall_at_10 0.95 is" in printed
    assert "the naive pipeline (eager fp32, one text at a time; no CI: a single timed pass" in printed
    assert "At the looser floor min_cosine 0.95, the fastest is" in printed
    assert (
        "**The limit** for" in printed and "The recommended pipeline reaches" in printed
    )  # 00 measured bert-tiny's width
    assert "at GEMM rate" in printed  # the waterfall's table ends at the limit
    assert f"The best peer at the floors is **{best_peer}** (sentence-transformers)" in printed
    times = pd.read_csv(out / "results" / "07_time.csv").set_index("candidate")
    assert set(times.index) == set(corpus.index)  # every whole-corpus pipeline: timed, or why not
    timed = times[times["status"] == "ok"]
    assert "naive" in timed.index and (times.loc[times["status"] != "ok", "message"].str.len() > 0).all()
    phases = timed[["lengths_ms", "tokenize_ms", "engine_ms", "pooling_ms", "other_ms"]].sum(axis=1)
    assert ((phases - timed["total_ms"]).abs() < 0.02 * timed["total_ms"] + 0.5).all()
    assert (timed["real_tokens"] <= timed["computed_tokens"]).all() and timed.loc["naive", "padding_share"] == 0
    assert (timed["efficiency"] > 0).all()  # 00_environment ran first: its ceilings are there
    assert (timed["shape_gflops"] > 0).all() and (timed["hidden"] == 128).all()  # and its GEMMs at bert-tiny's shapes
    assert "a peer:" in times.loc["st-torch @32 (default)", "message"]
    assert "x the naive pipeline means a corpus pass of" in printed and "Removing one cost after another" in printed
    return ["07_pareto", "07_waterfall", "07_time"]


def check_08_report(out):
    claims = pd.read_csv(out / "results" / "08_claims.csv")
    assert list(claims["id"]) == [f"C{i}" for i in range(1, 18)]
    assert claims["verdict"].isin(["holds", "does not hold", "cannot be tested here"]).all()
    assert claims["reason"].str.len().gt(0).all() and claims["ours"].notna().all()
    assert "no CUDA device" in claims.set_index("id").loc["C2", "reason"] or torch.cuda.is_available()
    recs = pd.read_csv(out / "results" / "08_recommendations.csv")
    assert len(recs) and (recs["speedup"] > 0).all() and set(recs["device"]) >= {"cpu"}
    exact = recs["fidelity_source"].str.startswith("fp32")  # bert-tiny has random weights: the rest is speed only
    assert (recs["speed_only"] | exact).all() and recs.loc[recs["speed_only"], "min_cosine"].isna().all()
    gallery = (out / "figures" / "gallery.md").read_text()
    index = json.loads((out / "figures" / "index.json").read_text())
    assert all(f"## {name}" in gallery for name in index if name not in ("08_summary", "08_machines"))
    assert "03_cpu_sweeps" in gallery
    # this run beside every committed reference, per machine
    references = [p.name for p in paths.references()]
    verdicts = pd.read_csv(out / "results" / "08_machines_verdicts.csv", index_col=0)
    assert list(verdicts.columns) == ["this run"] + [f"reference {r}" for r in references] and len(verdicts) == 17
    ceilings = pd.read_csv(out / "results" / "08_machines_ceilings.csv", index_col=0)
    assert set(ceilings.columns) == set(verdicts.columns) and (ceilings > 0).all().all()
    machines = pd.read_csv(out / "results" / "08_machines_recommendations.csv")
    assert {"this run"} <= set(machines["run"]) and machines["machine"].str.contains(r"cores .* #[0-9a-f]{8}").all()
    cells = json.loads((out / "runs" / "smoke" / "08_report.ipynb").read_text())["cells"]
    assert "speedup_over_naive" in json.dumps([c.get("outputs", []) for c in cells])  # 07's whole pipeline
    return ["08_summary", "08_machines"]


CHECKS = {
    "00_environment": check_00_environment,
    "01_export": check_01_export,
    "02_quantization": check_02_quantization,
    "03_cpu_sweeps": check_03_cpu_sweeps,
    "04_gpu_sweeps": check_04_gpu_sweeps,
    "05_sequence_sorting": check_05_sequence_sorting,
    "06_seq2seq": check_06_seq2seq,
    "07_pipeline": check_07_pipeline,
    "08_report": check_08_report,
}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    proc = subprocess.run(
        [sys.executable, "-m", "helpers.study", "run", "--profile", "smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return out, proc


def test_every_notebook_has_a_smoke_check():
    assert [nb.stem for nb in discover_notebooks()] == sorted(CHECKS)


def test_smoke_study_runs_clean(smoke_run):
    out, proc = smoke_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    executed = sorted(p.stem for p in (out / "runs" / "smoke").glob("*.ipynb"))
    assert executed == sorted(CHECKS)
    record = json.loads((out / "results" / "run.json").read_text())
    assert record["finished"] and set(record["notebooks"]) == set(CHECKS)
    assert all(nb["status"] == "ok" and nb["params"] for nb in record["notebooks"].values())


def test_one_run_in_every_table_and_samples_beside_the_timed_ones(smoke_run):
    from helpers.core.tables import SAMPLES, load_samples, read_one_run

    out, _ = smoke_run
    run_id = json.loads((out / "results" / "run.json").read_text())["run_id"]
    for table in (out / "results").glob("0[0-7]_*.csv"):
        assert set(read_one_run(table)["run_id"]) == {run_id}, table.name
    for name in ("02_speed", "03_cpu_sweep", "05_sorting", "06_generation"):
        df, samples = read_one_run(out / "results" / f"{name}.csv"), load_samples(name, out / "results")
        ok = df[df["status"].isin(["ok", "mismatch"]) & df["n"].notna()]
        assert len(samples) == len(ok), name
        assert sorted(samples[SAMPLES].map(len)) == sorted(ok["n"].astype(int)), name
    caption = json.loads((out / "figures" / "index.json").read_text())["03_throughput"]["caption"]
    assert f"run {run_id}" in caption and " cores · " in caption and "#" in caption


@pytest.mark.parametrize("notebook", sorted(CHECKS))
def test_notebook_outputs(smoke_run, notebook):
    out, _ = smoke_run
    figures = CHECKS[notebook](out)
    index = json.loads((out / "figures" / "index.json").read_text())
    for name in figures:
        for ext in ("png", "svg"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 1000
        assert index[name]["notebook"] == notebook and index[name]["host"]


def test_committed_notebooks_have_no_outputs():
    for nb in discover_notebooks():
        cells = json.loads(nb.read_text())["cells"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in cells if c["cell_type"] == "code"), nb
