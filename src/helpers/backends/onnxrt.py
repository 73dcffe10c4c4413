"""ONNX Runtime sessions: the one place `SessionOptions` are built.

`session_options` sets what the study sets (intra-op threads, one inter-op thread, errors-only
logging by default, optionally a graph optimization level and a file to write the optimized
graph to); `cpu_session` opens a model (path or bytes) on the CPU provider with them.
`onnx_precision` reads a graph's precision from its operators and weight types.
"""

from __future__ import annotations

from pathlib import Path

GRAPH_LEVELS = ("disable", "basic", "extended", "all")

_INT8_OPS = {
    "MatMulInteger",
    "DynamicQuantizeLinear",
    "QLinearMatMul",
    "QAttention",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "QuantizeLinear",
    "QGemm",
}


def session_options(
    threads: int | None,
    *,
    inter_threads: int | None = 1,
    log_severity: int | None = 3,
    graph_level: str | None = None,
    optimized_path: str | Path | None = None,
):
    """SessionOptions with intra_op_num_threads=threads (0: ORT's default, the physical
    cores), inter_op_num_threads and log_severity_level (3: errors only, no per-node
    placement chatter), graph_optimization_level (one of GRAPH_LEVELS) and
    optimized_model_filepath. None leaves ORT's own default for that setting."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    if inter_threads is not None:
        options.inter_op_num_threads = inter_threads
    if log_severity is not None:
        options.log_severity_level = log_severity
    if graph_level is not None:
        if graph_level not in GRAPH_LEVELS:
            raise ValueError(f"graph_level={graph_level!r}; accepted: {GRAPH_LEVELS}")
        level = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED"}
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level.get(graph_level, "ORT_ENABLE_ALL"))
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return options


def cpu_session(model: str | Path | bytes, options):
    """An InferenceSession of `model` (a path, or the serialized graph) on the CPU provider."""
    import onnxruntime as ort

    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def onnx_precision(onnx_path: str | Path) -> str:
    """int8 / int4 / fp16 / fp32 of a graph, read from its operators and weight types."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    ops = {node.op_type for node in model.graph.node}
    if ops & _INT8_OPS:
        return "int8"
    if "MatMulNBits" in ops:
        return "int4"
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        return "fp16"
    return "fp32"
