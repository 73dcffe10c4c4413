"""The inference engines the study compares, by the names notebooks and profiles use.

Each name is a way to run a BERT-family encoder: a runtime, a precision and a graph form (the
registry's "encode" task: this module adds the torch and ONNX Runtime engines, helpers.backends.ov
the OpenVINO ones).
`build_engine(name, loaded, ...)` returns an `Engine`: call it on a tokenized batch for the
last hidden state as float32 numpy, or `prepare` a batch once and time `run_prepared`.
`check_against_reference` compares an engine's output with eager fp32's.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from helpers.backends import export, onnxrt, ov, registry
from helpers.core import fidelity
from helpers.workloads.models import LoadedModel

TASK = "encode"  # the registry's task of these engines


def _entry(name: str, runtime: str, precision: str, description: str, **more) -> registry.Entry:
    return registry.Entry(name, TASK, description, precision, runtime, **more)


# The torch and ONNX Runtime engines (the OpenVINO ones are helpers.backends.ov's), with the
# precision each claims.
registry.add(
    _entry("eager", "torch", "fp32", "PyTorch eager, fp32", reference=True),
    _entry("torchscript", "torch", "fp32", "TorchScript (torch.jit.trace), fp32"),
    _entry("compile", "torch", "fp32", "torch.compile (inductor), fp32"),
    _entry("compile-bf16", "torch", "bf16", "torch.compile (inductor, frozen weights), bf16 weights"),
    _entry("compile-cudagraphs", "torch", "fp32", "torch.compile mode='reduce-overhead' (CUDA graphs), fp32 (CUDA)"),
    _entry("torch-bf16", "torch", "bf16", "PyTorch eager with bf16 weights (model.to(torch.bfloat16))"),
    _entry(
        "torch-bf16-autocast",
        "torch",
        "bf16",
        "PyTorch eager, fp32 weights under bf16 autocast (weights re-cast every call)",
    ),
    _entry("torch-fp16", "torch", "fp16", "PyTorch eager in fp16 (CUDA)"),
    _entry("torch-int8", "torch", "int8", "PyTorch dynamic INT8 (torch.ao quantize_dynamic)"),
    _entry("ort", "onnxruntime", "fp32", "ONNX Runtime fp32, best graph optimization level"),
    _entry("ort-int8", "onnxruntime", "int8", "ONNX Runtime dynamic INT8 (best method of 02)"),
    _entry("ort-fp16", "onnxruntime", "fp16", "ONNX Runtime fp16 (CUDA, O4 graph)"),
    _entry("ort-trt", "onnxruntime", "fp32", "ONNX Runtime with the TensorRT execution provider, fp32 (CUDA)"),
    _entry("ort-o1", "onnxruntime", "fp32", "ONNX Runtime fp32, O1 graph (basic ORT rewrites)"),
    _entry("ort-o2", "onnxruntime", "fp32", "ONNX Runtime fp32, O2 graph (transformer fusions)"),
    _entry("ort-o3", "onnxruntime", "fp32", "ONNX Runtime fp32, O3 graph (O2 + GELU approximation)"),
)


# Agreement with eager fp32 (last hidden state; BERT-family hidden states are LayerNorm
# outputs of magnitude ~1-10). atol bounds the max abs diff over valid tokens; min_cosine
# bounds the cosine of mean-pooled embeddings, the quantity users consume. Measured on this
# CPU (bert-tiny, bert-base shape, MiniLM; 8 x 128 real text):
# - fp32: only summation order and fused kernels differ: ~1e-6, ~4e-3 with ORT O3's tanh
#   GELU. A real bug (wrong weights, a baked-in shape, a lost mask) moves outputs by 0.1-1,
#   so a tight bound separates the two cleanly.
# - bf16: 8 mantissa bits (~4e-3 relative error per op, compounding over layers): ~0.02 and
#   cosine 0.99998 measured; bounds leave ~10x margin.
# - fp16: 11 mantissa bits, ~8x finer than bf16, so tighter bounds.
# - int8: values rounded to 256 levels; max abs diff is dominated by outlier activations
#   (1.1 on MiniLM), so atol is loose and the cosine bound decides: below 0.95 a variant no
#   longer stands in for the model's embeddings (torch dynamic INT8 on MiniLM: ~0.92, a
#   mismatch; ORT per-channel ~0.99). 02_quantization measures retrieval recall beside it.
TOLERANCES = {
    "fp32": {"atol": 1e-2, "min_cosine": 0.9999},
    "bf16": {"atol": 0.25, "min_cosine": 0.999},
    "fp16": {"atol": 0.1, "min_cosine": 0.9995},
    "int8": {"atol": 3.0, "min_cosine": 0.95},
    "int4": {"atol": 3.0, "min_cosine": 0.95},  # MatMulNBits graphs made elsewhere: int8's bar
}


class EngineUnavailable(Exception):
    """This engine cannot run on this machine (no CUDA, missing provider...); str is why."""


@dataclass
class Engine:
    """One way to run a model. Subclasses implement prepare / run_prepared / to_numpy."""

    name: str
    runtime: str  # torch / onnxruntime / openvino
    precision: str  # fp32 / bf16 / fp16 / int8
    graph: str  # eager / torchscript / compile / onnx / onnx-O2 ...
    provider: str  # ORT provider in use, or cpu / cuda for torch
    device: str
    threads: int
    cold_start: str = ""  # what the first call(s) include beyond inference, if anything
    notes: str = ""  # warnings collected while building
    recipe: str = ""  # the 02_quantization method this engine runs, where it is not its name (ort-int8)

    def describe(self) -> dict:
        keys = ("name", "runtime", "precision", "graph", "provider", "device", "threads", "cold_start")
        return {key: getattr(self, key) for key in keys}

    def prepare(self, batch: dict) -> Any:
        """Inputs converted once (device, numpy...), so timing covers the model only."""
        raise NotImplementedError

    def run_prepared(self, prepared: Any) -> Any:
        """Run on prepared inputs; returns when the device work is done."""
        raise NotImplementedError

    def to_numpy(self, output: Any) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, batch: dict) -> np.ndarray:
        """Last hidden state of a tokenized batch (dict of tensors), float32 numpy."""
        return self.to_numpy(self.run_prepared(self.prepare(batch)))


@dataclass
class TorchEngine(Engine):
    fn: Callable[..., torch.Tensor] | None = field(default=None, repr=False)
    input_names: list[str] = field(default_factory=list)
    autocast: torch.dtype | None = None

    def prepare(self, batch: dict) -> tuple[torch.Tensor, ...]:
        return tuple(batch[name].to(self.device) for name in self.input_names)

    def run_prepared(self, prepared: tuple[torch.Tensor, ...]) -> torch.Tensor:
        device_type = torch.device(self.device).type
        cast = torch.autocast(device_type, dtype=self.autocast) if self.autocast else nullcontext()
        with torch.no_grad(), cast:
            out = self.fn(*prepared)
        if device_type == "cuda":
            torch.cuda.synchronize()
        return out

    def to_numpy(self, output: torch.Tensor) -> np.ndarray:
        return output.float().cpu().numpy()


def int64_feeds(names: list[str], batch: dict) -> dict[str, np.ndarray]:
    """A tokenized batch as the contiguous int64 arrays a graph with inputs `names` takes
    (token_type_ids zeros where the graph wants it and the tokenizer gave none)."""
    feeds = {}
    for name in names:
        value = batch.get(name)
        if value is None and name == "token_type_ids":
            value = torch.zeros_like(batch["input_ids"])
        if isinstance(value, torch.Tensor):
            value = value.cpu().numpy()
        feeds[name] = np.ascontiguousarray(value, dtype=np.int64)
    return feeds


@dataclass
class OrtEngine(Engine):
    session: Any = field(default=None, repr=False)
    output_name: str = export.OUTPUT_NAME

    @property
    def _cuda(self) -> bool:
        return self.provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider")

    def prepare(self, batch: dict) -> Any:
        feeds = int64_feeds([item.name for item in self.session.get_inputs()], batch)
        if not self._cuda:
            return feeds
        # IO binding: inputs copied to the GPU here, once; the output stays on the GPU, so
        # timing run_prepared measures the model and no host<->device copies.
        import onnxruntime as ort

        index = torch.device(self.device).index or 0
        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, "cuda", index))
        binding.bind_output(self.output_name, "cuda", index)
        return binding

    def run_prepared(self, prepared: Any) -> Any:
        if not self._cuda:
            return self.session.run([self.output_name], prepared)
        self.session.run_with_iobinding(prepared)
        prepared.synchronize_outputs()
        return prepared

    def to_numpy(self, output: Any) -> np.ndarray:
        first = output[0] if not self._cuda else output.copy_outputs_to_cpu()[0]
        return np.asarray(first, dtype=np.float32)


@dataclass
class OvEngine(Engine):
    """An OpenVINO compiled model (helpers.backends.ov.compile_ir) and one infer request;
    with several streams, `queue` runs that many requests at once."""

    compiled: Any = field(default=None, repr=False)
    streams: int = 1

    def __post_init__(self) -> None:
        self.request = self.compiled.create_infer_request()
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]

    def prepare(self, batch: dict) -> dict[str, np.ndarray]:
        return int64_feeds(self.input_names, batch)

    def run_prepared(self, prepared: dict) -> Any:
        return self.request.infer(prepared)

    def to_numpy(self, output: Any) -> np.ndarray:
        return np.array(output[0], dtype=np.float32)

    def queue(self, on_done: Callable[[np.ndarray, Any], None]):
        """An AsyncInferQueue of one request per stream; each finished request calls
        on_done(its first output, copied; the userdata given to start_async)."""
        import openvino as ov

        jobs = ov.AsyncInferQueue(self.compiled, self.streams)
        jobs.set_callback(lambda request, userdata: on_done(np.array(request.get_output_tensor(0).data), userdata))
        return jobs


def _threads(threads: int | None) -> int:
    """Torch intra-op threads and ORT intra_op_num_threads are set together, to one value."""
    if threads is not None:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def _check_device(device: str) -> str:
    kind = torch.device(device).type
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r}; accepted: 'cpu', 'cuda', 'cuda:N'")
    return kind


def _model_on(loaded: LoadedModel, device: str, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """The model on `device` (and dtype): the loaded one itself where it already is, else a
    copy, so building a GPU or fp16 engine never changes the model other engines use."""
    here, there = next(loaded.model.parameters()).device, torch.device(device)
    if (here.type, here.index or 0) == (there.type, there.index or 0) and dtype is None:
        return loaded.model
    return copy.deepcopy(loaded.model).to(device=device, dtype=dtype).eval()


def _torch(
    name: str,
    loaded: LoadedModel,
    device: str,
    threads: int,
    fn,
    *,
    precision="fp32",
    graph="eager",
    autocast=None,
    cold_start="",
    notes="",
) -> TorchEngine:
    return TorchEngine(
        name=name,
        runtime="torch",
        precision=precision,
        graph=graph,
        provider=torch.device(device).type,
        device=device,
        threads=threads,
        cold_start=cold_start,
        notes=notes,
        fn=fn,
        input_names=list(loaded.input_names),
        autocast=autocast,
    )


def _needs_cuda(name: str, device: str) -> None:
    if torch.device(device).type != "cuda" or not torch.cuda.is_available():
        raise EngineUnavailable(
            f"{name} runs on CUDA only (device={device!r}, torch.cuda.is_available()={torch.cuda.is_available()})"
        )


def _eager(name, loaded, device, threads):
    return _torch(name, loaded, device, threads, export.wrap(loaded, _model_on(loaded, device)))


def _torchscript(name, loaded, device, threads):
    with export.collect_warnings() as caught:  # jit.trace deprecation, tracer warnings
        traced = export.trace_torchscript(loaded, export.example_batch(loaded), _model_on(loaded, device))
    return _torch(
        name,
        loaded,
        device,
        threads,
        traced,
        graph="torchscript",
        cold_start="profiling executor (first calls)",
        notes=export.summarize_warnings(caught),
    )


# torch.compile runs a function eagerly, silently, once it has been recompiled
# `recompile_limit` times (8): a sweep over many shapes would time eager fp32 as "compile".
# The limit is raised above any sweep's shapes, and reaching it raises (the row is an error).
RECOMPILE_LIMIT = 256


def torch_compile(module, **options):
    """torch.compile(module, **options), never falling back to eager without an error."""
    import torch._dynamo

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    return torch.compile(module, **options)


def _compile(name, loaded, device, threads, *, dtype=None, precision="fp32", graph="compile", **options):
    with export.collect_warnings() as caught:  # importing dynamo warns of jit deprecations
        # torch's default shapes, what `torch.compile(model)` gives a user: the first shape
        # static, then one recompile with dynamic sizes where a size changes (not one per shape)
        fn = torch_compile(export.wrap(loaded, _model_on(loaded, device, dtype)), **options)
    return _torch(
        name,
        loaded,
        device,
        threads,
        fn,
        precision=precision,
        graph=graph,
        cold_start="compile (the first shape static, then dynamic sizes where a size changes)",
        notes=export.summarize_warnings(caught),
    )


def _compile_cudagraphs(name, loaded, device, threads):
    _needs_cuda(name, device)
    with export.collect_warnings() as caught:
        fn = torch_compile(export.wrap(loaded, _model_on(loaded, device)), mode="reduce-overhead", dynamic=False)
    return _torch(
        name,
        loaded,
        device,
        threads,
        fn,
        graph="compile-cudagraphs",
        cold_start="compile and CUDA graph capture (once per new shape)",
        notes=export.summarize_warnings(caught),
    )


def _bf16(name, loaded, device, threads):
    model = _model_on(loaded, device, torch.bfloat16)
    return _torch(name, loaded, device, threads, export.wrap(loaded, model), precision="bf16")


def _bf16_autocast(name, loaded, device, threads):
    return _torch(
        name,
        loaded,
        device,
        threads,
        export.wrap(loaded, _model_on(loaded, device)),
        precision="bf16",
        graph="eager-autocast",
        autocast=torch.bfloat16,
    )


def _compile_bf16(name, loaded, device, threads):
    # freezing: inductor folds the bf16 weights into constants and prepacks them for oneDNN
    bf16 = {"dtype": torch.bfloat16, "precision": "bf16", "graph": "compile-frozen"}
    return _compile(name, loaded, device, threads, **bf16, options={"freezing": True})


def _fp16(name, loaded, device, threads):
    _needs_cuda(name, device)
    model = _model_on(loaded, device, torch.float16)
    return _torch(name, loaded, device, threads, export.wrap(loaded, model), precision="fp16")


def _int8(name, loaded, device, threads):
    if torch.device(device).type != "cpu":
        raise EngineUnavailable(f"{name}: torch dynamic quantization runs on CPU only")
    with export.collect_warnings() as caught:  # torch.ao deprecation warnings
        model = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(loaded.model), {torch.nn.Linear}, dtype=torch.qint8
        )
    return _torch(
        name,
        loaded,
        device,
        threads,
        export.wrap(loaded, model),
        precision="int8",
        notes=export.summarize_warnings(caught),
    )


# ort-trt gets the plain graph: TensorRT does its own fusions and does not know ORT's
# contrib operators.
_ORT_LEVEL = {"ort": "O2", "ort-o1": "O1", "ort-o2": "O2", "ort-o3": "O3", "ort-fp16": "O4", "ort-trt": None}


def requested_provider(device: str, tensorrt: bool = False) -> str:
    if tensorrt:
        return "TensorrtExecutionProvider"
    return "CUDAExecutionProvider" if torch.device(device).type == "cuda" else "CPUExecutionProvider"


def ort_session(onnx_path: str | Path, device: str, threads: int, tensorrt: bool = False):
    """An InferenceSession whose first provider is the requested one, or EngineUnavailable
    (ORT silently falls back to CPU when a CUDA provider cannot start: not accepted here).
    With tensorrt, TensorRT runs what it supports and CUDA the rest (ORT's documented setup)."""
    import onnxruntime as ort

    cuda = torch.device(device).type == "cuda"
    requested = requested_provider(device, tensorrt)
    if requested not in ort.get_available_providers():
        raise EngineUnavailable(
            f"onnxruntime {ort.__version__} has no {requested} (available: {ort.get_available_providers()})"
        )
    options = onnxrt.session_options(threads)
    device_id = {"device_id": torch.device(device).index or 0}
    providers = [(requested, device_id)] if cuda else [requested]
    if tensorrt:
        providers.append(("CUDAExecutionProvider", device_id))
    session = ort.InferenceSession(str(onnx_path), options, providers=providers)
    if session.get_providers()[0] != requested:
        raise EngineUnavailable(
            f"requested {requested}, but the session runs on {session.get_providers()} (a silent fallback)"
        )
    return session


def _default_onnx(name: str, loaded: LoadedModel) -> Path:
    """The engine's graph from the build cache: the plain export, optimized to its level."""
    level = _ORT_LEVEL[name]
    record = export.produce("onnx" if level is None else f"onnx-{level}", loaded)
    if record.status == "skipped":
        raise EngineUnavailable(record.message)
    return Path(record.raise_for_status().path)


def _ort_engine(name: str, onnx_path: Path, device: str, threads: int) -> OrtEngine:
    session = ort_session(onnx_path, device, threads, tensorrt=name == "ort-trt")
    level = export.graph_level(onnx_path)
    return OrtEngine(
        name=name,
        runtime="onnxruntime",
        precision=onnxrt.onnx_precision(onnx_path),
        graph=f"onnx-{level}" if level else "onnx",
        provider=session.get_providers()[0],
        device=device,
        threads=threads,
        session=session,
        output_name=session.get_outputs()[0].name,
    )


OV_COLD_START = (
    "OpenVINO prepares kernels at each new input shape (dynamic batch and length): the first "
    "call at a shape includes it (cold_ms); timed calls repeat a shape already seen"
)


def ov_engine(name: str, path: str | Path, threads: int, streams: int = 1) -> OvEngine:
    """OpenVINO engine `name` (ov.engine_names()) running the IR at `path` at its precision hint,
    with `threads` threads in `streams` streams (ov.compile_ir)."""
    reason = ov.unavailable()
    if reason:
        raise EngineUnavailable(reason)
    entry = registry.get(name, TASK)
    hint, precision = entry.hint, entry.precision
    try:
        compiled = ov.compile_ir(path, hint, threads, streams)
    except ov.PrecisionNotApplied as exc:
        raise EngineUnavailable(f"{name}: {exc}") from None
    return OvEngine(
        name=name,
        runtime="openvino",
        precision=precision,
        graph=f"openvino-{hint}",
        provider="CPU",
        device="cpu",
        threads=threads,
        cold_start=OV_COLD_START,
        compiled=compiled,
        streams=int(streams),
    )


def _ov(name, loaded, device, threads, *, onnx_path=None):
    if torch.device(device).type != "cpu":
        raise EngineUnavailable(f"{name}: the study runs OpenVINO on the CPU only (device={device!r})")
    if onnx_path is None:
        record = ov.produce(name, loaded)
        if record.status == "skipped":
            raise EngineUnavailable(record.message)
        onnx_path = record.raise_for_status().path
    return ov_engine(name, onnx_path, threads)


def _ort(name, loaded, device, threads, *, onnx_path=None):
    if name in ("ort-fp16", "ort-trt"):
        _needs_cuda(name, device)
    if onnx_path is not None:
        return _ort_engine(name, Path(onnx_path), device, threads)
    if name not in _ORT_LEVEL:
        raise ValueError(f"{name} needs onnx_path= (a quantized graph, e.g. from 02_quantization)")
    return _ort_engine(name, _default_onnx(name, loaded), device, threads)


_BUILDERS = {
    "eager": _eager,
    "torchscript": _torchscript,
    "compile": _compile,
    "compile-cudagraphs": _compile_cudagraphs,
    "compile-bf16": _compile_bf16,
    "torch-bf16": _bf16,
    "torch-bf16-autocast": _bf16_autocast,
    "torch-fp16": _fp16,
    "torch-int8": _int8,
    **{name: _ort for name in registry.names(TASK, runtime="onnxruntime")},
    **{name: _ov for name in registry.names(TASK, runtime="openvino")},
}
FILE_ENGINES = ("ort", "ov")  # engines that run a file (onnx_path=) instead of the torch model


def build_engine(
    name: str,
    loaded: LoadedModel,
    *,
    device: str = "cpu",
    threads: int | None = None,
    onnx_path: str | Path | None = None,
) -> Engine:
    """Build engine `name` (one of registry.names("encode")) for a loaded model.

    threads: torch intra-op threads and ORT intra_op_num_threads / OpenVINO's inference
    threads, set together (None: keep torch's current setting and give the others the same).
    ORT engines run `onnx_path` as it is when given (any .onnx: plain, optimized, quantized
    elsewhere), OpenVINO engines an IR (.xml) there; otherwise the file comes from the build
    cache (helpers.backends.cache): the model's export, optimized to the engine's level ("ort"
    uses O2, the fused graph that keeps exact GELU) or converted to OpenVINO IR (and quantized
    by NNCF on the built-in corpus for ov-int8*), made once and shared by every engine,
    notebook and run. Raises EngineUnavailable when the engine cannot run here (CUDA-only
    engines on CPU, a missing ORT provider, OpenVINO on a CPU it does not support, bf16 asked
    of a CPU without it).
    """
    if name not in _BUILDERS:
        raise ValueError(f"engine={name!r}; accepted: {', '.join(registry.names(TASK))}")
    kind = _check_device(device)
    if kind == "cuda" and not torch.cuda.is_available():
        raise EngineUnavailable(f"device={device!r} but torch.cuda.is_available() is False")
    threads = _threads(threads)
    if not name.startswith(FILE_ENGINES):
        return _BUILDERS[name](name, loaded, device, threads)
    return _BUILDERS[name](name, loaded, device, threads, onnx_path=onnx_path)


def _array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def check_against_reference(
    engine_out: Any,
    reference_out: Any,
    attention_mask: Any,
    atol: float | None = None,
    min_cosine: float | None = None,
    *,
    precision: str = "fp32",
) -> dict:
    """Compare an engine's last hidden state with eager fp32's on the same batch.

    Returns max_abs_diff (over valid tokens, mask=1), cosine_min (of mean-pooled embeddings),
    the bounds used (defaults from TOLERANCES[precision]), and status "ok" or "mismatch"
    with a message saying which bound failed.
    """
    atol = TOLERANCES[precision]["atol"] if atol is None else atol
    min_cosine = TOLERANCES[precision]["min_cosine"] if min_cosine is None else min_cosine
    out, ref = _array(engine_out), _array(reference_out)
    mask = _array(attention_mask).astype(bool)
    result = {
        "max_abs_diff": float("nan"),
        "cosine_min": float("nan"),
        "atol": atol,
        "min_cosine": min_cosine,
        "status": "mismatch",
        "message": "",
        "compared": False,
        "finite": False,
    }
    if out.shape != ref.shape:
        result["message"] = f"output shape {out.shape} != reference shape {ref.shape}"
        return result
    result["max_abs_diff"] = float(np.abs(out - ref)[mask].max())
    result["cosine_min"] = float(fidelity.cosines(fidelity.mean_pool(out, mask), fidelity.mean_pool(ref, mask)).min())
    result["compared"], result["finite"] = True, bool(np.isfinite(out[mask]).all())
    result["status"], result["message"] = tolerance_verdict(
        result["max_abs_diff"], result["cosine_min"], atol, min_cosine, result["finite"]
    )
    return result


def tolerance_verdict(
    max_abs_diff: float, cosine_min: float, atol: float, min_cosine: float, finite: bool = True
) -> tuple[str, str]:
    """("ok", "") when the figures are within the bounds, else ("mismatch", which bound failed,
    with the figure that failed it)."""
    problems = []
    if not finite:
        problems.append("non-finite values in the output")
    if not max_abs_diff <= atol:
        problems.append(f"max_abs_diff {max_abs_diff:.3g} > atol {atol:g}")
    if not cosine_min >= min_cosine:
        problems.append(f"cosine_min {cosine_min:.6f} < {min_cosine:g}")
    return ("mismatch" if problems else "ok"), "; ".join(problems)


def engine_for_file(
    fmt: str,
    path: str | Path,
    loaded: LoadedModel,
    *,
    device: str = "cpu",
    threads: int | None = None,
    streams: int = 1,
) -> Engine:
    """An engine that runs a produced file as it is on disk: a TorchScript .pt is loaded
    with torch.jit.load, an OpenVINO IR (format "openvino", or an OpenVINO engine's name) is
    compiled at that engine's precision hint ("openvino": fp32) with `streams` streams,
    anything else is an ONNX graph for ONNX Runtime."""
    threads = _threads(threads)
    if fmt == "torchscript":
        fn = torch.jit.load(str(path), map_location=device).eval()
        return _torch(fmt, loaded, device, threads, fn, graph="torchscript")
    if fmt == "openvino" or fmt.startswith("ov"):
        engine = ov_engine("ov" if fmt == "openvino" else fmt, path, threads, streams)
        engine.name = fmt
        return engine
    return _ort_engine(fmt, Path(path), device, threads)
