"""A whole embedding pipeline you can reuse: tokenization, batching, engine and precision,
thread/process layout, answers in input order.

    from helpers.pipeline import Pipeline

    if __name__ == "__main__":  # usual where workers start (layout "processes"); a script without it works too
        pipe = Pipeline.from_json("results/recommended_pipeline.json")
        vectors = pipe.encode(["first text", "second text"])  # float32, one row per text, in order

A `Pipeline` is plain data (JSON-able): `variant` names the engine and precision (VARIANTS),
with the recipe that makes its file (RECIPES: an ONNX graph for ORT, an IR for OpenVINO); the
file comes from the build cache (helpers.backends.cache) and is rebuilt from the recipe when
missing (calibrated variants keep their calibration texts in the JSON). OpenVINO and
torch.compile prepare kernels at each new input shape: the first pass over a corpus pays that. Embeddings are
mean-pooled over real tokens (the project's sentence embedding, all-MiniLM-L6-v2's pooling),
unit-normalized unless `normalize` is False.
07_pipeline searches these and writes the fastest one that meets its fidelity floors.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np

# engine + precision of a pipeline: the torch ones are built at run time, the ORT and OpenVINO ones run a file
VARIANTS = {
    "eager": "PyTorch eager fp32 (the reference)",
    "torch-bf16": "PyTorch eager with bf16 weights",
    "torch-bf16-autocast": "PyTorch eager, fp32 weights under bf16 autocast",
    "torch-int8": "PyTorch dynamic INT8 (torch.ao quantize_dynamic on Linear)",
    "compile": "torch.compile (inductor), fp32",
    "compile-bf16": "torch.compile (inductor, frozen weights), bf16 weights",
    "ort-o1": "ONNX Runtime fp32, O1 graph",
    "ort-o2": "ONNX Runtime fp32, O2 graph (transformer fusions)",
    "ort-o3": "ONNX Runtime fp32, O3 graph (O2 + GELU approximation)",
    "ort-int8-pc": "ORT dynamic INT8, per-channel, every operator ORT quantizes",
    "ort-int8-static": "ORT static INT8 (QDQ), calibrated on corpus text, FFN down-projections fp32",
    "ort-int8-matmul": "ORT dynamic INT8, per-channel, MatMul only",
    "ort-int8-skip-last": "ORT dynamic INT8, per-channel, MatMul only, the last layer kept fp32",
    "ort-int8-skip-ffn-down": "ORT dynamic INT8, per-channel, MatMul only, FFN down-projections kept fp32",
    "ort-int8-skip-attn-out": "ORT dynamic INT8, per-channel, MatMul only, attention output projections kept fp32",
    "ov": "OpenVINO fp32 (INFERENCE_PRECISION_HINT f32)",
    "ov-bf16": "OpenVINO bf16 (INFERENCE_PRECISION_HINT bf16)",
    "ov-int8": "OpenVINO INT8, NNCF post-training (TRANSFORMER), calibrated on corpus text, fp32 elsewhere",
    "ov-int8-ac": "OpenVINO INT8, NNCF accuracy control against min cosine 0.99 and recall@10 0.95, fp32 elsewhere",
    "ov-int8-skip-ffn-down": "OpenVINO NNCF INT8, the FFN down-projections kept fp32 (an ignored scope)",
}
TORCH_VARIANTS = ("eager", "torch-bf16", "torch-bf16-autocast", "torch-int8", "compile", "compile-bf16")
# variants whose file is made with calibration texts (kept in the JSON, to make the same file again)
CALIBRATED = ("ort-int8-static", "ov-int8", "ov-int8-ac", "ov-int8-skip-ffn-down")
LAYOUTS = ("threads", "processes", "streams")
PRELOAD = ("helpers.pipeline", "helpers.backends.engines")  # what forked workers import once, up front
PRECISION = {"eager": "fp32", "torch-int8": "int8", "compile": "fp32", "ort-o1": "fp32", "ort-o2": "fp32"}
PRECISION |= {"ort-o3": "fp32", "ov": "fp32"} | {v: "int8" for v in VARIANTS if "int8" in v}
PRECISION |= {v: "bf16" for v in VARIANTS if "bf16" in v}

# how each ORT variant's file is made from the plain (un-optimized) export
RECIPES = {
    "ort-o1": {"kind": "optimize", "level": "O1"},
    "ort-o2": {"kind": "optimize", "level": "O2"},
    "ort-o3": {"kind": "optimize", "level": "O3"},
    "ort-int8-pc": {"kind": "dynamic", "per_channel": True, "op_types": None, "exclude": None},
    "ort-int8-static": {"kind": "static", "per_channel": True, "op_types": ["MatMul", "Gather"], "exclude": "ffn-down"},
    "ort-int8-matmul": {"kind": "dynamic", "per_channel": True, "op_types": ["MatMul"], "exclude": None},
    "ort-int8-skip-last": {"kind": "dynamic", "per_channel": True, "op_types": ["MatMul"], "exclude": "last-layer"},
    "ort-int8-skip-ffn-down": {"kind": "dynamic", "per_channel": True, "op_types": ["MatMul"], "exclude": "ffn-down"},
    "ort-int8-skip-attn-out": {"kind": "dynamic", "per_channel": True, "op_types": ["MatMul"], "exclude": "attn-out"},
    "ov": {"kind": "openvino", "from": "onnx"},
    "ov-bf16": {"kind": "openvino", "from": "onnx"},
    "ov-int8": {"kind": "openvino-int8", "model_type": "transformer"},
    "ov-int8-ac": {"kind": "openvino-int8", "model_type": "transformer", "floors": "0.99 / 0.95"},
    "ov-int8-skip-ffn-down": {"kind": "openvino-int8", "model_type": "transformer", "ignore": "ffn-down"},
}


def check_variant(name: str) -> None:
    if name not in VARIANTS:
        raise ValueError(f"variant={name!r}; accepted: {', '.join(VARIANTS)}")


# -- making the ONNX file of a variant --------------------------------------------------------
def make_variant_file(variant: str, loaded, calibration_texts: Sequence[str] = (), calibration_size: int = 32) -> dict:
    """The file of an ORT variant (ONNX) or an OpenVINO one (IR), from the build cache (made
    once per model, recipe and library versions, shared with 01-05 and every run): {file,
    seconds (the build's, also when reused), cache (hit | miss), status, message, excluded
    (MatMuls kept fp32)}. Never raises for a failed method (status error, or skipped where
    OpenVINO cannot run)."""
    from helpers.backends import export, quantize

    recipe = dict(RECIPES[variant])
    if recipe["kind"].startswith("openvino"):
        from helpers.backends import ov

        record = ov.produce(variant, loaded, calibration_texts, calibration_size)
    elif recipe["kind"] == "optimize":
        record = export.produce(f"onnx-{recipe['level']}", loaded)
        if record.status == "ok":
            record.message = ""  # the exporter's warnings are 01's business
    else:
        if recipe["kind"] == "static":
            recipe["calibration_size"] = calibration_size
        record = quantize.cached_variant(loaded, recipe, calibration_texts)
    ok = record.status == "ok"
    return {
        "file": record.path or "",
        "seconds": record.seconds,
        "cache": record.cache or "",
        "status": "ok" if ok else ("skipped" if record.status == "skipped" else "error"),
        "message": record.message if ok else (record.message.splitlines() or [""])[0],
        "excluded": record.details.get("excluded_nodes") or 0,
    }


# -- the pipeline -----------------------------------------------------------------------------
@dataclass
class Pipeline:
    """Everything that decides how a list of texts becomes embeddings (see the module doc).

    strategy / batch_size: workloads.batching's plans (token_budget: batch_size x the median
    length padded tokens per batch). layout 'threads': one process with `threads` threads;
    'processes': `threads` single-threaded processes, each encoding a contiguous share;
    'streams' (OpenVINO variants): one process, OpenVINO's THROUGHPUT hint with `threads`
    streams of one thread each, batches in flight together (tokenizing overlaps them). overlap: a background thread tokenizes the next batch while the engine runs this one."""

    model: str = "minilm"
    variant: str = "eager"
    strategy: str = "sorted"
    batch_size: int = 32
    max_length: int = 256
    layout: str = "threads"
    threads: int = 1
    overlap: bool = False
    normalize: bool = True
    onnx_file: str = ""  # the variant's file (ORT: .onnx, OpenVINO: .xml); rebuilt from the recipe when missing
    calibration_texts: list = field(default_factory=list, repr=False)  # CALIBRATED variants only
    info: dict = field(default_factory=dict, repr=False)  # what measured it (floors, speed-up, machine)

    def __post_init__(self):
        from helpers.workloads.batching import STRATEGIES

        check_variant(self.variant)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r}; accepted: {', '.join(STRATEGIES)}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout={self.layout!r}; accepted: {', '.join(LAYOUTS)}")
        if self.layout == "streams" and not self.variant.startswith("ov"):
            ov_variants = ", ".join(v for v in VARIANTS if v.startswith("ov"))
            raise ValueError(f"layout='streams' is OpenVINO's own; variant={self.variant!r}; accepted: {ov_variants}")
        for name in ("batch_size", "max_length", "threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; accepted: an integer >= 1")
        self._engine = self._loaded = self._pool = None

    # -- description --------------------------------------------------------------------------
    @property
    def precision(self) -> str:
        return PRECISION[self.variant]

    @property
    def recipe(self) -> dict | None:
        return RECIPES.get(self.variant)

    @property
    def name(self) -> str:
        over = "+overlap" if self.overlap else ""
        return f"{self.variant} {self.strategy}@{self.batch_size} {self.layout}x{self.threads}{over}"

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "calibration_texts"}
        data["precision"], data["recipe"] = self.precision, self.recipe
        if self.variant in CALIBRATED:
            data["calibration_texts"] = list(self.calibration_texts)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Pipeline":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(relative_file(self.to_dict(), path), indent=2, default=str) + "\n")
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> "Pipeline":
        path = Path(path)
        data = json.loads(path.read_text())
        file = data.get("onnx_file") or ""
        if file and not Path(file).is_absolute():  # stored relative to the JSON file
            data["onnx_file"] = str((path.parent / file).resolve())
        return cls.from_dict(data)

    # -- building -----------------------------------------------------------------------------
    def _load(self):
        from helpers.workloads.models import load_model

        if self._loaded is None:
            self._loaded = load_model(self.model)
        return self._loaded

    def engine(self):
        """The engine of this pipeline in this process (built once)."""
        if self._engine is not None:
            return self._engine
        from helpers.backends import engines

        loaded = self._load()
        threads = 1 if self.layout == "processes" else self.threads
        if self.variant in TORCH_VARIANTS:
            self._engine = engines.build_engine(self.variant, loaded, threads=threads)
            return self._engine
        if not self.onnx_file or not Path(self.onnx_file).exists():
            made = make_variant_file(self.variant, loaded, self.calibration_texts or _corpus_sample())
            if made["status"] != "ok":
                raise RuntimeError(f"{self.variant}: {made['message']}")
            self.onnx_file = made["file"]
        fmt = self.variant if self.variant.startswith("ov") else "ort"
        streams = self.threads if self.layout == "streams" else 1
        self._engine = engines.engine_for_file(fmt, self.onnx_file, loaded, threads=threads, streams=streams)
        self._engine.name = self.variant
        return self._engine

    def close(self) -> None:
        """Stop the worker processes of a 'processes' layout (started by the first encode)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- encoding -----------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], phases: dict | None = None) -> np.ndarray:
        """Embeddings of `texts`, one row per text in their order (float32). `phases`
        (workloads.batching.new_phases()) gathers where the time went, in this process only."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self.layout == "processes" and self.threads > 1 and len(texts) > 1:
            if phases is not None:
                raise ValueError("phases are timed in one process; the 'processes' layout spreads the work")
            return self._encode_processes(texts)
        if self.layout == "streams" and phases is not None:
            raise ValueError("phases are timed one after another; the 'streams' layout overlaps them")
        engine, loaded = self.engine(), self._load()
        return encode_with(engine, loaded.tokenizer, loaded.input_names, texts, self, phases)

    def _encode_processes(self, texts: list[str]) -> np.ndarray:
        shares = [list(s) for s in np.array_split(np.asarray(texts, dtype=object), self.threads) if len(s)]
        with script_not_rerun():  # workers start on first use: a plain script without a main guard works
            if self._pool is None:
                from concurrent.futures import ProcessPoolExecutor

                from helpers.core.memory import forkserver

                ctx = forkserver(PRELOAD)
                one = {**self.to_dict(), "layout": "threads", "threads": 1}
                # a worker that cannot start breaks the pool (an error here), never a silent respawn loop
                self._pool = ProcessPoolExecutor(
                    self.threads, mp_context=ctx, initializer=_worker_init, initargs=(one,)
                )
                list(self._pool.map(_worker_encode, [["warm-up"]] * self.threads))  # every worker built
            return np.concatenate(list(self._pool.map(_worker_encode, shares)), axis=0)


@contextmanager
def script_not_rerun():
    """Start worker processes without re-running the caller's script in each of them.

    multiprocessing (forkserver, spawn) imports a script's __main__ again in every child, so a
    script that builds a 'processes' pipeline at its top level, with no
    `if __name__ == "__main__":` guard, would start pools inside its own workers and break the
    pool. The workers need only this module (their spec is plain data), so the script is
    marked as one multiprocessing does not re-run (its rule for `python -c` and `__main__.py`)
    while they start; `python -m script` likewise."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    from importlib.machinery import ModuleSpec

    saved = getattr(main, "__spec__", None)
    main.__spec__ = ModuleSpec("__main__", None)
    try:
        yield
    finally:
        main.__spec__ = saved


def _corpus_sample(n: int = 64) -> list[str]:
    from helpers.backends.quantize import calibration_subset
    from helpers.workloads.corpora import load_corpus

    return calibration_subset(load_corpus().texts, n)


_WORKER: Pipeline | None = None


def _worker_init(spec: dict) -> None:
    global _WORKER
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _WORKER = Pipeline.from_dict(spec)
    _WORKER.engine()


def _worker_encode(texts: list[str]) -> np.ndarray:
    return _WORKER.encode(texts)


def encode_with(
    engine, tokenizer, input_names, texts: Sequence[str], pipe: Pipeline, phases: dict | None = None
) -> np.ndarray:
    """One pass of a pipeline's batching over `texts` with a built engine: tokenization
    included (lengths first where the strategy orders by them), answers in input order."""
    from helpers.core.fidelity import normalize
    from helpers.workloads.batching import Batch, plan, run_dataset, run_dataset_queued, token_lengths_capped

    n, size = len(texts), pipe.batch_size
    if pipe.strategy in ("fixed", "unsorted"):  # arrival order: no length pass needed
        batches = [Batch(list(range(i, min(i + size, n))), pipe.max_length) for i in range(0, n, size)]
    else:
        start = time.perf_counter()
        lengths, _ = token_lengths_capped(texts, tokenizer, pipe.max_length)
        batches = plan(lengths, pipe.strategy, size, pipe.max_length)
        if phases is not None:
            phases["lengths_s"] += time.perf_counter() - start
    padding = "max_length" if pipe.strategy == "fixed" else True  # the others: to the batch's longest text
    if pipe.layout == "streams":
        out = run_dataset_queued(engine, texts, tokenizer, batches, input_names, padding=padding)
    else:
        out = run_dataset(
            engine, texts, tokenizer, batches, input_names, padding=padding, overlap=pipe.overlap, phases=phases
        )
    return normalize(out) if pipe.normalize else out


def relative_file(pipe_dict: dict, json_path: str | Path) -> dict:
    """The dict with onnx_file relative to the JSON file's folder when it lies under it."""
    file = pipe_dict.get("onnx_file")
    if file:
        try:
            pipe_dict = {**pipe_dict, "onnx_file": os.path.relpath(file, Path(json_path).parent)}
        except ValueError:  # another drive
            pass
    return pipe_dict
