"""Every format is produced with dynamic shapes, recorded (time, size, fused ops, warnings),
and runs correctly; DistilBERT-style models (no token_type_ids) work too."""

import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

from helpers.backends import engines, export
from helpers.backends.artifacts import Artifact
from helpers.workloads import corpora
from helpers.workloads.models import load_model, minilm_dir


@pytest.fixture(scope="module")
def batch(tiny):
    """3 x 40 rows of real text with padding: not the 1 x 16 shape formats are exported at."""
    texts = corpora.load_corpus().texts[:200]
    short = [t for t, n in zip(texts, corpora.token_lengths(texts, tiny.tokenizer)) if 8 <= n < 40]
    return dict(tiny.tokenizer(short[:3], padding="max_length", max_length=40, return_tensors="pt"))


@pytest.fixture(scope="module")
def reference(tiny, batch):
    return engines.build_engine("eager", tiny)(batch)


@pytest.fixture(scope="module")
def plain(tiny, tmp_path_factory):
    return export.export_onnx(tiny, tmp_path_factory.mktemp("onnx") / "model.onnx")


def _runs_like_eager(loaded, onnx_path, batch, reference):
    engine = engines.build_engine("ort", loaded, onnx_path=onnx_path)
    check = engines.check_against_reference(engine(batch), reference, batch["attention_mask"])
    assert check["status"] == "ok", check


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_onnx_export_has_dynamic_axes_and_a_record(tiny, plain, batch, reference):
    assert plain.status == "ok", plain.message
    assert plain.size_mb > 1 and plain.seconds > 0 and plain.node_count > 100
    graph = onnx.load(plain.path, load_external_data=False).graph
    assert [i.name for i in graph.input] == tiny.input_names
    assert [o.name for o in graph.output] == ["last_hidden_state"]
    for value in list(graph.input) + list(graph.output):
        assert _dims(value)[:2] == ["batch", "sequence"], value.name
    _runs_like_eager(tiny, plain.path, batch, reference)


def test_export_warnings_are_counted_not_shown(tiny, tmp_path):
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        record = export.export_onnx(tiny, tmp_path / "m.onnx")
    assert escaped == []
    assert record.warning_count >= 1 and f"{record.warning_count} warnings" in record.message


def test_graph_levels_fuse_and_o4_is_a_recorded_skip(tiny, plain, batch, reference, tmp_path):
    dims = export.fusion_dims(tiny.config)
    records = {lvl: export.optimize_onnx(plain.path, lvl, tmp_path / f"{lvl}.onnx", **dims) for lvl in export.LEVELS}
    o1, o2, o3, o4 = (records[lvl] for lvl in export.LEVELS)
    for record in (o1, o2, o3):
        assert record.status == "ok", record.message
        assert export.graph_level(record.path) == record.name.removeprefix("onnx-")
        _runs_like_eager(tiny, record.path, batch, reference)
    assert o1.node_count < plain.node_count and o1.fused_ops["Attention"] == 0
    attention = o2.fused_ops["Attention"] + o2.fused_ops["MultiHeadAttention"]
    assert attention == tiny.config.num_hidden_layers
    assert o2.fused_ops["SkipLayerNormalization"] >= 1 and o2.node_count < o1.node_count
    assert o3.fused_ops["FastGelu"] >= 1 and o2.fused_ops["FastGelu"] == 0
    assert export.graph_stats(o2.path) == {"node_count": o2.node_count, "fused_ops": o2.fused_ops}
    if not export.cuda_provider_available():
        assert o4.status == "skipped" and "CUDA" in o4.message


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_file_runs_at_other_shapes(tiny, batch, reference, tmp_path):
    record = export.export_torchscript(tiny, export.example_batch(tiny, 1, 16), tmp_path / "m.pt")
    assert record.status == "ok" and record.size_mb > 1 and record.node_count is None
    module = torch.jit.load(record.path)
    with torch.no_grad():
        out = module(*(batch[n] for n in tiny.input_names)).numpy()
    assert engines.check_against_reference(out, reference, batch["attention_mask"])["status"] == "ok"


@pytest.mark.parametrize("via", ["api", "cli"])
def test_optimum_export_of_a_random_shape(via, tiny, batch, reference, tmp_path):
    record = export.export_optimum(tiny, tmp_path / via, via=via)
    assert record.status == "ok", record.message
    assert record.name == f"optimum-{via}" and record.fused_ops["LayerNormalization"] >= 1
    _runs_like_eager(tiny, record.path, batch, reference)


def test_failures_are_records_and_rows_are_flat(tmp_path):
    record = export.optimize_onnx(tmp_path / "missing.onnx", "O2", tmp_path / "out.onnx")
    assert record.status == "error" and record.message
    with pytest.raises(RuntimeError, match="error"):
        record.raise_for_status()
    row = Artifact("export", "onnx", "x", fused_ops={"Attention": 2}).row()
    assert row["fused_Attention"] == 2 and "fused_ops" not in row
    assert list(row) == [
        "format",
        "path",
        "export_seconds",
        "size_mb",
        "status",
        "message",
        "warning_count",
        "node_count",
        "fused_Attention",
    ]


def test_size_counts_external_data(plain, tmp_path):
    model = onnx.load(plain.path)
    onnx.save_model(
        model, tmp_path / "ext.onnx", save_as_external_data=True, location="ext.onnx.data", size_threshold=0
    )
    assert len(export.files_of(tmp_path / "ext.onnx")) == 2
    assert export.size_mb(tmp_path / "ext.onnx") == pytest.approx(plain.size_mb, rel=0.05)


def test_distilbert_without_token_type_ids_exports_and_runs(tmp_path):
    config = DistilBertConfig(vocab_size=30522, dim=64, n_layers=2, n_heads=2, hidden_dim=256)
    torch.manual_seed(0)
    DistilBertModel(config).save_pretrained(tmp_path / "distil")
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(tmp_path / "distil")
    loaded = load_model(tmp_path / "distil")
    assert loaded.input_names == ["input_ids", "attention_mask"]
    record = export.export_onnx(loaded, tmp_path / "distil.onnx")
    assert record.status == "ok", record.message
    graph = onnx.load(record.path, load_external_data=False).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    texts = corpora.load_corpus().texts[:200]
    batch, _ = corpora.texts_at_length(texts, loaded.tokenizer, 3, 40)  # has token_type_ids: ignored
    reference = engines.build_engine("eager", loaded)(batch)
    _runs_like_eager(loaded, record.path, batch, reference)
    fused = export.optimize_onnx(record.path, "O2", tmp_path / "distil-O2.onnx", **export.fusion_dims(loaded.config))
    assert fused.status == "ok" and fused.fused_ops["Attention"] == 2
    _runs_like_eager(loaded, fused.path, batch, reference)
    session = onnxruntime.InferenceSession(record.path, providers=["CPUExecutionProvider"])
    out = session.run(None, {n: batch[n].numpy() for n in loaded.input_names})[0]
    assert out.shape == (3, 40, 64) and np.isfinite(out).all()
