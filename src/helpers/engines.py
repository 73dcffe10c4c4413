"""The inference engines the study compares, by the names notebooks and profiles use.

Each name is a way to run a BERT-family encoder: a runtime, a precision and a graph form.
"""
from __future__ import annotations

ENGINES = {
    "eager": "PyTorch eager, fp32",
    "torchscript": "TorchScript (torch.jit.trace), fp32",
    "compile": "torch.compile (inductor), fp32",
    "torch-bf16": "PyTorch eager under bf16 autocast",
    "torch-fp16": "PyTorch eager in fp16 (CUDA)",
    "torch-int8": "PyTorch dynamic INT8 (torch.ao quantize_dynamic)",
    "ort": "ONNX Runtime fp32, best graph optimization level",
    "ort-int8": "ONNX Runtime dynamic INT8 (best method of 02)",
    "ort-fp16": "ONNX Runtime fp16 (CUDA, O4 graph)",
}
ENGINE_NAMES = tuple(ENGINES)
