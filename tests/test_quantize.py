"""Quantized / fp16 ONNX variants: each method writes a file that runs in onnxruntime on
real text, INT8 files are smaller than fp32, and on the real MiniLM the variants stay
close to fp32 (numbers in docs/stack.md: per-channel ~0.99 min cosine, per-tensor ~0.95)."""

import warnings

import numpy as np
import pytest
import torch

from helpers.backends import export, quantize
from helpers.backends.onnxrt import cpu_session, session_options
from helpers.core import fidelity
from helpers.workloads.corpora import load_corpus
from helpers.workloads.models import load_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

N_TEXTS = 100  # texts of the fidelity check on MiniLM


def export_onnx(lm, path):
    """fp32 ONNX of a loaded model with the legacy exporter, dynamic batch and sequence:
    the same kind of file helpers.backends.export produces, made here so the tests stand alone."""
    enc = lm.tokenizer(["a small example", "another one"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "sequence"} for name in [*lm.input_names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            lm.model,
            tuple(enc[n] for n in lm.input_names),
            str(path),
            input_names=lm.input_names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    return path


def session(path):
    return cpu_session(path, session_options(2, inter_threads=None, log_severity=None))


def ort_runner(path):
    s = session(path)
    return lambda batch: s.run(["last_hidden_state"], {k: v.numpy() for k, v in batch.items()})[0]


@pytest.fixture(scope="module")
def all_texts():
    """Every text of the docstring corpus."""
    return load_corpus().texts


def build_all(lm, fp32, out, calibration_texts, calibration_size):
    """Every method of helpers.backends.quantize on one fp32 file, by label."""
    records = [
        quantize.ort_dynamic_optimum(fp32, out / "optimum", per_channel=False),
        quantize.ort_dynamic_optimum(fp32, out / "optimum", per_channel=True),
        quantize.ort_dynamic(fp32, out / "dynamic_pt.onnx", per_channel=False),
        quantize.ort_dynamic(fp32, out / "dynamic_pc.onnx", per_channel=True),
        quantize.ort_static(
            fp32,
            out / "static_pc.onnx",
            calibration_texts,
            lm.tokenizer,
            lm.input_names,
            calibration_size=calibration_size,
            per_channel=True,
            seq_len=64,
        ),
        quantize.fp16(fp32, out / "fp16.onnx"),
    ]
    return {r.label: r for r in records}


# ---------------------------------------------------------------- CPU decision


@pytest.mark.parametrize(
    "cpu, expected",
    [
        ({"architecture": "aarch64", "flags": {"avx512_vnni": None}}, "arm64"),
        ({"architecture": "arm64", "flags": {}}, "arm64"),
        ({"architecture": "x86_64", "flags": {"avx2": True, "avx512_vnni": True}}, "avx512_vnni"),
        ({"architecture": "AMD64", "flags": {"avx2": True, "avx512_vnni": False}}, "avx2"),
        ({"architecture": "x86_64", "flags": {"avx2": None, "avx512_vnni": None}}, "avx2"),
    ],
)
def test_default_quant_config_name(cpu, expected):
    assert quantize.default_quant_config_name(cpu) == expected


def test_default_quant_config_name_of_this_machine():
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    name = quantize.default_quant_config_name()
    assert name in ("avx512_vnni", "avx2", "arm64")
    assert callable(getattr(AutoQuantizationConfig, name))


# ---------------------------------------------------------------- tiny random BERT


@pytest.fixture(scope="module")
def tiny_variants(tmp_path_factory, all_texts):
    lm = load_model("bert-tiny")
    out = tmp_path_factory.mktemp("tiny")
    fp32 = export_onnx(lm, out / "model.onnx")
    return lm, fp32, build_all(lm, fp32, out, all_texts, calibration_size=16)


def test_every_method_writes_a_file_that_runs_on_real_text(tiny_variants, all_texts):
    lm, fp32, records = tiny_variants
    assert set(records) == {
        "optimum_dynamic per-tensor",
        "optimum_dynamic per-channel",
        "ort_dynamic per-tensor",
        "ort_dynamic per-channel",
        "ort_static per-channel",
        "fp16",
    }
    batch = lm.tokenizer(all_texts[:8], padding=True, truncation=True, max_length=128, return_tensors="np")
    feed = {n: batch[n] for n in lm.input_names}
    reference = session(fp32).run(["last_hidden_state"], feed)[0]
    fp32_mb = export.size_mb(fp32)
    for label, record in records.items():
        assert record.status == "ok", (label, record.message)
        assert record.seconds > 0 and record.path.endswith(".onnx")
        out = session(record.path).run(["last_hidden_state"], feed)[0]
        assert out.shape == reference.shape and out.dtype == np.float32, label
        assert np.isfinite(out).all(), label
        if record.details["weight_type"].endswith("Int8"):
            assert record.size_mb < 0.5 * fp32_mb, label  # embeddings are quantized too
        else:
            assert record.size_mb < 0.6 * fp32_mb, label


def test_records_describe_the_method(tiny_variants):
    _, _, records = tiny_variants
    optimum = records["optimum_dynamic per-channel"]
    assert optimum.details["config"] == quantize.default_quant_config_name()
    assert optimum.details["per_channel"] is True and optimum.details["quant_format"] == "QOperator"
    assert records["ort_dynamic per-tensor"].details["per_channel"] is False
    assert records["ort_dynamic per-tensor"].details["reduce_range"] is False
    static = records["ort_static per-channel"]
    assert static.details["calibration_size"] == 16 and static.details["calibration_seq_len"] == 64
    assert static.details["quant_format"] == "QDQ" and static.details["excluded_nodes"] == 2  # bert-tiny: 2 layers
    assert "fp32" in records["fp16"].message  # what ORT's CPU provider does with fp16 is said
    row = records["fp16"].row()
    assert row["label"] == "fp16" and row["status"] == "ok"


def test_down_projections_found_by_shape(tiny_variants):
    _, fp32, _ = tiny_variants
    names = quantize.down_projection_matmuls(fp32)
    assert len(names) == 2 and all("output/dense" in n for n in names)


def test_calibration_subset_spreads_over_the_corpus(all_texts):
    subset = quantize.calibration_subset(all_texts, 10)
    assert len(subset) == 10 and subset[0] == all_texts[0] and subset[-1] == all_texts[-1]
    assert quantize.calibration_subset(all_texts[:3], 10) == all_texts[:3]


def test_calibration_reader_batches_real_text(all_texts):
    lm = load_model("bert-tiny")
    reader = quantize.TextCalibrationReader(all_texts[:10], lm.tokenizer, lm.input_names, 32, 4)
    first = reader.get_next()
    assert set(first) == set(lm.input_names) and first["input_ids"].shape == (4, 32)
    assert first["input_ids"].dtype == np.int64
    assert reader.get_next()["input_ids"].shape == (4, 32)
    assert reader.get_next()["input_ids"].shape == (2, 32)
    assert reader.get_next() is None
    reader.rewind()
    assert reader.get_next() is not None


def test_failures_are_recorded_not_raised(tmp_path, all_texts):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    lm = load_model("bert-tiny")
    records = [
        quantize.ort_dynamic(broken, tmp_path / "a.onnx", per_channel=True),
        quantize.ort_dynamic_optimum(broken, tmp_path / "b", per_channel=True),
        quantize.ort_static(broken, tmp_path / "c.onnx", all_texts, lm.tokenizer, lm.input_names, 4),
        quantize.fp16(broken, tmp_path / "d.onnx"),
    ]
    for record in records:
        assert record.status == "error" and record.message and record.path is None


# ---------------------------------------------------------------- real MiniLM


@pytest.fixture(scope="module")
def minilm_variants(tmp_path_factory, all_texts):
    lm = load_model("minilm")
    out = tmp_path_factory.mktemp("minilm")
    fp32 = export_onnx(lm, out / "model.onnx")
    # calibrate on even-numbered all_texts, measure on odd-numbered ones: disjoint sets
    records = build_all(lm, fp32, out, all_texts[::2], calibration_size=64)
    sample = quantize.calibration_subset(all_texts[1::2], N_TEXTS)

    def embed(path):
        return fidelity.embed_texts(ort_runner(path), sample, lm.tokenizer, 16, 256, lm.input_names)

    reference = embed(fp32)
    scores = {}
    for label, record in records.items():
        assert record.status == "ok", (label, record.message)
        emb = embed(record.path)
        scores[label] = {
            **fidelity.embedding_agreement(reference, emb),
            "recall_at_10": fidelity.recall_at_k(reference, emb, 10),
            "size_mb": record.size_mb,
        }
    for label, s in scores.items():  # shown with pytest -s; the numbers of the report
        print(
            f"{label:30s} cos min {s['cosine_min']:.4f} mean {s['cosine_mean']:.4f} "
            f"recall@10 {s['recall_at_10']:.3f} size {s['size_mb']:.1f} MB"
        )
    return fp32, scores


def test_minilm_onnx_fp32_matches_eager(minilm_variants, all_texts):
    lm = load_model("minilm")
    sample = all_texts[:16]

    def eager(batch):
        with torch.inference_mode():
            return lm.model(**batch).last_hidden_state

    ref = fidelity.embed_texts(eager, sample, lm.tokenizer, 8, 256, lm.input_names)
    onnx = fidelity.embed_texts(ort_runner(minilm_variants[0]), sample, lm.tokenizer, 8, 256, lm.input_names)
    assert fidelity.embedding_agreement(ref, onnx)["cosine_min"] > 0.99999


def test_minilm_per_channel_dynamic_int8_stays_close(minilm_variants):
    _, scores = minilm_variants
    for label in ("ort_dynamic per-channel", "optimum_dynamic per-channel"):
        assert scores[label]["cosine_min"] >= 0.95, scores[label]
        assert scores[label]["recall_at_10"] >= 0.8, scores[label]


def test_minilm_per_channel_beats_per_tensor(minilm_variants):
    _, scores = minilm_variants
    for method in ("ort_dynamic", "optimum_dynamic"):
        pc, pt = scores[f"{method} per-channel"], scores[f"{method} per-tensor"]
        assert pc["cosine_mean"] > pt["cosine_mean"] and pc["cosine_min"] > pt["cosine_min"]
        assert pt["cosine_min"] >= 0.85, pt  # measured ~0.91-0.95


def test_minilm_static_and_fp16_fidelity(minilm_variants):
    _, scores = minilm_variants
    assert scores["ort_static per-channel"]["cosine_min"] >= 0.95, scores["ort_static per-channel"]
    assert scores["fp16"]["cosine_min"] >= 0.9999, scores["fp16"]
    assert scores["fp16"]["recall_at_10"] >= 0.98, scores["fp16"]
    sizes = {label: s["size_mb"] for label, s in scores.items()}
    assert sizes["ort_dynamic per-channel"] < 0.3 * export.size_mb(minilm_variants[0])


def test_variant_rows_keep_their_columns():
    row = quantize.variant_record("ort_dynamic", "x.onnx", 1.0, 2.0, "ok", per_channel=True).row()
    assert list(row) == ["method", "path", "seconds", "size_mb", "status", "message", *quantize.DETAILS, "label"]
    assert row["label"] == "ort_dynamic per-channel" and row["calibration_size"] is None
    with pytest.raises(TypeError, match="unknown"):
        quantize.variant_record("fp16", None, None, None, "error", colour="red")
