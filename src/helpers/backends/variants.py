"""Precision variants of a model (torch bf16/int8, ONNX fp32/INT8/fp16): make the file, build the
engine, and the files an ORT engine of a sweep needs. best_int8_method reads 02's choice
from its result tables."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import pandas as pd
import torch

from helpers.backends import engines, export, quantize
from helpers.workloads.models import LoadedModel


# -- engine files prepared once per model in the parent ----------------------------------------
def best_int8_method(variant_rows: pd.DataFrame | None, speed_rows: pd.DataFrame | None) -> tuple[str, str]:
    """The ORT INT8 method 02_quantization found fastest within tolerance, and why it was chosen."""
    fallback = ("ort-int8-pc", "per-channel dynamic INT8 (02_quantization results not found)")
    if variant_rows is None or speed_rows is None or variant_rows.empty or speed_rows.empty:
        return fallback
    ok = variant_rows[
        (variant_rows["status"] == "ok")
        & variant_rows["method"].str.contains("int8")
        & ~variant_rows["method"].str.startswith("torch")
    ]
    speed = speed_rows.merge(ok[["model", "method"]], on=["model", "method"])
    if speed.empty:
        return fallback
    best = speed.groupby("method")["speedup"].median().idxmax()
    return best, f"{best}: fastest ORT INT8 method within tolerance in 02_quantization"


def prepare_files(
    loaded, wanted: list[str], out_dir: Path, ort_level: str, int8_method: str, calibration_texts
) -> dict[str, str]:
    """ONNX files for the ORT engines among `wanted` (cached on disk between runs)."""
    files = {}
    if not any(e.startswith("ort") for e in wanted):
        return files
    out_dir.mkdir(parents=True, exist_ok=True)
    plain = out_dir / "model.onnx"
    if not plain.exists():
        export.export_onnx(loaded, plain).raise_for_status()
    if "ort" in wanted:
        level = out_dir / f"model-{ort_level}.onnx"
        if not level.exists():
            export.optimize_onnx(plain, ort_level, level, **export.fusion_dims(loaded.config)).raise_for_status()
        files["ort"] = str(level)
    if "ort-int8" in wanted:
        row = produce(int8_method, loaded, plain, out_dir, calibration_texts, 64)
        if row["status"] != "ok":
            raise RuntimeError(f"{int8_method}: {row['message']}")
        files["ort-int8"] = row["file"]
    return files


METHODS = {
    "eager": "PyTorch eager fp32 (the reference)",
    "torch-bf16": "PyTorch under bf16 autocast (fp32 weights)",
    "torch-bf16-weights": "PyTorch with bf16 weights",
    "torch-int8": "PyTorch dynamic INT8 (torch.ao quantize_dynamic on Linear)",
    "ort-fp32": "ONNX Runtime fp32 (plain export)",
    "ort-int8-pt": "ORT quantize_dynamic INT8, per-tensor",
    "ort-int8-pc": "ORT quantize_dynamic INT8, per-channel",
    "optimum-int8-pt": "optimum ORTQuantizer dynamic INT8 for this CPU, per-tensor",
    "optimum-int8-pc": "optimum ORTQuantizer dynamic INT8 for this CPU, per-channel",
    "ort-int8-static": "ORT static INT8 (QDQ), calibrated on corpus text, per-channel",
    "ort-fp16": "ONNX fp16 weights and activations, fp32 inputs/outputs",
}


TORCH_METHODS = ("eager", "torch-bf16", "torch-bf16-weights", "torch-int8")


def _state_dict_mb(model: torch.nn.Module) -> float:
    """Size of a torch model as torch.save writes it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        torch.save(model.state_dict(), path)
        return path.stat().st_size / 2**20


def produce(
    method: str, loaded: LoadedModel, plain_onnx: Path, out_dir: Path, calibration_texts, calibration_size: int
) -> dict:
    """Make variant `method`; a row with its file (ONNX variants), size, time and status."""
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
        }
    out = out_dir / f"{method}.onnx"
    if method == "ort-fp32":
        record = quantize.variant_record(method, str(plain_onnx), 0.0, export.size_mb(plain_onnx), "ok")
    elif method in ("ort-int8-pt", "ort-int8-pc"):
        record = quantize.ort_dynamic(plain_onnx, out, per_channel=method.endswith("pc"))
    elif method in ("optimum-int8-pt", "optimum-int8-pc"):
        record = quantize.ort_dynamic_optimum(plain_onnx, out_dir / method, per_channel=method.endswith("pc"))
    elif method == "ort-int8-static":
        record = quantize.ort_static(
            plain_onnx, out, calibration_texts, loaded.tokenizer, loaded.input_names, calibration_size=calibration_size
        )
    else:
        record = quantize.fp16(plain_onnx, out)
    return {
        "method": method,
        "file": record.path or "",
        "size_mb": record.size_mb,
        "quant_seconds": record.seconds,
        "status": record.status,
        "message": record.message,
        "config": record.details["config"] or "",
    }


def _bf16_weights(loaded: LoadedModel, threads: int | None) -> engines.Engine:
    model = copy.deepcopy(loaded.model).to(torch.bfloat16).eval()
    engine = engines.build_engine("eager", loaded, threads=threads)
    engine.fn = export.wrap(loaded, model)
    engine.name, engine.precision = "torch-bf16-weights", "bf16"
    return engine


def build(method: str, loaded: LoadedModel, file: str | Path | None, threads: int | None = None) -> engines.Engine:
    """The engine that runs variant `method` (file: the ONNX file `produce` made)."""
    if method == "torch-bf16-weights":
        return _bf16_weights(loaded, threads)
    if method in TORCH_METHODS:
        return engines.build_engine(method, loaded, threads=threads)
    engine = engines.engine_for_file("ort", file, loaded, threads=threads)
    engine.name = method
    return engine
