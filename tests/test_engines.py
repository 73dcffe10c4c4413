"""Engines agree with eager fp32 on a tiny model, at shapes other than the traced one;
a broken variant is caught; CUDA-only engines refuse to run without CUDA."""

import copy
import dataclasses

import numpy as np
import onnx
import pytest
import torch

from helpers.backends import engines, export, registry
from helpers.workloads import corpora

CPU_ENGINES = [
    "torchscript",
    "compile",
    "compile-bf16",
    "torch-bf16",
    "torch-bf16-autocast",
    "torch-int8",
    "ort",
    "ort-o1",
    "ort-o2",
    "ort-o3",
]


def padded_batch(texts, tokenizer, batch_size, seq_len):
    """Real texts of different lengths, all shorter than seq_len: every row is padded."""
    lengths = corpora.token_lengths(texts, tokenizer)
    chosen, seen = [], set()
    for text, n in zip(texts, lengths):
        if 8 <= n < seq_len and n not in seen:
            chosen.append(text)
            seen.add(n)
        if len(chosen) == batch_size:
            break
    return dict(tokenizer(chosen, padding="max_length", max_length=seq_len, return_tensors="pt"))


@pytest.fixture(scope="module")
def shape_batches(tiny, texts):
    """The export shape (1 x 16) and two others at 3 x 40: full rows, and padded rows."""
    full, _ = corpora.texts_at_length(texts, tiny.tokenizer, 3, 40)
    padded = padded_batch(texts, tiny.tokenizer, 3, 40)
    assert (padded["attention_mask"] == 0).any(dim=1).all()
    traced, _ = corpora.texts_at_length(texts, tiny.tokenizer, 1, 16)
    return {"1x16": traced, "3x40": full, "3x40-padded": padded}


@pytest.fixture(scope="module")
def references(tiny, shape_batches):
    eager = engines.build_engine("eager", tiny)
    return {shape: eager(batch) for shape, batch in shape_batches.items()}


@pytest.fixture(scope="module", autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_catalogue_keeps_the_original_names():
    for name in (
        "eager",
        "torchscript",
        "compile",
        "torch-bf16",
        "torch-fp16",
        "torch-int8",
        "ort",
        "ort-int8",
        "ort-fp16",
    ):
        assert name in registry.names("encode")
    assert set(engines.TOLERANCES) >= {"fp32", "bf16", "fp16", "int8"}


@pytest.mark.parametrize("name", CPU_ENGINES)
def test_engine_agrees_with_eager_at_untraced_shapes(name, tiny, shape_batches, references):
    engine = engines.build_engine(name, tiny, threads=2)
    shapes = ["3x40-padded"] if name.startswith("compile") else list(shape_batches)  # compile: 1 shape, it is slow
    for shape in shapes:
        out = engine(shape_batches[shape])
        assert out.dtype == np.float32
        check = engines.check_against_reference(
            out, references[shape], shape_batches[shape]["attention_mask"], precision=engine.precision
        )
        assert check["status"] == "ok", (name, shape, check)


def test_prepare_then_run_prepared_equals_call(tiny, shape_batches):
    for name in ("eager", "ort"):
        engine = engines.build_engine(name, tiny, threads=1)
        batch = shape_batches["3x40"]
        prepared = engine.prepare(batch)
        np.testing.assert_array_equal(engine.to_numpy(engine.run_prepared(prepared)), engine(batch))


def test_describe_reports_runtime_precision_graph_provider(tiny):
    ort = engines.build_engine("ort-o3", tiny, threads=1).describe()
    assert ort == {
        "name": "ort-o3",
        "runtime": "onnxruntime",
        "precision": "fp32",
        "graph": "onnx-O3",
        "provider": "CPUExecutionProvider",
        "device": "cpu",
        "threads": 1,
        "cold_start": "",
    }
    assert torch.get_num_threads() == 1  # torch and ORT threads are set together
    int8 = engines.build_engine("torch-int8", tiny, threads=2).describe()
    assert (int8["runtime"], int8["precision"], int8["provider"], int8["threads"]) == ("torch", "int8", "cpu", 2)
    assert engines.build_engine("compile", tiny).describe()["cold_start"].startswith("compile")


def test_compile_raises_at_its_recompile_limit_instead_of_running_eager():
    import torch._dynamo

    torch._dynamo.reset()
    compiled = engines.torch_compile(lambda x: x * 2, backend="eager", dynamic=False)
    assert torch._dynamo.config.recompile_limit >= engines.RECOMPILE_LIMIT  # above any sweep's shapes
    # config.patch, not monkeypatch: undoing a monkeypatch deletes the setting from torch's config
    with torch._dynamo.config.patch(recompile_limit=2):
        for n in (1, 2):
            assert compiled(torch.ones(n)).sum() == 2 * n
        with pytest.raises(Exception, match="recompile_limit|cache_size_limit"):
            compiled(torch.ones(3))  # a third shape: torch would otherwise run it eagerly, unannounced
    assert torch._dynamo.config.recompile_limit >= engines.RECOMPILE_LIMIT  # left as it was
    torch._dynamo.reset()


def test_perturbed_weights_are_a_mismatch(tiny, shape_batches, references):
    broken = dataclasses.replace(tiny, model=copy.deepcopy(tiny.model))
    with torch.no_grad():
        layer = broken.model.encoder.layer[0].output.dense
        layer.weight.add_(0.05 * torch.randn_like(layer.weight, generator=torch.Generator().manual_seed(0)))
    out = engines.build_engine("eager", broken)(shape_batches["3x40"])
    check = engines.check_against_reference(out, references["3x40"], shape_batches["3x40"]["attention_mask"])
    assert check["status"] == "mismatch" and "max_abs_diff" in check["message"]


def test_tampered_onnx_initializer_is_a_mismatch(tiny, shape_batches, references, tmp_path):
    path = export.export_onnx(tiny, tmp_path / "model.onnx").raise_for_status().path
    graph = onnx.load(path)
    weight = max(graph.graph.initializer, key=lambda t: np.prod(t.dims) if len(t.dims) == 2 else 0)
    array = onnx.numpy_helper.to_array(weight).copy()
    array[: array.shape[0] // 4] *= -1  # flip the sign of a quarter of one matrix
    weight.CopyFrom(onnx.numpy_helper.from_array(array, weight.name))
    onnx.save(graph, tmp_path / "tampered.onnx")
    engine = engines.build_engine("ort", tiny, onnx_path=tmp_path / "tampered.onnx")
    check = engines.check_against_reference(
        engine(shape_batches["3x40"]), references["3x40"], shape_batches["3x40"]["attention_mask"]
    )
    assert check["status"] == "mismatch", check


def test_check_ignores_padding_and_flags_nan_and_shape():
    ref = np.ones((2, 4, 3), dtype=np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]])
    out = ref.copy()
    out[0, 3] = 100.0  # a padding position: not compared
    assert engines.check_against_reference(out, ref, mask)["status"] == "ok"
    out[1, 3, 0] = np.nan
    assert "non-finite" in engines.check_against_reference(out, ref, mask)["message"]
    assert engines.check_against_reference(ref[:, :3], ref, mask)["status"] == "mismatch"
    loose = engines.check_against_reference(ref + 0.05, ref, mask, precision="bf16")
    assert loose["status"] == "ok" and loose["atol"] == engines.TOLERANCES["bf16"]["atol"]
    assert engines.check_against_reference(ref + 0.05, ref, mask)["status"] == "mismatch"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_cuda_only_engines_refuse_without_cuda(tiny):
    with pytest.raises(engines.EngineUnavailable, match="CUDA"):
        engines.build_engine("torch-fp16", tiny)
    with pytest.raises(engines.EngineUnavailable):
        engines.build_engine("ort-fp16", tiny)
    for name in ("compile-cudagraphs", "ort-trt"):
        with pytest.raises(engines.EngineUnavailable, match="CUDA"):
            engines.build_engine(name, tiny)
    with pytest.raises(engines.EngineUnavailable):
        engines.build_engine("eager", tiny, device="cuda")


@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")
def test_ort_cuda_request_that_falls_back_to_cpu_is_refused(tiny, tmp_path, monkeypatch):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("a working CUDA provider does not fall back")
    path = export.export_onnx(tiny, tmp_path / "model.onnx").raise_for_status().path
    # Pretend the provider is installed: ORT then starts the session on CPU, with a warning.
    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    with pytest.raises(engines.EngineUnavailable, match="fallback"):
        engines.ort_session(path, "cuda", 1)


def test_missing_tensorrt_provider_is_named(tiny, tmp_path):
    path = export.export_onnx(tiny, tmp_path / "model.onnx").raise_for_status().path
    with pytest.raises(engines.EngineUnavailable, match="no TensorrtExecutionProvider"):
        engines.ort_session(path, "cuda", 1, tensorrt=True)


def test_unknown_engine_and_missing_quantized_path(tiny):
    with pytest.raises(ValueError, match="accepted"):
        engines.build_engine("tensorrt", tiny)
    with pytest.raises(ValueError, match="onnx_path"):
        engines.build_engine("ort-int8", tiny)


def test_session_options_set_what_is_asked_and_leave_the_rest():
    import onnxruntime

    from helpers.backends.onnxrt import session_options

    quiet = session_options(3)
    assert (quiet.intra_op_num_threads, quiet.inter_op_num_threads, quiet.log_severity_level) == (3, 1, 3)
    default = onnxruntime.SessionOptions()
    plain = session_options(1, inter_threads=None, log_severity=None, graph_level="basic", optimized_path="x.onnx")
    assert plain.inter_op_num_threads == default.inter_op_num_threads
    assert plain.log_severity_level == default.log_severity_level
    assert plain.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert plain.optimized_model_filepath == "x.onnx"
    with pytest.raises(ValueError, match="accepted"):
        session_options(1, graph_level="O2")
