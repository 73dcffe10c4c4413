"""Where a pipeline's time goes: phases gathered by the batching loop, the columns derived from
them, and the bounds the report computes from a known table."""

import math

import pandas as pd
import pytest
from transformers import BertConfig

from helpers.pipeline import Pipeline
from helpers.report.prose.takeaways import pipeline_takeaway
from helpers.report.recommend import gap
from helpers.studies.pipeline_time import phase_columns
from helpers.workloads.batching import new_phases, token_lengths_capped
from helpers.workloads.models import encoder_flops

TEXTS = ["short", "a somewhat longer text than the first one, with more words in it", "mid length text", "x y"]


def test_the_phases_of_one_pass_count_every_text_and_batch():
    pipe = Pipeline("bert-tiny", "eager", "sorted", 2, 64)
    phases = new_phases()
    out = pipe.encode(TEXTS, phases=phases)
    lengths, _ = token_lengths_capped(TEXTS, pipe._load().tokenizer, 64)
    assert out.shape[0] == len(TEXTS) and sorted(phases["lengths"]) == sorted(lengths.tolist())
    assert [rows for rows, _ in phases["shapes"]] == [2, 2]  # sorted: two batches of two
    assert sum(r * n for r, n in phases["shapes"]) >= sum(lengths)  # padded to each batch's longest
    assert phases["lengths_s"] > 0 and phases["tokenize_s"] > 0 and phases["engine_s"] > 0 and phases["pooling_s"] > 0
    arrival = new_phases()
    Pipeline("bert-tiny", "eager", "unsorted", 1, 64).encode(TEXTS, phases=arrival)
    assert arrival["lengths_s"] == 0 and sum(r * n for r, n in arrival["shapes"]) == sum(lengths)  # no padding
    with pytest.raises(ValueError, match="one process"):
        Pipeline("bert-tiny", "eager", "sorted", 2, 64, "processes", 2).encode(TEXTS, phases=new_phases())


def test_phase_columns_from_known_phases():
    config = BertConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16)
    phases = new_phases() | {"lengths_s": 0.001, "tokenize_s": 0.002, "engine_s": 0.004, "pooling_s": 0.001}
    phases |= {"shapes": [(2, 4)], "lengths": [2, 4]}
    row = phase_columns(phases | {"total_s": 0.010}, config, ceiling_gflops=1.0)
    assert row["other_ms"] == pytest.approx(2.0) and row["tokenization_share"] == pytest.approx(0.3)
    assert row["pooling_ms"] == pytest.approx(1.0) and row["tokens_per_call"] == 8
    assert (row["real_tokens"], row["computed_tokens"], row["padding_share"]) == (6, 8, 0.25)
    computed = encoder_flops(config, 2, 4) / 1e9
    assert row["real_gflop"] == pytest.approx((encoder_flops(config, 1, 2) + encoder_flops(config, 1, 4)) / 1e9)
    assert row["engine_gflops"] == pytest.approx(computed / 0.004) and row["efficiency"] == pytest.approx(
        computed / 0.004
    )
    assert math.isnan(phase_columns(phases | {"total_s": 0.01}, config, math.nan)["efficiency"])


def _times() -> pd.DataFrame:
    common = {"status": "ok", "strategy": "sorted", "batch_size": 32, "lengths_ms": 10.0, "other_ms": 10.0}
    naive = {"candidate": "naive", "variant": "eager", "precision": "fp32", "total_ms": 1000.0, "tokenize_ms": 20.0}
    naive |= {"engine_ms": 960.0, "real_gflop": 50.0, "computed_gflop": 50.0, "engine_gflops": 52.0}
    bf16 = {"candidate": "torch-bf16 sorted@32 threadsx2", "variant": "torch-bf16", "precision": "bf16"}
    bf16 |= {"total_ms": 200.0, "tokenize_ms": 20.0, "engine_ms": 160.0, "real_gflop": 50.0, "computed_gflop": 100.0}
    bf16 |= {"engine_gflops": 625.0, "efficiency": 0.625, "padding_share": 0.4}
    return pd.DataFrame([common | {"lengths_ms": 0.0, "strategy": "unsorted", "batch_size": 1} | naive, common | bf16])


def _recommended() -> pd.DataFrame:
    row = {"stage": "corpus", "candidate": "torch-bf16 sorted@32 threadsx2+overlap", "variant": "torch-bf16"}
    row |= {"strategy": "sorted", "batch_size": 32, "status": "ok", "items_per_s": 500.0}
    return pd.DataFrame([row])


def test_the_bounds_remove_one_cost_after_another():
    rates = {"fp32": 100.0, "bf16": 1000.0, "int8": 2000.0}
    steps = gap.gap_steps(_times(), _recommended(), rates).set_index("step")
    # measured 200 ms; no padding: 10 + 20 + 10 + 160/2; at 1000 GFLOP/s the 50 real GFLOP take 50 ms;
    # tokenization (30 ms) hidden behind 10 + 50; int8 at 2000: 25 ms, behind which 30 ms of tokenization
    assert list(steps["ms"]) == pytest.approx([1000, 200, 120, 90, 60, 35])
    assert steps.loc["measured", "speedup"] == pytest.approx(5.0) and steps["speedup"].is_monotonic_increasing
    assert "clears 10x" in gap.gap_takeaway(_times(), _recommended(), rates, 10)
    text = gap.gap_takeaway(_times(), _recommended(), rates, 40)
    assert "a corpus pass of 25 ms (naive: 1000 ms)" in text and "short of 40x" in text
    assert "62% of 00's measured bf16 GEMM rate of a large square GEMM" in text and "40% of the tokens" in text
    no_rates = gap.gap_steps(_times(), _recommended(), {})
    assert list(no_rates["step"]) == ["naive", "measured", "no padding", "tokenization hidden"]
    assert gap.gap_steps(_times().iloc[1:], _recommended(), rates).empty  # naive not timed


def test_the_recommended_pipeline_is_held_against_the_gemm_rate_at_its_own_shapes():
    times = _times()
    times.loc[1, ["pooling_ms", "other_ms", "shape_gflops", "tokens_per_call", "hidden"]] = [4.0, 6.0, 500.0, 1024, 384]
    recommended = _recommended().assign(
        candidate="torch-bf16 sorted@32 processesx2", layout="processes", threads=2, overlap=False, p50_ms=150.0
    )
    rates = {"fp32": 100.0, "bf16": 1000.0}
    steps = gap.gap_steps(times, recommended, rates).set_index("step")
    # the rest is pooling (4) + other (6): no padding 10 + 20 + 10 + 80 = 120; at 500 GFLOP/s 50 GFLOP take 100 ms
    assert steps.loc["no padding", "ms"] == pytest.approx(120) and steps.loc[
        "engine at ceiling", "ms"
    ] == pytest.approx(120)
    assert "at this model's shapes (M ≈ 1024 tokens a call, K = 384" in steps.loc["engine at ceiling", "what"]
    text = gap.gap_takeaway(times, recommended, rates, 10)
    assert "125% of 00's measured bf16 GEMM rate at this model's shapes" in text  # 625 of 500 GFLOP/s
    assert "mean pooling 2% and the rest (Python, copies, normalizing) 3%" in text
    assert "**torch-bf16 sorted@32 processesx2**, measured 150 ms a pass" in text and "its layout saves 50 ms" in text


def test_the_best_pipeline_at_the_looser_floor_is_named():
    naive = {"stage": "corpus", "candidate": "naive", "status": "ok", "cosine_min": 1.0, "recall_at_10": 1.0}
    naive |= {"items_per_s": 10.0, "speedup": 1.0, "speedup_ci_low": 0.9, "speedup_ci_high": 1.1}
    rows = [naive]
    for name, cos, speed in (("ort-o2 sorted@8", 1.0, 2.0), ("ort-int8-pc sorted@8", 0.97, 3.0)):
        rows.append(
            naive
            | {"candidate": name, "variant": name.split()[0], "precision": "x", "strategy": "sorted", "batch_size": 8}
            | {"layout": "threads", "threads": 2, "overlap": False, "n_texts": 40, "cosine_min": cos}
            | {"status": "ok" if cos >= 0.99 else "mismatch", "items_per_s": 10 * speed, "speedup": speed}
            | {"speedup_ci_low": speed - 0.1, "speedup_ci_high": speed + 0.1}
        )
    text = pipeline_takeaway(pd.DataFrame(rows), 0.99, 0.95, relaxed_min_cosine=0.95)
    assert (
        "is **ort-o2**" in text
        and "At the looser floor min_cosine 0.95, the fastest is **ort-int8-pc sorted@8**: 3.00x" in text
    )
    assert "the fastest is **ort-o2 sorted@8** (it meets the stricter floors too)" in pipeline_takeaway(
        pd.DataFrame(rows), 0.99, 0.95, 0.98
    )


def test_totals_come_from_the_interleaved_passes_and_the_phases_from_the_timed_one():
    df = pd.concat(
        [
            pd.DataFrame([{"stage": "corpus", "candidate": "naive", "status": "ok", "p50_ms": 800.0}]),
            _recommended().assign(candidate="torch-bf16 sorted@32 threadsx2", p50_ms=250.0),
        ]
    )
    steps = gap.gap_steps(_times(), df, {"bf16": 1000.0}).set_index("step")
    # naive 800 interleaved (1000 phase-timed); measured 250 (200): the rest takes up 250 - 190 = 60
    assert steps.loc["naive", "ms"] == 800 and steps.loc["measured", "ms"] == 250
    assert steps.loc["measured", "speedup"] == pytest.approx(3.2)
    assert steps.loc["no padding", "ms"] == pytest.approx(250 - 80)


def test_the_limit_is_the_engine_at_the_best_gemm_rate_on_real_tokens_plus_tokenization():
    times = _times().assign(hidden=384, threads=2)
    df = _recommended().assign(candidate="torch-bf16 sorted@32 threadsx2", n_texts=100, threads=2)
    df = pd.concat([df, pd.DataFrame([{"stage": "corpus", "candidate": "naive", "status": "ok", "items_per_s": 20.0}])])
    shape = {"status": "ok", "precision": "bf16", "hidden": 384, "threads": 2}
    layer = ((384, 384), (384, 1536), (1536, 384))  # a layer's three GEMMs (k, n)
    shapes = pd.DataFrame(
        [
            shape | {"m": m, "k": k, "n": n, "value": gflops}
            for m, gflops in ((512, 250.0), (2048, 500.0))
            for k, n in layer
        ]
    )
    limit = gap.pipeline_limit(times, df, shapes)
    # best at M = 2048: 500 GFLOP/s for each GEMM; 50 real GFLOP take 100 ms; tokenization 10 + 20 ms
    assert (limit.rate_gflops, limit.m, limit.engine_ms, limit.tokenization_ms) == pytest.approx((500, 2048, 100, 30))
    assert limit.texts_per_s == pytest.approx(100 / 0.130) and limit.engine_texts_per_s == pytest.approx(1000)
    shares = gap.with_limit_share(df, limit).set_index("candidate")["share_of_limit"]
    assert shares["torch-bf16 sorted@32 threadsx2"] == pytest.approx(500 / (100 / 0.130))
    assert "reaches 65% of it" in gap.limit_text(df, limit)
    assert gap.pipeline_limit(times, df, shapes.iloc[:0]) is None  # 00 did not measure this width
