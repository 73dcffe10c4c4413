"""What a user would run instead of a tuned pipeline, each library used the way its
documentation shows, at its default settings or others:

- sentence-transformers: `SentenceTransformer(model_dir, backend=...).encode(texts)` with its own
  batching (it sorts the texts by length), pooling and normalization; its parallel layout is
  its multi-process pool (`start_multi_process_pool(["cpu"] * n)`, `encode(..., pool=pool)`);
- fastembed: `TextEmbedding(name, specific_model_path=dir).embed(texts, batch_size, parallel)`
  on the model's ONNX export (a model it does not register is added with
  `TextEmbedding.add_custom_model`, mean pooling and normalization); it does not sort the
  texts; its parallel layout is `parallel=n` (n worker processes of one thread);
- CTranslate2: `ctranslate2.Encoder(dir, compute_type=...).forward_batch(ids, token_type_ids=...)`
  on the model converted by its own converter (`TransformersConverter`, quantization int8,
  float32, bfloat16 or int8_bfloat16), batches in corpus order tokenized by the model's
  tokenizer, mean pooling over the real tokens and L2 normalization (the caller's, as its
  documentation shows); its parallel layout is `inter_threads=n` with n batches submitted at
  once from Python threads (each replica `threads // n` intra threads).

    peer = Peer("st-openvino", "minilm", batch_size=32, max_length=128, threads=2)
    vectors = peer.encode(texts)  # (len(texts), dim) float32, rows in the order of texts
    Peer("ct2-int8", "minilm", 32, 128, threads=2, workers=2)  # inter_threads=2, 1 thread each

07_pipeline measures these beside its candidates, in the same interleaved passes; they never
compete for its recommendation. Every file a peer needs (a sentence-transformers folder for a
model that is not one, its ONNX export, the dynamic INT8 file, the OpenVINO export, fastembed's
folder, CTranslate2's conversion) is built once into the build cache (helpers.backends.cache),
never beside the model's own files. A peer whose package is missing is refused up front
(`unavailable`); one whose precision the machine does not run (CTranslate2's bf16 on a CPU
without it: its CPU wheels would run fp32) is refused with its reason (`unsupported`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
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
    "fastembed": "fastembed TextEmbedding on the model's ONNX export (ONNX Runtime, fp32, mean pooling, normalized)",
    "ct2-int8": "CTranslate2 Encoder, converted with quantization int8 (int8 weights and GEMMs)",
    "ct2-float32": "CTranslate2 Encoder, converted with quantization float32",
    "ct2-bf16": "CTranslate2 Encoder, converted with quantization bfloat16 (where the CPU runs bf16)",
    "ct2-int8-bf16": "CTranslate2 Encoder, converted with quantization int8_bfloat16 (where the CPU runs bf16)",
}
BACKEND = {"st-torch": "torch", "st-torch-bf16": "torch", "st-onnx": "onnx", "st-onnx-qint8": "onnx"}
BACKEND |= {"st-openvino": "openvino", "st-openvino-qint8": "openvino", "fastembed": "onnxruntime"}
BACKEND |= {"ct2-int8": "ctranslate2", "ct2-float32": "ctranslate2", "ct2-bf16": "ctranslate2"}
BACKEND |= {"ct2-int8-bf16": "ctranslate2"}
PRECISION = {"st-torch": "fp32", "st-torch-bf16": "bf16", "st-onnx": "fp32", "st-onnx-qint8": "int8"}
PRECISION |= {"st-openvino": "ov-default", "st-openvino-qint8": "int8"}  # ov-default: bf16 where the CPU has it
PRECISION |= {"fastembed": "fp32", "ct2-int8": "int8", "ct2-float32": "fp32", "ct2-bf16": "bf16"}
PRECISION |= {"ct2-int8-bf16": "int8"}
OV_PRECISION = {"bf16": "bf16", "f32": "fp32", "f16": "fp16"}  # INFERENCE_PRECISION_HINT -> the study's names
# the library of each peer (its pip package)
LIBRARY = {name: "sentence-transformers" for name in PEERS if name.startswith("st-")}
LIBRARY |= {"fastembed": "fastembed"} | {name: "ctranslate2" for name in PEERS if name.startswith("ct2-")}
# CTranslate2's quantization (at conversion) and compute type (at load) of each of its peers
COMPUTE_TYPE = {"ct2-int8": "int8", "ct2-float32": "float32", "ct2-bf16": "bfloat16", "ct2-int8-bf16": "int8_bfloat16"}
DEFAULT_BATCH = 32  # SentenceTransformer.encode's default batch_size
FASTEMBED_BATCH = 256  # TextEmbedding.embed's default batch_size
# CTranslate2's Encoder.forward_batch encodes the batch it is given (no batch size of its own):
# sentence-transformers' default stands for it
DEFAULT_BATCHES = {name: DEFAULT_BATCH for name in PEERS} | {"fastembed": FASTEMBED_BATCH}
FASTEMBED_MINILM = "sentence-transformers/all-MiniLM-L6-v2"  # MiniLM, as fastembed registers it
# each library's parallel layout in a peer's name (workers > 1)
PARALLEL = {"sentence-transformers": "pool x{}", "fastembed": "parallel={}", "ctranslate2": "inter_threads={}"}
STATIC_TEXTS, STATIC_LENGTH = 300, 384  # export_static_quantized_openvino_model: calibration texts, padded length
# what each peer needs (module, pip package): its library, then what its backend needs beyond it
NEEDS = {"onnx": (("onnxruntime", "onnxruntime"), ("optimum.onnxruntime", "optimum-onnx"))}
NEEDS |= {"openvino": (("openvino", "openvino"), ("optimum.intel", "optimum-intel"))}
NEEDS |= {"onnxruntime": (("onnxruntime", "onnxruntime"),)}
MODULE = {"sentence-transformers": "sentence_transformers", "fastembed": "fastembed", "ctranslate2": "ctranslate2"}


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
    library = LIBRARY[name]
    for module, package in ((MODULE[library], library), *NEEDS.get(BACKEND[name], ())):
        if not _importable(module):
            return f"{name} needs the package {package}, which is not installed (make install installs it)"
    return ""


def ct2_compute_types() -> list[str]:
    """The compute types CTranslate2 runs on this CPU (its own answer)."""
    import ctranslate2

    return sorted(ctranslate2.get_supported_compute_types("cpu"))


def unsupported(name: str) -> str:
    """Why peer `name` cannot run on this machine though installed ('' when it can): a
    CTranslate2 bf16 compute type its CPU build does not run here (it would run fp32)."""
    if unavailable(name) or name not in COMPUTE_TYPE:
        return ""
    wanted, types = COMPUTE_TYPE[name], ct2_compute_types()
    if wanted in types:
        return ""
    return (
        f"{name}: CTranslate2 runs no {wanted} on this CPU (its compute types here: {', '.join(types)}); "
        "its CPU wheels would run it as fp32, so the peer is not measured under a bf16 name"
    )


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


def fastembed_folder(loaded, max_length: int) -> Path:
    """fastembed's model folder (`specific_model_path`): the model's ONNX export (the project's,
    from the build cache, linked as model.onnx), its tokenizer files with `model_max_length`
    set to `max_length` (fastembed truncates there, in every worker process too) and config.json."""
    from helpers.backends import cache, export

    onnx = export.produce("onnx", loaded)
    if onnx.status != "ok":
        raise RuntimeError(f"the ONNX export for fastembed failed: {onnx.message}")

    def build(folder: Path) -> str:
        main = Path(onnx.path)
        for file in export.files_of(main):  # the graph, and its external data under their own names
            _link(file, folder / ("model.onnx" if file == main else file.name))
        loaded.tokenizer.save_pretrained(folder)
        loaded.config.to_json_file(folder / "config.json")
        config = json.loads((folder / "tokenizer_config.json").read_text())
        config["model_max_length"] = int(max_length)
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
        return "model.onnx"

    recipe = {"max_length": int(max_length), "onnx": cache.relative(onnx.path)}
    with quiet():
        entry = cache.cached(_fields(loaded, "fastembed", recipe, FASTEMBED_LIBRARIES), build)
    if entry["status"] != "ok":
        raise RuntimeError(f"fastembed's model folder could not be built: {entry['message']}")
    return Path(entry["folder"])


def ct2_folder(loaded, quantization: str) -> Path:
    """The model converted by CTranslate2's own converter (`TransformersConverter`, as
    `ct2-transformers-converter --quantization` runs it) from the loaded model's saved copy."""
    from helpers.backends import cache

    def build(folder: Path) -> str:
        from ctranslate2.converters import TransformersConverter

        source = folder / "transformers"
        loaded.model.save_pretrained(source)
        loaded.tokenizer.save_pretrained(source)
        TransformersConverter(str(source)).convert(str(folder / "ct2"), quantization=quantization, force=True)
        shutil.rmtree(source)
        return "ct2/model.bin"

    with quiet():
        entry = cache.cached(_fields(loaded, "ct2", {"quantization": quantization}, CT2_LIBRARIES), build)
    if entry["status"] != "ok":
        raise RuntimeError(f"the CTranslate2 conversion ({quantization}) failed: {entry['message']}")
    return Path(entry["path"]).parent


def _link(source: Path, target: Path) -> None:
    """A hard link (no copy of a large graph), or a copy across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


ST_LIBRARIES = ("sentence-transformers", "openvino", "optimum-intel")
FASTEMBED_LIBRARIES = ("fastembed",)
CT2_LIBRARIES = ("ctranslate2",)


def _fields(loaded, kind: str, recipe: dict | None = None, libraries: Sequence[str] = ST_LIBRARIES) -> dict:
    """The cache key of a peer's files: the model's, with the versions of the libraries that
    write them besides those the cache always keys."""
    from importlib import metadata

    from helpers.backends import cache

    fields_ = cache.key_fields(loaded, kind, recipe=recipe)
    for name in libraries:
        try:
            fields_["versions"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return fields_


# -- the peer ---------------------------------------------------------------------------------
def default_batch(name: str) -> int:
    """The batch size peer `name`'s library encodes with when none is given."""
    check_peer(name)
    return DEFAULT_BATCHES[name]


@dataclass
class Peer:
    """One peer (see the module doc) at one batch size, in its library's default layout
    (workers 1) or its parallel one with `workers` processes or replicas. Its attributes mirror
    helpers.pipeline.Pipeline's where a result row describes both."""

    peer: str = "st-torch"
    model: str = "minilm"
    batch_size: int = 0  # 0: its library's default (default_batch)
    max_length: int = 256
    threads: int = 1
    workers: int = 1  # 1: the library's default layout; n: its parallel layout (PARALLEL) with n workers
    info: dict = field(default_factory=dict, repr=False)  # what loading found (the plugin's precision)

    def __post_init__(self):
        check_peer(self.peer)
        self.batch_size = int(self.batch_size) or default_batch(self.peer)
        for name in ("batch_size", "max_length", "threads", "workers"):
            if int(getattr(self, name)) < 1:
                raise ValueError("batch_size, max_length, threads and workers: accepted: integers >= 1")
        # what this peer loaded, shared by its copies at other settings (with_settings)
        self._state: dict = {"loaded": None, "st": None, "fastembed": None, "ct2": {}, "pools": {}}

    _loaded = property(lambda self: self._state["loaded"], lambda self, v: self._state.__setitem__("loaded", v))
    _st = property(lambda self: self._state["st"])  # the SentenceTransformer, once loaded

    @property
    def library(self) -> str:
        return LIBRARY[self.peer]

    # the columns a result row shares with a Pipeline
    variant = property(lambda self: self.peer)

    @property
    def precision(self) -> str:
        """fp32, bf16 or int8; for st-openvino the precision its plugin reports once loaded."""
        if PRECISION[self.peer] != "ov-default":
            return PRECISION[self.peer]
        return OV_PRECISION.get(self.info.get("inference_precision", ""), PRECISION[self.peer])

    recipe = property(lambda self: None)
    overlap = property(lambda self: False)
    onnx_file = property(lambda self: "")

    @property
    def strategy(self) -> str:
        """st-sorted: encode sorts the texts by length itself; the others batch in input order."""
        return "st-sorted" if self.library == "sentence-transformers" else "unsorted"

    @property
    def layout(self) -> str:
        """processes for a pool of worker processes (sentence-transformers, fastembed), else
        threads (CTranslate2's replicas are threads of one process)."""
        return "processes" if int(self.workers) > 1 and self.library != "ctranslate2" else "threads"

    @property
    def default(self) -> bool:
        """At its library's default settings: its default batch size, no parallel layout."""
        return int(self.batch_size) == default_batch(self.peer) and int(self.workers) == 1

    @property
    def settings(self) -> dict:
        """The settings a result row records (peer_info)."""
        parallel = PARALLEL[self.library].format(int(self.workers)) if int(self.workers) > 1 else "none"
        settings = {"batch_size": int(self.batch_size), "workers": int(self.workers), "parallel": parallel}
        if self.library == "ctranslate2":
            settings["intra_threads"] = max(1, int(self.threads) // int(self.workers))
        elif int(self.workers) > 1:  # fastembed's workers run one thread each
            one = self.library == "fastembed"
            settings["threads_per_process"] = 1 if one else max(1, int(self.threads) // int(self.workers))
        return settings

    @property
    def name(self) -> str:
        parallel = f" {PARALLEL[self.library].format(int(self.workers))}" if int(self.workers) > 1 else ""
        default = " (default)" if self.default else ""
        return f"{self.peer} @{self.batch_size}{parallel}{default}"

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "info"}

    @classmethod
    def from_dict(cls, data: dict) -> "Peer":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_settings(self, batch_size: int, workers: int | None = None) -> "Peer":
        """The same peer at another batch size or layout, sharing what is loaded (the model,
        its files, a started pool)."""
        workers = self.workers if workers is None else workers
        other = Peer(self.peer, self.model, batch_size, self.max_length, self.threads, workers)
        other._state, other.info = self._state, self.info
        return other

    def with_batch(self, batch_size: int) -> "Peer":
        """The same peer at another batch size, sharing the loaded model."""
        return self.with_settings(batch_size)

    # -- loading ------------------------------------------------------------------------------
    def load(self, loaded=None):
        """What runs this peer in this process (loaded once; a pool starts at the first encode)."""
        ready = self._state["ct2"].get(int(self.workers)) if self.library == "ctranslate2" else None
        ready = ready or self._state["fastembed"] or self._state["st"]
        if ready is not None:
            return ready
        why = unavailable(self.peer) or unsupported(self.peer)
        if why:
            raise RuntimeError(why)
        from helpers.workloads.models import load_model

        self._loaded = loaded or self._loaded or load_model(self.model)
        if self.library == "fastembed":
            return self._load_fastembed()
        if self.library == "ctranslate2":
            return self._load_ct2()
        return self._load_st()

    def _load_st(self):
        if self._st is not None:
            return self._st
        import torch
        from sentence_transformers import SentenceTransformer

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
            model = SentenceTransformer(str(folder), backend=backend, device="cpu", model_kwargs=kwargs or None)
        model.max_seq_length = int(self.max_length)  # the same truncation as every pipeline
        self._state["st"] = model
        self.info.clear()
        self.info.update(self._describe())
        return model

    def _load_fastembed(self):
        if self._state["fastembed"] is not None:
            return self._state["fastembed"]
        from fastembed import TextEmbedding

        folder = fastembed_folder(self._loaded, int(self.max_length))
        name = FASTEMBED_MINILM if self.model == "minilm" else _fastembed_custom(self._loaded)
        with quiet():
            model = TextEmbedding(
                name, cache_dir=str(folder), threads=int(self.threads), cuda=False, specific_model_path=str(folder)
            )
        self._state["fastembed"] = model
        self.info.clear()
        self.info.update({"backend": "onnxruntime", "fastembed_model": name})
        if name != FASTEMBED_MINILM:
            self.info["registered"] = "add_custom_model: mean pooling, normalization"
        return model

    def _load_ct2(self):
        workers = int(self.workers)
        if workers in self._state["ct2"]:
            return self._state["ct2"][workers]
        import ctranslate2

        wanted = COMPUTE_TYPE[self.peer]
        folder = ct2_folder(self._loaded, wanted)
        intra = max(1, int(self.threads) // workers)
        encoder = ctranslate2.Encoder(
            str(folder), device="cpu", compute_type=wanted, inter_threads=workers, intra_threads=intra
        )
        runs = str(encoder.compute_type)
        if "bfloat16" in wanted and "bfloat16" not in runs:  # an engine runs the precision it claims
            raise RuntimeError(f"{self.peer}: compute type {wanted} was asked, the encoder runs {runs}")
        self._state["ct2"][workers] = encoder
        self.info.clear()
        self.info.update({"backend": "ctranslate2", "compute_type": runs})
        return encoder

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

    # -- encoding -----------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts`, one row per text in their order (float32)."""
        texts = [str(t) for t in texts]
        model = self.load()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self.library == "fastembed":
            parallel = int(self.workers) if int(self.workers) > 1 else None
            out = list(model.embed(texts, batch_size=int(self.batch_size), parallel=parallel))
            return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)
        if self.library == "ctranslate2":
            return self._encode_ct2(model, texts)
        kwargs = {"batch_size": int(self.batch_size), "convert_to_numpy": True, "show_progress_bar": False}
        if int(self.workers) > 1:
            kwargs["pool"] = self._pool(model)
        return np.asarray(model.encode(texts, **kwargs), dtype=np.float32)

    def _encode_ct2(self, encoder, texts: list[str]) -> np.ndarray:
        """Batches in input order, tokenized by the model's tokenizer; with inter_threads, that
        many batches submitted at once (Python threads: forward_batch releases the GIL)."""
        tokenizer = self._loaded.tokenizer
        batches = [texts[i : i + int(self.batch_size)] for i in range(0, len(texts), int(self.batch_size))]

        def one(batch: list[str]) -> np.ndarray:
            enc = tokenizer(batch, truncation=True, max_length=int(self.max_length))
            ids = enc["input_ids"]
            out = encoder.forward_batch(ids, token_type_ids=enc.get("token_type_ids"))
            return mean_pooled(np.asarray(out.last_hidden_state), [len(i) for i in ids])

        if int(self.workers) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(int(self.workers)) as pool:
                parts = list(pool.map(one, batches))
        else:
            parts = [one(b) for b in batches]
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, 0), dtype=np.float32)

    def _pool(self, model) -> dict:
        """sentence-transformers' multi-process pool of `workers` CPU processes (started once;
        each process runs threads // workers torch threads, read from OMP_NUM_THREADS as it starts)."""
        workers = int(self.workers)
        if workers not in self._state["pools"]:
            before = os.environ.get("OMP_NUM_THREADS")
            os.environ["OMP_NUM_THREADS"] = str(max(1, int(self.threads) // workers))
            try:
                with quiet():
                    self._state["pools"][workers] = model.start_multi_process_pool(["cpu"] * workers)
            finally:
                if before is None:
                    os.environ.pop("OMP_NUM_THREADS", None)
                else:
                    os.environ["OMP_NUM_THREADS"] = before
        return self._state["pools"][workers]

    def close(self) -> None:
        """Stop the processes of a started pool (sentence-transformers'; fastembed's stop after
        each call): shared by every copy of this peer."""
        pools, self._state["pools"] = self._state["pools"], {}
        for pool in pools.values():
            from sentence_transformers import SentenceTransformer

            SentenceTransformer.stop_multi_process_pool(pool)


def mean_pooled(hidden: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
    """Mean over each row's real tokens (its first `length` positions), L2-normalized."""
    hidden = np.asarray(hidden, dtype=np.float32)
    lengths = np.asarray(lengths)
    mask = (np.arange(hidden.shape[1])[None, :] < lengths[:, None]).astype(np.float32)
    vectors = (hidden * mask[..., None]).sum(axis=1) / np.maximum(lengths, 1)[:, None]
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _fastembed_custom(loaded) -> str:
    """The name fastembed knows this model by, registered once per process with
    `TextEmbedding.add_custom_model` (mean pooling, normalization), keyed by its fingerprint."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    from helpers.backends import cache

    name = f"workbook/{loaded.name}-{cache.model_fingerprint(loaded)[:12]}"
    if not any(m["model"] == name for m in TextEmbedding.list_supported_models()):
        TextEmbedding.add_custom_model(
            name,
            pooling=PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf=name),
            dim=int(loaded.config.hidden_size),
            model_file="model.onnx",
        )
    return name
