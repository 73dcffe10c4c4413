"""The engine registry: each backend module's engines are in it, under their task, with the
precision they claim; names are unique per task; an unknown name is refused with the accepted ones."""

import pytest

from helpers.backends import registry
from helpers.backends.catalog import engine_registry

TORCH_AND_ORT = {  # helpers.backends.engines
    "eager": "fp32",
    "torchscript": "fp32",
    "compile": "fp32",
    "compile-bf16": "bf16",
    "compile-cudagraphs": "fp32",
    "torch-bf16": "bf16",
    "torch-bf16-autocast": "bf16",
    "torch-fp16": "fp16",
    "torch-int8": "int8",
    "ort": "fp32",
    "ort-int8": "int8",
    "ort-fp16": "fp16",
    "ort-trt": "fp32",
    "ort-o1": "fp32",
    "ort-o2": "fp32",
    "ort-o3": "fp32",
}
OPENVINO = {  # helpers.backends.ov: (precision, INFERENCE_PRECISION_HINT, how the IR is made)
    "ov": ("fp32", "f32", "fp32"),
    "ov-bf16": ("bf16", "bf16", "fp32"),
    "ov-int8": ("int8", "f32", "int8"),
    "ov-int8-ac": ("int8", "f32", "int8-ac"),
    "ov-int8-skip-ffn-down": ("int8", "f32", "int8-skip-ffn-down"),
}
GENERATION = {  # helpers.backends.generation: (precision, the ONNX file set it runs)
    "torch": ("fp32", ""),
    "torch-bf16-autocast": ("bf16", ""),
    "ort": ("fp32", "onnx"),
    "ort-nopast": ("fp32", "onnx"),
    "ort-o1": ("fp32", "onnx-O1"),
    "ort-o2": ("fp32", "onnx-O2"),
    "ort-o3": ("fp32", "onnx-O3"),
    "ort-int8": ("int8", "onnx-int8"),
    "ort-o3-int8": ("int8", "onnx-O3-int8"),
}


@pytest.fixture(scope="module")
def reg():
    return engine_registry()


def test_each_backend_modules_engines_are_there_with_the_precision_they_claim(reg):
    assert reg.names("encode") == (*TORCH_AND_ORT, *OPENVINO)  # torch, then ONNX Runtime, then OpenVINO
    assert {n: reg.get(n, "encode").precision for n in TORCH_AND_ORT} == TORCH_AND_ORT
    assert {n: (e.precision, e.hint, e.file) for n in OPENVINO for e in [reg.get(n, "encode")]} == OPENVINO
    assert reg.names("encode", runtime="openvino") == tuple(OPENVINO)
    assert reg.names("generate") == tuple(GENERATION)
    assert {n: (e.precision, e.file) for n in GENERATION for e in [reg.get(n, "generate")]} == GENERATION
    assert reg.names("generate", runtime="torch") == ("torch", "torch-bf16-autocast")
    assert (reg.baseline("encode"), reg.baseline("generate")) == ("eager", "torch")
    assert all(e.description for task in reg.TASKS for e in reg.entries(task))


def test_a_name_shared_by_two_tasks_is_two_engines(reg):
    encoder, generator = reg.get("ort", "encode"), reg.get("ort", "generate")
    assert encoder != generator and (encoder.task, generator.task) == ("encode", "generate")
    for task in reg.TASKS:
        assert len(reg.names(task)) == len(set(reg.names(task)))


def test_the_runtime_order_does_not_depend_on_the_order_modules_were_imported(monkeypatch):
    monkeypatch.setattr(registry, "_ENTRIES", {})
    registry.add(registry.Entry("b-ov", "encode", "x", "fp32", "openvino"))
    registry.add(registry.Entry("a-torch", "encode", "x", "fp32", "torch"))
    registry.add(registry.Entry("c-ort", "encode", "x", "fp32", "onnxruntime"))
    registry.add(registry.Entry("d-torch", "encode", "x", "int8", "torch"))
    assert registry.names("encode") == ("a-torch", "d-torch", "c-ort", "b-ov")
    assert registry.names("generate") == ()


def test_an_unknown_name_is_refused_with_the_accepted_ones(reg):
    with pytest.raises(registry.UnknownEngine, match=r"encode engine 'warp' unknown; accepted: eager, torchscript, "):
        reg.get("warp", "encode")
    with pytest.raises(ValueError, match=r"generate engine 'eager' unknown; accepted: torch, torch-bf16-autocast, "):
        reg.get("eager", "generate")  # an encoder engine is not a generation engine
    assert reg.find("warp", "encode") is None
    with pytest.raises(ValueError, match=r"task='decode'; accepted: encode, generate"):
        reg.names("decode")


def test_an_engine_is_added_once_and_an_entry_must_be_well_formed(reg, monkeypatch):
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    registry.add(reg.get("eager", "encode"))  # the same entry again (a module imported twice): no-op
    assert registry.names("encode").count("eager") == 1
    with pytest.raises(ValueError, match="'eager' is registered already"):
        registry.add(registry.Entry("eager", "encode", "another eager", "fp32", "torch"))
    with pytest.raises(ValueError, match=r"precision='fp64'; accepted: fp32, bf16, fp16, int8"):
        registry.Entry("x", "encode", "x", "fp64", "torch")
    with pytest.raises(ValueError, match=r"runtime='tvm'; accepted: torch, onnxruntime, openvino"):
        registry.Entry("x", "encode", "x", "fp32", "tvm")


@pytest.mark.parametrize("name", ["eager", "torch-bf16", "torch-bf16-autocast", "torch-int8", "ort-o3"])
def test_a_built_engine_runs_the_precision_its_entry_claims(name, tiny, reg):
    from helpers.backends import engines

    assert engines.build_engine(name, tiny).precision == reg.get(name, "encode").precision
