"""Producing the exported formats of a model: TorchScript, ONNX (torch exporter and optimum,
API and CLI), ONNX Runtime graph optimization levels O1-O4, and OpenVINO IR (converted from the
plain ONNX export by helpers.backends.ov).

Every export returns an `Artifact` of kind "export" (time, size, status, warnings; node
counts and fused operators for ONNX graphs) instead of raising, so a notebook can tabulate
failures and skips beside successes; `raise_for_status()` turns a failure back into an exception.
`produce(fmt, loaded)` is how the studies get a format: from the build cache
(helpers.backends.cache), made once per model, format and library versions; the functions
below it write one file where they are told.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import onnx
import torch

from helpers.backends import cache
from helpers.backends.artifacts import Artifact, cached_artifact
from helpers.core import progress
from helpers.workloads.models import LoadedModel, describe_model_name, minilm_dir

OUTPUT_NAME = "last_hidden_state"
OPSET = 17  # of every ONNX export the studies make
LEVELS = ("O1", "O2", "O3", "O4")
# Operators the ORT transformer optimizer (and quantizers) fuse subgraphs into.
FUSED_OPS = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "EmbedLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "LayerNormalization",
    "MatMulNBits",
    "QAttention",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
)
LEVEL_KEY = "helpers.graph_level"  # metadata_props key stamped on optimized graphs
_EXAMPLE_TEXT = "The quick brown fox jumps over the lazy dog."


# ---------------------------------------------------------------- shared pieces


class LastHiddenState(torch.nn.Module):
    """The model with positional inputs in `input_names` order and one output, the last
    hidden state: what tracing and the ONNX exporter need (no dict inputs, no pooler)."""

    def __init__(self, model: torch.nn.Module, input_names: list[str]):
        super().__init__()
        self.model = model
        self.input_names = list(input_names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.input_names, inputs)), return_dict=True).last_hidden_state


def wrap(loaded: LoadedModel, model: torch.nn.Module | None = None) -> LastHiddenState:
    """`loaded`'s model (or `model`, e.g. a copy of it on a GPU) as a LastHiddenState."""
    # eval() matters: exporters restore the wrapper's mode recursively on exit, so a wrapper
    # left in training mode would switch the wrapped model (dropout) to training too.
    return LastHiddenState(loaded.model if model is None else model, loaded.input_names).eval()


def example_batch(loaded: LoadedModel, batch_size: int = 1, seq_len: int = 16) -> dict:
    """A fixed tokenized batch to trace or export with (dynamic axes make its shape moot)."""
    return dict(
        loaded.tokenizer(
            [_EXAMPLE_TEXT] * batch_size, padding="max_length", truncation=True, max_length=seq_len, return_tensors="pt"
        )
    )


def example_inputs(loaded: LoadedModel, batch: dict, model: torch.nn.Module | None = None) -> tuple:
    device = next((loaded.model if model is None else model).parameters()).device
    return tuple(batch[name].to(device) for name in loaded.input_names)


def files_of(path: str | Path) -> list[Path]:
    """A file and, for an ONNX graph, the external-data files it references."""
    path = Path(path)
    files = [path]
    if path.suffix == ".onnx":
        model = onnx.load(str(path), load_external_data=False)
        locations = {
            entry.value
            for tensor in model.graph.initializer
            if tensor.data_location == onnx.TensorProto.EXTERNAL
            for entry in tensor.external_data
            if entry.key == "location"
        }
        files += [path.parent / loc for loc in sorted(locations)]
    return files


def size_mb(path: str | Path) -> float:
    return sum(p.stat().st_size for p in files_of(path) if p.exists()) / 2**20


def graph_stats(onnx_path: str | Path) -> dict:
    """{"node_count": top-level nodes, "fused_ops": {op: count} for every op in FUSED_OPS}."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    counts = Counter(node.op_type for node in model.graph.node)
    return {"node_count": len(model.graph.node), "fused_ops": {op: counts[op] for op in FUSED_OPS}}


def graph_level(onnx_path: str | Path) -> str | None:
    """The optimization level `optimize_onnx` stamped on a graph, or None."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    return next((p.value for p in model.metadata_props if p.key == LEVEL_KEY), None)


def summarize_warnings(caught: list[warnings.WarningMessage]) -> str:
    """'3 warnings: DeprecationWarning x2 (first text...); TracerWarning x1 (...)'."""
    if not caught:
        return ""
    groups: dict[str, list[str]] = {}
    for w in caught:
        groups.setdefault(w.category.__name__, []).append(str(w.message).splitlines()[0][:120])
    parts = [f"{cat} x{len(msgs)} ({msgs[0]})" for cat, msgs in groups.items()]
    return f"{len(caught)} warnings: " + "; ".join(parts)


@contextmanager
def collect_warnings():
    """Collect Python warnings (deprecations of jit.trace, the legacy exporter...)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _record(fmt: str, path: Path, produce: Callable[[], Any]) -> Artifact:
    """Run `produce`, timing it and collecting its warnings, into an export Artifact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with progress.phase(f"exporting {progress.short(path)} ({fmt})"), collect_warnings() as caught:
            produce()
    except Exception as exc:  # recorded, not raised: a notebook tabulates failures
        message = f"{type(exc).__name__}: {exc}"[:500]
        seconds = time.perf_counter() - start
        return Artifact("export", fmt, str(path), seconds, status="error", message=message, warning_count=0)
    record = Artifact(
        "export",
        fmt,
        str(path),
        time.perf_counter() - start,
        size_mb(path),
        message=summarize_warnings(caught),
        warning_count=len(caught),
        fused_ops={},
    )
    if path.suffix == ".onnx":
        stats = graph_stats(path)
        record.node_count, record.fused_ops = stats["node_count"], stats["fused_ops"]
    return record


# ---------------------------------------------------------------- TorchScript


def trace_torchscript(loaded: LoadedModel, batch: dict, model: torch.nn.Module | None = None):
    """torch.jit.trace of the model (or `model`) on `batch`: positional inputs in
    `loaded.input_names` order, the last hidden state out."""
    with torch.no_grad():
        return torch.jit.trace(wrap(loaded, model), example_inputs(loaded, batch, model), strict=False)


def export_torchscript(loaded: LoadedModel, example: dict | None, path: str | Path) -> Artifact:
    """Trace on `example` (a tokenized batch; None: a fixed 1 x 16 one) and save to `path`."""
    example = example_batch(loaded) if example is None else example
    return _record("torchscript", Path(path), lambda: torch.jit.save(trace_torchscript(loaded, example), str(path)))


# ---------------------------------------------------------------- ONNX (torch exporter)


def export_onnx(loaded: LoadedModel, path: str | Path, opset: int = OPSET) -> Artifact:
    """Legacy (TorchScript-based) torch.onnx.export: ORT's optimizer fuses Attention only on
    its graphs. Inputs are the model's own input names; batch and sequence axes are dynamic
    on every input and on the output `last_hidden_state`."""
    names = list(loaded.input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in names + [OUTPUT_NAME]}

    def produce():
        with torch.no_grad():
            torch.onnx.export(
                wrap(loaded),
                example_inputs(loaded, example_batch(loaded)),
                str(path),
                input_names=names,
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )

    return _record("onnx", Path(path), produce)


# ---------------------------------------------------------------- ONNX (optimum)


def _saved_copy(loaded: LoadedModel, directory: Path) -> Path:
    loaded.model.save_pretrained(directory)
    loaded.tokenizer.save_pretrained(directory)
    return directory


def _model_dir(source: LoadedModel | str | Path, scratch: Path) -> Path:
    """A directory holding the model: its own for minilm / a local model, else a saved copy."""
    if not isinstance(source, LoadedModel):
        return Path(source).expanduser()
    kind = describe_model_name(source.name)
    if kind == "real":
        return minilm_dir()
    if kind == "local":
        return Path(source.name).expanduser()
    return _saved_copy(source, scratch)  # random-weight shape or hub model: no dir of ours


def _optimum_api(model_dir: Path, out_dir: Path) -> None:
    from optimum.exporters.onnx import main_export

    main_export(
        str(model_dir), str(out_dir), task="feature-extraction", library_name="transformers", local_files_only=True
    )


def _optimum_cli(model_dir: Path, out_dir: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "optimum.commands.optimum_cli",
        "export",
        "onnx",
        "-m",
        str(model_dir),
        "--task",
        "feature-extraction",
        "--library-name",
        "transformers",
        str(out_dir),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"optimum-cli exited {done.returncode}: {done.stderr.strip()[-400:]}")


def export_optimum(source: LoadedModel | str | Path, out_dir: str | Path, via: str = "api") -> Artifact:
    """optimum's ONNX export (task feature-extraction, library transformers: a directory with
    modules.json would otherwise export as sentence-transformers) into out_dir/model.onnx,
    through the Python API (`main_export`) or the `optimum-cli` command."""
    exporters = {"api": _optimum_api, "cli": _optimum_cli}
    if via not in exporters:
        raise ValueError(f"via={via!r}; accepted: {sorted(exporters)}")
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="export-src-") as scratch:
        model_dir = _model_dir(source, Path(scratch))
        return _record(f"optimum-{via}", out_dir / "model.onnx", lambda: exporters[via](model_dir, out_dir))


# ---------------------------------------------------------------- ORT graph optimization


def cuda_provider_available() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def _stamp_level(model: onnx.ModelProto, level: str) -> None:
    entry = model.metadata_props.add()
    entry.key, entry.value = LEVEL_KEY, level


def _optimize(onnx_path: Path, level: str, out_path: Path, model_type: str, num_heads: int, hidden_size: int) -> None:
    from onnxruntime.transformers.optimizer import optimize_model
    from optimum.onnxruntime import AutoOptimizationConfig

    config = AutoOptimizationConfig.with_optimization_level(level, for_gpu=level == "O4")
    # The same call optimum's ORTOptimizer.optimize makes, minus its directory conventions.
    optimizer = optimize_model(
        str(onnx_path),
        model_type,
        num_heads,
        hidden_size,
        opt_level=config.optimization_level,
        optimization_options=config.create_fusion_options(model_type),
        use_gpu=config.optimize_for_gpu,
        only_onnxruntime=not config.enable_transformers_specific_optimizations,
    )
    if config.fp16:
        optimizer.convert_float_to_float16(keep_io_types=True)  # fp32 in, fp32 out
    _stamp_level(optimizer.model, level)
    optimizer.save_model_to_file(str(out_path))


def optimize_onnx(
    onnx_path: str | Path,
    level: str,
    out_path: str | Path,
    *,
    model_type: str = "bert",
    num_heads: int = 0,
    hidden_size: int = 0,
) -> Artifact:
    """ORT graph optimization at optimum's levels: O1 basic ORT rewrites; O2 adds the
    transformer fusions (Attention, SkipLayerNormalization, EmbedLayerNormalization, BiasGelu);
    O3 adds the GELU approximation (FastGelu); O4 adds fp16 and needs CUDA (a "skipped"
    record elsewhere). Levels come from optimum's `AutoOptimizationConfig`; the work is done
    by `onnxruntime.transformers.optimizer.optimize_model`, exactly as `ORTOptimizer` calls
    it, without ORTOptimizer's need for a model directory with config.json.
    num_heads / hidden_size 0 let ORT read them from the graph. The graph is stamped with its
    level in metadata (see `graph_level`)."""
    if level not in LEVELS:
        raise ValueError(f"level={level!r}; accepted: {LEVELS}")
    out_path = Path(out_path)
    if level == "O4" and not cuda_provider_available():
        return _o4_skipped(str(out_path))
    return _record(
        f"onnx-{level}",
        out_path,
        lambda: _optimize(Path(onnx_path), level, out_path, model_type, num_heads, hidden_size),
    )


def _o4_skipped(path: str | None) -> Artifact:
    message = "O4 (fp16) needs onnxruntime's CUDAExecutionProvider; this machine has none"
    return Artifact("export", "onnx-O4", path, status="skipped", warning_count=0, message=message)


def fusion_dims(config: Any) -> dict:
    """num_heads and hidden_size of a config, for optimize_onnx (DistilBERT's n_heads / dim
    answer to these names too, through transformers' attribute_map)."""
    return {"num_heads": int(config.num_attention_heads), "hidden_size": int(config.hidden_size)}


# ---------------------------------------------------------------- every format, by name

FORMATS = ("torchscript", "onnx", "optimum-api", "optimum-cli", "onnx-O1", "onnx-O2", "onnx-O3", "onnx-O4", "openvino")
# the build cache's kind (folder) and recipe of each exported format; graph levels are "optimized"
_KEYS = {
    "torchscript": ("torchscript", {"example": "1x16"}, None),
    "onnx": ("onnx", {"exporter": "torch.onnx", "dynamo": False}, OPSET),
    "optimum-api": ("optimum-onnx", {"via": "api", "task": "feature-extraction"}, None),
    "optimum-cli": ("optimum-onnx", {"via": "cli", "task": "feature-extraction"}, None),
}


def _build(fmt: str, loaded: LoadedModel, folder: Path) -> Artifact:
    if fmt == "torchscript":
        return export_torchscript(loaded, None, folder / "model.pt")
    if fmt == "onnx":
        return export_onnx(loaded, folder / "model.onnx", OPSET)
    record = export_optimum(loaded, folder, via=fmt.split("-")[1])
    record.name = fmt
    return record


def _optimized(loaded: LoadedModel, level: str) -> Artifact:
    if level == "O4" and not cuda_provider_available():
        return _o4_skipped(None)  # not cached: it says what this machine lacks
    plain = produce("onnx", loaded)
    if plain.status != "ok":
        message = f"the plain ONNX export failed: {plain.message}"
        return Artifact("export", f"onnx-{level}", None, status="error", message=message, warning_count=0)
    dims = fusion_dims(loaded.config)
    fields = cache.key_fields(loaded, "optimized", level=level, recipe={"model_type": "bert", **dims}, opset=OPSET)
    return cached_artifact(
        fields,
        lambda folder: optimize_onnx(plain.path, level, folder / f"model-{level}.onnx", **dims),
        kind="export",
        name=f"onnx-{level}",
        label=f"optimizing {loaded.name}'s ONNX graph at {level}",
    )


def produce(fmt: str, loaded: LoadedModel) -> Artifact:
    """Format `fmt` (one of FORMATS but "openvino", which `backends.ov.convert` makes from the
    plain export) of a model, from the build cache: made once per model, format and library
    versions, then reused by every notebook and run. The record's `cache` says "hit" or "miss"
    and its seconds are those of the build that made the file; a failed build is cached as a
    failure. Graph levels are optimized from the cached plain ONNX export."""
    if fmt not in FORMATS or fmt == "openvino":
        accepted = [f for f in FORMATS if f != "openvino"]
        raise ValueError(f"format={fmt!r}; accepted: {', '.join(accepted)} (openvino: backends.ov.convert)")
    if fmt.startswith("onnx-O"):
        return _optimized(loaded, fmt[-2:])
    kind, recipe, opset = _KEYS[fmt]
    fields = cache.key_fields(loaded, kind, recipe=recipe, opset=opset)
    build = lambda folder: _build(fmt, loaded, folder)  # noqa: E731
    return cached_artifact(fields, build, kind="export", name=fmt, label=f"exporting {loaded.name} to {fmt}")
