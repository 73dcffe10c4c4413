"""OpenVINO engines run the precision they claim (the hint is set and read back), agree with
eager fp32 at shapes other than the export's, come from the build cache, and are skipped with
the reason where OpenVINO cannot run; PyTorch's torch-bf16 holds bf16 weights, autocast is its
own engine."""

import numpy as np
import pytest
import torch

from helpers.backends import engines, ov
from helpers.core.tables import failure_status
from helpers.workloads import corpora

pytestmark = pytest.mark.skipif(bool(ov.unavailable()), reason=ov.unavailable() or "OpenVINO runs here")


@pytest.fixture(scope="module")
def check_batches(tiny, texts):
    """Shapes other than the export's 1 x 16, with padded rows."""
    full, _ = corpora.texts_at_length(texts, tiny.tokenizer, 3, 40)
    padded = dict(tiny.tokenizer(texts[:5], padding=True, truncation=True, max_length=24, return_tensors="pt"))
    assert (padded["attention_mask"] == 0).any()
    return [full, padded]


@pytest.fixture(scope="module")
def eager(tiny):
    return engines.build_engine("eager", tiny, threads=1)


def _check(engine, eager, batch):
    return engines.check_against_reference(
        engine(batch), eager(batch), batch["attention_mask"], precision=engine.precision
    )


def _default_hint(path) -> str:
    import openvino

    return ov.hint_of(openvino.Core().compile_model(str(path), "CPU"))


def test_ov_is_true_fp32_and_agrees_with_eager_at_untraced_shapes(tiny, eager, check_batches):
    engine = engines.build_engine("ov", tiny, threads=1)
    assert ov.hint_of(engine.compiled) == "f32"  # read back from the compiled model
    assert engine.describe()["precision"] == "fp32" and engine.runtime == "openvino"
    assert "new input shape" in engine.cold_start
    for batch in check_batches:
        check = _check(engine, eager, batch)
        assert check["status"] == "ok" and check["max_abs_diff"] < 1e-3, check  # bf16 would be ~1e-2


def test_a_hint_that_is_not_applied_is_refused(tiny, monkeypatch):
    """Where the CPU plugin defaults to bf16 (AVX512-BF16, AMX), a compile that drops the hint
    runs bf16: compile_ir must refuse it rather than call it fp32."""
    import openvino

    path = ov.convert(tiny).raise_for_status().path
    if _default_hint(path) == "f32":
        pytest.skip("this CPU runs f32 by default: a dropped hint is not observable")
    original = openvino.Core.compile_model
    monkeypatch.setattr(
        openvino.Core, "compile_model", lambda self, model, device, config=None: original(self, model, device)
    )
    with pytest.raises(ov.PrecisionNotApplied, match="f32 was asked"):
        ov.compile_ir(path, "f32", 1)


def test_ov_bf16_claims_bf16_and_stays_within_its_tolerance(tiny, eager, check_batches):
    try:
        engine = engines.build_engine("ov-bf16", tiny, threads=1)
    except engines.EngineUnavailable as exc:  # a CPU without bf16 falls back to f32: refused
        assert "bf16" in str(exc)
        pytest.skip(str(exc))
    assert ov.hint_of(engine.compiled) == "bf16" and engine.precision == "bf16"
    assert _check(engine, eager, check_batches[0])["status"] == "ok"


def test_converted_ir_keeps_fp32_weights_and_dynamic_shapes(tiny):
    import openvino

    record = ov.convert(tiny).raise_for_status()
    again = ov.convert(tiny)
    assert again.cache == "hit" and again.path == record.path and again.seconds == record.seconds
    model = openvino.Core().read_model(record.path)
    assert all(port.get_partial_shape().is_dynamic for port in model.inputs)
    weights = [op for op in model.get_ordered_ops() if op.get_type_name() == "Constant"]
    assert "f16" not in {op.get_element_type().get_type_name() for op in weights}  # save_model's default is fp16


def test_ov_int8_quantizes_matmuls_and_stays_within_int8_tolerance(tiny, eager, check_batches, texts):
    record = ov.produce("ov-int8", tiny, texts[1::2], 16)
    assert record.status == "ok", record.message
    assert record.details["calibration_size"] == 16 and "MatMuls INT8" in record.message
    import openvino

    quantized, kept = ov.quantized_matmuls(openvino.Core().read_model(record.path))
    assert quantized and record.details["excluded_nodes"] == len(kept)
    engine = engines.engine_for_file("ov-int8", record.path, tiny, threads=1)
    assert (engine.name, engine.precision, ov.hint_of(engine.compiled)) == ("ov-int8", "int8", "f32")
    assert _check(engine, eager, check_batches[0])["status"] == "ok"


def test_accuracy_control_records_what_it_kept(tiny, texts):
    record = ov.produce("ov-int8-ac", tiny, texts[1::2], 16, floors={"min_cosine": 0.999, "min_recall_at_10": 0.95})
    assert record.status == "ok", record.message
    assert record.name == "nncf_int8_ac" and "fp32:" in record.message
    assert record.details["excluded_nodes"] >= 0


def test_floor_score_is_one_at_the_reference_and_negative_below_a_floor():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(30, 8))
    assert ov.floor_score(ref, ref, 0.99, 0.95) == pytest.approx(1.0, abs=1e-4)
    noisy = ref + rng.normal(scale=0.5, size=ref.shape)
    assert ov.floor_score(ref, noisy, 0.99, 0.95) < 0


def test_openvino_on_an_unsupported_cpu_is_unavailable_and_its_rows_skipped(tiny, monkeypatch):
    monkeypatch.setattr(ov.platform, "machine", lambda: "riscv64")
    assert "x86" in ov.unavailable()
    with pytest.raises(engines.EngineUnavailable, match="riscv64") as caught:
        engines.build_engine("ov", tiny)
    assert failure_status(caught.value) == "skipped"
    assert ov.convert(tiny).status == "skipped"


def test_torch_bf16_holds_bf16_weights_and_autocast_is_its_own_engine(tiny, eager, check_batches):
    weights = engines.build_engine("torch-bf16", tiny, threads=1)
    autocast = engines.build_engine("torch-bf16-autocast", tiny, threads=1)
    assert {p.dtype for p in weights.fn.parameters()} == {torch.bfloat16} and weights.autocast is None
    assert {p.dtype for p in autocast.fn.parameters()} == {torch.float32} and autocast.autocast == torch.bfloat16
    assert next(tiny.model.parameters()).dtype == torch.float32  # the loaded model is left as it was
    for engine in (weights, autocast):
        assert engine.precision == "bf16" and _check(engine, eager, check_batches[0])["status"] == "ok"
