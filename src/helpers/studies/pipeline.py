"""07_pipeline: the fastest whole pipeline (engine and precision, batching, thread/process
layout, tokenization overlap) for a corpus at a fidelity floor, measured against the naive one.

The search, in three stages, every configuration a row of results/07_pipeline.csv (a
configuration left out is recorded with its reason, never dropped):

1. probes on a sample of the corpus: each variant's fidelity against eager fp32 (pruned when
   below a floor; 02_quantization's table prunes first where it measured the same model) and
   speed; then each batching strategy's batch sizes with the fastest variant that passed, the
   knee of each strategy kept (the smallest batch size within 5% of its best);
2. the finalists (and the steps of the waterfall naive -> recommended, each its own pipeline)
   on the whole corpus: tokenization included, answers in corpus order checked per text
   against the naive pipeline (eager fp32, one text at a time), passes interleaved, speed-up
   over naive with a bootstrap CI;
3. the peak RSS of a fresh process running each measured pipeline.

Beside them, the peers (helpers.backends.peers: sentence-transformers' own backends, fastembed
and CTranslate2, what a user would run instead) are probed on the sample at their default batch
size and at each of `batch_sizes`, in their library's default layout and (peer_parallel) in
the parallel layout it documents (sentence-transformers' multi-process pool, fastembed's
`parallel`, CTranslate2's `inter_threads`, with `cores` workers); each is measured on the whole
corpus at its default settings and at its best probed ones (the row's peer_info says which):
rows with `peer` set, checked against the naive pipeline like every candidate, never
recommended. Each candidate's speed-up over the fastest peer that met the floors is computed
from the same passes.

Isolation: on the whole corpus every candidate and every peer runs in a worker process of its
own (studies.pipeline_workers), passes interleaved in time (a pass of each, in turn, repeated),
so no runtime's thread pool sits in another's process. One with the processes layout (a
pipeline's, sentence-transformers' pool, fastembed's `parallel`) runs in the processes of its
own pool, which hold nothing else; it is driven from this process, which only splits the texts
and gathers the answers (fastembed pools them here), rather than from a worker that would
start its pool from a fork server of its own. The naive pipeline is also measured in
this process, where every runtime the probes loaded still is, in the same passes: one row of
stage corpus-in-process (candidate "naive (in-process)", its speed-up over the isolated naive
one), to show what sharing a process costs. The probes run in this process: they rank settings
of one variant or peer against each other, and a worker per probe would cost a model load each.

A time budget (budget_s) bounds the probes and the finalists (not the peers' probes and passes).
"""

from __future__ import annotations

import json
import time
from typing import Sequence

import numpy as np
import pandas as pd

from helpers.backends import cache
from helpers.backends.peers import Peer, default_batch, unavailable, unsupported
from helpers.backends.workers import SETTLE_S, WorkerError
from helpers.core import progress
from helpers.core.fidelity import floor_message, meets_floors, text_fidelity
from helpers.core.memory import in_fresh_process
from helpers.core.tables import SAMPLES, failure_row, read_table
from helpers.pipeline import CALIBRATED, PRECISION, PRELOAD, TORCH_VARIANTS, Pipeline, make_variant_file
from helpers.studies import pipeline_time
from helpers.studies.pipeline_workers import PRELOAD as WORKER_PRELOAD
from helpers.studies.pipeline_workers import PipelineWorker
from helpers.workloads.corpora import sample_texts
from helpers.workloads.models import load_model

NAIVE = "naive"  # the candidate name of the naive pipeline (eager fp32, one text at a time)
IN_PROCESS = "naive (in-process)"  # the naive pipeline measured in this process, beside every runtime loaded
IN_PROCESS_STAGE = "corpus-in-process"  # its stage: apart from the corpus rows, never a candidate
PEER_STEP = "peer"  # the waterfall_step of a peer's rows
TABLE = "07_pipeline"
KEY = ["stage", "candidate"]
KNEE_SHARE = 0.95  # a strategy's knee: the smallest batch size within 5% of its best items/s
# 02_quantization's method names for the variants it measures
FROM_02 = {v: v for v in ("eager", "torch-bf16", "torch-bf16-autocast", "torch-int8", "ort-int8-pc", "ort-int8-static")}
FROM_02 |= {v: v for v in ("ov", "ov-bf16", "ov-int8", "ov-int8-ac", "ov-int8-skip-ffn-down")}


def naive(model: str, max_length: int, threads: int) -> Pipeline:
    """Eager fp32, one text at a time, in corpus order: the pipeline everything is compared with."""
    return Pipeline(model, "eager", "unsorted", 1, max_length, "threads", threads)


def describe(pipe: Pipeline | Peer, chosen: str = "") -> dict:
    """A row's columns describing a pipeline or a peer; a peer's peer_info holds its settings
    (batch size, parallel layout), what loading found and `chosen` (why it was measured)."""
    peer = isinstance(pipe, Peer)
    info = {**pipe.settings, **pipe.info, **({"chosen": chosen} if chosen else {})} if peer else {}
    return {
        "peer": pipe.peer if peer else "",
        "peer_info": json.dumps(info) if info else "",
        "variant": pipe.variant,
        "precision": pipe.precision,
        "recipe": json.dumps(pipe.recipe) if pipe.recipe else "",
        "strategy": pipe.strategy,
        "batch_size": pipe.batch_size,
        "layout": pipe.layout,
        "threads": pipe.threads,
        "overlap": pipe.overlap,
    }


def _timed_pass(pipe: Pipeline, texts: Sequence[str]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = pipe.encode(texts)
    return (time.perf_counter() - start) * 1e3, out


# -- the search ------------------------------------------------------------------------------
class Search:
    """Everything 07_pipeline measures, for one model and corpus (see the module doc)."""

    def __init__(self, table, params: dict, log=progress.note):
        self.table, self.p, self.log = table, params, log
        self.start = time.perf_counter()
        self.deadline = self.start + float(params["budget_s"])
        self.loaded = load_model(params["model"])
        self.max_length = min(int(params["max_length"]), self.loaded.max_length or params["max_length"])
        self.texts = sample_texts(
            params["corpus"], params["corpus_size"], params["text_column"], params["encoding"], seed=0
        )
        self.sample = self.texts[: min(params["probe_size"], len(self.texts))]
        self.calibration = sample_texts(
            params["corpus"], 2 * params["calibration_size"], params["text_column"], params["encoding"], seed=1
        )[: params["calibration_size"]]
        self.cores = int(params["cores"]) or _logical_cores()
        self.files: dict[str, dict] = {}
        self.built: dict[str, Pipeline] = {}
        self.peers: dict[str, Peer] = {}  # one loaded model per peer, shared by its settings
        self.chosen: dict[str, str] = {}  # why each peer's whole-corpus settings were chosen

    # -- helpers ------------------------------------------------------------------------------
    def left_s(self) -> float:
        return self.deadline - time.perf_counter()

    def _row(self, stage: str, name: str, pipe: Pipeline | None, **values) -> dict:
        row = {"stage": stage, "candidate": name, "model": self.p["model"]}
        row |= describe(pipe) if pipe is not None else {}
        row |= {"status": "ok", "message": ""} | values
        if not self.table.done(stage=stage, candidate=name):
            self.table.append(row)
        return row

    def pipeline(self, variant: str, strategy: str, batch_size: int, layout="threads", overlap=False) -> Pipeline:
        """A pipeline with this search's model, files and cores (engines shared between pipelines
        of the same variant in this process)."""
        pipe = Pipeline(
            self.p["model"],
            variant,
            strategy,
            int(batch_size),
            self.max_length,
            layout,
            self.cores,
            bool(overlap),
            onnx_file=self.files.get(variant, {}).get("file", ""),
            calibration_texts=self.calibration if variant in CALIBRATED else [],
        )
        if layout == "threads" and variant in self.built:  # its engine, where built already (never built here)
            pipe._engine, pipe._loaded = self.built[variant]._engine, self.loaded
        elif layout == "threads":
            pipe._loaded = self.loaded
            self.built[variant] = pipe
        return pipe

    def peer(self, name: str, batch_size: int, workers: int = 1) -> Peer:
        """Peer `name` at `batch_size` with `workers` (1: its library's default layout) with this
        search's model, length and cores (loaded once per peer, shared by its settings)."""
        if name not in self.peers:
            self.peers[name] = Peer(name, self.p["model"], int(batch_size), self.max_length, self.cores)
            self.peers[name]._loaded = self.loaded  # the search's model: its files are built from it once
        return self.peers[name].with_settings(int(batch_size), int(workers))

    def make_file(self, variant: str) -> dict:
        if variant in TORCH_VARIANTS:
            return {"status": "ok", "message": "", "seconds": 0.0, "file": "", "cache": ""}
        if variant not in self.files:
            self.files[variant] = make_variant_file(variant, self.loaded, self.calibration, self.p["calibration_size"])
        return self.files[variant]

    # -- stage 1: probes ------------------------------------------------------------------------
    def probe_variants(self) -> pd.DataFrame:
        """One row per variant (stage probe-variant): fidelity and speed on the sample, sorted
        batches at the middle batch size, and the task score (retrieval on the docstring
        corpus's query/document pairs, eager fp32's scored once as the reference; its time
        is outside budget_s); pruned by 02's measurements where present."""
        from helpers.core.fidelity import task_score
        from helpers.workloads.corpora import retrieval_task

        variants = list(dict.fromkeys(["eager", *self.p["variants"]]))
        sizes = sorted(self.p["batch_sizes"])
        size = sizes[len(sizes) // 2]
        prior = prior_fidelity(self.p["model"])
        reference = self.pipeline("eager", "sorted", size).encode(self.sample)
        # the task score's pairs (or why there are none) and eager fp32's score on them, the
        # reference, once; outside budget_s like the peers' probes: it measures answers, not the search
        self.task_reference = None, "", None
        if any(not self.table.done(stage="probe-variant", candidate=v) for v in variants):
            started = time.perf_counter()
            pairs, note = retrieval_task(
                self.p["corpus"], self.p["task_size"], random_weights=self.loaded.random_weights
            )
            fp32 = None
            if pairs is not None:
                eager = self.pipeline("eager", "sorted", size)
                fp32 = task_score(eager.encode(pairs.queries), eager.encode(pairs.documents))
            self.task_reference = pairs, note, fp32
            self.deadline += time.perf_counter() - started
        for v in variants:
            if self.table.done(stage="probe-variant", candidate=v):
                continue
            known = prior.get(FROM_02.get(v, ""))
            looser = min(self.p["min_cosine"], self.p["relaxed_min_cosine"])
            if known is not None and v != "eager" and not meets_floors(known, looser, self.p["min_recall_at_10"]):
                why = floor_message(known, looser, self.p["min_recall_at_10"])
                self._row(
                    "probe-variant",
                    v,
                    None,
                    variant=v,
                    precision=PRECISION[v],
                    status="mismatch",
                    source="02_quantization",
                    message=f"pruned by 02_quantization: {why}",
                    cosine_min=known["cosine_min"],
                    recall_at_10=known["recall_at_10"],
                )
                continue
            if self.left_s() <= 0:
                self._row(
                    "probe-variant",
                    v,
                    None,
                    variant=v,
                    precision=PRECISION[v],
                    status="skipped",
                    message=f"budget_s {self.p['budget_s']:g} s spent before this probe",
                )
                continue
            self.log(f"  probe {v}")
            self._probe_variant(v, size, reference)
        return self.rows("probe-variant")

    def _probe_variant(self, v: str, size: int, reference: np.ndarray) -> None:
        from helpers.core.fidelity import FP32_NOT_SCORED, task_columns, task_score

        made = self.make_file(v)
        pipe = None
        if made["status"] != "ok":
            self._row(
                "probe-variant",
                v,
                None,
                variant=v,
                precision=PRECISION[v],
                status=made["status"],
                message=made["message"],
                make_s=made["seconds"],
                make_cache=made["cache"],
            )
            return
        try:
            pipe = self.pipeline(v, "sorted", size)
            out = pipe.encode(self.sample)  # warm-up, and the answers to check
            ms, _ = _timed_pass(pipe, self.sample)
        except Exception as exc:  # recorded on its row (skipped where the engine cannot run); the search goes on
            self._row("probe-variant", v, pipe, **failure_row(exc))
            return
        fid = text_fidelity(reference, out)
        ok = meets_floors(fid, self.p["min_cosine"], self.p["min_recall_at_10"])
        # the task score with the pipeline probed (eager fp32's is the reference probe_variants
        # scored), outside budget_s like the reference
        pairs, note, fp32 = getattr(self, "task_reference", (None, "task score not measured", None))
        started = time.perf_counter()
        try:
            score = fp32
            if pairs is not None and v != "eager" and PRECISION[v] == "fp32":  # scored: reduced precision
                score, fp32, note = None, None, FP32_NOT_SCORED
            elif pairs is not None and v != "eager":
                score = task_score(pipe.encode(pairs.queries), pipe.encode(pairs.documents))
            task = task_columns(score, fp32, note)
        except Exception as exc:  # e.g. texts longer than the sample's: recorded, the probe stands
            task = task_columns(None, None, f"task score failed: {type(exc).__name__}: {exc}")
        self.deadline += time.perf_counter() - started
        self._row(
            "probe-variant",
            v,
            pipe,
            n_texts=len(self.sample),
            items_per_s=len(self.sample) / (ms / 1e3),
            make_s=made["seconds"],
            make_cache=made["cache"],
            source="probe",
            **fid,
            **task,
            status="ok" if ok else "mismatch",
            message=made["message"] if ok else floor_message(fid, self.p["min_cosine"], self.p["min_recall_at_10"]),
        )

    def passing(self, min_cosine: float | None = None) -> list[str]:
        """Variants that passed both floors on the sample (or min_cosine and the recall floor),
        fastest first."""
        df = self.rows("probe-variant")
        if not len(df):
            return []
        ok = df[df["status"].isin(["ok", "mismatch"]) & df["items_per_s"].notna() & df["cosine_min"].notna()]
        floor = self.p["min_cosine"] if min_cosine is None else min_cosine
        ok = ok[[meets_floors(r, floor, self.p["min_recall_at_10"]) for _, r in ok.iterrows()]] if len(ok) else ok
        return list(ok.sort_values("items_per_s", ascending=False)["variant"]) if len(ok) else []

    def probe_batching(self, variant: str) -> pd.DataFrame:
        """Each strategy at each batch size with `variant` on the sample (stage probe-batching)."""
        for s in self.p["strategies"]:
            for b in sorted(self.p["batch_sizes"]):
                name = f"{variant} {s}@{b}"
                if self.table.done(stage="probe-batching", candidate=name):
                    continue
                pipe = self.pipeline(variant, s, b)
                if self.left_s() <= 0:
                    self._row(
                        "probe-batching",
                        name,
                        pipe,
                        status="skipped",
                        message=f"budget_s {self.p['budget_s']:g} s spent before this probe",
                    )
                    continue
                pipe.encode(self.sample[: 2 * b])  # warm-up at this batch size
                ms, _ = _timed_pass(pipe, self.sample)
                self._row(
                    "probe-batching",
                    name,
                    pipe,
                    n_texts=len(self.sample),
                    items_per_s=len(self.sample) / (ms / 1e3),
                    source="probe",
                )
        return self.rows("probe-batching")

    def knees(self) -> dict[str, int]:
        """Each strategy's knee batch size from the batching probes."""
        df = self.rows("probe-batching")
        df = df[df["status"] == "ok"] if len(df) else df
        out = {}
        for s, g in df.groupby("strategy", sort=False) if len(df) else []:
            good = g[g["items_per_s"] >= KNEE_SHARE * g["items_per_s"].max()]
            out[s] = int(good["batch_size"].min())
        return out

    def peer_settings(self, name: str) -> list[tuple[int, int]]:
        """(batch size, workers) a peer is probed at: its default batch size and each of
        `batch_sizes` in its default layout, then in its parallel one with `cores` workers
        (peer_parallel, more than one core)."""
        sizes = sorted({default_batch(name), *self.p["batch_sizes"]})
        parallel = bool(self.p.get("peer_parallel", True)) and self.cores > 1
        return [(b, 1) for b in sizes] + ([(b, self.cores) for b in sizes] if parallel else [])

    def probe_peers(self) -> pd.DataFrame:
        """Each peer at each of its settings (peer_settings) on the sample (stage probe-peer); a
        peer that cannot run here gets one skipped or error row, a parallel layout that fails
        one error row of its own. Outside budget_s: the comparison with the peers is not the
        search's to cut. The pools a peer started stop once its probes are done."""
        if self.p.get("peer_parallel", True) and self.cores > 1 and "fastembed" in self.p["peers"]:
            start_workers_server()  # before fastembed's `parallel` starts the fork server without the preload
        for name in self.p["peers"]:
            why = unavailable(name) or unsupported(name)
            if why:
                self._row("probe-peer", name, None, peer=name, variant=name, status="skipped", message=why)
                continue
            try:
                self._probe_peer(name)
            finally:
                if name in self.peers:
                    self.peers[name].close()
        return self.rows("probe-peer")

    def _probe_peer(self, name: str) -> None:
        failed_layout = False
        for b, workers in self.peer_settings(name):
            peer = self.peer(name, b, workers)
            if self.table.done(stage="probe-peer", candidate=peer.name) or (workers > 1 and failed_layout):
                continue
            self.log(f"  probe {peer.name}")
            try:
                peer.encode(self.sample[: 2 * b])  # loads (and exports once), starts a pool, warms up
                ms, _ = _timed_pass(peer, self.sample)
            except Exception as exc:  # recorded on its row; the search goes on
                message = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
                if workers == 1:
                    self._row("probe-peer", name, None, peer=name, variant=name, status="error", message=message)
                    return
                failed_layout = True  # the parallel layout: its other batch sizes would fail alike
                self._row("probe-peer", peer.name, peer, status="error", message=message)
                continue
            self._row(
                "probe-peer", peer.name, peer, n_texts=len(self.sample), items_per_s=len(self.sample) / (ms / 1e3)
            )

    def peer_plan(self) -> list[tuple[Peer, str]]:
        """Each peer that ran in the probes at its default settings and at its fastest probed
        ones (batch size and layout)."""
        df = self.rows("probe-peer")
        ok = df[(df["status"] == "ok") & df["items_per_s"].notna()] if "items_per_s" in df else df.iloc[:0]
        plan = []
        for name, g in ok.groupby("peer", sort=False) if len(ok) else []:
            best = g.sort_values("items_per_s", ascending=False).iloc[0]
            default, fastest = (default_batch(name), 1), (int(best["batch_size"]), _workers(best))
            for b, w in dict.fromkeys([default, fastest]):
                peer = self.peer(name, b, w)
                why = ["default settings" if (b, w) == default else "", "fastest probed" if (b, w) == fastest else ""]
                self.chosen[peer.name] = " and ".join(filter(None, why))
                plan.append((peer, PEER_STEP))
        return plan

    # -- stage 2: finalists on the whole corpus -------------------------------------------------
    def plan_finalists(self) -> list[tuple[Pipeline, str]]:
        """(pipeline, waterfall step or '') to measure on the whole corpus: the naive one, the
        waterfall's steps towards the predicted best, and the other finalists."""
        passing = self.passing()
        sizes = sorted(self.p["batch_sizes"])
        # batching probes cut by the budget: each strategy at the middle batch size, unprobed
        knees = self.knees() or {s: sizes[len(sizes) // 2] for s in self.p["strategies"]}
        if not passing or not knees:
            return [(self.pipeline("eager", "unsorted", 1), "naive"), *self.peer_plan()]
        speed = self.rows("probe-batching").query("status == 'ok'")
        best_strategy = max(knees, key=lambda s: _speed_at(speed, s, knees[s]))
        bs = knees[best_strategy]
        top = passing[0]
        plan = [(self.pipeline("eager", "unsorted", 1), "naive")]
        unsorted = knees.get("unsorted", knees.get("fixed"))
        if unsorted:
            plan.append((self.pipeline("eager", "unsorted" if "unsorted" in knees else "fixed", unsorted), "batching"))
        plan.append((self.pipeline("eager", best_strategy, bs), "sorting"))
        fp32 = [v for v in passing if PRECISION[v] == "fp32" and v not in TORCH_VARIANTS]
        if top not in TORCH_VARIANTS and fp32:
            plan.append((self.pipeline(fp32[0], best_strategy, bs), "engine"))
        plan.append((self.pipeline(top, best_strategy, bs), "precision"))
        if "processes" in self.p["layouts"]:
            plan.append((self.pipeline(top, best_strategy, bs, "processes"), "layout"))
        if "streams" in self.p["layouts"] and top.startswith("ov"):  # OpenVINO's own threading
            plan.append((self.pipeline(top, best_strategy, bs, "streams"), "layout"))
        if self.p["overlap_tokenization"]:
            plan.append((self.pipeline(top, best_strategy, bs, overlap=True), "layout"))
        relaxed = self.passing(self.p["relaxed_min_cosine"])
        if relaxed and relaxed[0] not in passing:  # the best at the looser floor, measured beside
            plan.append((self.pipeline(relaxed[0], best_strategy, bs), ""))
        for v in passing[1 : self.p["finalists"]]:
            plan.append((self.pipeline(v, best_strategy, bs), ""))
        if "threads" not in self.p["layouts"]:  # only the other layouts were asked for
            plan = [(p, s) for p, s in plan if p.layout != "threads" or s == "naive"]
        plan += self.peer_plan()
        seen, out = set(), []
        for pipe, step in plan:
            if pipe.name not in seen:
                seen.add(pipe.name)
                out.append((pipe, step))
        return out

    def measure_corpus(self, plan: list[tuple[Pipeline, str]]) -> pd.DataFrame:
        """Interleaved passes of every planned pipeline over the whole corpus (stage corpus), each
        in a worker process of its own, and of the naive pipeline in this process too (stage
        corpus-in-process): at most `passes`, fewer once every median is known to within
        `target_ci`. A worker that fails or dies gives its pipeline an error row; the rest go on."""
        from helpers.core.timing import MIN_CI_SAMPLES, all_precise, timing_columns

        names = [p.name if s != "naive" else NAIVE for p, s in plan]
        if all(self.table.done(stage="corpus", candidate=n) for n in names):
            return self.rows("corpus")
        plan, passes = self._fit_budget(plan)
        naive_pipe = next((p for p, s in plan if s == "naive"), None)
        samples = {p.name: [] for p, _ in plan} | {IN_PROCESS: []}
        outs, checks, errors = {}, {}, {}
        workers = self._start_workers(plan, errors)
        runs = [(p.name, _runner(p, workers)) for p, _ in plan if p.name in workers or p.layout == "processes"]
        if naive_pipe is not None:
            runs.append((IN_PROCESS, lambda texts: _timed_pass(naive_pipe, texts)))
        target = self.p.get("target_ci")
        try:
            for i in range(passes + 1):
                timed = {n: x for n, x in samples.items() if n not in errors}
                if all_precise(timed, target, MIN_CI_SAMPLES):
                    break
                for name, run in runs:
                    if name in errors:
                        continue
                    time.sleep(SETTLE_S)  # the last runner's idle threads stop spinning first
                    try:
                        ms, out = run(self.texts)
                    except Exception as exc:  # recorded; the other pipelines go on
                        errors[name] = exc
                        continue
                    if i == 0:  # warm-up (pools started, shapes seen), and the answers to check
                        outs[name] = out
                    else:
                        samples[name].append(ms)
                if i == 0:
                    checks = self._checks(plan, outs, errors)
        finally:
            for worker in workers.values():
                worker.close()
            for pipe, _ in plan:
                pipe.close()
        base = samples[naive_pipe.name] if naive_pipe is not None else []
        peer = self._best_peer(plan, samples, checks, errors)
        for pipe, step in plan:
            name = NAIVE if step == "naive" else pipe.name
            chosen = self.chosen.get(pipe.name, "") if step == PEER_STEP else ""
            if pipe.name in errors:
                failure = _failure(errors[pipe.name])
                info = describe(pipe, chosen)["peer_info"]
                self._row("corpus", name, pipe, waterfall_step=step, peer_info=info, **failure)
                continue
            fid = checks[pipe.name]
            ok = step == "naive" or meets_floors(fid, self.p["min_cosine"], self.p["min_recall_at_10"])  # the reference
            self._row(
                "corpus",
                name,
                pipe,
                waterfall_step=step,
                peer_info=describe(pipe, chosen)["peer_info"],
                n_texts=len(self.texts),
                passes=len(samples[pipe.name]),
                **timing_columns(
                    samples[pipe.name], len(self.texts), baseline_ms=base, flag_noisy=False, target_ci=target
                ),
                **fid,
                **over_peer(peer, samples[pipe.name], step),
                meets_floor=ok,
                status="ok" if ok else "mismatch",
                message="" if ok else floor_message(fid, self.p["min_cosine"], self.p["min_recall_at_10"]),
                onnx_file=cache.relative(pipe.onnx_file) if pipe.onnx_file else "",
                **{SAMPLES: samples[pipe.name]},
            )
        if naive_pipe is not None:
            self._in_process_row(naive_pipe, samples[IN_PROCESS], base, checks, errors)
        return self.rows("corpus")

    def _start_workers(self, plan, errors: dict) -> dict[str, PipelineWorker]:
        """A worker per planned pipeline, started together, then each awaited in turn (a peer's
        worker tells what loading found, e.g. the precision its plugin runs). A pipeline or peer
        with the processes layout gets none: its own pool's processes are its workers (started
        from the fork server, they hold nothing of this process), driven from here."""
        workers, started = {}, {}
        for pipe, _ in plan:
            if pipe.layout == "processes":
                continue
            try:
                started[pipe.name] = PipelineWorker(pipe.to_dict(), pipe.name, wait=False)
            except Exception as exc:
                errors[pipe.name] = exc
        for pipe, _ in plan:
            if pipe.name not in started:
                continue
            try:
                info = started[pipe.name].ready()
            except Exception as exc:  # recorded on its row (skipped where the engine cannot run)
                errors[pipe.name] = exc
                started[pipe.name].close()
                continue
            if isinstance(pipe, Peer) and info:
                pipe.info = info
            workers[pipe.name] = started[pipe.name]
        return workers

    def _checks(self, plan, outs: dict, errors: dict) -> dict:
        """Each pipeline's answers on the warm-up pass against the naive pipeline's (the isolated
        one's, or this process's where its worker failed)."""
        naive_name = next((p.name for p, s in plan if s == "naive"), None)
        reference = outs.get(naive_name, outs.get(IN_PROCESS))
        checks = {}
        for name, out in outs.items():
            if reference is None:
                errors[name] = RuntimeError("no reference answers: the naive pipeline failed")
                continue
            checks[name] = text_fidelity(reference, out)
        return checks

    def _in_process_row(self, pipe: Pipeline, samples: list, base: list, checks: dict, errors: dict) -> None:
        """The naive pipeline measured in this process (stage corpus-in-process), its speed-up
        over the isolated one from the same passes."""
        from helpers.core.timing import timing_columns

        if self.table.done(stage=IN_PROCESS_STAGE, candidate=IN_PROCESS):
            return
        where = (
            "the naive pipeline run in the notebook's own process, where every runtime the probes loaded is, "
            "in the same interleaved passes; speedup: against the naive pipeline in a worker of its own"
        )
        if IN_PROCESS in errors:
            self._row(IN_PROCESS_STAGE, IN_PROCESS, pipe, **_failure(errors[IN_PROCESS]))
            return
        self._row(
            IN_PROCESS_STAGE,
            IN_PROCESS,
            pipe,
            n_texts=len(self.texts),
            passes=len(samples),
            **timing_columns(
                samples, len(self.texts), baseline_ms=base, flag_noisy=False, target_ci=self.p.get("target_ci")
            ),
            **checks.get(IN_PROCESS, {}),
            message=where,
            **{SAMPLES: samples},
        )

    def _best_peer(self, plan, samples: dict, checks: dict, errors: dict) -> tuple[str, list] | None:
        """(name, samples) of the fastest peer that met both floors in these passes, or None."""
        met = [
            p.name
            for p, step in plan
            if step == PEER_STEP
            and p.name not in errors
            and samples[p.name]
            and meets_floors(checks[p.name], self.p["min_cosine"], self.p["min_recall_at_10"])
        ]
        name = best_peer_name({n: float(np.median(samples[n])) for n in met})
        return (name, samples[name]) if name else None

    def _fit_budget(self, plan):
        """Drop finalists (last first, never the naive pipeline or a waterfall step) and then
        passes until the estimated time fits what is left of budget_s; dropped ones get a row.
        The peers' passes (and the naive pipeline's in this process) are outside budget_s, like
        the peers' probes: the comparison is not the search's to cut, nor does it cut the search."""
        per_text = self._seconds_per_text()
        est = {p.name: len(self.texts) * per_text.get((p.variant, p.batch_size > 1), 0.0) for p, _ in plan}
        est |= {p.name: 0.0 for p, s in plan if s == PEER_STEP}
        passes = int(self.p["passes"])
        keep = list(plan)
        while sum(est[p.name] for p, _ in keep) * (passes + 1) > self.left_s():
            extras = [i for i, (_, s) in enumerate(keep) if not s]
            if extras:
                pipe, _ = keep.pop(extras[-1])
                self._row(
                    "corpus",
                    pipe.name,
                    pipe,
                    status="skipped",
                    message=f"not measured: budget_s {self.p['budget_s']:g} s would be exceeded",
                )
            elif passes > 1:
                passes -= 1
            else:
                break
        return keep, passes

    def _seconds_per_text(self) -> dict:
        """Seconds per text of each variant, batched (True) or one at a time (False), from the probes."""
        df = self.rows("probe-variant")
        out = {}
        for _, r in df[df["status"].isin(["ok", "mismatch"]) & df["items_per_s"].notna()].iterrows():
            out[(r["variant"], True)] = 1 / r["items_per_s"]
        peers = self.rows("probe-peer")
        for _, r in peers[peers["status"] == "ok"].iterrows() if len(peers) else []:
            out[(r["variant"], True)] = max(out.get((r["variant"], True), 0.0), 1 / r["items_per_s"])
        # one at a time costs several times a batched text (no amortized calls): a crude factor
        out[("eager", False)] = 4 * out.get(("eager", True), 0.0)
        return out

    # -- stage 3: memory ----------------------------------------------------------------------
    def memory(self) -> pd.DataFrame:
        """Peak RSS of a fresh process running each measured pipeline (rows updated in place)."""

        df = self.rows("corpus")
        if self.table.frozen or ("peak_rss_mb" in df and df["peak_rss_mb"].notna().any()):
            return df  # measured, or a redraw: nothing is measured
        peaks, notes, seen = [], [], {}
        for _, r in df.iterrows():
            # the strategy barely moves the peak; a peer is measured once, at its first batch size
            same = (r["variant"], r["layout"]) + (() if _is_peer(r) else (r["batch_size"],))
            if same in seen:
                peaks.append(peaks[seen[same]])
                notes.append(notes[seen[same]])
                continue
            seen[same] = len(peaks)
            if r["status"] not in ("ok", "mismatch"):
                peaks.append(float("nan"))
                notes.append("")
                continue
            parent = 0  # a peer's pool: the parent process holds the model too
            if _is_peer(r):
                peer = self.peer(r["peer"], int(r["batch_size"]), _workers(r))
                spec = peer.to_dict()
                if r["layout"] == "processes":  # its pool's processes: one measured, a process like it
                    spec["workers"], parent = 1, 1
            else:
                spec = self.pipeline(r["variant"], r["strategy"], int(r["batch_size"])).to_dict()
                one = "streams" if r["layout"] == "streams" else "threads"  # processes: one worker, measured
                spec |= {"layout": one, "threads": 1 if r["layout"] == "processes" else self.cores}
            try:
                mem = in_fresh_process(_memory_load, _memory_run, spec, self.sample, preload=PRELOAD)
                workers = (_workers(r) if _is_peer(r) else self.cores) if r["layout"] == "processes" else 1
                peaks.append(mem.peak_mb * (workers + parent))
                if parent:
                    notes.append(f"the parent and {workers} pool processes x {mem.peak_mb:.0f} MB (estimated)")
                else:
                    notes.append(f"{workers} processes x {mem.peak_mb:.0f} MB" if workers > 1 else "one process")
            except Exception as exc:
                peaks.append(float("nan"))
                notes.append(f"{type(exc).__name__}: {exc}")
        df = df.assign(peak_rss_mb=peaks, memory_note=notes)
        self.table_update(df)
        return df

    def table_update(self, df: pd.DataFrame) -> None:
        """Memory columns written beside the corpus rows (a second row per candidate, stage memory)."""
        for _, r in df.iterrows():
            if not self.table.done(stage="memory", candidate=r["candidate"]):
                self.table.append(
                    {
                        "stage": "memory",
                        "candidate": r["candidate"],
                        "model": self.p["model"],
                        "peak_rss_mb": r["peak_rss_mb"],
                        "memory_note": r["memory_note"],
                        "status": "ok" if pd.notna(r["peak_rss_mb"]) else "skipped",
                        "message": r["memory_note"],
                    }
                )

    def rows(self, stage: str) -> pd.DataFrame:
        df = self.table.read()
        return df[df["stage"] == stage].reset_index(drop=True) if len(df) else pd.DataFrame()


def _speed_at(df: pd.DataFrame, strategy: str, batch_size: int) -> float:
    hit = df[(df["strategy"] == strategy) & (df["batch_size"] == batch_size)]["items_per_s"]
    return float(hit.max()) if len(hit) else 0.0


def _logical_cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _is_peer(row: pd.Series) -> bool:
    return isinstance(row.get("peer"), str) and bool(row["peer"])


def _runner(pipe, workers: dict):
    """One timed pass of `pipe` over texts: in its worker, or from this process where its layout
    is processes (its pool's processes are its workers)."""
    if pipe.name in workers:
        return workers[pipe.name].timed_pass
    return lambda texts: _timed_pass(pipe, texts)


def _workers(row: pd.Series) -> int:
    """A peer row's workers (its parallel layout), from its peer_info (1: the default layout)."""
    try:
        return int(json.loads(row.get("peer_info") or "{}").get("workers", 1))
    except (TypeError, ValueError):
        return 1


def _failure(exc: BaseException) -> dict:
    """A row's status and message for a failure; a worker's says what failed in it."""
    if isinstance(exc, WorkerError):
        return {"status": exc.status, "message": str(exc)[:500]}
    return failure_row(exc)


def start_workers_server() -> None:
    """Start the fork server every worker of this study comes from, with what they import
    (WORKER_PRELOAD), and wait until it serves: a library that starts processes from the
    fork server (fastembed's `parallel`) would otherwise start it bare, and every worker
    after it would import the stack again. Nothing happens where it is already running."""
    from helpers.core.memory import forkserver

    proc = forkserver(WORKER_PRELOAD).Process(target=time.sleep, args=(0,))
    proc.start()
    proc.join()


def over_peer(peer: tuple[str, list] | None, samples_ms: list, step: str) -> dict:
    """A candidate's speed-up over the best peer (from the same interleaved passes) with its
    bootstrap CI; nothing for the peers themselves or when no peer met the floors."""
    from helpers.core.timing import ratio_of_medians

    if peer is None or step == PEER_STEP or not samples_ms:
        return {}
    ratio = ratio_of_medians(peer[1], samples_ms)
    return {
        "best_peer": peer[0],
        "speedup_over_peer": ratio["speedup"],
        "speedup_over_peer_ci_low": ratio["speedup_ci_low"],
        "speedup_over_peer_ci_high": ratio["speedup_ci_high"],
    }


def _memory_load(spec: dict, texts: list[str]):
    if "peer" in spec:
        pipe = Peer.from_dict(spec)
        pipe.load()
        return pipe, texts
    pipe = Pipeline.from_dict(spec)
    pipe.engine()
    return pipe, texts


def _memory_run(loaded) -> int:
    pipe, texts = loaded
    return len(pipe.encode(texts))


def prior_fidelity(model: str) -> dict[str, dict]:
    """02_quantization's measured cosine_min and recall@10 per method, where it measured `model`."""

    df = read_table("02_variants")
    if df is None or "model" not in df or "cosine_min" not in df:
        return {}
    df = df[(df["model"] == model) & df["cosine_min"].notna()]
    return {
        r["method"]: {"cosine_min": r["cosine_min"], "recall_at_10": r.get("recall_at_10")} for _, r in df.iterrows()
    }


# -- the whole study --------------------------------------------------------------------------
def run_search(run, params: dict | None = None, log=progress.note) -> pd.DataFrame:
    """Every stage, rows to results/07_pipeline.csv as they are measured; the merged table
    (corpus rows with their memory) is returned. Resumes where a run stopped. `params` are the
    notebook's parameters (default `run.params`, what its `parameters` cell declares)."""
    params = dict(run.params if params is None else params)
    table = run.table(TABLE, key=KEY)
    search = Search(table, params, log)
    log(f"{time.perf_counter() - search.start:.0f} s: probing variants")
    search.probe_variants()
    passing = search.passing()
    if passing:
        search.probe_batching(passing[0])
    else:
        for s in params["strategies"]:
            search._row(
                "probe-batching",
                s,
                None,
                strategy=s,
                status="skipped",
                message="no variant met the floors on the sample",
            )
    if params["peers"]:
        log(f"{time.perf_counter() - search.start:.0f} s: probing the peers (what a user would run instead)")
        started = time.perf_counter()
        search.probe_peers()
        search.deadline += time.perf_counter() - started  # the peers' probes are outside budget_s
    log(f"{time.perf_counter() - search.start:.0f} s: the finalists on the whole corpus, each in a worker process")
    search.measure_corpus(search.plan_finalists())
    log(f"{time.perf_counter() - search.start:.0f} s: memory of each in a fresh process")
    search.memory()
    log(f"{time.perf_counter() - search.start:.0f} s: where the time goes, phase by phase")
    pipeline_time.measure(run, search, search.rows("corpus"), log)
    log(f"{time.perf_counter() - search.start:.0f} s: done")
    return results(table.read())


def measured_rates(params: dict) -> dict[str, float]:
    """00_environment's measured GEMM rate per precision at the cores the pipelines use."""
    return pipeline_time.ceilings(int(params["cores"]) or _logical_cores())


def time_rows(run) -> pd.DataFrame:
    """results/07_time.csv: each whole-corpus pipeline's phases (see studies.pipeline_time)."""
    return run.table(pipeline_time.TABLE, key=pipeline_time.KEY).read()


def results(df: pd.DataFrame) -> pd.DataFrame:
    """The table with each corpus row's memory (stage memory) merged onto it."""
    if df is None or not len(df):
        return pd.DataFrame()
    memory = df[df["stage"] == "memory"][["candidate", "peak_rss_mb", "memory_note"]]
    rest = df[df["stage"] != "memory"].drop(columns=["peak_rss_mb", "memory_note"], errors="ignore")
    corpus = rest[rest["stage"] == "corpus"].merge(memory, on="candidate", how="left")
    return pd.concat([rest[rest["stage"] != "corpus"], corpus], ignore_index=True)


def best_peer_name(medians_ms: dict[str, float]) -> str | None:
    """The fastest of the peers that met the floors (name -> median pass ms), or None."""
    return min(medians_ms, key=medians_ms.get) if medians_ms else None
