"""Precision variants of a model (torch bf16/int8, ONNX fp32/INT8/fp16, OpenVINO fp32/bf16/INT8):
make the file, build the engine, and the files an ORT or OpenVINO engine of a sweep needs. Files
come from the build cache (helpers.backends.cache), so 02, 03 and 05 share them.
best_int8_method reads 02's choice from its result tables, on real weights only."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import torch

from helpers.backends import engines, export, ov, quantize
from helpers.workloads.models import SHAPES, LoadedModel


# -- engine files prepared once per model in the parent ----------------------------------------
def random_weights(variant_rows: pd.DataFrame) -> pd.Series:
    """Per row of 02_variants: whether it was measured on random weights (its `random_weights`
    column; in tables written before that column, its model's name: a built-in shape)."""
    if "random_weights" in variant_rows:
        return variant_rows["random_weights"].astype(str).str.lower().eq("true")
    return variant_rows["model"].astype(str).isin(SHAPES)


def _onnx_runtime(variant_rows: pd.DataFrame) -> pd.Series:
    """Per row of 02_variants: whether its method runs on ONNX Runtime (its `runtime` column; in
    tables written before that column, a method named neither torch-* nor ov-*)."""
    if "runtime" in variant_rows:
        return variant_rows["runtime"].eq("onnxruntime")
    return ~variant_rows["method"].str.startswith(("torch", "ov"))


def best_int8_method(
    variant_rows: pd.DataFrame | None, speed_rows: pd.DataFrame | None, *, real_weights_only: bool = True
) -> tuple[str, str]:
    """The ORT INT8 method 03 and 05 time, and why it was chosen: the fastest (median speed-up
    in 02_speed) among the methods within tolerance on every real-weight model 02_quantization
    measured. Random-weight fidelity never qualifies a method; without a real-weight
    measurement the default is per-channel dynamic INT8, with no fidelity known.
    `real_weights_only=False` is the rule of tables written before 03 recorded its recipe:
    the fastest method within tolerance on any model, speed taken on that model."""
    default = "ort-int8-pc"
    usable = variant_rows is not None and {"model", "method", "status"} <= set(variant_rows.columns)
    if not usable or speed_rows is None or not {"model", "method", "speedup"} <= set(speed_rows.columns):
        return default, f"{default}: per-channel dynamic INT8 (02_quantization results not found)"
    int8 = variant_rows[variant_rows["method"].str.contains("int8") & _onnx_runtime(variant_rows)]
    if real_weights_only:
        real = int8[~random_weights(int8)]
        if real.empty:
            return default, (
                f"{default}: per-channel dynamic INT8; 02_quantization measured no real-weight model, "
                "so no ORT INT8 method's fidelity is known"
            )
        passing = set(real["method"]) - set(real.loc[real["status"] != "ok", "method"])
        speed = speed_rows[speed_rows["method"].isin(passing)]
    else:
        speed = speed_rows.merge(int8.loc[int8["status"] == "ok", ["model", "method"]], on=["model", "method"])
    speed = speed[speed["speedup"].notna()]
    if speed.empty:
        return (
            default,
            f"{default}: per-channel dynamic INT8; no ORT INT8 method was within tolerance in 02_quantization",
        )
    best = speed.groupby("method")["speedup"].median().idxmax()
    weights = "real weights" if real_weights_only else "any model"
    return best, f"{best}: the fastest ORT INT8 method within tolerance on {weights} in 02_quantization"


def prepare_files(loaded, wanted: list[str], ort_level: str, int8_method: str, calibration_texts) -> dict[str, str]:
    """ONNX files for the ORT engines among `wanted` ("ort": the graph at `ort_level`,
    "ort-int8": `int8_method`), from the build cache; raises if one cannot be made."""
    files = {}
    if "ort" in wanted:
        files["ort"] = export.produce(f"onnx-{ort_level}", loaded).raise_for_status().path
    if "ort-int8" in wanted:
        row = produce(int8_method, loaded, calibration_texts, 64)
        if row["status"] != "ok":
            raise RuntimeError(f"{int8_method}: {row['message']}")
        files["ort-int8"] = row["file"]
    return files | ov_files(loaded, wanted, calibration_texts)


def ov_files(loaded, wanted: list[str], calibration_texts, calibration_size: int = 300) -> dict[str, str]:
    """OpenVINO IR files for the OpenVINO engines among `wanted`, from the build cache (NNCF
    calibrates on 300 texts, its default subset size); none where OpenVINO cannot run (their
    workers then say why: the rows are skipped)."""

    files = {}
    for name in (n for n in wanted if n in ov.engine_names() and not ov.unavailable()):
        files[name] = ov.produce(name, loaded, calibration_texts, calibration_size).raise_for_status().path
    return files


METHODS = {
    "eager": "PyTorch eager fp32 (the reference)",
    "torch-bf16": "PyTorch with bf16 weights",
    "torch-bf16-autocast": "PyTorch under bf16 autocast (fp32 weights)",
    "torch-int8": "PyTorch dynamic INT8 (torch.ao quantize_dynamic on Linear)",
    "ort-fp32": "ONNX Runtime fp32 (plain export)",
    "ort-int8-pt": "ORT quantize_dynamic INT8, per-tensor",
    "ort-int8-pc": "ORT quantize_dynamic INT8, per-channel",
    "optimum-int8-pt": "optimum ORTQuantizer dynamic INT8 for this CPU, per-tensor",
    "optimum-int8-pc": "optimum ORTQuantizer dynamic INT8 for this CPU, per-channel",
    "ort-int8-static": "ORT static INT8 (QDQ), calibrated on corpus text, per-channel",
    "ort-fp16": "ONNX fp16 weights and activations, fp32 inputs/outputs",
    "ov": "OpenVINO fp32 (INFERENCE_PRECISION_HINT f32)",
    "ov-bf16": "OpenVINO bf16 (INFERENCE_PRECISION_HINT bf16)",
    "ov-int8": "OpenVINO INT8, NNCF post-training (TRANSFORMER), calibrated on corpus text",
    "ov-int8-ac": "OpenVINO INT8, NNCF accuracy control against min cosine 0.99 and recall@10 0.95",
    "ov-int8-skip-ffn-down": "OpenVINO NNCF INT8, the FFN down-projections kept fp32 (an ignored scope)",
}


TORCH_METHODS = ("eager", "torch-bf16", "torch-bf16-autocast", "torch-int8")
OV_METHODS = tuple(m for m in METHODS if m.startswith("ov"))
# how each ONNX method but ort-fp32 (the plain export itself) is made (quantize.full_recipe)
RECIPES = {
    "ort-int8-pt": {"kind": "dynamic", "per_channel": False},
    "ort-int8-pc": {"kind": "dynamic", "per_channel": True},
    "optimum-int8-pt": {"kind": "optimum-dynamic", "per_channel": False},
    "optimum-int8-pc": {"kind": "optimum-dynamic", "per_channel": True},
    "ort-int8-static": {"kind": "static", "per_channel": True},
    "ort-fp16": {"kind": "fp16"},
}


def _state_dict_mb(model: torch.nn.Module) -> float:
    """Size of a torch model as torch.save writes it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        torch.save(model.state_dict(), path)
        return path.stat().st_size / 2**20


def _onnx_record(method: str, loaded: LoadedModel, calibration_texts, calibration_size: int):
    if method in OV_METHODS:
        from helpers.backends import ov

        return ov.produce(method, loaded, calibration_texts, calibration_size)
    if method == "ort-fp32":  # the plain export: nothing to quantize
        plain = export.produce("onnx", loaded)
        record = quantize.variant_record(method, plain.path, 0.0, plain.size_mb, plain.status)
        record.message, record.cache = ("" if plain.status == "ok" else plain.message), plain.cache
        return record
    recipe = dict(RECIPES[method])
    if recipe["kind"] == "static":
        recipe["calibration_size"] = calibration_size
    return quantize.cached_variant(loaded, recipe, calibration_texts)


def produce(method: str, loaded: LoadedModel, calibration_texts, calibration_size: int) -> dict:
    """Make variant `method`; a row with its file (ONNX variants, from the build cache), size,
    time (quant_seconds: the build's, also when reused) and status, and `cache` (hit or miss)."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}; accepted: {', '.join(METHODS)}")
    if method in TORCH_METHODS:
        engine = build(method, loaded, None)  # also checks it can be built here
        model = engine.fn.model if hasattr(engine.fn, "model") else loaded.model
        return {
            "method": method,
            "file": "",
            "size_mb": _state_dict_mb(model),
            "quant_seconds": 0.0,
            "status": "ok",
            "message": "",
            "cache": "",
        }
    record = _onnx_record(method, loaded, calibration_texts, calibration_size)
    return {
        "method": method,
        "file": record.path or "",
        "size_mb": record.size_mb,
        "quant_seconds": record.seconds,
        "status": record.status,
        "message": record.message,
        "config": record.details.get("config") or "",
        "excluded_nodes": record.details.get("excluded_nodes"),
        "cache": record.cache or "",
    }


def build(
    method: str, loaded: LoadedModel | None, file: str | Path | None, threads: int | None = None
) -> engines.Engine:
    """The engine that runs variant `method` (file: the ONNX or OpenVINO file `produce` made;
    `loaded` is needed by the torch variants only)."""
    if method in TORCH_METHODS:
        return engines.build_engine(method, loaded, threads=threads)
    engine = engines.engine_for_file(method if method in OV_METHODS else "ort", file, loaded, threads=threads)
    engine.name = method
    return engine
