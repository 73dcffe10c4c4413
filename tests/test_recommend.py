"""08_report's verdicts, recommendations, gallery and README findings, on known tables."""

import json

import numpy as np
import pandas as pd
import pytest
from test_claims import sweep_rows

from helpers.core.policy import Policy
from helpers.report.charts import style
from helpers.report.recommend import machines, workload


def test_recommendation_skips_engines_below_the_fidelity_bar():
    cells = {}
    for bs in (1, 8):
        cells.update(
            {
                ("eager", bs, 128): 100.0,
                ("ort", bs, 128): 50.0,
                ("ort-int8", bs, 128): 25.0,
                ("torchscript", bs, 128): 80.0,
            }
        )
    variants = pd.DataFrame(
        [{"model": "minilm", "method": "ort-int8-pc", "cosine_min": 0.97, "recall_at_10": 0.96, "status": "ok"}]
    )
    t = {"03_cpu_sweep": sweep_rows(model="minilm", cells=cells), "02_variants": variants}
    recs = workload.recommendations(t, Policy(min_cosine=0.95)).set_index("batch")
    assert recs.loc["1", "engine"] == "ort-int8" and recs.loc["1", "speedup"] == pytest.approx(4.0)
    assert recs.loc["1", "runner_up"] == "ort" and recs.loc["2–16", "length"] == "65–256"
    assert recs.loc["1", "recall_at_10"] == pytest.approx(0.96) and not recs.loc["1", "speed_only"]
    strict = workload.recommendations(t, Policy(min_cosine=0.98)).set_index("batch")
    assert strict.loc["1", "engine"] == "ort" and strict.loc["1", "runner_up"] == "torchscript"
    recall = workload.recommendations(t, Policy(min_cosine=0.95, min_recall_at_10=0.97)).set_index("batch")
    assert recall.loc["1", "engine"] == "ort"  # the cosine passes, the recall floor does not
    no_02 = workload.recommendations({"03_cpu_sweep": t["03_cpu_sweep"]}, Policy(min_cosine=0.95))
    assert set(no_02["engine"]) == {"ort"}  # INT8 fidelity on real text unknown: not recommended


def test_gallery_lists_every_figure_with_its_provenance(tmp_path):
    index = {
        "03_a": {
            "name": "03_a",
            "title": "A chart",
            "png": "03_a.png",
            "caption": "vm · 2 threads",
            "notebook": "03_cpu_sweeps",
            "profile": "full",
            "run_id": "r1",
            "host": "vm",
            "params": {"models": ["bert-base"]},
        },
        "00_b": {"name": "00_b", "png": "00_b.png", "notebook": "00_environment", "host": "gpu-box", "params": {}},
    }
    (tmp_path / "index.json").write_text(json.dumps(index))
    text = style.gallery(tmp_path)
    assert text.index("## 00_b") < text.index("## 03_a")
    assert "![A chart](03_a.png)" in text and 'models=["bert-base"]' in text and "host: gpu-box" in text


def test_machines_are_drawn_side_by_side():
    import matplotlib

    matplotlib.use("Agg")
    from helpers.report.charts import report

    cells = {("eager", 1, 128): 10.0, ("ort", 1, 128): 5.0}
    per_host = {
        "laptop": sweep_rows(cells=cells),
        "server": sweep_rows(cells={**cells, ("ort", 1, 128): 2.0}),
        "empty": None,
    }
    fig = report.hosts_side_by_side(per_host)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["laptop: bert-base, 2 threads", "server: bert-base, 2 threads"]
    widths = [[p.get_width() for p in ax.patches] for ax in fig.axes[:2]]
    assert sorted(widths[0]) == pytest.approx([1.0, 2.0]) and sorted(widths[1]) == pytest.approx([1.0, 5.0])


def test_summary_points_span_the_notebooks():
    variants = pd.DataFrame(
        [{"model": "minilm", "method": "ort-int8-pc", "cosine_min": 0.98, "status": "ok", "peak_rss_mb": 300.0}]
    )
    speed = pd.DataFrame([{"model": "minilm", "method": "ort-int8-pc", "speedup": s} for s in (2.0, 3.0, 4.0)])
    gen = pd.DataFrame([{"engine": "ort", "status": "ok", "p50_ms": 10.0, "speedup": 1.8}])
    agreement = pd.DataFrame([{"engine": "ort", "status": "ok", "token_agreement": 1.0}])
    memory = pd.DataFrame([{"engine": "ort", "inference_mb": 60.0}])
    points = workload.summary_points(
        {
            "02_variants": variants,
            "02_speed": speed,
            "06_generation": gen,
            "06_agreement": agreement,
            "06_memory": memory,
        }
    ).set_index("notebook")
    assert points.loc["02 quantization", "speedup"] == 3.0 and points.loc["02 quantization", "fidelity"] == 0.98
    assert points.loc["06 seq2seq", "memory_mb"] == 60.0 and points.loc["06 seq2seq", "fidelity"] == 1.0


def test_summary_notes_the_tables_and_writes_the_machine_tables(tmp_path, monkeypatch):
    from helpers.report import summary

    monkeypatch.setenv("WORKBOOK_OUT", str(tmp_path))
    note = summary.tables_note(tmp_path / "nothing", {"03_cpu_sweep": pd.DataFrame(), "04_gpu_sweep": None})
    assert note == "This run: an unrecorded run. Tables found: 03_cpu_sweep; missing: 04_gpu_sweep."
    assert "No sweep results" in summary.recommendations_view(pd.DataFrame()).data
    summary.write_tables({"verdicts": pd.DataFrame({"this run": ["holds"]}, index=["C1"])}, "07_machines")
    written = pd.read_csv(tmp_path / "results" / "07_machines_verdicts.csv", index_col=0)
    assert written.loc["C1", "this run"] == "holds"


def test_a_run_is_not_compared_with_the_reference_it_was_published_as(tmp_path):
    for folder, run_id in (
        ("results", "run-a"),
        ("reference/same/results", "run-a"),
        ("reference/other/results", "run-b"),
    ):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "environment.json").write_text(json.dumps({"run_id": run_id}))
    runs = machines.runs_to_compare(tmp_path / "results", tmp_path / "reference")
    assert list(runs) == ["this run", "reference other"]


def _int8_case(recipe: str | None, variants: list[tuple[str, str, float, str]], model: str = "minilm") -> dict:
    """03 rows of `model` where ort-int8 (4× eager) ran `recipe` (None: a table written before 03
    recorded it), and 02_variants rows (model, method, cosine_min, status)."""
    cells = {(e, bs, 128): ms for bs in (1, 8) for e, ms in (("eager", 100.0), ("ort", 50.0), ("ort-int8", 25.0))}
    sweep = sweep_rows(model=model, cells=cells)
    if recipe is not None:
        sweep["recipe"] = sweep["engine"].map({"ort-int8": recipe}).fillna("")
    v = pd.DataFrame(variants, columns=["model", "method", "cosine_min", "status"])
    return {"03_cpu_sweep": sweep, "02_variants": v}


LOOSE = Policy(min_cosine=0.95, min_recall_at_10=0.0)
MINILM_INT8 = [("minilm", "ort-int8-pt", 0.912, "mismatch"), ("minilm", "ort-int8-pc", 0.982, "ok")]


def test_a_recommendations_fidelity_source_is_the_recipe_that_was_timed():
    timed_pt = workload.recommendations(_int8_case("ort-int8-pt", MINILM_INT8), LOOSE)
    assert "ort-int8" not in set(timed_pt["engine"])  # -pt was timed, and -pt fails on real weights
    timed_pc = workload.recommendations(_int8_case("ort-int8-pc", MINILM_INT8), LOOSE).set_index("batch")
    assert timed_pc.loc["1", "engine"] == "ort-int8" and timed_pc.loc["1", "recipe"] == "ort-int8-pc"
    assert timed_pc.loc["1", "min_cosine"] == pytest.approx(0.982)
    assert "ort-int8-pc on minilm (real weights)" in timed_pc.loc["1", "fidelity_source"]


def test_a_random_weight_shape_gets_speed_only_and_never_a_borrowed_fidelity():
    t = _int8_case("ort-int8-pc", [*MINILM_INT8, ("bert-base", "ort-int8-pc", 0.9997, "ok")], model="bert-base")
    fid = workload.recipe_fidelity(t, "ort-int8-pc", "bert-base")
    assert fid.speed_only and not fid.real_weights and fid.cosine is None and not fid.passes(Policy(min_cosine=0.5))
    assert "check ort-int8-pc with 07 on your model" in fid.source and "minilm" not in fid.source
    recs = workload.recommendations(t).set_index("batch")
    assert recs.loc["1", "engine"] == "ort-int8" and recs.loc["1", "speed_only"]  # the fastest, on speed only
    assert np.isnan(recs.loc["1", "min_cosine"]) and recs.loc["1", "fidelity_source"].startswith("speed only")


def test_rows_without_a_recorded_recipe_are_judged_on_the_method_03_then_chose():
    # before 03 recorded its recipe it timed the fastest method within tolerance on any model
    variants = [*MINILM_INT8, ("bert-base", "ort-int8-pt", 0.9995, "ok"), ("bert-base", "ort-int8-pc", 0.9997, "ok")]
    t = _int8_case(None, variants)
    t["02_speed"] = pd.DataFrame(
        {"model": "bert-base", "method": ["ort-int8-pt", "ort-int8-pc"], "speedup": [4.0, 3.0]}
    )
    engine, fid = workload.engine_fidelity(t, "cpu", "minilm", "ort-int8", t["03_cpu_sweep"])
    assert engine == "ort-int8-pt" and fid.cosine == pytest.approx(0.912)
    assert "ort-int8" not in set(workload.recommendations(t, LOOSE)["engine"])


def test_runs_are_compared_on_a_model_every_run_measured():
    from helpers.report import summary

    big = sweep_rows(model="bert-large", n_params=335e6, cells={("eager", 1, 128): 10.0, ("ort", 1, 128): 5.0})
    base = sweep_rows(cells={("eager", 1, 128): 10.0, ("ort", 1, 128): 8.0})
    assert summary.common_models({"here": pd.concat([big, base]), "there": base}, 1, 128) == ["bert-base"]
    assert summary.common_models({"here": big, "there": base}, 1, 128) == []
    assert summary.common_models({"here": big, "there": None}, 1, 128) == []


def test_random_weight_fidelity_is_labelled_in_the_summary_points():
    v = pd.DataFrame(
        [
            {"model": "minilm", "method": "ort-int8-pc", "cosine_min": 0.98, "status": "ok"},
            {"model": "bert-base", "method": "ort-int8-pc", "cosine_min": 0.9997, "status": "ok"},
        ]
    )
    s = pd.DataFrame({"model": ["minilm", "bert-base"], "method": "ort-int8-pc", "speedup": [2.0, 3.0]})
    labels = set(workload.summary_points({"02_variants": v, "02_speed": s})["label"])
    assert labels == {"ort-int8-pc (minilm)", "ort-int8-pc (bert-base, random weights)"}


def test_a_class_with_no_trusted_cell_is_listed_as_not_measured_with_the_reason():
    skipped = "3092 GFLOP per call is above max_gflop=1500 (the time budget)"
    rows = [
        {
            "batch_size": b,
            "seq_len": n,
            "engine": e,
            "status": "ok",
            "p50_ms": 1.0,
            "speedup": 1.0 if e == "eager" else 2.0,
        }
        for b, n in ((1, 128), (32, 128))
        for e in ("eager", "ort")
    ]
    rows += [
        {"batch_size": 32, "seq_len": 512, "engine": e, "status": "skipped", "message": skipped}
        for e in ("eager", "ort")
    ]
    df = pd.DataFrame(rows).assign(
        model="bert-base",
        threads=2,
        scope="model",
        n_params=110e6,
        speedup_ci_low=0.9,
        speedup_ci_high=2.2,
        peak_rss_mb=1.0,
    )
    recs = workload.recommendations({"03_cpu_sweep": df}).set_index(["batch", "length"])
    assert recs.loc[("1", "65–256"), "engine"] == "ort" and recs.loc[("≥ 17", "65–256"), "engine"] == "ort"
    missing = recs.loc[("≥ 17", "> 256")]
    assert missing["engine"] == workload.NOT_MEASURED and np.isnan(missing["speedup"]) and missing["cells"] == 0
    assert missing["fidelity_source"] == "every cell skipped: 3092 GFLOP per call is above max_gflop=1500"


def test_the_headline_and_07_agree_on_07s_model_under_one_policy():
    from helpers.core import paths
    from helpers.report.claims.registry import load_tables

    folder = paths.REFERENCE / "epyc-zen4-2c-full" / "results"
    t = load_tables(folder)
    assert machines.policy_of(folder) == Policy()  # the README's floors are 07's
    sweep = t["03_cpu_sweep"]
    # 03 timed 07's model (minilm) at bert-small's cells: the headline now speaks of minilm too
    t["03_cpu_sweep"] = pd.concat([sweep, sweep[sweep["model"] == "bert-small"].assign(model="minilm")])
    recs = workload.recommendations(t)
    minilm = recs[recs["model"] == "minilm"]
    assert len(minilm) and not minilm["speed_only"].any()
    assert "ov-int8" not in set(minilm["engine"])  # 07 measured ov-int8 on minilm at recall@10 0.94 < 0.95
    assert workload.disagreements(t) == []
    # a table that judged ov-int8 by a looser rule than 07's would tell the reader two things
    loose = Policy(min_cosine=0.95, min_recall_at_10=0.9)
    assert "ov-int8" in set(workload.recommendations(t, loose).query("model == 'minilm'")["engine"])
    assert any("ov-int8" in d and "below the floors" in d for d in workload.disagreements(t, loose))
