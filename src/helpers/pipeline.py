"""A whole embedding pipeline you can reuse: tokenization, batching, engine and precision,
thread/process layout, answers in input order.

    from helpers.pipeline import Pipeline
    pipe = Pipeline.from_json("results/recommended_pipeline.json")
    vectors = pipe.encode(texts)  # (len(texts), dim) float32, rows in the order of texts

A `Pipeline` is plain data (JSON-able): `variant` names the engine and precision (VARIANTS),
with the quantization recipe that makes its ONNX file (RECIPES); the file is rebuilt from the
recipe when missing. Embeddings are mean-pooled over real tokens (the project's sentence
embedding, all-MiniLM-L6-v2's pooling), unit-normalized unless `normalize` is False.
07_pipeline searches these and writes the fastest one that meets its fidelity floors.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np

# engine + precision of a pipeline: the torch ones are built at run time, the ORT ones run a file
VARIANTS = {
    "eager": "PyTorch eager fp32 (the reference)",
    "torch-bf16": "PyTorch eager under bf16 autocast",
    "torch-int8": "PyTorch dynamic INT8 (torch.ao quantize_dynamic on Linear)",
    "ort-o1": "ONNX Runtime fp32, O1 graph",
    "ort-o2": "ONNX Runtime fp32, O2 graph (transformer fusions)",
    "ort-o3": "ONNX Runtime fp32, O3 graph (O2 + GELU approximation)",
    "ort-int8-pc": "ORT dynamic INT8, per-channel, every operator ORT quantizes",
    "ort-int8-static": "ORT static INT8 (QDQ), calibrated on corpus text, FFN down-projections fp32",
    "ort-int8-matmul": "ORT dynamic INT8, per-channel, MatMul only",
    "ort-int8-skip-last": "ORT dynamic INT8, per-channel, MatMul only, the last layer kept fp32",
    "ort-int8-skip-ffn-down": "ORT dynamic INT8, per-channel, MatMul only, FFN down-projections kept fp32",
    "ort-int8-skip-attn-out": "ORT dynamic INT8, per-channel, MatMul only, attention output projections kept fp32",
}
TORCH_VARIANTS = ("eager", "torch-bf16", "torch-int8")
LAYOUTS = ("threads", "processes")
PRELOAD = ("helpers.pipeline", "helpers.backends.engines")  # what forked workers import once, up front
PRECISION = {"eager": "fp32", "torch-bf16": "bf16", "torch-int8": "int8", "ort-o1": "fp32", "ort-o2": "fp32"}
PRECISION |= {"ort-o3": "fp32"} | {v: "int8" for v in VARIANTS if v.startswith("ort-int8")}

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
}


def check_variant(name: str) -> None:
    if name not in VARIANTS:
        raise ValueError(f"variant={name!r}; accepted: {', '.join(VARIANTS)}")


# -- making the ONNX file of a variant --------------------------------------------------------
_LAYER = re.compile(r"layers?[._/](\d+)[./]")


def matmul_nodes(onnx_path: str | Path) -> list[str]:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]


def excluded_nodes(onnx_path: str | Path, rule: str | None) -> list[str]:
    """Names of the MatMul nodes a recipe keeps in fp32: 'last-layer' (the encoder's last
    layer, found by the layer index in node names), 'ffn-down' (the FFN output projections,
    whose input carries GELU outliers), 'attn-out' (the attention output projections)."""
    from helpers.backends.quantize import down_projection_matmuls

    if not rule:
        return []
    if rule == "ffn-down":
        return down_projection_matmuls(onnx_path)
    names = matmul_nodes(onnx_path)
    if rule == "last-layer":
        layers = [int(m.group(1)) for n in names if (m := _LAYER.search(n))]
        return [n for n in names if layers and (m := _LAYER.search(n)) and int(m.group(1)) == max(layers)]
    if rule == "attn-out":
        return [n for n in names if re.search(r"attention[./]output|out_lin|attn[./]o(ut)?_?proj", n)]
    raise ValueError(f"exclude={rule!r}; accepted: last-layer, ffn-down, attn-out")


def make_variant_file(
    variant: str, loaded, out_dir: str | Path, calibration_texts: Sequence[str] = (), calibration_size: int = 32
) -> dict:
    """The ONNX file of an ORT variant under out_dir (reused when present): {file, seconds,
    status, message, excluded}. Never raises for a failed method (status error)."""
    import time

    from helpers.backends import export, quantize

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recipe = RECIPES[variant]
    out = out_dir / f"{variant}.onnx"
    plain = out_dir / "model.onnx"
    start = time.perf_counter()
    row = {"file": str(out), "status": "ok", "message": "", "excluded": 0}
    try:
        if not plain.exists():
            export.export_onnx(loaded, plain).raise_for_status()
        excluded = excluded_nodes(plain, recipe.get("exclude"))
        row["excluded"] = len(excluded)
        if out.exists():
            return {**row, "seconds": 0.0, "message": "reused"}
        if recipe["kind"] == "optimize":
            rec = export.optimize_onnx(plain, recipe["level"], out, **export.fusion_dims(loaded.config))
            rec.raise_for_status()
        elif recipe["kind"] == "static":
            if not calibration_texts:
                raise ValueError("static INT8 needs calibration texts")
            rec = quantize.ort_static(
                plain, out, list(calibration_texts), loaded.tokenizer, loaded.input_names, calibration_size
            )
            if rec.status != "ok":
                raise RuntimeError(rec.message)
        else:
            _dynamic(plain, out, recipe, excluded)
    except Exception as exc:  # recorded on the candidate's row
        row.update(status="error", message=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    if recipe.get("exclude") and row["status"] == "ok" and not row["message"]:
        row["message"] = f"{row['excluded']} MatMul node(s) kept in fp32 ({recipe['exclude']})"
    return {**row, "seconds": time.perf_counter() - start}


def _dynamic(plain: Path, out: Path, recipe: dict, excluded: list[str]) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from helpers.core import progress

    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR
    try:
        with progress.phase(f"quantizing {progress.short(out)}"):
            quantize_dynamic(
                plain,
                out,
                per_channel=recipe["per_channel"],
                weight_type=QuantType.QInt8,
                op_types_to_quantize=recipe["op_types"],
                nodes_to_exclude=excluded or None,
            )
    finally:
        root.setLevel(level)


# -- the pipeline -----------------------------------------------------------------------------
@dataclass
class Pipeline:
    """Everything that decides how a list of texts becomes embeddings (see the module doc).

    strategy / batch_size: workloads.batching's plans (token_budget: batch_size x the median
    length padded tokens per batch). layout 'threads': one process with `threads` threads;
    'processes': `threads` single-threaded processes, each encoding a contiguous share.
    overlap: a background thread tokenizes the next batch while the engine runs this one."""

    model: str = "minilm"
    variant: str = "eager"
    strategy: str = "sorted"
    batch_size: int = 32
    max_length: int = 256
    layout: str = "threads"
    threads: int = 1
    overlap: bool = False
    normalize: bool = True
    onnx_file: str = ""  # the variant's file (ORT variants); rebuilt from the recipe when missing
    calibration_texts: list = field(default_factory=list, repr=False)  # static INT8 only
    info: dict = field(default_factory=dict, repr=False)  # what measured it (floors, speed-up, machine)

    def __post_init__(self):
        from helpers.workloads.batching import STRATEGIES

        check_variant(self.variant)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r}; accepted: {', '.join(STRATEGIES)}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout={self.layout!r}; accepted: {', '.join(LAYOUTS)}")
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
        if self.variant == "ort-int8-static":
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
        threads = self.threads if self.layout == "threads" else 1
        if self.variant in TORCH_VARIANTS:
            self._engine = engines.build_engine(self.variant, loaded, threads=threads)
            return self._engine
        if not self.onnx_file or not Path(self.onnx_file).exists():
            from helpers.core import paths

            folder = paths.artifacts_dir() / "pipeline" / self.model.replace("/", "__")
            made = make_variant_file(self.variant, loaded, folder, self.calibration_texts or _corpus_sample())
            if made["status"] != "ok":
                raise RuntimeError(f"{self.variant}: {made['message']}")
            self.onnx_file = made["file"]
        self._engine = engines.engine_for_file("ort", self.onnx_file, loaded, threads=threads)
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
        engine, loaded = self.engine(), self._load()
        return encode_with(engine, loaded.tokenizer, loaded.input_names, texts, self, phases)

    def _encode_processes(self, texts: list[str]) -> np.ndarray:
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(list(PRELOAD))
            one = {**self.to_dict(), "layout": "threads", "threads": 1}
            # a worker that cannot start breaks the pool (an error here), never a silent respawn loop
            self._pool = ProcessPoolExecutor(self.threads, mp_context=ctx, initializer=_worker_init, initargs=(one,))
            list(self._pool.map(_worker_encode, [["warm-up"]] * self.threads))  # every worker built
        shares = [list(s) for s in np.array_split(np.asarray(texts, dtype=object), self.threads) if len(s)]
        return np.concatenate(list(self._pool.map(_worker_encode, shares)), axis=0)


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
    from helpers.workloads.batching import Batch, plan, run_dataset, token_lengths_capped

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
