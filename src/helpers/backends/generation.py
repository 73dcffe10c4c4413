"""Encoder-decoder generation (T5-shaped): ONNX files, engines (the registry's "generate" task),
forced-length greedy generation, agreement with PyTorch fp32, and the timing grid of 06_seq2seq.
The models (T5 shapes, loading) are helpers.workloads.models'.

Every engine generates exactly `new_tokens` tokens per call (greedy, end-of-sequence
suppressed until then), so every engine does the same work and times compare.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helpers.backends import cache, export, registry
from helpers.backends.artifacts import Artifact, cached_artifact
from helpers.backends.onnxrt import session_options
from helpers.core.memory import in_fresh_process
from helpers.core.tables import failure_row
from helpers.workloads.models import LoadedSeq2Seq

TASK = "generate"  # the registry's task of these engines

# The generation engines. Each ORT engine's file is a directory of encoder/decoder graphs
# under standard names (one of FILE_VARIANTS).
registry.add(
    registry.Entry("torch", TASK, "PyTorch generate, fp32 (the baseline)", "fp32", "torch", reference=True),
    registry.Entry("torch-bf16-autocast", TASK, "PyTorch generate, fp32 weights under bf16 autocast", "bf16", "torch"),
    registry.Entry(
        "ort",
        TASK,
        "ONNX Runtime (optimum), plain export, with past key values",
        "fp32",
        "onnxruntime",
        file="onnx",
    ),
    registry.Entry(
        "ort-nopast",
        TASK,
        "ONNX Runtime, plain export, without past key values (the decoder re-reads all tokens)",
        "fp32",
        "onnxruntime",
        file="onnx",
    ),
    registry.Entry(
        "ort-o1", TASK, "ONNX Runtime, O1 graph, with past key values", "fp32", "onnxruntime", file="onnx-O1"
    ),
    registry.Entry(
        "ort-o2", TASK, "ONNX Runtime, O2 graph, with past key values", "fp32", "onnxruntime", file="onnx-O2"
    ),
    registry.Entry(
        "ort-o3", TASK, "ONNX Runtime, O3 graph, with past key values", "fp32", "onnxruntime", file="onnx-O3"
    ),
    registry.Entry(
        "ort-int8",
        TASK,
        "ONNX Runtime, dynamic INT8 (per-channel) of the plain export, with past key values",
        "int8",
        "onnxruntime",
        file="onnx-int8",
    ),
    registry.Entry(
        "ort-o3-int8",
        TASK,
        "ONNX Runtime, O3 graph then dynamic INT8 (per-channel), with past key values",
        "int8",
        "onnxruntime",
        file="onnx-O3-int8",
    ),
)


def precision_of(name: str) -> str:
    """The precision generation engine `name` claims (fp32 for a name the registry lacks)."""
    entry = registry.find(name, TASK)
    return entry.precision if entry is not None else "fp32"


FILE_VARIANTS = ("onnx", "onnx-O1", "onnx-O2", "onnx-O3", "onnx-int8", "onnx-O3-int8")


GRAPHS = ("encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx")


# Agreement on the first decoding step's logits: max abs diff relative to the largest
# reference logit. Measured on t5-tiny and t5-small shapes (real text, batch 4-8): ORT fp32
# at every graph level 4e-7 (summation order only), bf16 autocast 0.004, dynamic INT8
# 0.014-0.018. Each bound leaves a margin of 15x or more; a wrong graph or weights moves
# the logits by the order of the logits themselves (relative diff about 1).
FIRST_STEP_RTOL = {"fp32": 1e-3, "bf16": 0.1, "int8": 0.25}


# ---------------------------------------------------------------- batches
def batch_of(loaded: LoadedSeq2Seq, texts, batch_size: int, input_len: int) -> dict:
    """Real texts packed to exactly `input_len` tokens (inputs of equal length, as in 03)."""
    from helpers.workloads.corpora import texts_at_length

    batch, _ = texts_at_length(texts, loaded.tokenizer, batch_size, input_len)
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


# ---------------------------------------------------------------- ONNX files
# Every file set is a build-cache entry (helpers.backends.cache), keyed by the model's
# fingerprint and the variant: "source" (the saved model that optimum exports from and a fresh
# process loads) and each of FILE_VARIANTS, a directory of GRAPHS under standard names.
# `Files`: what an engine is built from, the name ("source" or a variant) -> its directory.
Files = dict[str, Path]


def _standard_names(directory: Path, suffix: str) -> None:
    """optimum writes encoder_model_optimized.onnx etc.; ORTModelForSeq2SeqLM loads standard names."""
    for graph in GRAPHS:
        produced = directory / graph.replace(".onnx", f"_{suffix}.onnx")
        if produced.exists():
            produced.replace(directory / graph)


def _export(source: Path, out: Path) -> None:
    from optimum.onnxruntime import ORTModelForSeq2SeqLM

    ORTModelForSeq2SeqLM.from_pretrained(source, export=True, use_cache=True).save_pretrained(out)


def _optimize(plain: Path, level: str, out: Path) -> None:
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig

    optimizer = ORTOptimizer.from_pretrained(plain, file_names=list(GRAPHS))
    optimizer.optimize(getattr(AutoOptimizationConfig, level)(), save_dir=out)
    _standard_names(out, "optimized")


def _quantize(source: Path, out: Path) -> None:
    """Per-channel dynamic INT8 of each graph. An optimized graph needs DefaultTensorType
    (docs/stack.md: otherwise 'Unable to find data type for weight_name')."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.suffix != ".onnx" and item.name != cache.ENTRY:
            shutil.copy2(item, out / item.name)
    for graph in GRAPHS:
        quantize_dynamic(
            source / graph,
            out / graph,
            per_channel=True,
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def _record(variant: str, out: Path, produce) -> Artifact:
    """The directory's Artifact (kind "files": variant, seconds, size_mb, status, message,
    node_count, fused_ops: contrib-operator nodes, all graphs together); its path is the
    encoder graph, the entry's main file."""
    start, main = time.perf_counter(), str(out / GRAPHS[0])
    try:
        with export.collect_warnings(), contextlib.redirect_stdout(None):
            produce()
    except Exception as exc:  # recorded: the engines built on it are reported as errors
        message = f"{type(exc).__name__}: {exc}"[:500]
        return Artifact("files", variant, main, time.perf_counter() - start, None, "error", message)
    seconds = time.perf_counter() - start
    nodes, fused = zip(*(_graph_counts(out / g) for g in GRAPHS))
    size = sum((out / g).stat().st_size for g in GRAPHS) / 2**20
    return Artifact("files", variant, main, seconds, size, "ok", node_count=sum(nodes), fused_ops=sum(fused))


def _graph_counts(path: Path) -> tuple[int, int]:
    """Nodes, and ORT contrib (com.microsoft) nodes: the fused operators of T5 graphs
    (SkipSimplifiedLayerNormalization, MultiHeadAttention...) and quantized MatMuls."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    return len(nodes), sum(n.domain == "com.microsoft" for n in nodes)


def needed_files(engines: list[str]) -> list[str]:
    """The ONNX directories the ORT engines need, with what they are made from, in order."""
    files_of = {e.name: e.file for e in registry.entries(TASK) if e.file}
    needed = {files_of[e] for e in engines if e in files_of}
    if "onnx-O3-int8" in needed:
        needed.add("onnx-O3")
    if needed:
        needed.add("onnx")
    return [v for v in FILE_VARIANTS if v in needed]


def source_files(loaded: LoadedSeq2Seq) -> Path:
    """The saved model (config and weights) in the build cache."""

    def save(folder: Path) -> Path:
        loaded.model.save_pretrained(folder)
        return folder / "config.json"

    return Path(cache.cached(cache.key_fields(loaded, "seq2seq", level="source"), save)["folder"])


# what each variant is made from, and the options that change it (the cache key's recipe)
MADE_FROM = {
    "onnx": "source",
    "onnx-O1": "onnx",
    "onnx-O2": "onnx",
    "onnx-O3": "onnx",
    "onnx-int8": "onnx",
    "onnx-O3-int8": "onnx-O3",
}
INT8_RECIPE = {"per_channel": True, "weight_type": "QInt8", "default_tensor_type": "FLOAT"}


def _step(variant: str, parent: Path):
    if variant == "onnx":
        return lambda out: _export(parent, out)
    if variant.endswith("int8"):
        return lambda out: _quantize(parent, out)
    return lambda out: _optimize(parent, variant.removeprefix("onnx-"), out)


def produce_files(loaded: LoadedSeq2Seq, variants: list[str]) -> tuple[Files, dict[str, Artifact]]:
    """The saved model and each of `variants` (from needed_files, in order), from the build
    cache or built into it, never raising: (name -> directory, variant -> its Artifact, whose
    `cache` says hit or miss and whose seconds are the build's)."""
    files: Files = {"source": source_files(loaded)}
    records: dict[str, Artifact] = {}
    for variant in variants:
        parent = MADE_FROM[variant]
        recipe = {"from": parent, **(INT8_RECIPE if variant.endswith("int8") else {})}
        fields = cache.key_fields(loaded, "seq2seq", level=variant, recipe=recipe)

        def produce(out: Path, variant=variant, step=_step(variant, files[parent])) -> Artifact:
            return _record(variant, out, lambda: step(out))

        records[variant] = cached_artifact(fields, produce, "files", variant, f"exporting {loaded.name} to {variant}")
        files[variant] = cache.folder_of(fields)
    return files, records


# ---------------------------------------------------------------- engines
class GenerationEngine:
    """generate(batch, n) -> exactly n new tokens per input (greedy); first_logits(batch)."""

    def __init__(self, name: str, model: Any, autocast: torch.dtype | None = None):
        self.name = name
        self.model = model
        self.autocast = autocast
        self.precision = precision_of(name)

    def _context(self):
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=self.autocast)

    @torch.inference_mode()
    def generate(self, batch: dict, new_tokens: int) -> torch.Tensor:
        with self._context():
            out = self.model.generate(
                **batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1
            )
        return out[:, 1:]  # drop the decoder start token

    @torch.inference_mode()
    def first_logits(self, batch: dict, start_id: int) -> np.ndarray:
        start = torch.full((batch["input_ids"].shape[0], 1), start_id, dtype=torch.long)
        with self._context():
            logits = self.model(**batch, decoder_input_ids=start).logits
        return logits[:, 0, :].float().numpy()


def build_engine(name: str, files: Files, threads: int, model: torch.nn.Module | None = None) -> GenerationEngine:
    """An engine over the files of produce_files (torch engines use `model`, or the saved
    model of files["source"]); threads are set for torch and ORT alike."""
    entry = registry.find(name, TASK)
    if entry is None:
        raise ValueError(f"generation engine {name!r} unknown; accepted: {', '.join(registry.names(TASK))}")
    torch.set_num_threads(threads)
    if entry.runtime == "torch":
        if model is None:
            from transformers import AutoModelForSeq2SeqLM

            model = AutoModelForSeq2SeqLM.from_pretrained(files["source"]).eval()
        return GenerationEngine(name, model, torch.bfloat16 if name == "torch-bf16-autocast" else None)
    return GenerationEngine(name, _ort_model(Path(files[entry.file]), name != "ort-nopast", threads))


def _ort_model(directory: Path, use_cache: bool, threads: int):
    from optimum.onnxruntime import ORTModelForSeq2SeqLM

    if not (directory / GRAPHS[0]).is_file():
        raise FileNotFoundError(f"no ONNX graphs in {directory} (its production failed; see the files table)")
    options = session_options(threads)
    names = dict(zip(("encoder_file_name", "decoder_file_name", "decoder_with_past_file_name"), GRAPHS))
    if not use_cache:  # otherwise optimum loads the past graph too, unused
        del names["decoder_with_past_file_name"]
    return ORTModelForSeq2SeqLM.from_pretrained(
        directory, use_cache=use_cache, session_options=options, provider="CPUExecutionProvider", **names
    )


def build_all(names: list[str], files: Files, threads: int, model: torch.nn.Module) -> dict[str, Any]:
    """Every engine, or the exception that stopped it (reported in every table it would be in)."""
    built: dict[str, Any] = {}
    for name in names:
        try:
            built[name] = build_engine(name, files, threads, model)
        except Exception as exc:
            built[name] = exc
    return built


# ---------------------------------------------------------------- memory
# Imported before the fork, so no engine's load increment includes importing a library.
MEMORY_PRELOAD = ("torch", "transformers", "onnxruntime", "optimum.onnxruntime")


def _memory_load(name: str, files: Files, threads: int, batch: dict, new_tokens: int):
    engine = build_engine(name, files, threads)
    if registry.get(name, TASK).runtime == "torch":  # safetensors maps weights lazily: page them in now, as loading
        with torch.no_grad():
            for p in engine.model.parameters():
                p.sum()
    return engine, batch, new_tokens


def _memory_run(loaded) -> int:
    engine, batch, new_tokens = loaded
    return int(engine.generate(batch, new_tokens).shape[1])


def fresh_process_memory(name: str, files: Files, threads: int, batch: dict, new_tokens: int) -> dict:
    """Load the engine in a new process, generate once; RSS increments of loading and of
    inference (peak during generation minus RSS after loading), as a row."""
    try:
        mem = in_fresh_process(
            _memory_load, _memory_run, name, files, threads, batch, new_tokens, preload=MEMORY_PRELOAD
        )
    except Exception as exc:
        return {"engine": name, **failure_row(exc)}
    return {
        "engine": name,
        "precision": precision_of(name),
        "load_mb": mem.load_increment_mb,
        "inference_mb": mem.inference_increment_mb,
        "peak_rss_mb": mem.peak_mb,
        "generated_tokens": mem.result,
        "status": "ok",
        "message": "",
    }
