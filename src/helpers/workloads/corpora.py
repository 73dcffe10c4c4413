"""Text inputs of the study: the built-in corpus of Python standard-library docstrings,
user CSV / JSONL / TXT files, token-length statistics, and fixed-shape batches of
real text for sweeps.
"""

from __future__ import annotations

import ast
import codecs
import csv
import functools
import io
import json
import math
import os
import re
import sys
import sysconfig
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from helpers.core import paths

DEFAULT_CORPUS = "docstrings"
CORPORA = (DEFAULT_CORPUS,)
FILE_TYPES = (".csv", ".jsonl", ".txt")

# Stdlib directories that are not stdlib prose: tests, tools, bundled wheels, caches.
_EXCLUDED_DIRS = {
    "site-packages",
    "dist-packages",
    "test",
    "tests",
    "idlelib",
    "lib2to3",
    "turtledemo",
    "ensurepip",
    "__pycache__",
}
_MIN_WORDS = 5
_MIN_LETTER_SHARE = 0.6  # letters / non-space characters; below this it is code or a table
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
# Nodes that can hold statements; expressions are skipped (docstrings live on statements).
_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)


class CorpusError(ValueError):
    """A corpus input that cannot be used; `parameter` names the one at fault (corpus,
    text_column, label_column or encoding), and the message reads `parameter=value ...`."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


@dataclass
class Corpus:
    """Texts (and optional labels) of one corpus, read from `source`."""

    name: str
    texts: list[str]
    labels: list | None
    source: Path


def _default_data_dir() -> Path:
    return paths.data_dir()


# ---------------------------------------------------------------- docstring corpus


def stdlib_files(stdlib: Path | None = None) -> list[Path]:
    """The stdlib .py files the corpus is built from, in sorted relative-path order."""
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py") if not _EXCLUDED_DIRS.intersection(p.relative_to(root).parts[:-1])]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _docstrings(tree: ast.Module) -> Iterator[tuple[str, str]]:
    """(qualified name, docstring) of the module, classes and functions, in source order."""
    doc = ast.get_docstring(tree)
    if doc:
        yield "", doc
    defs = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)

    def walk(prefix: str, node: ast.AST) -> Iterator[tuple[str, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, defs):
                qualname = f"{prefix}.{child.name}" if prefix else child.name
                doc = ast.get_docstring(child)
                if doc:
                    yield qualname, doc
                yield from walk(qualname, child)
            elif isinstance(child, _BLOCKS):  # defs nested in if/try/with/... blocks
                yield from walk(prefix, child)

    yield from walk("", tree)


def paragraphs(docstring: str) -> list[str]:
    """Prose paragraphs of a docstring: split at blank lines, lines joined with single
    spaces, code-like paragraphs (doctests, mostly non-letters, < 5 words) dropped."""
    out = []
    for block in _BLANK_LINE.split(docstring):
        text = " ".join(block.split())
        if ">>>" in text or len(text.split()) < _MIN_WORDS:
            continue
        visible = text.replace(" ", "")
        if sum(c.isalpha() for c in visible) < _MIN_LETTER_SHARE * len(visible):
            continue
        out.append(text)
    return out


def docstring_records(stdlib: Path | None = None) -> list[dict[str, str]]:
    """All corpus records {text, source}, de-duplicated keeping the first occurrence.

    Files are parsed with `ast`, never imported; files that do not parse are skipped.
    """
    seen: set[str] = set()
    records = []
    for source, doc in _stdlib_docstrings(stdlib):
        for text in paragraphs(doc):
            if text not in seen:
                seen.add(text)
                records.append({"text": text, "source": source})
    return records


def _stdlib_docstrings(stdlib: Path | None = None) -> Iterator[tuple[str, str]]:
    """(source, docstring) of every module, class and function of the stdlib files, in
    order; source is `path` or `path:qualname`. Files that do not parse are skipped."""
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    for path in stdlib_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_bytes(), filename=rel)
        except (SyntaxError, ValueError):
            continue
        for qualname, doc in _docstrings(tree):
            yield (f"{rel}:{qualname}" if qualname else rel), doc


def corpus_path(data_dir: Path | None = None) -> Path:
    """Cache file of the docstring corpus; per Python minor version (the stdlib differs)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Path(data_dir or _default_data_dir()) / f"corpus_docstrings_py{version}.jsonl"


def build_docstring_corpus(data_dir: Path | None = None, *, rebuild: bool = False) -> Path:
    """Build (or reuse) the cached docstring corpus; return its path.

    The file is written atomically, so concurrent builders never see a half file.
    """
    path = corpus_path(data_dir)
    if path.is_file() and not rebuild:
        return path
    _write_jsonl(path, docstring_records())
    return path


def _write_jsonl(path: Path, records: Sequence[dict]) -> None:
    """One JSON object per line, written atomically (concurrent builders never see a half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


# ---------------------------------------------------------------- retrieval pairs (the task score)

_MIN_QUERY_WORDS = 4  # "Return self." and the like ask nothing a document could answer
_MIN_DOCUMENT_WORDS = 12  # a document is at least one real sentence ...
_MIN_DOCUMENT_CHARS = 80  # ... of some length
# a sentence ends at . ! or ? (closing quotes or brackets after it) before a space and a capital,
# a digit or an opening quote or bracket: "e.g. the", "i.e. a" do not end one
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+(?=[A-Z0-9`\"'(\[])")
RANDOM_WEIGHTS_NOTE = "random weights: a retrieval score of a random-weight model means nothing"


class NoRetrievalTask(ValueError):
    """The task score cannot be computed for this corpus; the message says why."""


@dataclass
class RetrievalPairs:
    """Query/document pairs: queries[i]'s own document is documents[i] (from sources[i])."""

    queries: list[str]
    documents: list[str]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.queries)


def first_sentence(text: str) -> tuple[str, str]:
    """(first sentence, the rest) of a text whose lines are joined; the rest is '' when the
    text is one sentence."""
    text = " ".join(text.split())
    end = _SENTENCE_END.search(text)
    if end is None:
        return text, ""
    return text[: end.end()].strip(), text[end.end() :].strip()


def docstring_pair(docstring: str) -> tuple[str, str] | None:
    """(query, document) of one docstring: the first sentence of its first paragraph, and the
    rest (the remainder of that paragraph and the prose paragraphs after it, as `paragraphs`
    keeps them: no doctests, no code). None when the query is code-like or under 4 words, the
    document under 12 words or 80 characters, or the document repeats the query word for word
    (an answer given away)."""
    blocks = _BLANK_LINE.split(docstring.strip())
    query, rest = first_sentence(blocks[0])
    visible = query.replace(" ", "")
    if (
        ">>>" in query
        or len(query.split()) < _MIN_QUERY_WORDS
        or sum(c.isalpha() for c in visible) < _MIN_LETTER_SHARE * len(visible)
    ):
        return None
    document = " ".join(paragraphs("\n\n".join([rest, *blocks[1:]])))
    if len(document.split()) < _MIN_DOCUMENT_WORDS or len(document) < _MIN_DOCUMENT_CHARS or query in document:
        return None
    return query, document


def docstring_pair_records(stdlib: Path | None = None) -> list[dict[str, str]]:
    """Every {query, document, source} of the stdlib's docstrings (`docstring_pair`), in the
    corpus's order. A query or a document that occurs twice is ambiguous (two right answers,
    or one answer to two questions): every pair holding it is dropped."""
    pairs = [(source, pair) for source, doc in _stdlib_docstrings(stdlib) if (pair := docstring_pair(doc))]
    queries = Counter(q for _, (q, _) in pairs)
    documents = Counter(d for _, (_, d) in pairs)
    return [
        {"query": q, "document": d, "source": source}
        for source, (q, d) in pairs
        if queries[q] == 1 and documents[d] == 1
    ]


def pairs_path(data_dir: Path | None = None) -> Path:
    """Cache file of the docstring corpus's query/document pairs, per Python minor version."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Path(data_dir or _default_data_dir()) / f"pairs_docstrings_py{version}.jsonl"


def build_docstring_pairs(data_dir: Path | None = None, *, rebuild: bool = False) -> Path:
    """Build (or reuse) the cached query/document pairs of the docstring corpus; their path."""
    path = pairs_path(data_dir)
    if not path.is_file() or rebuild:
        _write_jsonl(path, docstring_pair_records())
    return path


def retrieval_pairs(
    corpus: str | Path = DEFAULT_CORPUS, n: int = 200, *, seed: int = 0, data_dir: Path | None = None
) -> RetrievalPairs:
    """n query/document pairs of the docstring corpus (each docstring's first sentence as the
    query, the rest as its document), drawn reproducibly with `seed`; all of them when fewer.
    A user corpus (.csv, .jsonl, .txt) has no such pairs: NoRetrievalTask says so."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n={n!r}; accepted: a positive integer")
    if not (isinstance(corpus, str) and corpus in CORPORA):
        raise NoRetrievalTask(
            f"corpus {str(corpus)!r} is a user file: its texts have no query/document pairs (the task score is "
            f"retrieval on the built-in {DEFAULT_CORPUS!r} corpus, each docstring's first sentence finding the rest)"
        )
    path = build_docstring_pairs(data_dir)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    chosen = sorted(np.random.default_rng(seed).permutation(len(records))[:n])
    picked = [records[i] for i in chosen]
    return RetrievalPairs([r["query"] for r in picked], [r["document"] for r in picked], [r["source"] for r in picked])


def retrieval_task(
    corpus: str | Path, n: int, *, random_weights: bool = False, seed: int = 0
) -> tuple[RetrievalPairs | None, str]:
    """(the pairs, '') of the task score a notebook measures, or (None, why not): `n` 0 (the
    parameter task_size turns it off), a random-weight model, or a user corpus. The pairs are
    read (and built, once) only when they are used."""
    if n == 0:
        return None, "task_size=0: the task score was not measured"
    if random_weights:
        return None, RANDOM_WEIGHTS_NOTE
    try:
        return retrieval_pairs(corpus, n, seed=seed), ""
    except NoRetrievalTask as exc:
        return None, str(exc)


# ---------------------------------------------------------------- loading


def _accepted_corpus() -> str:
    return f"a built-in corpus ({', '.join(CORPORA)}) or a path to an existing {'/'.join(FILE_TYPES)} file"


def _resolve_corpus(corpus: str | Path, data_dir: Path | None) -> tuple[str, Path]:
    if isinstance(corpus, str) and corpus in CORPORA:
        return corpus, build_docstring_corpus(data_dir)
    if not isinstance(corpus, (str, Path)) or not str(corpus).strip():
        raise CorpusError("corpus", f"corpus={corpus!r} is not a name or path; accepted: {_accepted_corpus()}")
    path = Path(corpus).expanduser()
    if not path.is_file():
        raise CorpusError("corpus", f"corpus={str(corpus)!r}: no such file; accepted: {_accepted_corpus()}")
    if path.suffix.lower() not in FILE_TYPES:
        raise CorpusError(
            "corpus", f"corpus={str(corpus)!r} has extension {path.suffix!r}; accepted: {_accepted_corpus()}"
        )
    return path.stem, path


def _read_text(path: Path, encoding: str) -> str:
    """The whole file, decoded; a UTF-8 byte-order mark is dropped."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise CorpusError(
            "encoding",
            f"encoding={encoding!r} is not a codec Python knows; accepted: e.g. utf-8, latin-1, cp1252, utf-16",
        ) from None
    try:
        text = path.read_text(encoding="utf-8-sig" if codec == "utf-8" else encoding)
    except UnicodeDecodeError as e:
        raise CorpusError(
            "corpus",
            f"corpus={str(path)!r} is not valid {encoding} (byte "
            f"0x{e.object[e.start : e.start + 1].hex()} at offset {e.start}); accepted: "
            f"{encoding} text, or the file's encoding named with -p encoding=... "
            "(e.g. latin-1, cp1252)",
        ) from None
    except OSError as e:
        raise CorpusError(
            "corpus", f"corpus={str(path)!r} cannot be read ({e.strerror or e}); accepted: a readable file"
        ) from None
    if not text.strip():
        raise CorpusError(
            "corpus",
            f"corpus={str(path)!r} is empty; accepted: a file with texts "
            "(a CSV or JSONL needs a header / keys naming text_column)",
        )
    return text


def _read_csv(text: str) -> tuple[list[dict], list[str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return rows, list(reader.fieldnames or [])


def _read_jsonl(text: str, path: Path) -> tuple[list[dict], list[str]]:
    rows, columns = [], {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(
                "corpus", f"corpus={str(path)!r}: line {number} is not JSON ({e}); accepted: one JSON object per line"
            ) from e
        if not isinstance(row, dict):
            raise CorpusError(
                "corpus",
                f"corpus={str(path)!r}: line {number} is not a JSON object; accepted: one JSON object per line",
            )
        rows.append(row)
        columns.update(dict.fromkeys(row))
    return rows, list(columns)


def _check_column(parameter: str, column: str, columns: list[str], path: Path) -> None:
    if column not in columns:
        raise CorpusError(parameter, f"{parameter}={column!r} is not a column of {path.name}; accepted: {columns}")


def _is_empty(text: Any) -> bool:
    return text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip()


def load_corpus(
    corpus: str | Path = DEFAULT_CORPUS,
    *,
    text_column: str = "text",
    label_column: str | None = None,
    limit: int | None = None,
    data_dir: Path | None = None,
    encoding: str = "utf-8",
) -> Corpus:
    """Load a built-in corpus or a user .csv / .jsonl / .txt file (one text per non-empty
    line) in `encoding`. Empty texts are dropped (with their labels); `limit` keeps the first N.
    Errors are CorpusError, naming the parameter at fault."""
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit={limit!r}; accepted: a positive integer or None")
    name, path = _resolve_corpus(corpus, data_dir)
    text = _read_text(path, encoding)
    if path.suffix.lower() == ".txt":
        if label_column is not None:
            raise CorpusError(
                "label_column", f"label_column={label_column!r}, but a .txt corpus has no columns; accepted: None"
            )
        texts = [line.strip() for line in text.splitlines() if line.strip()][:limit]
        return Corpus(name, texts, None, path)
    rows, columns = _read_csv(text) if path.suffix.lower() == ".csv" else _read_jsonl(text, path)
    _check_column("text_column", text_column, columns, path)
    if label_column is not None:
        _check_column("label_column", label_column, columns, path)
    rows = [r for r in rows if not _is_empty(r.get(text_column))][:limit]
    texts = [str(r[text_column]).strip() for r in rows]
    labels = [r.get(label_column) for r in rows] if label_column is not None else None
    return Corpus(name, texts, labels, path)


def corpus_from_params(params: Mapping[str, Any]) -> Corpus:
    """The corpus a notebook's parameters name: `corpus`, read with the `text_column`,
    `label_column` and `encoding` it declares (the defaults for those it does not)."""
    return load_corpus(
        params["corpus"],
        text_column=params.get("text_column", "text"),
        label_column=params.get("label_column") or None,
        encoding=params.get("encoding", "utf-8"),
    )


def count_texts(
    corpus: str, *, text_column: str = "text", label_column: str | None = None, encoding: str = "utf-8"
) -> int:
    """Non-empty texts of a user corpus file; CorpusError if it does not load. Cached per file
    version: the runner checks the corpus of every notebook that takes it."""
    path = Path(corpus).expanduser()
    stat = path.stat() if path.is_file() else None
    version = (stat.st_mtime_ns, stat.st_size) if stat else None
    n = _count_texts(str(corpus), version, text_column, label_column, encoding)
    if isinstance(n, CorpusError):
        raise n
    return n


@functools.lru_cache(maxsize=32)
def _count_texts(corpus: str, version, text_column: str, label_column: str | None, encoding: str) -> int | CorpusError:
    try:
        return len(load_corpus(corpus, text_column=text_column, label_column=label_column, encoding=encoding).texts)
    except CorpusError as e:
        return e


# ---------------------------------------------------------------- token lengths


def token_lengths(
    texts: Sequence[str], tokenizer: Any, max_length: int | None = None, *, chunk: int = 1024
) -> np.ndarray:
    """Token count of each text, special tokens included; untruncated unless max_length."""
    counts: list[int] = []
    for start in range(0, len(texts), chunk):
        encoded = tokenizer(
            list(texts[start : start + chunk]),
            truncation=max_length is not None,
            max_length=max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,  # no "longer than the maximum" warning: counting, not running
        )
        counts.extend(len(ids) for ids in encoded["input_ids"])
    return np.asarray(counts, dtype=np.int64)


def length_summary(lengths: Sequence[int] | np.ndarray) -> dict[str, float]:
    """n, mean, p50, p90, p99, max, and the share of texts longer than 128/256/512."""
    a = np.asarray(lengths, dtype=np.float64)
    if a.size == 0:
        raise ValueError("length_summary needs at least one length")
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    summary = {
        "n": int(a.size),
        "mean": float(a.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": int(a.max()),
    }
    for limit in (128, 256, 512):
        summary[f"share_above_{limit}"] = float((a > limit).mean())
    return summary


def _packed(texts: Sequence[str], lengths: np.ndarray, seq_len: int) -> Iterator[str]:
    """Consecutive short texts joined with spaces until each reaches `seq_len` tokens.

    BERT-style tokenizers split at whitespace first, so the joined length is the sum of
    the parts less their special tokens (2 each, counted once for the whole).
    """
    parts: list[str] = []
    tokens = 2
    for text, n in zip(texts, lengths):
        if n >= seq_len:
            continue  # already used whole
        parts.append(text)
        tokens += max(int(n) - 2, 0)
        if tokens >= seq_len:
            yield " ".join(parts)
            parts, tokens = [], 2


def _rows(texts: Sequence[str], lengths: np.ndarray, seq_len: int, wanted: int, pack: bool) -> list[str]:
    """Candidate rows in a fixed order: texts >= seq_len tokens (corpus order), then
    packed paragraphs (pack) or the remaining texts from longest to shortest."""
    rows = [t for t, n in zip(texts, lengths) if n >= seq_len]
    if len(rows) >= wanted:
        return rows
    if pack:
        for row in _packed(texts, lengths, seq_len):
            rows.append(row)
            if len(rows) >= wanted:
                return rows
    short = np.flatnonzero(lengths < seq_len)
    return rows + [texts[i] for i in short[np.argsort(-lengths[short], kind="stable")]]


def texts_at_length(
    texts: Sequence[str],
    tokenizer: Any,
    batch_size: int,
    seq_len: int,
    *,
    lengths: np.ndarray | None = None,
    offset: int = 0,
    pack: bool = True,
) -> tuple[dict, int]:
    """A batch of real text padded/truncated to exactly `seq_len` tokens.

    Rows are texts at least `seq_len` tokens long (in corpus order); where there are too
    few (docstring paragraphs are short: p99 ~150 tokens), consecutive paragraphs are
    joined into rows of `seq_len` (pack=True) or the longest remaining texts are padded
    (pack=False). The batch cycles through those rows from `offset`. Pass precomputed
    `lengths` (token_lengths) so a sweep does not re-tokenize the corpus on every call.
    Returns (dict of torch tensors, number of real non-pad tokens).
    """
    if batch_size < 1 or seq_len < 2:
        raise ValueError(f"batch_size={batch_size}, seq_len={seq_len}; need >= 1 and >= 2")
    if not texts:
        raise ValueError("texts is empty")
    lengths = token_lengths(texts, tokenizer) if lengths is None else np.asarray(lengths)
    rows = _rows(texts, lengths, seq_len, offset + batch_size, pack)
    chosen = [rows[(offset + i) % len(rows)] for i in range(batch_size)]
    batch = tokenizer(chosen, padding="max_length", truncation=True, max_length=seq_len, return_tensors="pt")
    return dict(batch), int(batch["attention_mask"].sum())


def sample_texts(corpus: str, n: int, text_column: str = "text", encoding: str = "utf-8", seed: int = 0) -> list[str]:
    """n texts of the corpus, drawn reproducibly, in a random arrival order (as 05 does)."""
    texts = load_corpus(corpus, text_column=text_column, encoding=encoding).texts
    return [texts[i] for i in np.random.default_rng(seed).permutation(len(texts))[:n]]
