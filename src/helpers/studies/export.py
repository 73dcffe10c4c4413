"""01_export: can each format be produced, does it match eager fp32 at shapes it was not traced
with, and what does it cost?"""

from __future__ import annotations

from typing import Any, Mapping

from helpers.backends import cache, engines, export, ov
from helpers.backends.engines import Engine, check_against_reference, engine_for_file
from helpers.core.progress import resumed, track
from helpers.workloads.models import LoadedModel, load_model


def check_over_shapes(engine: Engine, reference: Engine, loaded: LoadedModel, texts, lengths, shapes) -> dict:
    """check_against_reference at every (batch, seq_len) of `shapes` on real text with real
    padding (pack=False), keeping the worst: the largest diff, the smallest cosine."""
    from helpers.workloads.corpora import texts_at_length

    worst = {"max_abs_diff": 0.0, "cosine_min": 1.0, "status": "ok", "message": ""}
    for batch_size, seq_len in shapes:
        batch, _ = texts_at_length(texts, loaded.tokenizer, batch_size, seq_len, lengths=lengths, pack=False)
        result = check_against_reference(
            engine(batch), reference(batch), batch["attention_mask"], precision=engine.precision
        )
        worst["max_abs_diff"] = max(worst["max_abs_diff"], result["max_abs_diff"])
        worst["cosine_min"] = min(worst["cosine_min"], result["cosine_min"])
        if result["status"] != "ok":
            worst["status"] = "mismatch"
            worst["message"] += f"{batch_size}x{seq_len}: {result['message']}; "
    worst["atol"], worst["min_cosine"] = result["atol"], result["min_cosine"]
    return worst


def export_and_check(fmt: str, loaded: LoadedModel, reference: Engine, texts, lengths, shapes) -> dict:
    """Produce one format (from the build cache), run the file it produced and check it
    against eager fp32 at every shape: one result row (export cost: the build's, also when
    reused, with `cache` hit or miss; graph statistics, agreement, status)."""
    record = ov.convert(loaded) if fmt == "openvino" else export.produce(fmt, loaded)
    row = {k: v for k, v in record.row().items() if k != "path"}
    row["file"] = cache.relative(record.path) if record.status == "ok" else ""
    if record.status != "ok":
        return row
    engine = engine_for_file(fmt, record.path, loaded, threads=reference.threads)
    check = check_over_shapes(engine, reference, loaded, texts, lengths, shapes)
    row.update(
        engine=engine.name,
        precision=engine.precision,
        graph=engine.graph,
        provider=engine.provider,
        threads=engine.threads,
        **check,
    )
    row["message"] = "; ".join(m for m in (check["message"], record.message) if m)
    return row


# -- the notebook's steps ---------------------------------------------------------------------
def corpus_texts(params: Mapping[str, Any]) -> list[str]:
    """The texts of the corpus 01's parameters name (the correctness check's real text)."""
    from helpers.workloads.corpora import corpus_from_params

    return corpus_from_params(params).texts


def check_shapes(batch_sizes: list[int], seq_lens: list[int]) -> list[tuple[int, int]]:
    """Every (batch size, sequence length) pair of the correctness check."""
    return [(b, n) for b in batch_sizes for n in seq_lens]


def export_models(table, params: Mapping[str, Any], texts) -> None:
    """Produce and check every format of every model of 01's parameters that the table does not
    hold yet, at every `check_shapes` pair; the files come from the build cache, where the plain
    ONNX export is the input of the optimized formats."""
    from helpers.workloads.corpora import token_lengths

    models, formats = params["models"], params["formats"]
    shapes = check_shapes(params["batch_sizes"], params["seq_lens"])
    done = sum(table.done(model=m, format=f) for m in models for f in formats)
    resumed(done, len(models) * len(formats), "model formats")
    for model_name in models:
        loaded = load_model(model_name)
        reference = engines.build_engine("eager", loaded)
        lengths = token_lengths(texts, loaded.tokenizer)
        todo = [f for f in formats if not table.done(model=model_name, format=f)]
        for fmt in track(todo, desc=f"export {model_name}"):
            row = export_and_check(fmt, loaded, reference, texts, lengths, shapes)
            table.append({"model": model_name, "model_label": loaded.label, "n_params": loaded.n_params, **row})
