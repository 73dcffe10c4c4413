"""OpenVINO: the model's IR converted from the cached ONNX export, NNCF INT8 variants of it, and
compiled models that run exactly the precision they claim.

Every file comes from the build cache (helpers.backends.cache), like the ORT files:
- `convert(loaded)`: the plain ONNX export converted to OpenVINO IR (model.xml + model.bin),
  dynamic batch and length (converting the torch model instead bakes the example's shape into
  some reshapes), weights kept fp32 (`ov.save_model` would store them as fp16 by default);
- `int8(loaded, texts, ...)`: NNCF post-training quantization of that IR (model type
  TRANSFORMER), calibrated on corpus text; with `floors`, `nncf.quantize_with_accuracy_control`
  reverts the quantizers that cost most until the cosine and recall@10 floors are met on
  validation texts (or nothing is left to revert); with `ignore`, an ignored scope keeps a rule's
  MatMuls in fp32 (the FFN down-projections, the ORT recipe that kept MiniLM above its floor).
  The record says which MatMuls stayed fp32.

`compile_ir(path, hint, threads)` compiles for the CPU with INFERENCE_PRECISION_HINT set and
reads it back: OpenVINO's CPU plugin runs bf16 by default on CPUs with AVX512-BF16 or AMX, so
an "fp32" engine without the hint would silently be a bf16 one.
"""

from __future__ import annotations

import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Sequence

import numpy as np

from helpers.backends import cache, export, registry
from helpers.backends.artifacts import Artifact, cached_artifact
from helpers.core.policy import POLICY


def _engine(name: str, precision: str, hint: str, file: str, description: str) -> registry.Entry:
    return registry.Entry(name, "encode", description, precision, "openvino", hint=hint, file=file)


# The OpenVINO encoder engines: the precision each claims, its INFERENCE_PRECISION_HINT, and how
# its IR is made (fp32: converted from the ONNX export; int8*: NNCF on that IR).
registry.add(
    _engine("ov", "fp32", "f32", "fp32", "OpenVINO fp32 (INFERENCE_PRECISION_HINT f32, read back)"),
    _engine("ov-bf16", "bf16", "bf16", "fp32", "OpenVINO bf16 (INFERENCE_PRECISION_HINT bf16, read back)"),
    _engine(
        "ov-int8",
        "int8",
        "f32",
        "int8",
        "OpenVINO INT8 (NNCF post-training, model type TRANSFORMER, corpus-calibrated), fp32 elsewhere",
    ),
    _engine(
        "ov-int8-ac",
        "int8",
        "f32",
        "int8-ac",
        "OpenVINO INT8 with NNCF accuracy control against the cosine and recall@10 floors, fp32 elsewhere",
    ),
    _engine(
        "ov-int8-skip-ffn-down",
        "int8",
        "f32",
        "int8-skip-ffn-down",
        "OpenVINO NNCF INT8 with the FFN down-projections in fp32 (an ignored scope)",
    ),
)


def engine_names() -> tuple[str, ...]:
    """The OpenVINO engines, in the registry's order."""
    return registry.names("encode", runtime="openvino")


CPUS = ("x86_64", "amd64", "i386", "i686")  # OpenVINO's CPU plugin is built and tested for x86
CALIBRATION_SEQ_LEN = 128
VALIDATION_SIZE = 128  # texts the accuracy control validates on (recall@10 needs more than 10)
RANKING_SUBSET = 32  # texts each reverted quantizer is ranked on (NNCF's default, 300, is slow)
# NNCF reverts one group of quantizers per iteration and ranks the rest again after a step that
# did not help: one ranking compiles a model per group (33 groups on MiniLM, minutes on 2 cores)
MAX_ITERATIONS = 6


def unavailable() -> str:
    """Why OpenVINO cannot run here ('' when it can): a CPU it is not built for, an import
    that fails, or no CPU device."""
    machine = platform.machine().lower()
    if machine not in CPUS:
        return f"OpenVINO's CPU plugin targets x86; this machine is {platform.machine()}"
    try:
        import openvino
    except Exception as exc:  # not installed, or a broken wheel
        return f"openvino cannot be imported: {type(exc).__name__}: {exc}"
    devices = openvino.Core().available_devices
    return "" if "CPU" in devices else f"OpenVINO sees no CPU device (devices: {devices})"


def versions() -> dict:
    """The versions of OpenVINO and NNCF (part of every OpenVINO file's cache key)."""
    found = {}
    for name in ("openvino", "nncf"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _skipped(kind: str, name: str, reason: str) -> Artifact:
    return Artifact(kind, name, None, status="skipped", message=reason, warning_count=0)


# -- the fp32 IR ----------------------------------------------------------------------------------
def _convert(onnx_path: str, folder: Path) -> Artifact:
    import openvino as ov

    out = folder / "model.xml"
    start = time.perf_counter()
    try:
        with export.collect_warnings() as caught:
            ov.save_model(ov.convert_model(onnx_path), str(out), compress_to_fp16=False)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"[:500]
        return Artifact("export", "openvino", None, time.perf_counter() - start, status="error", message=message)
    size = sum(p.stat().st_size for p in folder.glob("model.*")) / 2**20
    return Artifact(
        "export",
        "openvino",
        str(out),
        time.perf_counter() - start,
        size,
        message=export.summarize_warnings(caught),
        warning_count=len(caught),
        node_count=len(ov.Core().read_model(str(out)).get_ordered_ops()),
        fused_ops={},
    )


def convert(loaded) -> Artifact:
    """The model as OpenVINO IR (fp32 weights, dynamic batch and length), from the build cache:
    converted from the cached plain ONNX export once per model and library versions. A record
    with status "skipped" (not cached) where OpenVINO cannot run."""
    reason = unavailable()
    if reason:
        return _skipped("export", "openvino", reason)
    plain = export.produce("onnx", loaded)
    if plain.status != "ok":
        message = f"the plain ONNX export failed: {plain.message}"
        return Artifact("export", "openvino", None, status="error", message=message, warning_count=0)
    recipe = {"from": "onnx", "compress_to_fp16": False, **versions()}
    fields = cache.key_fields(loaded, "openvino", recipe=recipe, opset=export.OPSET)
    return cached_artifact(
        fields,
        lambda folder: _convert(plain.path, folder),
        kind="export",
        name="openvino",
        label=f"converting {loaded.name}'s ONNX export to OpenVINO IR",
    )


# -- INT8 (NNCF) ----------------------------------------------------------------------------------
def _items(texts: Sequence[str], tokenizer, input_names: Sequence[str]) -> list[dict]:
    """One text per item, tokenized to its own length (up to CALIBRATION_SEQ_LEN)."""
    items = []
    for text in texts:
        enc = tokenizer([text], truncation=True, max_length=CALIBRATION_SEQ_LEN, return_tensors="np")
        items.append({name: enc[name].astype(np.int64) for name in input_names if name in enc})
    return items


def _embeddings(compiled, items: list[dict]) -> np.ndarray:
    from helpers.core.fidelity import mean_pool

    return np.concatenate([mean_pool(compiled(item)[0], item["attention_mask"]) for item in items])


def floor_score(reference: np.ndarray, emb: np.ndarray, min_cosine: float, min_recall: float) -> float:
    """How far a variant's embeddings are above the floors, as one number: 1 for embeddings
    equal to the reference, 0 at the nearer floor (min cosine or recall@10), below 0 under it."""
    from helpers.core.fidelity import cosines, recall_at_k

    cosine = (cosines(reference, emb).min() - min_cosine) / (1 - min_cosine)
    if len(reference) <= 10:  # recall@10 needs more than 10 texts
        return float(cosine)
    recall = (recall_at_k(reference, emb, k=10) - min_recall) / (1 - min_recall)
    return float(min(cosine, recall))


def _validation(fp32_model, items: list[dict], floors: dict):
    """NNCF's validation function: floor_score of a model's embeddings against the fp32 IR's
    (hint f32) on the same items; higher is better, and the fp32 model itself scores 1."""
    import openvino as ov

    reference_model = ov.Core().compile_model(fp32_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    # NNCF hands back the items themselves (whole, or a ranking subset): their reference
    # embeddings are computed once
    reference = {id(item["input_ids"]): row for item, row in zip(items, _embeddings(reference_model, items))}

    def validate(compiled, data) -> float:
        data = list(data)
        ref = np.stack([reference[id(item["input_ids"])] for item in data])
        return floor_score(ref, _embeddings(compiled, data), floors["min_cosine"], floors["min_recall_at_10"])

    return validate


def quantized_matmuls(model) -> tuple[list[str], list[str]]:
    """(MatMuls with a FakeQuantize on an input, MatMuls without) of an OpenVINO model."""
    quantized, kept = [], []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        sources = [op.input_value(i).get_node().get_type_name() for i in range(op.get_input_size())]
        (quantized if "FakeQuantize" in sources else kept).append(op.get_friendly_name())
    return quantized, kept


def _quantize(
    fp32_xml: str, folder: Path, loaded, texts: list[str], validation: list[str], floors, ignored: list[str]
) -> Artifact:
    import nncf
    import openvino as ov

    model = ov.Core().read_model(fp32_xml)
    calibration = nncf.Dataset(_items(texts, loaded.tokenizer, loaded.input_names))
    common = {"model_type": nncf.ModelType.TRANSFORMER, "subset_size": len(texts)}
    if ignored:
        common["ignored_scope"] = nncf.IgnoredScope(names=ignored)
    name = _method(floors, ignored)
    start = time.perf_counter()
    if floors:
        items = _items(validation, loaded.tokenizer, loaded.input_names)
        restorer = nncf.AdvancedAccuracyRestorerParameters(
            max_num_iterations=MAX_ITERATIONS, ranking_subset_size=RANKING_SUBSET, num_ranking_workers=1
        )
        quantized = nncf.quantize_with_accuracy_control(
            model,
            calibration,
            nncf.Dataset(items),
            _validation(model, items, floors),
            max_drop=1.0,  # floor_score 1 (fp32) minus 1: the floors themselves
            drop_type=nncf.DropType.ABSOLUTE,
            advanced_accuracy_restorer_parameters=restorer,
            **common,
        )
    else:
        quantized = nncf.quantize(model, calibration, **common)
    seconds = time.perf_counter() - start
    out = folder / "model.xml"
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    done, kept = quantized_matmuls(quantized)
    fake = sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ordered_ops())
    size = sum(p.stat().st_size for p in folder.glob("model.*")) / 2**20
    record = Artifact(
        "quantization",
        name,
        str(out),
        seconds,
        size,
        details={"calibration_size": len(texts), "calibration_seq_len": CALIBRATION_SEQ_LEN},
    )
    record.details |= {"excluded_nodes": len(kept), "weight_type": "INT8", "activation_type": "INT8"}
    record.message = (
        f"{len(done)} of {len(done) + len(kept)} MatMuls INT8 ({fake} FakeQuantize nodes); "
        f"fp32: {', '.join(kept) or 'none'}"
    )
    return record


def _method(floors: dict | None, ignore: str | list | None) -> str:
    return "nncf_int8_ac" if floors else f"nncf_int8_skip_{ignore}" if ignore else "nncf_int8"


def int8(
    loaded,
    calibration_texts: Sequence[str],
    calibration_size: int = 300,
    floors: dict | None = None,
    ignore: str | None = None,
) -> Artifact:
    """NNCF INT8 of the model's IR (model type TRANSFORMER), calibrated on `calibration_size`
    texts spread over `calibration_texts`, from the build cache. With `floors`
    ({"min_cosine", "min_recall_at_10"}), accuracy control validates on VALIDATION_SIZE texts
    of the same pool and keeps in fp32 what it must to meet them; `ignore` names a rule of
    quantize.excluded_nodes (e.g. "ffn-down") whose MatMuls NNCF leaves in fp32 (an ignored
    scope). The message lists the MatMuls left in fp32; the record's seconds are NNCF's (the
    build's, also when reused)."""
    from helpers.backends.quantize import calibration_subset, excluded_nodes

    fp32 = convert(loaded)
    name = _method(floors, ignore)
    if fp32.status != "ok":
        return Artifact("quantization", name, None, status=fp32.status, message=fp32.message)
    texts = calibration_subset(calibration_texts, calibration_size)
    validation = calibration_subset(calibration_texts, VALIDATION_SIZE) if floors else []
    if not texts:
        return Artifact("quantization", name, None, status="error", message="NNCF INT8 needs calibration texts")
    recipe = {
        "model_type": "transformer",
        "calibration": cache.texts_digest(texts),
        "validation": cache.texts_digest(validation) if floors else None,
        "floors": floors,
        "seq_len": CALIBRATION_SEQ_LEN,
        "ranking_subset": RANKING_SUBSET if floors else None,
        "max_iterations": MAX_ITERATIONS if floors else None,
        "ignore": ignore,
        **versions(),
    }
    fields = cache.key_fields(loaded, "openvino-int8", recipe=recipe, opset=export.OPSET)
    what = "with accuracy control" if floors else f"{ignore} kept fp32" if ignore else "post-training"
    # the ONNX export's node names are the IR's operation names
    ignored = excluded_nodes(export.produce("onnx", loaded).path, ignore) if ignore else []
    return cached_artifact(
        fields,
        lambda folder: _quantize(fp32.path, folder, loaded, texts, validation, floors, ignored),
        kind="quantization",
        name=name,
        label=f"quantizing {loaded.name} with NNCF ({what}, {len(texts)} calibration texts)",
    )


# -- every OpenVINO engine's file, by name ----------------------------------------------------------
FLOORS = POLICY.floors  # ov-int8-ac's floors unless given: the decision policy's


def produce(
    name: str,
    loaded,
    calibration_texts: Sequence[str] = (),
    calibration_size: int = 300,
    floors: dict | None = None,
) -> Artifact:
    """The IR OpenVINO engine `name` (engine_names()) runs: the converted fp32 IR ("ov", "ov-bf16"),
    or its NNCF INT8 calibrated on `calibration_texts` (default: the odd texts of the built-in
    corpus, apart from the even ones 02 checks fidelity on), "ov-int8-ac" against `floors`."""
    if name not in engine_names():
        raise ValueError(f"engine={name!r}; accepted: {', '.join(engine_names())}")
    made = registry.get(name, "encode").file
    if made == "fp32":
        return convert(loaded)
    if not calibration_texts:
        from helpers.workloads.corpora import load_corpus

        calibration_texts = load_corpus().texts[1::2]
    floors = (floors or FLOORS) if made == "int8-ac" else None
    ignore = made.removeprefix("int8-skip-") if made.startswith("int8-skip-") else None
    return int8(loaded, calibration_texts, calibration_size, floors, ignore)


# -- compiling ------------------------------------------------------------------------------------
class PrecisionNotApplied(RuntimeError):
    """The compiled model does not run the precision that was asked for."""


def hint_of(compiled) -> str:
    """INFERENCE_PRECISION_HINT as the compiled model reports it: 'f32', 'bf16', 'f16'."""
    value = compiled.get_property("INFERENCE_PRECISION_HINT")
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def compile_ir(path: str | Path, hint: str, threads: int, streams: int = 1):
    """The IR compiled for the CPU at INFERENCE_PRECISION_HINT `hint` with `threads` inference
    threads and no dynamic quantization of activations: one stream (the LATENCY hint), or
    `streams` streams sharing the threads (the THROUGHPUT hint; requests run concurrently, one
    per stream). Threads are not pinned: a process pins nothing it does not own (07's
    'processes' layout runs several on the same cores). Raises PrecisionNotApplied when the
    compiled model reports another precision (a CPU without bf16 asked for bf16: OpenVINO
    falls back to f32)."""
    import openvino as ov

    config = {
        "INFERENCE_PRECISION_HINT": hint,
        "INFERENCE_NUM_THREADS": int(threads),
        "NUM_STREAMS": str(int(streams)),
        "PERFORMANCE_HINT": "LATENCY" if int(streams) == 1 else "THROUGHPUT",
        "ENABLE_CPU_PINNING": False,
        "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0",
    }
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    got = hint_of(compiled)
    if got != hint:
        raise PrecisionNotApplied(f"INFERENCE_PRECISION_HINT {hint} was asked, the compiled model runs {got}")
    return compiled
