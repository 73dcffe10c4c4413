"""What a user would run instead of a tuned pipeline: sentence-transformers'
`SentenceTransformer(model_dir, backend=...).encode(texts)` with its own batching (it sorts
the texts by length), pooling and normalization, at its default batch size or another.

    peer = Peer("st-openvino", "minilm", batch_size=32, max_length=128, threads=2)
    vectors = peer.encode(texts)  # (len(texts), dim) float32, rows in the order of texts

07_pipeline measures these beside its candidates, in the same interleaved passes; they never
compete for its recommendation. Every file a backend needs (a sentence-transformers folder
for a model that is not one, its ONNX export, the dynamic INT8 file, the OpenVINO export) is
built once into the build cache (helpers.backends.cache), never beside the model's own files.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np

PEERS = {
    "st-torch": "sentence-transformers, torch backend, fp32 weights (its default)",
    "st-torch-bf16": "sentence-transformers, torch backend, bf16 weights (model_kwargs dtype bfloat16)",
    "st-onnx": "sentence-transformers, onnx backend (its ONNX export on ONNX Runtime, fp32)",
    "st-onnx-qint8": "sentence-transformers, onnx backend, dynamic INT8 (export_dynamic_quantized_onnx_model)",
    "st-openvino": "sentence-transformers, openvino backend (its OpenVINO export, the CPU plugin's default precision)",
    "st-openvino-qint8": "sentence-transformers, openvino backend, static INT8 (export_static_quantized_openvino_model's "
    "recipe, calibrated on the corpus: its default calibration set is on the hub)",
}
BACKEND = {"st-torch": "torch", "st-torch-bf16": "torch", "st-onnx": "onnx", "st-onnx-qint8": "onnx"}
BACKEND |= {"st-openvino": "openvino", "st-openvino-qint8": "openvino"}
PRECISION = {"st-torch": "fp32", "st-torch-bf16": "bf16", "st-onnx": "fp32", "st-onnx-qint8": "int8"}
PRECISION |= {"st-openvino": "ov-default", "st-openvino-qint8": "int8"}  # ov-default: bf16 where the CPU has it
OV_PRECISION = {"bf16": "bf16", "f32": "fp32", "f16": "fp16"}  # INFERENCE_PRECISION_HINT -> the study's names
DEFAULT_BATCH = 32  # SentenceTransformer.encode's default batch_size
STATIC_TEXTS, STATIC_LENGTH = 300, 384  # export_static_quantized_openvino_model: calibration texts, padded length
# what each backend needs beyond sentence-transformers itself (module, pip package)
NEEDS = {"onnx": (("onnxruntime", "onnxruntime"), ("optimum.onnxruntime", "optimum-onnx"))}
NEEDS |= {"openvino": (("openvino", "openvino"), ("optimum.intel", "optimum-intel"))}


@contextmanager
def quiet():
    """Loads and exports without their advice on saving files ("heavily recommended", "could
    not infer ..."): the cache saves them. Warnings of every logger are held back while they
    run (the libraries create their loggers as they import, some with levels of their own),
    and Python's warnings; errors still raise."""
    import io
    import warnings
    from contextlib import redirect_stderr

    from transformers.utils import logging as hf_logging

    before, verbosity = logging.root.manager.disable, hf_logging.get_verbosity()
    logging.disable(logging.WARNING)
    hf_logging.set_verbosity_error()  # transformers logs through a handler of its own
    try:
        # optimum's OpenVINO exporter resets logging.disable; what its loggers then say goes to stderr
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")  # the exporter's tracer warnings, as 01 records them
            yield
    finally:
        logging.disable(before)
        hf_logging.set_verbosity(verbosity)


def check_peer(name: str) -> None:
    if name not in PEERS:
        raise ValueError(f"peers={name!r}; accepted: {', '.join(PEERS)}")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing
        return False


def unavailable(name: str) -> str:
    """Why peer `name` cannot run in this environment ('' when it can): a missing package."""
    check_peer(name)
    for module, package in (("sentence_transformers", "sentence-transformers"), *NEEDS.get(BACKEND[name], ())):
        if not _importable(module):
            return f"{name} needs the package {package}, which is not installed (make install installs it)"
    return ""


def needs_openvino(name: str) -> bool:
    """An OpenVINO engine, method or pipeline variant (backends.ov.engine_names()), 01's
    "openvino" format, or a peer on sentence-transformers' openvino backend."""
    from helpers.backends import ov

    return name in ov.engine_names() or name == "openvino" or BACKEND.get(name) == "openvino"


def openvino_missing() -> str:
    """Why OpenVINO cannot run here ('' when it can)."""
    if _importable("openvino"):
        return ""
    return "OpenVINO is not installed here (the package openvino; make install installs it where it runs)"


def quantization_config(flags: dict | None = None, machine: str | None = None) -> str:
    """export_dynamic_quantized_onnx_model's configuration for this CPU: arm64, avx512_vnni,
    avx512 or avx2 (its fastest that the CPU runs)."""
    if flags is None:
        from helpers.core.fingerprint import cpu_info

        flags = cpu_info()["flags"]
    machine = (machine or platform.machine()).lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    if flags.get("avx512_vnni") or flags.get("avx512vnni"):
        return "avx512_vnni"
    return "avx512" if flags.get("avx512f") else "avx2"


# -- the files each backend loads, in the build cache ----------------------------------------
def st_folder(loaded) -> Path:
    """A sentence-transformers folder of the model: the model's own when it is one (MiniLM's
    package), else one built into the cache from the loaded model (Transformer + mean Pooling
    + Normalize, the project's sentence embedding)."""
    source = Path(getattr(loaded.config, "_name_or_path", "") or "")
    if (source / "modules.json").is_file():
        return source
    from helpers.backends import cache

    def build(folder: Path) -> str:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

        loaded.model.save_pretrained(folder / "transformer")
        loaded.tokenizer.save_pretrained(folder / "transformer")
        word = Transformer(str(folder / "transformer"), max_seq_length=loaded.max_length or 512)
        pool = Pooling(word.get_embedding_dimension(), "mean")
        SentenceTransformer(modules=[word, pool, Normalize()], device="cpu").save(str(folder / "st"))
        shutil.rmtree(folder / "transformer")
        return "st/modules.json"

    with quiet():
        entry = cache.cached(_fields(loaded, "st-model"), build)
    if entry["status"] != "ok":
        raise RuntimeError(f"a sentence-transformers folder of this model could not be built: {entry['message']}")
    return Path(entry["path"]).parent


def exported_folder(loaded, backend: str, quantization: str | None = None) -> tuple[Path, str]:
    """(folder, file name) of the model exported for `backend` (onnx or openvino) by
    sentence-transformers itself, with its INT8 file where `quantization` is given (an ONNX
    dynamic configuration, or "static" for OpenVINO)."""
    from helpers.backends import cache

    source = st_folder(loaded)
    recipe = {"backend": backend, "quantization": quantization}
    if quantization == "static":
        recipe["calibration"] = f"{STATIC_TEXTS} corpus texts padded to {STATIC_LENGTH} tokens"

    def build(folder: Path) -> str:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(source), backend=backend, device="cpu")
        model.save(str(folder))
        if not quantization:
            return f"{backend}/{'model.onnx' if backend == 'onnx' else 'openvino_model.xml'}"
        if backend == "openvino":
            return _static_openvino(model, folder)
        from optimum.onnxruntime import AutoQuantizationConfig
        from sentence_transformers.backend import export_dynamic_quantized_onnx_model

        export_dynamic_quantized_onnx_model(model, quantization, str(folder))
        # its file is named by the configuration's weight type: qint8 for avx512(_vnni) and
        # arm64, quint8 for avx2
        weights = getattr(AutoQuantizationConfig, quantization)(is_static=False).weights_dtype.name.lower()
        return f"onnx/model_{weights}_{quantization}.onnx"

    with quiet():
        entry = cache.cached(_fields(loaded, "st-export", recipe), build)
    if entry["status"] != "ok":
        raise RuntimeError(f"the {backend} export failed: {entry['message']}")
    return Path(entry["folder"]), entry["file"]


def _static_openvino(model, folder: Path) -> str:
    """export_static_quantized_openvino_model's recipe (OVQuantizationConfig's defaults, one
    text a call padded to STATIC_LENGTH tokens), calibrated on STATIC_TEXTS corpus texts
    instead of its default GLUE SST-2, which lives on the hub; written where that function
    writes its file."""
    import nncf
    from optimum.intel.openvino import OVConfig, OVQuantizationConfig, OVQuantizer

    from helpers.backends.quantize import calibration_subset
    from helpers.workloads.corpora import load_corpus

    texts = calibration_subset(load_corpus().texts[1::2], STATIC_TEXTS)  # the odd texts: apart from 07's sample
    padded = {"padding": "max_length", "max_length": STATIC_LENGTH, "truncation": True, "return_tensors": "np"}
    data = nncf.Dataset([dict(model.tokenizer(t, **padded)) for t in texts])
    config = OVConfig(quantization_config=OVQuantizationConfig())
    OVQuantizer.from_pretrained(model.transformers_model).quantize(
        data, save_directory=folder / "static", ov_config=config
    )
    for suffix in (".xml", ".bin"):
        made = folder / "static" / "openvino" / f"openvino_model{suffix}"
        shutil.move(made, folder / "openvino" / f"openvino_model_qint8_quantized{suffix}")
    shutil.rmtree(folder / "static")
    return "openvino/openvino_model_qint8_quantized.xml"


def _fields(loaded, kind: str, recipe: dict | None = None) -> dict:
    """The cache key of a peer's files: the model's, with the versions of the libraries that
    write them besides those the cache always keys."""
    from importlib import metadata

    from helpers.backends import cache

    fields_ = cache.key_fields(loaded, kind, recipe=recipe)
    for name in ("sentence-transformers", "openvino", "optimum-intel"):
        try:
            fields_["versions"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return fields_


# -- the peer ---------------------------------------------------------------------------------
@dataclass
class Peer:
    """One sentence-transformers backend at one batch size (see the module doc). Its
    attributes mirror helpers.pipeline.Pipeline's where a result row describes both."""

    peer: str = "st-torch"
    model: str = "minilm"
    batch_size: int = DEFAULT_BATCH
    max_length: int = 256
    threads: int = 1
    info: dict = field(default_factory=dict, repr=False)  # what loading found (the plugin's precision)

    def __post_init__(self):
        check_peer(self.peer)
        if int(self.batch_size) < 1 or int(self.max_length) < 1 or int(self.threads) < 1:
            raise ValueError("batch_size, max_length and threads: accepted: integers >= 1")
        self._st = self._loaded = None

    # the columns a result row shares with a Pipeline
    variant = property(lambda self: self.peer)

    @property
    def precision(self) -> str:
        """fp32, bf16 or int8; for st-openvino the precision its plugin reports once loaded."""
        if PRECISION[self.peer] != "ov-default":
            return PRECISION[self.peer]
        return OV_PRECISION.get(self.info.get("inference_precision", ""), PRECISION[self.peer])

    recipe = property(lambda self: None)
    strategy = property(lambda self: "st-sorted")  # encode sorts the texts by length itself
    layout = property(lambda self: "threads")
    overlap = property(lambda self: False)
    onnx_file = property(lambda self: "")

    @property
    def name(self) -> str:
        default = " (default)" if self.batch_size == DEFAULT_BATCH else ""
        return f"{self.peer} @{self.batch_size}{default}"

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "info"}

    @classmethod
    def from_dict(cls, data: dict) -> "Peer":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_batch(self, batch_size: int) -> "Peer":
        """The same peer at another batch size, sharing the loaded model."""
        other = Peer(self.peer, self.model, batch_size, self.max_length, self.threads)
        other._st, other._loaded, other.info = self._st, self._loaded, self.info
        return other

    def load(self, loaded=None):
        """The SentenceTransformer of this peer in this process (loaded once)."""
        if self._st is not None:
            return self._st
        why = unavailable(self.peer)
        if why:
            raise RuntimeError(why)
        import torch
        from sentence_transformers import SentenceTransformer

        from helpers.workloads.models import load_model

        self._loaded = loaded or self._loaded or load_model(self.model)
        torch.set_num_threads(int(self.threads))
        backend, kwargs = BACKEND[self.peer], {}
        folder = st_folder(self._loaded)
        if self.peer == "st-torch-bf16":
            kwargs = {"dtype": torch.bfloat16}
        elif backend == "onnx":
            from helpers.backends.onnxrt import session_options

            folder, file = exported_folder(
                self._loaded, "onnx", quantization_config() if "qint8" in self.peer else None
            )
            kwargs = {"file_name": file, "provider": "CPUExecutionProvider"}
            kwargs["session_options"] = session_options(int(self.threads))
        elif backend == "openvino":
            folder, file = exported_folder(self._loaded, "openvino", "static" if "qint8" in self.peer else None)
            kwargs = {"file_name": file, "ov_config": {"INFERENCE_NUM_THREADS": str(int(self.threads))}}
        with quiet():
            self._st = SentenceTransformer(str(folder), backend=backend, device="cpu", model_kwargs=kwargs or None)
        self._st.max_seq_length = int(self.max_length)  # the same truncation as every pipeline
        self.info = self._describe()
        return self._st

    def _describe(self) -> dict:
        info = {"backend": BACKEND[self.peer]}
        if self.peer == "st-onnx-qint8":
            info["quantization"] = quantization_config()
        if self.peer == "st-openvino-qint8":
            info["quantization"] = f"static, OVQuantizationConfig defaults, {STATIC_TEXTS} corpus texts"
        if BACKEND[self.peer] == "openvino":
            try:
                request = self._st[0].auto_model.request
                info["inference_precision"] = str(request.get_property("INFERENCE_PRECISION_HINT").to_string())
            except Exception as exc:  # recorded, not fatal: the precision is the plugin's default
                info["inference_precision"] = f"unknown ({type(exc).__name__})"
        return info

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        model = self.load()
        out = model.encode(texts, batch_size=int(self.batch_size), convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        """Nothing to stop: a peer runs in this process."""
