"""The build cache: every exported, optimized or quantized model file is built once, then reused
by every notebook and every run for as long as what made it stays the same.

A file is keyed by a hash of its key fields (`key_fields`): the model's fingerprint (config,
weights, tokenizer, input names), the kind of file ("onnx", "optimized", "dynamic-int8", ...),
its level and recipe (every option that changes the file, calibration texts included), the
opset and the versions of the libraries that build it. A changed model, recipe or library
builds a new entry; nothing is reused by file name alone.

An entry is the folder `<root>/<kind>/<key>/` (root: `paths.cache_dir()`, `cache/` in the
project or WORKBOOK_CACHE) holding the built file(s) and entry.json: status, message, the files,
the build's seconds, when it was built (UTC) and the key fields. `cached(fields, build)` returns
the entry, building it first on a miss (in a temporary folder renamed into place, so an
interrupted build leaves nothing behind). A failed build is cached too, with its message, and
not retried. A returned entry says whether it was reused (`cache`: "hit" or "miss") and what the
build cost (`built_s`), so a table can say "cached (built in 12.3 s)" instead of a time of zero.
`make clean-cache` (`python -m helpers.backends.cache clear`) empties it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
import weakref
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

from helpers.core import paths
from helpers.core.memory import release_free_memory

ENTRY = "entry.json"
TMP_PREFIX = ".tmp-"  # a build in progress (or one killed outright): never read, removed by clear()
LIBRARIES = ("torch", "transformers", "onnx", "onnxruntime", "onnxruntime-gpu", "optimum", "optimum-onnx")
WHOLE_TENSOR = 1 << 18  # tensors up to this many bytes are hashed whole
SAMPLE = 4096  # 8-byte words sampled from a larger tensor, beside the sum of all of them
_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model object -> its weights' digest


# -- what a file is keyed by --------------------------------------------------------------------
def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that build model files (the absent ones left out)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def tensor_digest(tensor) -> bytes:
    """A cheap digest of a tensor's content: its bytes when small; for a larger one, the sum of
    its bytes read as 64-bit integers (exact and wrapping, so it does not depend on summation
    order) and a strided sample of them (about 0.2 s for all of bert-large)."""
    import numpy as np
    import torch

    raw = tensor.detach().reshape(-1).contiguous().cpu().view(torch.uint8).numpy()
    if raw.size <= WHOLE_TENSOR:
        return raw.tobytes()
    words = np.frombuffer(raw, dtype=np.int64, count=raw.size // 8)
    sample = words[:: max(1, words.size // SAMPLE)]
    return f"{int(words.sum())}|".encode() + sample.tobytes() + raw[words.size * 8 :].tobytes()


# Left out of a config's key: where it was loaded from, the library version (keyed apart), and
# what saving the model fills in (the class, the weights' dtype): both are in the weights digest
# (tensor names and dtypes), and a key must not change because the model was saved.
CONFIG_UNKEYED = ("_name_or_path", "_commit_hash", "transformers_version", "architectures", "dtype", "torch_dtype")


def _config(config: Any) -> dict:
    """The config as a dict, without the fields of CONFIG_UNKEYED."""
    data = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    return {k: v for k, v in data.items() if k not in CONFIG_UNKEYED}


def _weights_digest(model) -> str:
    """sha256 over each state_dict tensor's name, shape, dtype and content digest, computed once
    per model object (a model changed in place after that keeps its first digest)."""
    if model not in _WEIGHTS:
        digest = hashlib.sha256()
        for name, tensor in model.state_dict().items():
            digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
            digest.update(tensor_digest(tensor))
        _WEIGHTS[model] = digest.hexdigest()
    return _WEIGHTS[model]


def model_fingerprint(loaded) -> str:
    """sha256 over what a loaded model's files are made from: its config, input names,
    tokenizer class and size, and its weights (`_weights_digest`)."""
    tokenizer = getattr(loaded, "tokenizer", None)
    about = {
        "config": _config(loaded.config),
        "inputs": list(getattr(loaded, "input_names", []) or []),
        "tokenizer": [type(tokenizer).__name__, len(tokenizer) if tokenizer is not None else 0],
        "weights": _weights_digest(loaded.model),
    }
    return hashlib.sha256(json.dumps(about, sort_keys=True, default=str).encode()).hexdigest()


def texts_digest(texts: Sequence[str]) -> dict:
    """{"sha256", "size"} of a list of texts (calibration texts in a recipe's key)."""
    texts = [str(t) for t in texts]
    return {"sha256": hashlib.sha256(json.dumps(texts).encode()).hexdigest(), "size": len(texts)}


def key_fields(loaded, kind: str, *, level: str | None = None, recipe: dict | None = None, opset=None) -> dict:
    """The key fields of one built file of `loaded`: model fingerprint, kind (the entry's folder:
    "onnx", "optimized", "dynamic-int8", ...), level, recipe (its options), opset and the
    library versions."""
    return {
        "model": model_fingerprint(loaded),
        "kind": kind,
        "level": level,
        "recipe": recipe or {},
        "opset": opset,
        "versions": library_versions(),
    }


def key_of(fields: dict) -> str:
    """The hash that names an entry's folder."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:24]


def folder_of(fields: dict) -> Path:
    """The entry folder of `fields` (whether built yet or not)."""
    return paths.cache_dir() / str(fields["kind"]) / key_of(fields)


# -- entries ------------------------------------------------------------------------------------
def _read(folder: Path) -> dict | None:
    try:
        return json.loads((folder / ENTRY).read_text())
    except (OSError, ValueError):
        return None


def _usable(entry: dict | None, folder: Path) -> bool:
    """A failure is returned as it is; an ok entry only while every one of its files is there."""
    if entry is None:
        return False
    return entry.get("status") != "ok" or all((folder / f).is_file() for f in entry.get("files", []))


def _returned(entry: dict, folder: Path, how: str) -> dict:
    file = entry.get("file")
    return {**entry, "cache": how, "folder": str(folder), "path": str(folder / file) if file else None}


def _files(folder: Path, main: str | None) -> list[str]:
    """Every file the build wrote, relative to its folder, the main one first."""
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(written, key=lambda f: f != main)


def _run(build: Callable[[Path], Any], folder: Path) -> dict:
    """Run the build in `folder`; what it returned (or why it raised) as the entry's outcome.
    A build returns its main file (a path in the folder or a name) or a dict with "file" and
    optionally "status", "message", "seconds" (its own time, checks excluded) and "info"."""
    start = time.perf_counter()
    try:
        result = build(folder)
    except Exception as exc:  # cached as a failure: the same build would fail again
        message = f"{type(exc).__name__}: {exc}"[:1000]
        return {"status": "error", "message": message, "file": None, "built_s": time.perf_counter() - start}
    elapsed = time.perf_counter() - start
    result = dict(result) if isinstance(result, dict) else {"file": result}
    file = result.get("file")
    file = Path(file).relative_to(folder).as_posix() if file and Path(file).is_absolute() else file
    outcome = {
        "status": result.get("status", "ok"),
        "message": result.get("message", ""),
        "file": file,
        "built_s": elapsed if result.get("seconds") is None else float(result["seconds"]),
        "info": result.get("info", {}),
    }
    if outcome["status"] == "ok" and not (file and (folder / file).is_file()):
        outcome.update(status="error", message=f"the build wrote no file {file!r}", file=None)
    return outcome


def _move_into_place(tmp: Path, folder: Path) -> None:
    try:
        tmp.rename(folder)
    except OSError:  # another process finished the same entry first: keep its entry
        shutil.rmtree(tmp, ignore_errors=True)
        if _read(folder) is None:
            raise


def cached(fields: dict, build: Callable[[Path], Any]) -> dict:
    """The cache entry of `fields` (see `key_fields`), built by `build(folder)` on a miss.

    `build` writes its file(s) into the empty folder it is given and returns the main file
    (or a dict, see `_run`); if it raises, the failure is cached with its message ("Type:
    text") and returned, also on later calls, without building again. KeyboardInterrupt
    (any BaseException) propagates and leaves no entry. An ok entry whose file has gone is
    rebuilt.

    Returns entry.json's content (status, message, file, files, built_s, built_at, key,
    fields, info) plus `cache` ("hit" or "miss"), `folder` and `path` (the main file, or None).
    """
    folder = folder_of(fields)
    kind_dir = folder.parent
    entry = _read(folder)
    if _usable(entry, folder):
        return _returned(entry, folder, "hit")
    shutil.rmtree(folder, ignore_errors=True)  # a broken entry, or an ok one that lost its file
    kind_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{folder.name}-", dir=kind_dir))
    try:
        outcome = _run(build, tmp)
        release_free_memory()  # a build's peak (an export, a quantization) is not kept
        entry = {
            **outcome,
            "files": _files(tmp, outcome["file"]),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "key": folder.name,
            "fields": fields,
        }
        (tmp / ENTRY).write_text(json.dumps(entry, indent=2, sort_keys=True, default=str) + "\n")
        _move_into_place(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _returned(_read(folder), folder, "miss")


def describe(entry: dict) -> str:
    """'cached (built in 12.3 s)' for a reused entry, 'built in 12.3 s' for a fresh one."""
    built = f"built in {entry['built_s']:.1f} s"
    return f"cached ({built})" if entry.get("cache") == "hit" else built


# -- paths in result tables ---------------------------------------------------------------------
def relative(path: str | Path) -> str:
    """A cached file's path relative to the cache root, as result tables store it (it stays
    valid when the cache is moved or redirected); a path outside the cache is returned whole."""
    try:
        return Path(path).resolve().relative_to(paths.cache_dir()).as_posix()
    except ValueError:
        return str(path)


def resolve(name: str | Path) -> Path:
    """The absolute path of a file `relative` named (an absolute path is returned as it is)."""
    return Path(name) if Path(name).is_absolute() else paths.cache_dir() / name


# -- the whole cache ----------------------------------------------------------------------------
def clear(root: str | Path | None = None) -> int:
    """Remove every entry (and unfinished build) under the cache root; the number removed.
    Only the cache's own folders are touched, whatever else lives under the root."""
    root = Path(root) if root is not None else paths.cache_dir()
    removed = 0
    kinds = [d for d in root.iterdir() if d.is_dir()] if root.is_dir() else []
    for kind_dir in kinds:
        for folder in [d for d in kind_dir.iterdir() if d.is_dir()]:
            if (folder / ENTRY).exists() or folder.name.startswith(TMP_PREFIX):
                shutil.rmtree(folder)
                removed += 1
        if not any(kind_dir.iterdir()):
            kind_dir.rmdir()
    return removed


def main(argv: list[str]) -> int:
    """`python -m helpers.backends.cache clear`: empty the cache (what `make clean-cache` runs)."""
    if argv != ["clear"]:
        print("usage: python -m helpers.backends.cache clear", file=sys.stderr)
        return 2
    root = paths.cache_dir()
    print(f"removed {clear(root)} cache entries from {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
