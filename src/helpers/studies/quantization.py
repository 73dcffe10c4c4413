"""02_quantization: what each precision variant buys in speed and size, and costs in fidelity
on real text."""

from __future__ import annotations

from typing import Any, Mapping

from helpers.backends import cache, engines, export, quantize
from helpers.backends.variants import TORCH_METHODS, build, produce
from helpers.core import fidelity
from helpers.core.memory import ProcessMemory, in_fresh_process
from helpers.core.progress import resumed, track
from helpers.core.tables import SAMPLES
from helpers.core.timing import timing_settings
from helpers.workloads.corpora import corpus_from_params, retrieval_task, texts_at_length, token_lengths
from helpers.workloads.models import LoadedModel, describe_model_name, load_model


# -- memory of one variant in a fresh process -------------------------------------------------
def _load_in_child(method: str, model: str, file: str, threads: int, batch: dict):
    # an ORT or OpenVINO variant never loads the torch model
    engine = build(method, load_model(model) if method in TORCH_METHODS else None, file or None, threads)
    return engine, engine.prepare(batch)


def _run_in_child(loaded_engine) -> int:
    engine, prepared = loaded_engine
    for _ in range(3):
        engine.run_prepared(prepared)
    return 3


def fresh_process_memory(method: str, model: str, file: str, threads: int, batch: dict) -> ProcessMemory:
    """Peak RSS of a process that loads this one variant and runs it on `batch`: load and
    inference increments with nothing left over from other variants."""
    return in_fresh_process(
        _load_in_child, _run_in_child, method, model, file, threads, batch, preload=("helpers.studies.quantization",)
    )


# -- evaluation -------------------------------------------------------------------------------
def split_texts(texts, n_fidelity: int) -> tuple[list[str], list[str]]:
    """Disjoint real-text sets: fidelity texts from even positions, and the calibration pool,
    the odd ones (each calibrated method takes calibration_size texts spread over it; NNCF's
    accuracy control validates on more of them)."""
    return quantize.calibration_subset(texts[0::2], n_fidelity), list(texts[1::2])


def fidelity_row(
    engine: engines.Engine,
    loaded: LoadedModel,
    reference_emb,
    check_batch,
    reference_hidden,
    fidelity_texts,
    seq_len: int,
    task=None,
) -> dict:
    """Agreement of one variant with eager fp32: max diff and status on a padded batch,
    cosine and recall@10 of embeddings over the fidelity texts, and the task scores when
    a classification head and labels are given (task = (head, id2label, labels))."""

    check = engines.check_against_reference(
        engine(check_batch), reference_hidden, check_batch["attention_mask"], precision=engine.precision
    )
    emb = fidelity.embed_texts(engine, fidelity_texts, loaded.tokenizer, 32, seq_len, loaded.input_names)
    agreement = fidelity.embedding_agreement(reference_emb, emb)
    # status and message judge the figures the row shows: max_abs_diff of the padded check
    # batch, cosine_min over every fidelity text (not the check batch's own cosine)
    status, message = check["status"], check["message"]
    if check["compared"]:
        status, message = engines.tolerance_verdict(
            check["max_abs_diff"], agreement["cosine_min"], check["atol"], check["min_cosine"], check["finite"]
        )
    row = {
        "precision": engine.precision,
        "graph": engine.graph,
        "max_abs_diff": check["max_abs_diff"],
        "status": status,
        "message": message,
        **agreement,
        "recall_at_10": fidelity.recall_at_k(reference_emb, emb, k=10),
    }
    if task is not None:
        head, id2label, texts, labels = task
        predicted = fidelity.predict_texts(
            engine, head, id2label, texts, loaded.tokenizer, 32, seq_len, loaded.input_names
        )
        row.update(fidelity.classification_scores([str(y) for y in labels], predicted))
    return row


def task_vectors(engine, pairs, loaded: LoadedModel, seq_len: int) -> tuple:
    """(query vectors, document vectors) of the retrieval pairs under one engine: the same
    tokenizer, batches of 32 and truncation at seq_len as the fidelity texts."""
    return tuple(
        fidelity.embed_texts(engine, texts, loaded.tokenizer, 32, seq_len, loaded.input_names)
        for texts in (pairs.queries, pairs.documents)
    )


def speed_rows(
    built: dict[str, engines.Engine], batch: dict, real_tokens: int, timing_kwargs: dict, rounds: int
) -> list[dict]:
    """Time every engine on `batch`, interleaved in rounds with eager fp32 (which must be in
    `built`); one row per engine with its statistics and speed-up over eager with a CI."""
    from helpers.core.timing import interleaved, timing_columns

    fns = {}
    for name, engine in built.items():
        prepared = engine.prepare(batch)
        fns[name] = lambda engine=engine, prepared=prepared: engine.run_prepared(prepared)
    timings = interleaved(fns, rounds=rounds, **timing_kwargs)
    base = timings["eager"].samples_ms
    rows = []
    batch_size = len(batch["input_ids"])
    for name, t in timings.items():
        rows.append(
            {
                "method": name,
                **built[name].describe(),
                "engine": name,
                "cold_ms": t.cold_ms,
                **timing_columns(t.samples_ms, batch_size, real_tokens, base, target_ci=timing_kwargs.get("target_ci")),
                SAMPLES: t.samples_ms,
            }
        )
    return rows


def classification_task(model: str, corpus, n: int):
    """(head, id2label, texts, labels) when `model` is a local or hub classification checkpoint
    and the corpus has labels; None otherwise."""

    if not corpus.labels or describe_model_name(model) not in ("local", "hub"):
        return None
    found = fidelity.classification_head(model)
    return None if found is None else (*found, corpus.texts[:n], corpus.labels[:n])


class ModelVariants:
    """Everything 02_quantization does for one model: produce each variant once (ONNX files
    from the build cache, shared with the other notebooks and runs), check and score it
    against eager fp32, then time them together; rows go to the two tables.

    `retrieval` is (corpus, task_size): the task score, retrieval on the docstring corpus's
    query/document pairs, of every variant on real weights and of eager fp32 (its reference);
    NaN with `task_note` saying why on random weights or a user corpus."""

    def __init__(self, model: str, seq_len: int, fidelity_texts, task=None, retrieval=("", 0)):
        self.loaded = load_model(model)
        self.model, self.seq_len, self.fidelity_texts, self.task = model, seq_len, fidelity_texts, task
        self.retrieval = retrieval
        self.pairs, self.task_note, self.task_reference = None, "", None  # read on first use (task_scores)
        self.lengths = None  # token lengths of the corpus, computed once when timing
        export.produce("onnx", self.loaded).raise_for_status()  # the input of every ONNX variant
        self.built = {"eager": build("eager", self.loaded, None)}

        self.check_batch, _ = texts_at_length(fidelity_texts, self.loaded.tokenizer, 4, seq_len, pack=False)
        self.reference_hidden = self.built["eager"](self.check_batch)
        self.reference_emb = fidelity.embed_texts(
            self.built["eager"], fidelity_texts, self.loaded.tokenizer, 32, seq_len, self.loaded.input_names
        )

    def evaluate(
        self, method: str, calibration_texts, calibration_size: int, measure_memory: bool, memory_batch: dict
    ) -> dict:
        """One variant's row: production, fidelity, memory (status error/skipped if it failed)."""
        row = {
            "model": self.model,
            "model_label": self.loaded.label,
            "random_weights": self.loaded.random_weights,
            "engine": method,
            "method": method,
            **produce(method, self.loaded, calibration_texts, calibration_size),
        }
        if row["status"] != "ok":
            return row
        try:
            engine = build(method, self.loaded, row["file"] or None)
        except engines.EngineUnavailable as exc:  # e.g. ov-bf16 on a CPU without bf16: OpenVINO would run f32
            file = cache.relative(row["file"]) if row["file"] else ""
            return row | {"status": "skipped", "message": str(exc), "file": file}
        self.built[method] = engine
        row.update(engine.describe(), engine=method)
        made = row["message"]  # how the file was made (e.g. the MatMuls kept fp32), beside any mismatch
        row.update(
            fidelity_row(
                engine,
                self.loaded,
                self.reference_emb,
                self.check_batch,
                self.reference_hidden,
                self.fidelity_texts,
                self.seq_len,
                self.task,
            )
        )
        row["message"] = "; ".join(m for m in (row["message"], made) if m)
        row.update(self.task_scores(method, engine))
        if measure_memory:
            mem = fresh_process_memory(method, self.model, row["file"], engine.threads, memory_batch)
            row.update(
                peak_rss_mb=mem.peak_mb,
                load_increment_mb=mem.load_increment_mb,
                inference_increment_mb=mem.inference_increment_mb,
            )
        row["file"] = cache.relative(row["file"]) if row["file"] else ""
        return row

    def task_scores(self, method: str, engine: engines.Engine) -> dict:
        """The task-score columns of one variant (fidelity.TASK_COLUMNS), with the engine that
        is timed; eager fp32's own score, the reference, is computed once."""
        if self.task_reference is None and not self.task_note:
            corpus, n = self.retrieval
            self.pairs, self.task_note = retrieval_task(corpus, n, random_weights=self.loaded.random_weights)
            if self.pairs is not None:
                vectors = task_vectors(self.built["eager"], self.pairs, self.loaded, self.seq_len)
                self.task_reference = fidelity.task_score(*vectors)
        if self.pairs is None:
            return fidelity.task_columns(None, None, self.task_note)
        if method != "eager" and engine.precision == "fp32":  # the score is for reduced precision (and its cost)
            return fidelity.task_columns(None, None, fidelity.FP32_NOT_SCORED)
        score = (
            self.task_reference
            if method == "eager"
            else fidelity.task_score(*task_vectors(engine, self.pairs, self.loaded, self.seq_len))
        )
        return fidelity.task_columns(score, self.task_reference)

    def engine(self, method: str, file: str) -> engines.Engine:
        """A variant's engine: built during evaluation, or rebuilt from its file on resume."""
        if method not in self.built:
            self.built[method] = build(method, self.loaded, cache.resolve(file) if file else None)
        return self.built[method]

    def speed(
        self, variant_rows, batch_size: int, pending: list[str], texts, timing_kwargs: dict, rounds: int
    ) -> list[dict]:
        """Rows of 02_speed for the `pending` variants at one batch size: every variant that
        could be built is timed interleaved with eager on real text packed to seq_len."""

        rows = variant_rows[variant_rows["status"].isin(["ok", "mismatch"])]
        wanted = [m for m in rows["method"] if m in pending]
        if not wanted:
            return []
        files = {m: f if isinstance(f, str) else "" for m, f in zip(rows["method"], rows["file"])}
        built = {m: self.engine(m, files[m]) for m in dict.fromkeys(["eager", *wanted])}
        if self.lengths is None:
            self.lengths = token_lengths(texts, self.loaded.tokenizer)
        batch, real_tokens = texts_at_length(
            texts, self.loaded.tokenizer, batch_size, self.seq_len, lengths=self.lengths
        )
        common = {"model": self.model, "batch_size": batch_size, "seq_len": self.seq_len}
        return [
            {**common, **row}
            for row in speed_rows(built, batch, real_tokens, timing_kwargs, rounds)
            if row["method"] in wanted
        ]


# -- the notebook's steps ---------------------------------------------------------------------
def load_texts(params: Mapping[str, Any]):
    """The corpus 02's parameters name: its texts, and its labels when `label_column` names one."""

    return corpus_from_params(params)


def timing_kwargs(params: Mapping[str, Any]) -> dict:
    """The timing settings of every variant and round, from 02's parameters: until the median's
    95% CI is within target_ci of it, or the cap (5 x min_time_s, at least 1 s)."""
    return timing_settings(params, max_time_s=max(1.0, 5 * params["min_time_s"]))


def pending_work(
    variant_table, speed_table, model: str, methods: list[str], batch_sizes: list[int], seq_len: int
) -> tuple[list[str], list[tuple[str, int]]]:
    """What a resumed run still has to do for one model: the variants without a row in
    02_variants, and the (variant, batch size) pairs without a row in 02_speed."""
    todo = [m for m in methods if not variant_table.done(model=model, method=m)]
    pending_speed = [
        (m, b)
        for m in methods
        for b in batch_sizes
        if not speed_table.done(model=model, method=m, batch_size=b, seq_len=seq_len)
    ]
    return todo, pending_speed


def measure_models(variant_table, speed_table, params: Mapping[str, Any], data) -> None:
    """Produce, check and time every variant of every model 02's parameters name, on the corpus
    `data` (`load_texts`), resuming: a model whose rows are all written is not even loaded;
    otherwise only its missing variants are produced and scored (rows to 02_variants) and only
    its missing (variant, batch size) pairs timed (02_speed)."""

    models, methods, batch_sizes, seq_len = (params[k] for k in ("models", "methods", "batch_sizes", "seq_len"))
    fidelity_texts, calibration_texts = split_texts(data.texts, params["fidelity_size"])
    timing = timing_kwargs(params)
    pending = {m: pending_work(variant_table, speed_table, m, methods, batch_sizes, seq_len) for m in models}
    total = len(models) * len(methods) * (1 + len(batch_sizes))
    resumed(total - sum(len(todo) + len(speed) for todo, speed in pending.values()), total, "variants and timings")
    for model_name in models:
        todo, pending_speed = pending[model_name]
        if not todo and not pending_speed:
            continue
        task = classification_task(model_name, data, params["fidelity_size"])
        mv = ModelVariants(model_name, seq_len, fidelity_texts, task, (params["corpus"], params["task_size"]))
        memory_batch, _ = texts_at_length(data.texts, mv.loaded.tokenizer, max(batch_sizes), seq_len)
        for method in track(todo, desc=f"variants {model_name}"):
            row = mv.evaluate(
                method, calibration_texts, params["calibration_size"], params["measure_memory"], memory_batch
            )
            variant_table.append(row)
        variant_rows = variant_table.read()
        variant_rows = variant_rows[variant_rows["model"] == model_name]
        for batch_size in track(batch_sizes, desc=f"speed {model_name}"):
            untimed = [m for m, b in pending_speed if b == batch_size]
            for row in mv.speed(variant_rows, batch_size, untimed, data.texts, timing, params["rounds"]):
                speed_table.append(row)
