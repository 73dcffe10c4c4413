"""Generation engines on a tiny T5 shape: forced token counts, agreement, rows and tables."""

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.backends import generation, registry
from helpers.core.tables import ResultTable
from helpers.report.prose import takeaways
from helpers.runner.checks import ParameterError, check_value
from helpers.studies import seq2seq as study
from helpers.workloads.corpora import load_corpus
from helpers.workloads.models import load_seq2seq


@pytest.fixture(scope="module")
def t5_tiny():
    """t5-tiny loaded, its ONNX files (and their records), every generation engine built, and the corpus."""
    loaded = load_seq2seq("t5-tiny")
    files, records = generation.produce_files(loaded, generation.needed_files(registry.names("generate")))
    built = generation.build_all(registry.names("generate"), files, 2, loaded.model)
    texts = load_corpus("docstrings").texts
    return loaded, files, records, built, texts


def test_every_file_variant_is_produced(t5_tiny):
    _, files, records, _, _ = t5_tiny
    assert set(records) == set(generation.FILE_VARIANTS)
    assert all(r.status == "ok" for r in records.values()), {v: r.message for v, r in records.items()}
    assert all((files[v] / g).is_file() for v in records for g in generation.GRAPHS)
    assert records["onnx-O2"].node_count < records["onnx"].node_count
    assert records["onnx-int8"].size_mb < 0.5 * records["onnx"].size_mb


def test_file_variants_come_from_the_build_cache_once_built(t5_tiny):
    """A rerun (or a new run) reuses every file set, with its build's time and statistics;
    another model builds its own."""
    loaded, files, records, _, _ = t5_tiny
    again_files, again = generation.produce_files(load_seq2seq("t5-tiny"), ["onnx", "onnx-O3", "onnx-O3-int8"])
    assert {v: r.cache for v, r in again.items()} == dict.fromkeys(again, "hit")
    assert again["onnx-O3"].seconds == records["onnx-O3"].seconds
    assert again["onnx-O3"].node_count == records["onnx-O3"].node_count
    assert again_files["onnx-O3-int8"] == files["onnx-O3-int8"]
    other = load_seq2seq("t5-tiny")
    with torch.no_grad():
        other.model.lm_head.weight.add_(1.0)
    other_files, other_records = generation.produce_files(other, ["onnx"])
    assert other_records["onnx"].cache == "miss" and other_files["onnx"] != files["onnx"]


@pytest.mark.parametrize("new_tokens", [1, 7])
def test_every_engine_generates_the_forced_number_of_tokens(t5_tiny, new_tokens):
    loaded, _, _, built, texts = t5_tiny
    batch = generation.batch_of(loaded, texts, 3, 20)
    for name, engine in built.items():
        assert not isinstance(engine, Exception), (name, engine)
        out = engine.generate(batch, new_tokens)
        assert tuple(out.shape) == (3, new_tokens), name


def test_forced_length_overrides_end_of_sequence(t5_tiny):
    """Even a model that wants to stop at once (EOS logit boosted) generates every token."""
    loaded, files, _, _, texts = t5_tiny
    model = generation.build_engine("torch", files, 1).model
    with torch.no_grad():
        model.lm_head.bias = None
        model.lm_head.weight[loaded.config.eos_token_id] *= 50
    engine = generation.GenerationEngine("torch", model)
    batch = generation.batch_of(loaded, texts, 2, 16)
    assert engine.generate(batch, 6).shape == (2, 6)
    free = model.generate(**batch, max_new_tokens=6, do_sample=False)
    assert free.shape[1] < 7  # without forcing it stops early: the test above is not vacuous


def test_ort_fp32_matches_torch_fp32_token_for_token(t5_tiny):
    loaded, _, _, built, texts = t5_tiny
    batch = generation.batch_of(loaded, texts, 4, 32)
    reference = built["torch"].generate(batch, 12)
    for name in ("ort", "ort-nopast", "ort-o1", "ort-o2", "ort-o3"):
        assert torch.equal(built[name].generate(batch, 12), reference), name


def test_agreement_rows_flag_a_perturbed_engine(t5_tiny):
    loaded, files, _, built, texts = t5_tiny
    batch = generation.batch_of(loaded, texts, 4, 16)
    broken = generation.build_engine("torch", files, 1)
    with torch.no_grad():
        for p in broken.model.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    engines = {
        "torch": built["torch"],
        "ort": built["ort"],
        "ort-int8": built["ort-int8"],
        "ort-o1": broken,
        "ort-o2": RuntimeError("file production failed"),
    }
    rows = {r["engine"]: r for r in study.agreement_rows(engines, batch, 5, loaded.config.decoder_start_token_id)}
    assert rows["torch"]["status"] == "ok", str(rows["torch"])
    assert rows["torch"]["first_step_max_abs_diff"] == 0.0
    assert rows["ort"]["status"] == "ok" and rows["ort"]["first_step_rel_diff"] < 1e-4
    assert rows["ort-int8"]["precision"] == "int8" and 0 < rows["ort-int8"]["first_step_rel_diff"] < 0.25
    assert rows["ort-o1"]["status"] == "mismatch"
    assert rows["ort-o2"]["status"] == "error" and "file production failed" in rows["ort-o2"]["message"]


def test_cell_rows_derive_first_token_and_per_token_times():
    from helpers.core.timing import Timing

    def timing(ms):
        return Timing(np.array(ms, dtype=float), cold_ms=ms[0])

    outcome = {
        ("torch", 1): timing([10, 10, 10]),
        ("torch", 5): timing([50, 50, 50]),
        ("ort", 1): timing([4, 4, 4]),
        ("ort", 5): timing([12, 12, 12]),
        ("ort-int8", 1): MemoryError("out of memory"),
        ("ort-int8", 5): MemoryError("out of memory"),
    }
    rows = {(r["engine"], r["new_tokens"]): r for r in study.cell_rows(outcome, {"ort": {"status": "ok"}}, 2, 16)}
    ort = rows[("ort", 5)]
    assert ort["ttft_ms"] == 4 and ort["per_token_ms"] == 2.0  # (12 - 4) / 4 further tokens
    assert ort["items_per_s"] == pytest.approx(2 / 0.012) and ort["tokens_per_s"] == pytest.approx(10 / 0.012)
    assert ort["speedup"] == pytest.approx(50 / 12) and rows[("torch", 5)]["speedup"] == 1.0
    assert np.isnan(rows[("ort", 1)]["per_token_ms"])
    assert rows[("ort-int8", 5)]["status"] == "oom"


def test_measure_grid_resumes_only_missing_cells(t5_tiny, tmp_path):
    loaded, _, _, built, texts = t5_tiny
    table = ResultTable(tmp_path / "g.csv", key=["model", "batch_size", "seq_len", "engine", "new_tokens"])
    engines = {"torch": built["torch"], "ort": built["ort"]}
    params = dict(batch_sizes=[1], input_lens=[16], new_tokens=[3], rounds=1, min_time_s=0.0, max_time_s=0.2)
    study.measure_grid(table, params, loaded, engines, texts, {}, 2)
    assert len(table.read()) == 4
    seen = []
    study.measure_grid(
        table,
        params | {"batch_sizes": [1, 2]},
        loaded,
        engines,
        texts,
        {},
        2,
        progress=lambda cells: seen.extend(cells) or cells,
    )
    assert seen == [(2, 16)] and len(table.read()) == 8


def test_seq2seq_takeaway_cites_the_claim_and_memory():
    gen = pd.DataFrame(
        [
            {
                "engine": e,
                "status": "ok",
                "batch_size": 1,
                "seq_len": 32,
                "new_tokens": 8,
                "p50_ms": ms,
                "speedup": s,
                "speedup_ci_low": s * 0.9,
                "speedup_ci_high": s * 1.1,
            }
            for e, ms, s in (("torch", 100, 1.0), ("ort", 50, 2.0), ("ort-nopast", 80, 1.25), ("ort-o3-int8", 25, 4.0))
        ]
    )
    memory = pd.DataFrame(
        [
            {"engine": "torch", "status": "ok", "inference_mb": 22.0},
            {"engine": "ort-o3-int8", "status": "ok", "inference_mb": 11.0},
        ]
    )
    agreement = pd.DataFrame(
        [{"engine": "ort", "status": "ok", "exact_match": 1.0, "reference_distinct_tokens": 9, "message": ""}]
    )
    text = takeaways.seq2seq_takeaway(gen, memory, agreement)
    assert "4.00× (95% CI 3.60–4.40)" in text and "2.0× less" in text
    assert "ort-o3-int8 (4.00×)" in text and "1.60–1.60×" in text
    assert takeaways.seq2seq_takeaway(pd.DataFrame(), pd.DataFrame(), pd.DataFrame()) == "Nothing was measured."


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("seq2seq_model", "bert-base", "accepted: a built-in shape (t5-tiny"),
        ("generation_engines", ["ort"], "must include 'torch'"),
        ("generation_engines", ["torch", "ort-fast"], "unknown value 'ort-fast'"),
        ("input_lens", [0], "impossible"),
        ("new_tokens", [], "empty"),
    ],
)
def test_bad_seq2seq_parameters_are_named(name, value, fragment):
    with pytest.raises(ParameterError, match=name) as info:
        check_value(name, value, {})
    assert fragment in str(info.value)


def test_files_rows_keep_their_columns():
    from helpers.backends.artifacts import Artifact

    row = Artifact("files", "onnx-O2", "work/onnx-O2", 1.5, 20.0, "ok", node_count=300, fused_ops=12).row()
    assert row == {
        "variant": "onnx-O2",
        "seconds": 1.5,
        "size_mb": 20.0,
        "status": "ok",
        "message": "",
        "node_count": 300,
        "fused_ops": 12,
    }
    assert list(row) == ["variant", "seconds", "size_mb", "status", "message", "node_count", "fused_ops"]
