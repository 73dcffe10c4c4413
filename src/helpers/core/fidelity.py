"""Fidelity: how close a variant (quantized, reduced precision, another runtime) stays to
eager fp32 on real text.

Everything works on numpy arrays: hidden states (batch, seq, hidden), attention masks
(batch, seq) and sentence embeddings (texts, dim). `embed_texts` produces the embeddings
with any runner, so every engine is compared on exactly the same tokenized batches.
Beside agreement with fp32, `task_score` scores a task on its own: retrieval of each query's
own document (recall@10, MRR@10), which a variant keeps a share of fp32's (`task_columns`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np


def _numpy(x: Any) -> np.ndarray:
    """A torch tensor (any dtype, device, grad) or array-like as a numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        # numpy has no bfloat16; half precision is widened too so sums do not overflow
        return x.float().numpy() if x.is_floating_point() else x.numpy()
    return np.asarray(x)


def mean_pool(hidden: Any, attention_mask: Any) -> np.ndarray:
    """Mean of the token vectors over valid (mask=1) tokens: all-MiniLM-L6-v2's pooling."""
    h = _numpy(hidden).astype(np.float32, copy=False)
    mask = _numpy(attention_mask).astype(np.float32)[..., None]
    # the same 1e-9 floor as sentence-transformers, so an all-padding row gives zeros
    return (h * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)


def normalize(x: Any, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    a = _numpy(x).astype(np.float32, copy=False)
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), eps)


def _check_pair(ref: np.ndarray, var: np.ndarray) -> None:
    if ref.shape != var.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, variant {var.shape}")
    if ref.ndim != 2 or ref.shape[0] == 0:
        raise ValueError(f"need a non-empty (texts, dim) array, got shape {ref.shape}")


def cosines(ref_emb: Any, var_emb: Any) -> np.ndarray:
    """Cosine similarity of each text's variant embedding with its reference embedding."""
    ref, var = normalize(ref_emb), normalize(var_emb)
    _check_pair(ref, var)
    return np.einsum("ij,ij->i", ref.astype(np.float64), var.astype(np.float64))


def embedding_agreement(ref_emb: Any, var_emb: Any) -> dict:
    """Mean and min cosine between reference and variant embeddings, over texts."""
    cos = cosines(ref_emb, var_emb)
    return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()), "n": int(cos.size)}


def max_abs_diff(ref_hidden: Any, var_hidden: Any, attention_mask: Any) -> float:
    """Largest |reference - variant| over valid (mask=1) tokens; padding is ignored
    (its values are arbitrary and differ legitimately between runtimes)."""
    ref = _numpy(ref_hidden).astype(np.float64)
    var = _numpy(var_hidden).astype(np.float64)
    if ref.shape != var.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, variant {var.shape}")
    valid = _numpy(attention_mask).astype(bool)
    if not valid.any():
        raise ValueError("attention_mask has no valid token")
    return float(np.abs(ref[valid] - var[valid]).max())


def _top_k(emb: np.ndarray, rows: slice, k: int) -> np.ndarray:
    """Indices of the k nearest neighbours (cosine, self excluded) of the rows, unordered."""
    sims = emb[rows] @ emb.T
    own = np.arange(rows.start, rows.stop)
    sims[own - rows.start, own] = -np.inf
    return np.argpartition(-sims, k - 1, axis=1)[:, :k]


def recall_at_k(ref_emb: Any, var_emb: Any, k: int = 10, chunk: int = 1024) -> float:
    """Nearest-neighbour retrieval agreement: for each text, the share of its k nearest
    neighbours under the reference embeddings that are also among its k nearest under
    the variant's (cosine, the text itself excluded), averaged over texts.

    Similarities are computed `chunk` rows at a time, so memory stays O(chunk * texts).
    """
    ref, var = normalize(ref_emb), normalize(var_emb)
    _check_pair(ref, var)
    n = ref.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k={k} needs 1 <= k < number of texts ({n})")
    hits = 0
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        both = np.concatenate([_top_k(ref, rows, k), _top_k(var, rows, k)], axis=1)
        both.sort(axis=1)
        # each set has distinct indices, so an index shared by both sets appears twice in a row
        hits += int((both[:, 1:] == both[:, :-1]).sum())
    return hits / (n * k)


def task_score(query_vectors: Any, doc_vectors: Any, k: int = 10, chunk: int = 1024) -> dict:
    """Retrieval of each query's own document: query i's is document i, ranked among all the
    documents by cosine. recall@k is the share of queries whose own document is among the k
    nearest, MRR@k the mean of 1/rank (0 beyond rank k). Ties count against the own
    document (a document as near as it ranks before it), so equal vectors score no hit.

    Keys `recall_at_{k}`, `mrr_at_{k}` and `n`, the number of pairs (> k, or every query
    would find its document among the k nearest)."""
    q, d = normalize(query_vectors), normalize(doc_vectors)
    _check_pair(q, d)
    n = q.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k={k} needs 1 <= k < number of pairs ({n})")
    ranks = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        sims = q[start:stop].astype(np.float64) @ d.T.astype(np.float64)
        rows = np.arange(stop - start)
        own = sims[rows, np.arange(start, stop)]
        sims[rows, np.arange(start, stop)] = -np.inf  # the own document is not its own rival
        ranks[start:stop] = 1 + (sims >= own[:, None]).sum(axis=1)
    hit = ranks <= k
    return {
        f"recall_at_{k}": float(hit.mean()),
        f"mrr_at_{k}": float(np.where(hit, 1.0 / ranks, 0.0).mean()),
        "n": int(n),
    }


# the task score's columns in a result row, and its headline: a variant's MRR@10 as a share of
# eager fp32's, the "percent of fp32's score" that quantization claims state
TASK_COLUMNS = ("task_recall_at_10", "task_mrr_at_10", "task_mrr_share_of_fp32", "task_n", "task_note")


FP32_NOT_SCORED = "fp32: not scored (its answers are eager fp32's to rounding: see cosine_min)"


def task_columns(score: dict | None, reference: dict | None, note: str = "") -> dict:
    """A row's task-score columns (TASK_COLUMNS) from `task_score` of the variant and of eager
    fp32 (`reference`); NaN with `note` saying why when there is no score."""
    nan = float("nan")
    if score is None:
        return dict.fromkeys(TASK_COLUMNS[:-1], nan) | {"task_note": note}
    base = (reference or {}).get("mrr_at_10")
    return {
        "task_recall_at_10": score["recall_at_10"],
        "task_mrr_at_10": score["mrr_at_10"],
        "task_mrr_share_of_fp32": score["mrr_at_10"] / base if base else nan,
        "task_n": score["n"],
        "task_note": note,
    }


def classification_scores(y_true: Sequence, y_pred: Sequence) -> dict:
    """Accuracy and F1 (weighted and macro over the labels present) of predictions."""
    from sklearn.metrics import accuracy_score, f1_score

    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise ValueError(f"need equally long, non-empty labels ({len(y_true)} vs {len(y_pred)})")
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_weighted": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "n": len(y_true),
    }


def _over_batches(
    run_batch: Callable[[dict], Any],
    texts: Sequence[str],
    tokenizer: Any,
    batch_size: int,
    max_length: int | None,
    input_names: Sequence[str],
    reduce: Callable[[Any, Any], np.ndarray],
    sort_by_length: bool,
) -> np.ndarray:
    """reduce(hidden, attention_mask) of every text, in the texts' order."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}; need >= 1")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty")
    order = np.arange(len(texts))
    if sort_by_length:
        ids = tokenizer(texts, truncation=max_length is not None, max_length=max_length, verbose=False)["input_ids"]
        order = np.argsort([len(i) for i in ids], kind="stable")
    out: np.ndarray | None = None
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx],
            padding=True,
            truncation=max_length is not None,
            max_length=max_length,
            return_tensors="pt",
        )
        vectors = reduce(run_batch({name: enc[name] for name in input_names}), enc["attention_mask"])
        if out is None:
            out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
        out[idx] = vectors
    return out


def embed_texts(
    run_batch: Callable[[dict], Any],
    texts: Sequence[str],
    tokenizer: Any,
    batch_size: int,
    max_length: int | None,
    input_names: Sequence[str],
    *,
    normalized: bool = True,
    sort_by_length: bool = True,
) -> np.ndarray:
    """Sentence embeddings of `texts`, in their order, from any runner
    `run_batch(dict of torch tensors) -> last_hidden_state` (numpy or torch).

    Batches are padded to their longest text (truncated at `max_length`). With
    `sort_by_length` texts are batched in order of token length (stable, so deterministic),
    which cuts padding; note that a variant with per-batch activation ranges (dynamic INT8)
    then sees different batch neighbours than with corpus order. Rows are unit-normalised
    unless `normalized=False` (all-MiniLM-L6-v2 ends with a Normalize module).
    """
    out = _over_batches(run_batch, texts, tokenizer, batch_size, max_length, input_names, mean_pool, sort_by_length)
    return normalize(out) if normalized else out


def classification_head(source) -> tuple[Callable[[Any, Any], np.ndarray], dict] | None:
    """The fp32 classification head of a sequence-classification checkpoint, applied to an
    encoder's last hidden state: (head(hidden, mask) -> logits, id2label). None if `source`
    is not such a checkpoint. Covers the BERT (pooler + classifier), DistilBERT
    (pre_classifier on [CLS]) and RoBERTa (classifier on the sequence) families."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(source)
    if not any(a.endswith("ForSequenceClassification") for a in config.architectures or []):
        return None
    clf = AutoModelForSequenceClassification.from_pretrained(source).eval()
    base = getattr(clf, clf.base_model_prefix)

    def head(hidden, mask) -> np.ndarray:
        h = torch.as_tensor(_numpy(hidden), dtype=torch.float32)
        with torch.no_grad():
            if getattr(base, "pooler", None) is not None and hasattr(clf, "dropout"):
                logits = clf.classifier(clf.dropout(base.pooler(h)))
            elif hasattr(clf, "pre_classifier"):
                logits = clf.classifier(torch.relu(clf.pre_classifier(h[:, 0])))
            else:
                logits = clf.classifier(h)
        return logits.numpy()

    return head, dict(config.id2label)


def predict_texts(
    run_batch: Callable[[dict], Any],
    head: Callable,
    id2label: dict,
    texts: Sequence[str],
    tokenizer: Any,
    batch_size: int,
    max_length: int | None,
    input_names: Sequence[str],
) -> list[str]:
    """Predicted label (as text) of every text: `head` on a runner's hidden states."""
    logits = _over_batches(run_batch, texts, tokenizer, batch_size, max_length, input_names, head, sort_by_length=True)
    return [str(id2label.get(int(i), i)) for i in logits.argmax(axis=1)]


# -- a pipeline's answers against the reference, and fidelity floors ------------------------
def text_fidelity(reference: np.ndarray, emb: np.ndarray) -> dict:
    """Per-text cosine (min and mean) against the reference, recall@10 (NaN below 11 texts)."""
    cos = cosines(reference, emb)
    recall = recall_at_k(reference, emb, k=10) if len(reference) > 10 else float("nan")
    return {"cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()), "recall_at_10": recall}


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def meets_floors(row, min_cosine: float, min_recall: float) -> bool:
    """The measured fidelity is at or above both floors (recall unmeasurable below 11 texts)."""
    recall = row.get("recall_at_10")
    recall_ok = _missing(recall) or recall >= min_recall
    return bool(not _missing(row.get("cosine_min")) and row["cosine_min"] >= min_cosine and recall_ok)


def floor_message(row, min_cosine: float, min_recall: float) -> str:
    """Which floor a measurement misses, and by how much ('' when it meets both)."""
    parts = []
    if not row["cosine_min"] >= min_cosine:
        parts.append(f"cosine_min {row['cosine_min']:.5f} < min_cosine {min_cosine:g}")
    if not _missing(row.get("recall_at_10")) and row["recall_at_10"] < min_recall:
        parts.append(f"recall_at_10 {row['recall_at_10']:.3f} < min_recall_at_10 {min_recall:g}")
    return "; ".join(parts)
