"""Quantized and reduced-precision ONNX variants of an fp32 ONNX encoder.

Every function reads an fp32 ONNX file (the UN-optimized legacy export: quantizing an
ORT-optimized graph fails on fused operators) and writes a new file, returning an `Artifact`
of kind "quantization". Nothing raises on a failed method: the record says `status="error"` and
why, and a written file that onnxruntime cannot run on this machine is an error too.
`cached_variant(loaded, recipe)` is how the studies get a variant: from the build cache
(helpers.backends.cache), made from the cached plain export once per model, recipe and
library versions.

Torch-side variants (torch dynamic INT8, bf16) are built at run time by helpers.engines.
"""

from __future__ import annotations

import logging
import platform
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from helpers.backends import cache, export
from helpers.backends.artifacts import Artifact, cached_artifact
from helpers.backends.export import size_mb
from helpers.backends.onnxrt import cpu_session, session_options
from helpers.core import progress

# ORT's quantizer and optimum log advice at INFO/WARNING on every call; keep notebooks quiet.
_NOISY_LOGGERS = ("", "optimum", "onnxruntime")  # "" is the root logger


# How a variant was made: every quantization row has these columns (None where not applicable).
DETAILS = (
    "per_channel",
    "reduce_range",
    "weight_type",
    "activation_type",
    "quant_format",
    "calibration_size",
    "calibration_seq_len",
    "config",  # optimum's AutoQuantizationConfig name
    "excluded_nodes",  # operators left in fp32 on purpose
)


def variant_record(
    method: str,
    path: str | None,
    seconds: float | None,
    size: float | None,
    status: str,
    message: str = "",
    **details,
) -> Artifact:
    """The Artifact of one quantization method (optimum_dynamic | ort_dynamic | ort_static |
    fp16, or a name of variants.METHODS): `seconds` is the wall time of producing the file,
    calibration included."""
    unknown = set(details) - set(DETAILS)
    if unknown:
        raise TypeError(f"unknown quantization details {sorted(unknown)}; accepted: {DETAILS}")
    return Artifact(
        "quantization", method, path, seconds, size, status, message, details={**dict.fromkeys(DETAILS), **details}
    )


# ---------------------------------------------------------------- common machinery


def default_quant_config_name(cpu: dict | None = None) -> str:
    """optimum AutoQuantizationConfig matching the CPU: 'arm64' on ARM, 'avx512_vnni' with
    AVX512-VNNI, else 'avx2'. `cpu` is helpers.core.fingerprint.cpu_info()'s dict (read if None)."""
    if cpu is None:
        from helpers.core.fingerprint import cpu_info

        cpu = cpu_info()
    arch = (cpu.get("architecture") or platform.machine()).lower()
    if arch in ("arm64", "aarch64") or arch.startswith("arm"):
        return "arm64"
    return "avx512_vnni" if (cpu.get("flags") or {}).get("avx512_vnni") else "avx2"


def onnx_input_names(onnx_path: str | Path) -> list[str]:
    """Graph inputs of an ONNX file, in order (initializers excluded)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def _dummy_feed(session: Any, batch: int, seq_len: int) -> dict:
    # ids and mask of ones; zeros elsewhere (token_type_ids: RoBERTa-style has one type only)
    feed = {}
    for i in session.get_inputs():
        dtype = np.int32 if "int32" in i.type else np.int64
        fill = 1 if i.name in ("input_ids", "attention_mask") else 0
        feed[i.name] = np.full((batch, seq_len), fill, dtype=dtype)
    return feed


def smoke_run(onnx_path: str | Path, batch: int = 2, seq_len: int = 8) -> np.ndarray:
    """Run the file once in onnxruntime (CPU) on a small dummy batch; return the first
    output. Raises if ORT cannot load or run it, or the output is not finite."""
    session = cpu_session(onnx_path, session_options(1, inter_threads=None, log_severity=None))
    out = session.run(None, _dummy_feed(session, batch, seq_len))[0]
    if not np.isfinite(out.astype(np.float32)).all():
        raise FloatingPointError("output has NaN or Inf")
    return out


def _build(method: str, out_path: Path, produce: Callable[[], None], **details) -> Artifact:
    """Run `produce()` (which writes out_path), time it, check the file runs; never raise."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    quiet = [logging.getLogger(n or None) for n in _NOISY_LOGGERS]
    levels = [lg.level for lg in quiet]
    start = time.perf_counter()
    try:
        for lg in quiet:
            lg.setLevel(logging.ERROR)
        with progress.phase(f"quantizing {progress.short(out_path)} ({method})"):
            produce()
    except Exception as e:  # the record carries the failure; a notebook shows it
        return variant_record(
            method, None, time.perf_counter() - start, None, "error", f"{type(e).__name__}: {e}", **details
        )
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
    seconds = time.perf_counter() - start
    record = variant_record(method, str(out_path), seconds, size_mb(out_path), "ok", **details)
    try:
        smoke_run(out_path)
    except Exception as e:
        record.status = "error"
        record.message = f"written, but onnxruntime (CPU) cannot run it: {type(e).__name__}: {e}"
    return record


# ---------------------------------------------------------------- INT8


def ort_dynamic_optimum(
    onnx_path: str | Path, out_dir: str | Path, per_channel: bool, config_name: str | None = None
) -> Artifact:
    """Dynamic INT8 with optimum's ORTQuantizer and the AutoQuantizationConfig of this CPU
    (`config_name` overrides: avx512_vnni, avx2, arm64, ...). Writes
    out_dir/<stem>_int8_<pc|pt>.onnx, plus optimum's ort_config.json of the latest call."""
    name = config_name or default_quant_config_name()
    details = {"per_channel": per_channel, "config": name, "quant_format": "QOperator"}
    try:
        from optimum.onnxruntime import ORTQuantizer
        from optimum.onnxruntime.configuration import AutoQuantizationConfig
    except Exception as e:  # e.g. transformers 5.x, which optimum-onnx does not support
        return variant_record(
            "optimum_dynamic",
            None,
            None,
            None,
            "skipped",
            f"optimum.onnxruntime unavailable: {type(e).__name__}: {e}",
            **details,
        )
    config = getattr(AutoQuantizationConfig, name)(is_static=False, per_channel=per_channel)
    details.update(
        reduce_range=config.reduce_range,
        weight_type=config.weights_dtype.name,
        activation_type=config.activations_dtype.name,
    )
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    suffix = f"int8_{'pc' if per_channel else 'pt'}"
    out_path = out_dir / f"{onnx_path.stem}_{suffix}.onnx"

    def produce() -> None:
        # the constructor takes the file itself; from_pretrained wants a one-model folder
        ORTQuantizer(onnx_path).quantize(config, save_dir=out_dir, file_suffix=suffix)

    return _build("optimum_dynamic", out_path, produce, **details)


def ort_dynamic(
    onnx_path: str | Path,
    out_path: str | Path,
    per_channel: bool,
    reduce_range: bool = False,
    *,
    op_types: Sequence[str] | None = None,
    exclude: str | None = None,
) -> Artifact:
    """Dynamic INT8 with onnxruntime.quantization.quantize_dynamic: QInt8 weights, uint8
    activations quantized at run time per batch. `op_types` limits the operators quantized
    (None: every one ORT quantizes); `exclude` names a rule of `excluded_nodes` whose MatMuls
    stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded: list[str] = []  # filled inside produce(), so a bad file is recorded, not raised

    def produce() -> None:
        excluded.extend(excluded_nodes(onnx_path, exclude))
        quantize_dynamic(
            Path(onnx_path),
            Path(out_path),
            per_channel=per_channel,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(op_types) if op_types else None,
            nodes_to_exclude=excluded or None,
        )

    record = _build(
        "ort_dynamic",
        Path(out_path),
        produce,
        per_channel=per_channel,
        reduce_range=reduce_range,
        weight_type="QInt8",
        activation_type="QUInt8",
        quant_format="QOperator",
    )
    return _note_excluded(record, excluded, exclude)


def _note_excluded(record: Artifact, excluded: list[str], rule: str | None) -> Artifact:
    """The count of MatMuls kept fp32 in the record's details and, when nothing else is said, its message."""
    if rule:
        record.details["excluded_nodes"] = len(excluded)
    if excluded and not record.message:
        record.message = f"{len(excluded)} MatMul node(s) kept in fp32 ({rule})"
    return record


def calibration_subset(texts: Sequence[str], n: int) -> list[str]:
    """n texts evenly spread over `texts` (all of them if fewer): the corpus is ordered by
    source file, so its first n texts would all come from a few modules."""
    texts = list(texts)
    if n >= len(texts):
        return texts
    return [texts[i] for i in np.linspace(0, len(texts) - 1, n).round().astype(int)]


class TextCalibrationReader:
    """onnxruntime CalibrationDataReader over real texts tokenized at a fixed length."""

    def __init__(
        self, texts: Sequence[str], tokenizer: Any, input_names: Sequence[str], seq_len: int = 128, batch_size: int = 8
    ):
        enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=seq_len, return_tensors="np")
        self.batches = [
            {name: enc[name][i : i + batch_size].astype(np.int64) for name in input_names}
            for i in range(0, len(texts), batch_size)
        ]
        self.rewind()

    def get_next(self) -> dict | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self.batches)


def down_projection_matmuls(onnx_path: str | Path) -> list[str]:
    """Names of the MatMul/Gemm nodes whose weight shrinks the width (rows > columns): in a
    BERT-family encoder the FFN output projections (intermediate -> hidden), whatever the
    model's naming. Their input, the GELU output, has outliers a static range cannot cover."""
    import onnx

    model = onnx.load(str(onnx_path))
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        dims = [shapes[x] for x in node.input[1:2] if x in shapes]
        if dims and len(dims[0]) == 2 and dims[0][0] > dims[0][1]:
            names.append(node.name)
    return names


_LAYER = re.compile(r"layers?[._/](\d+)[./]")


def matmul_nodes(onnx_path: str | Path) -> list[str]:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]


def excluded_nodes(onnx_path: str | Path, rule: str | None) -> list[str]:
    """Names of the MatMul nodes a recipe keeps in fp32: 'last-layer' (the encoder's last
    layer, found by the layer index in node names), 'ffn-down' (the FFN output projections,
    whose input carries GELU outliers), 'attn-out' (the attention output projections)."""
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


def ort_static(
    onnx_path: str | Path,
    out_path: str | Path,
    calibration_texts: Sequence[str],
    tokenizer: Any,
    input_names: Sequence[str] | None = None,
    calibration_size: int = 128,
    per_channel: bool = True,
    *,
    seq_len: int = 128,
    batch_size: int = 8,
    op_types: Sequence[str] | None = ("MatMul", "Gather"),
    exclude: str | None = "ffn-down",
) -> Artifact:
    """Static INT8 (QDQ, signed weights and activations, MinMax ranges) calibrated on
    `calibration_size` texts spread over `calibration_texts`, tokenized to `seq_len`.

    Defaults, from measurements on all-MiniLM-L6-v2: MatMul (weights and activations) and
    Gather (the embedding tables, most of a small model's size) are quantized; every other
    operator (op_types=None) wrecks the embeddings (cosine ~0.1). The FFN down-projections
    stay fp32 (`exclude`, a rule of `excluded_nodes`): quantized, they alone cost ~0.1 of min
    cosine.
    `input_names` default to the graph's inputs.

    Speed: ORT's CPU provider fuses only the MatMuls whose output is quantized again into
    QLinearMatMul; the Q/K/V and FFN-up MatMuls feed an fp32 bias Add, so they run as
    DequantizeLinear + fp32 MatMul, and the file is no faster than fp32. Quantizing Add
    too fuses everything (about 2.5x faster on MiniLM) but the residual stream's outliers
    then drop cosine to ~0.35.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    texts = calibration_subset(calibration_texts, calibration_size)
    excluded: list[str] = []  # filled inside produce(), so a bad file is recorded, not raised

    def produce() -> None:
        names = list(input_names) if input_names is not None else onnx_input_names(onnx_path)
        excluded.extend(excluded_nodes(onnx_path, exclude))
        reader = TextCalibrationReader(texts, tokenizer, names, seq_len, batch_size)
        quantize_static(
            Path(onnx_path),
            Path(out_path),
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(op_types) if op_types else None,
            nodes_to_exclude=excluded,
            per_channel=per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )

    record = _build(
        "ort_static",
        Path(out_path),
        produce,
        per_channel=per_channel,
        reduce_range=False,
        weight_type="QInt8",
        activation_type="QInt8",
        quant_format="QDQ",
        calibration_size=len(texts),
        calibration_seq_len=seq_len,
    )
    return _note_excluded(record, excluded, exclude)


# ---------------------------------------------------------------- FP16


def cpu_fp32_fallback(onnx_path: str | Path) -> dict[str, int]:
    """Operators of an fp16 graph that onnxruntime's CPU provider feeds through Casts it
    inserts itself ('InsertedPrecisionFreeCast_*'), by op type: those run in fp32."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "cpu.onnx"
        options = session_options(
            None, inter_threads=None, log_severity=None, graph_level="basic", optimized_path=optimized
        )
        cpu_session(onnx_path, options)
        graph = onnx.load(str(optimized)).graph
    casts = {n.output[0] for n in graph.node if n.op_type == "Cast" and n.name.startswith("InsertedPrecisionFreeCast")}
    fed = Counter(n.op_type for n in graph.node if n.op_type != "Cast" and casts.intersection(n.input))
    return dict(fed.most_common())


def fp16(onnx_path: str | Path, out_path: str | Path) -> Artifact:
    """fp16 weights and compute via onnxruntime.transformers.float16, inputs and outputs
    kept fp32 (keep_io_types). ORT's CPU provider lacks fp16 kernels for many operators
    (MatMul among them on x86) and runs those in fp32 between inserted Casts: the message
    lists them. The file is half the size, but expect no speed-up on CPU."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    def produce() -> None:
        model = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
        onnx.save(model, str(out_path))

    record = _build("fp16", Path(out_path), produce, weight_type="FLOAT16", activation_type="FLOAT16")
    if record.status == "ok":
        try:
            fallback = cpu_fp32_fallback(record.path)
        except Exception as e:
            fallback, record.message = {}, f"fp32 fallback not inspected: {type(e).__name__}: {e}"
        if fallback:
            ops = ", ".join(f"{op} x{n}" for op, n in fallback.items())
            record.message = f"on CPU onnxruntime runs these in fp32 behind inserted Casts: {ops}"
    return record


# ---------------------------------------------------------------- recipes, through the build cache

# A recipe says how a variant file is made from the plain export: its kind (the method, and the
# cache's folder) and options; absent options take these defaults, so equal files key equally.
RECIPE_DEFAULTS = {
    "dynamic": {"per_channel": True, "reduce_range": False, "op_types": None, "exclude": None},
    "static": {
        "per_channel": True,
        "op_types": ["MatMul", "Gather"],
        "exclude": "ffn-down",
        "calibration_size": 128,
        "seq_len": 128,
        "batch_size": 8,
    },
    "fp16": {},
    "optimum-dynamic": {"per_channel": True, "config": None},  # config None: this CPU's
}
_CACHE_KIND = {"dynamic": "dynamic-int8", "static": "static-int8", "fp16": "fp16", "optimum-dynamic": "optimum-int8"}
_METHOD = {"dynamic": "ort_dynamic", "static": "ort_static", "fp16": "fp16", "optimum-dynamic": "optimum_dynamic"}


def full_recipe(recipe: dict) -> dict:
    """`recipe` with every option of its kind filled in; raises on an unknown kind or option."""
    kind = recipe.get("kind")
    if kind not in RECIPE_DEFAULTS:
        raise ValueError(f"recipe kind={kind!r}; accepted: {', '.join(RECIPE_DEFAULTS)}")
    unknown = set(recipe) - {"kind", *RECIPE_DEFAULTS[kind]}
    if unknown:
        raise ValueError(
            f"unknown options {sorted(unknown)} of a {kind} recipe; accepted: {list(RECIPE_DEFAULTS[kind])}"
        )
    full = {"kind": kind, **RECIPE_DEFAULTS[kind], **recipe}
    if kind == "optimum-dynamic" and full["config"] is None:
        full["config"] = default_quant_config_name()  # in the key: another CPU, another file
    if full.get("op_types"):
        full["op_types"] = list(full["op_types"])
    return full


def _make(recipe: dict, plain: str, folder: Path, loaded, texts: list[str]) -> Artifact:
    """Build a full recipe's file from the plain export into `folder`."""
    kind, out = recipe["kind"], folder / "model.onnx"
    if kind == "dynamic":
        options = {k: recipe[k] for k in ("per_channel", "reduce_range")}
        return ort_dynamic(plain, out, **options, op_types=recipe["op_types"], exclude=recipe["exclude"])
    if kind == "static":
        options = {k: recipe[k] for k in ("per_channel", "seq_len", "batch_size", "op_types", "exclude")}
        size = recipe["calibration_size"]
        return ort_static(plain, out, texts, loaded.tokenizer, loaded.input_names, size, **options)
    if kind == "fp16":
        return fp16(plain, out)
    return ort_dynamic_optimum(plain, folder, recipe["per_channel"], recipe["config"])


def cached_variant(loaded, recipe: dict, calibration_texts: Sequence[str] = ()) -> Artifact:
    """The ONNX file of a quantization `recipe` (kind dynamic | static | fp16 | optimum-dynamic
    and its options, see RECIPE_DEFAULTS) of a loaded model, from the build cache: made from
    the cached plain export once per model, recipe (static: the calibration texts used too)
    and library versions, then reused. The record's `cache` says "hit" or "miss"; its seconds
    are those of the build. A failed build is cached as a failure; never raises for one."""
    recipe = full_recipe(recipe)
    kind, method = recipe["kind"], _METHOD[recipe["kind"]]
    plain = export.produce("onnx", loaded)
    if plain.status != "ok":
        return variant_record(method, None, None, None, "error", f"the plain ONNX export failed: {plain.message}")
    key = dict(recipe)
    texts: list[str] = []
    if kind == "static":
        texts = calibration_subset(calibration_texts, recipe["calibration_size"])
        if not texts:
            return variant_record(method, None, None, None, "error", "static INT8 needs calibration texts")
        key["calibration"] = cache.texts_digest(texts)
    fields = cache.key_fields(loaded, _CACHE_KIND[kind], recipe=key, opset=export.OPSET)
    options = ", ".join(f"{k} {v}" for k, v in recipe.items() if k != "kind" and v not in (None, False, []))
    return cached_artifact(
        fields,
        lambda folder: _make(recipe, plain.path, folder, loaded, texts),
        kind="quantization",
        name=method,
        label=f"quantizing {loaded.name}: {method} ({options})",
    )
