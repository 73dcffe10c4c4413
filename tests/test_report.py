"""08_report's verdicts, recommendations, gallery and README findings, on known tables."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers.core import paths
from helpers.report import claims as report
from helpers.report import figures, recommend, reference


def sweep_rows(model="bert-base", n_params=110e6, threads=2, cells=None):
    """03-style rows: cells maps (engine, batch, seq_len) -> p50_ms; eager is the baseline."""
    rows = []
    for (engine, bs, n), ms in cells.items():
        base = cells[("eager", bs, n)]
        s = base / ms
        rows.append(
            {
                "model": model,
                "n_params": n_params,
                "engine": engine,
                "batch_size": bs,
                "seq_len": n,
                "threads": threads,
                "scope": "model",
                "status": "ok",
                "p50_ms": ms,
                "items_per_s": bs * 1e3 / ms,
                "speedup": s,
                "speedup_ci_low": s * 0.95,
                "speedup_ci_high": s * 1.05,
                "peak_rss_mb": 500.0,
                "cosine_min": 1.0,
                "message": "",
            }
        )
    return pd.DataFrame(rows)


def test_every_claim_gets_a_verdict_or_a_reason_on_empty_results():
    verdicts = report.evaluate_claims({name: None for name in report.TABLES})
    assert [v.id for v in verdicts] == [f"C{i}" for i in range(1, 16)]
    assert all(v.verdict == report.UNTESTABLE and v.reason for v in verdicts)
    assert "03_cpu_sweeps has not produced" in verdicts[0].reason and "04_gpu_sweeps has not run" in verdicts[1].reason


def test_length_claim_holds_only_when_the_advantage_grows():
    cells = {}
    for n, ort in ((16, 10.0), (128, 7.0), (512, 4.0)):
        cells[("eager", 8, n)], cells[("ort", 8, n)] = 20.0, ort
    verdict, ours, reason = report.c10({"03_cpu_sweep": sweep_rows(cells=cells)})
    assert verdict == report.HOLDS and "2.00×" in ours and "5.00×" in ours and "grows" in reason
    cells[("ort", 8, 512)] = 16.0
    verdict, _, reason = report.c10({"03_cpu_sweep": sweep_rows(cells=cells)})
    assert verdict == report.FAILS and "shrinks" in reason


def test_seq2seq_claim_uses_the_roughly_rule():
    gen = pd.DataFrame(
        [
            {
                "engine": "ort-o3-int8",
                "status": "ok",
                "p50_ms": 100.0,
                "batch_size": 1,
                "seq_len": 32,
                "new_tokens": 32,
                "speedup": s,
                "speedup_ci_low": s * 0.9,
                "speedup_ci_high": s * 1.1,
            }
            for s in (3.0,)
        ]
    )
    mem = pd.DataFrame(
        [
            {"engine": "torch", "status": "ok", "inference_mb": 44.0, "batch_size": 4, "seq_len": 64},
            {"engine": "ort-o3-int8", "status": "ok", "inference_mb": 10.0, "batch_size": 4, "seq_len": 64},
        ]
    )
    verdict, ours, _ = report.c6({"06_generation": gen, "06_memory": mem})
    assert verdict == report.FAILS and "3.00×" in ours and "4.40× less" in ours  # 5 / 3 > 1.5: not roughly 5×
    gen["speedup"] = 4.0
    mem.loc[0, "inference_mb"] = 25.0
    assert report.c6({"06_generation": gen, "06_memory": mem})[0] == report.HOLDS
    mem.loc[1, "inference_mb"] = 50.0
    verdict, ours, _ = report.c6({"06_generation": gen, "06_memory": mem})
    assert verdict == report.FAILS and "2.00× more" in ours and "batch 4 × 64" in ours


def test_gpu_int8_claim_is_never_silently_tested():
    with pytest.raises(report.Untestable, match="TensorRT"):
        report.c4({"04_gpu_sweep": None})


def test_sorting_claim_reads_batch_16_and_64():
    rows = []
    for strategy, t16, t64 in (("unsorted", 1.0, 1.2), ("sorted", 1.0, 0.9)):
        for bs, t in ((16, t16), (64, t64)):
            rows.append(
                {
                    "distribution": "docstrings",
                    "engine": "eager",
                    "strategy": strategy,
                    "batch_size": bs,
                    "p50_ms": t * 1000,
                    "n_texts": 1000,
                    "status": "ok",
                }
            )
    verdict, ours, _ = report.c14({"05_sorting": pd.DataFrame(rows)})
    assert verdict == report.HOLDS and "unsorted +20%, sorted -10%" in ours


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
    variants = pd.DataFrame([{"model": "minilm", "method": "ort-int8-pc", "cosine_min": 0.97, "status": "ok"}])
    t = {"03_cpu_sweep": sweep_rows(cells=cells), "02_variants": variants}
    recs = recommend.recommendations(t, min_cosine=0.95).set_index("batch")
    assert recs.loc["1", "engine"] == "ort-int8" and recs.loc["1", "speedup"] == pytest.approx(4.0)
    assert recs.loc["1", "runner_up"] == "ort" and recs.loc["2–16", "length"] == "65–256"
    strict = recommend.recommendations(t, min_cosine=0.98).set_index("batch")
    assert strict.loc["1", "engine"] == "ort" and strict.loc["1", "runner_up"] == "torchscript"
    no_02 = recommend.recommendations({"03_cpu_sweep": t["03_cpu_sweep"]}, 0.95)
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
    text = figures.gallery(tmp_path)
    assert text.index("## 00_b") < text.index("## 03_a")
    assert "![A chart](03_a.png)" in text and 'models=["bert-base"]' in text and "host: gpu-box" in text


def test_machines_are_drawn_side_by_side():
    import matplotlib

    matplotlib.use("Agg")
    from helpers.report import charts

    cells = {("eager", 1, 128): 10.0, ("ort", 1, 128): 5.0}
    per_host = {
        "laptop": sweep_rows(cells=cells),
        "server": sweep_rows(cells={**cells, ("ort", 1, 128): 2.0}),
        "empty": None,
    }
    fig = charts.hosts_side_by_side(per_host)
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
    points = recommend.summary_points(
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


def tiny_tables():
    """Only bert-tiny, at 1 thread, batch 1 and 8 × 128 tokens: most claims cannot be tested."""
    cells = {(e, bs, 128): ms * bs for bs in (1, 8) for e, ms in (("eager", 10.0), ("torchscript", 9.0), ("ort", 5.0))}
    return {"03_cpu_sweep": sweep_rows(model="bert-tiny", n_params=4.4e6, threads=1, cells=cells)}


def test_partial_tables_give_a_verdict_or_a_reason_for_every_claim():
    t = tiny_tables()
    verdicts = {v.id: v for v in report.evaluate_claims(t)}
    assert len(verdicts) == 15 and verdicts["C1"].verdict == report.HOLDS
    assert "one length only" in verdicts["C10"].reason and "no batch 32–64" in verdicts["C9"].reason
    cpu = t["03_cpu_sweep"]
    lacking = {
        "03_cpu_sweep": cpu.drop(columns=["speedup", "speedup_ci_low", "speedup_ci_high"]),
        "05_sorting": pd.DataFrame([{"engine": "eager", "batch_size": 16, "p50_ms": 5.0, "status": "ok"}]),
        "06_generation": pd.DataFrame([{"engine": "ort-o3-int8", "status": "error", "message": "boom"}]),
        "02_variants": pd.DataFrame([{"model": "bert-tiny", "method": "ort-int8-pc", "status": "ok"}]),
    }
    verdicts = {v.id: v for v in report.evaluate_claims(lacking)}
    assert verdicts["C1"].verdict == report.HOLDS  # it needs no speed-up column
    assert verdicts["C9"].reason == "03_cpu_sweep.csv has no speedup column in these results"
    assert verdicts["C14"].reason == "05_sorting.csv has no distribution, strategy, n_texts columns in these results"
    assert "no trusted measurement" in verdicts["C6"].reason and "no cosine_min" in verdicts["C15"].reason
    failed = {"03_cpu_sweep": cpu.assign(status="error", p50_ms=np.nan)}
    assert all(v.verdict == report.UNTESTABLE for v in report.evaluate_claims(failed))


@pytest.mark.parametrize("exc", [ZeroDivisionError("division by zero"), KeyError("speedup"), IndexError("oops")])
def test_a_claim_that_raises_fails_the_report(monkeypatch, exc):
    def broken(t):
        raise exc

    claim, theirs, figure, _ = report.CLAIMS["C5"]
    monkeypatch.setitem(report.CLAIMS, "C5", (claim, theirs, figure, broken))
    with pytest.raises(type(exc)):
        report.evaluate_claims(tiny_tables())


def test_claims_on_slices_of_the_reference_results():
    """03 with each model or engine alone, 03 and 06 each without any one column the claims
    read: every claim still gets a verdict or a reason (nothing raises)."""
    t = report.load_tables(paths.REFERENCE / reference.readme_reference() / "results")
    cpu, gen = t["03_cpu_sweep"], t["06_generation"]
    read = (
        "model",
        "engine",
        "threads",
        "batch_size",
        "seq_len",
        "scope",
        "n_params",
        "status",
        "p50_ms",
        "items_per_s",
        "speedup",
        "speedup_ci_low",
        "speedup_ci_high",
        "new_tokens",
    )
    cases = [{"03_cpu_sweep": cpu[cpu[k] == v]} for k in ("model", "engine") for v in cpu[k].unique()]
    cases += [{"03_cpu_sweep": cpu.drop(columns=c)} for c in read if c in cpu]
    cases += [{"06_generation": gen.drop(columns=c), "06_memory": t["06_memory"]} for c in read if c in gen]
    for case in cases:
        assert len(report.evaluate_claims(case)) == 15
