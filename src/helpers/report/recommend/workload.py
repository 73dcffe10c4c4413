"""The recommendation per workload (each engine gated on the real-weight fidelity of the recipe
its rows timed), 07's whole pipeline as one row, and the speed-fidelity-memory points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from helpers.core.policy import POLICY, Policy
from helpers.report.rows import Untestable, at_most_threads, cpu_rows, gpu_rows, timed_recipe, trusted
from helpers.workloads.models import SHAPES

# ---------------------------------------------------------------- recommendation
BATCH_CLASSES = ((1, 1, "1"), (2, 16, "2–16"), (17, 10**9, "≥ 17"))


LENGTH_RANGES = ((1, 64, "≤ 64"), (65, 256, "65–256"), (257, 10**9, "> 256"))


FP32_ENGINES = (
    "eager",
    "torchscript",
    "compile",
    "compile-cudagraphs",
    "ort",
    "ort-o1",
    "ort-o2",
    "ort-o3",
    "ort-trt",
    "ov",
)
FP32_SOURCE = "fp32: checked against eager per configuration"


@dataclass(frozen=True)
class Fidelity:
    """The real-text fidelity a recommendation rests on: worst min cosine and recall@10 against
    fp32, where those figures come from, and whether they were measured on the real weights of
    the model that was timed. Only such a figure can carry a reduced-precision recommendation."""

    cosine: float | None
    recall: float | None
    source: str
    real_weights: bool

    def passes(self, policy: Policy = POLICY) -> bool:
        fidelity = {"cosine_min": self.cosine, "recall_at_10": self.recall}
        return self.real_weights and self.cosine is not None and policy.meets(fidelity)

    @property
    def speed_only(self) -> bool:
        return self.source.startswith(SPEED_ONLY)


SPEED_ONLY = "speed only"


def speed_only(model: str, recipe: str) -> Fidelity:
    """A random-weight shape's verdict: its speed is real, its fidelity is no real model's."""
    return Fidelity(None, None, f"{SPEED_ONLY} (random weights): check {recipe} with 07 on your model", False)


def recipe_fidelity(t: dict, recipe: str, model: str) -> Fidelity:
    """The fidelity of `recipe` on `model`'s real weights and real text: the worst of every
    figure measured for that (model, recipe), 02's and 07's alike, so the recommendation and 07
    judge one recipe by the same figures. A random-weight shape gets speed only, never a figure
    borrowed from another model."""
    if recipe in FP32_ENGINES:
        return Fidelity(1.0, 1.0, FP32_SOURCE, True)
    if model in SHAPES:
        return speed_only(model, recipe)
    rows = real_weight_fidelity(t, model, recipe)
    if rows.empty:
        return Fidelity(None, None, f"{recipe} not measured on {model}'s real weights (02, 07)", False)
    cosine, recall = rows["cosine_min"].min(), rows["recall_at_10"].min()
    return Fidelity(
        float(cosine),
        None if pd.isna(recall) else float(recall),
        f"{' and '.join(dict.fromkeys(rows['notebook']))}: {recipe} on {model} (real weights)",
        True,
    )


def real_weight_fidelity(t: dict, model: str, recipe: str) -> pd.DataFrame:
    """Every real-weight fidelity row of (model, recipe): 02's variants and 07's probes and
    corpus passes ({notebook, cosine_min, recall_at_10})."""
    from helpers.backends.variants import random_weights

    frames = []
    v = t.get("02_variants")
    if v is not None and {"model", "method", "cosine_min"} <= set(v.columns):
        v = v[~random_weights(v)]
        frames.append(v[(v["model"] == model) & (v["method"] == recipe)].assign(notebook="02"))
    p = t.get("07_pipeline")
    if p is not None and {"model", "variant", "cosine_min", "peer"} <= set(p.columns):
        mine = (p["model"] == model) & (p["variant"] == recipe) & p["peer"].isna()
        frames.append(p[mine & p["stage"].isin(["probe-variant", "corpus"])].assign(notebook="07"))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if rows.empty:
        return pd.DataFrame(columns=["notebook", "cosine_min", "recall_at_10"])
    rows = rows.reindex(columns=["notebook", "cosine_min", "recall_at_10"])
    return rows[rows["cosine_min"].notna()]


def gpu_fidelity(t: dict, model: str, engine: str) -> Fidelity:
    """04's fidelity of a GPU engine on `model`'s real weights; speed only on a random-weight shape."""
    if model in SHAPES:
        return speed_only(model, engine)
    g = t.get("04_fidelity")
    if g is None or "cosine_min" not in g:
        return Fidelity(None, None, "04: fidelity not measured", False)
    rows = g[(g["engine"] == engine) & (g["model"] == model) & g["cosine_min"].notna()]
    if rows.empty:
        return Fidelity(None, None, f"04: {engine} not measured on {model}", False)
    recall = rows["recall_at_10"].min() if "recall_at_10" in rows else np.nan
    recall = None if pd.isna(recall) else float(recall)
    return Fidelity(float(rows["cosine_min"].min()), recall, f"04: {engine} on {model} (real weights)", True)


def engine_fidelity(t: dict, device: str, model: str, engine: str, rows: pd.DataFrame) -> tuple[str, Fidelity]:
    """The recipe an engine's timed rows of `model` ran, and that recipe's fidelity on `model`."""
    if device != "cpu" and engine not in FP32_ENGINES:
        return engine, gpu_fidelity(t, model, engine)
    recipe = timed_recipe(engine, rows, t)
    return recipe, recipe_fidelity(t, recipe, model)


def _bucket(value: int, classes) -> str | None:
    return next((label for lo, hi, label in classes if lo <= value <= hi), None)


def with_classes(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with the batch class and length range each belongs to (`batch`, `length`)."""
    return rows.assign(
        batch=rows["batch_size"].map(lambda b: _bucket(b, BATCH_CLASSES)),
        length=rows["seq_len"].map(lambda n: _bucket(n, LENGTH_RANGES)),
    )


def recommendations(t: dict, policy: Policy = POLICY) -> pd.DataFrame:
    """For each device × model × batch class × length range: the fastest engine (geometric
    mean speed-up over eager fp32 across the measured cells) among those that are trusted in
    every cell and whose recipe meets the policy's floors on that model's real weights; on a
    random-weight shape, the fastest trusted engine on speed alone (`speed_only`: its
    fidelity_source names the check that would carry it). With its speed-up, the span of its
    cells' 95% CIs, the recipe it timed, where its fidelity comes from, its memory, and the
    runner-up."""
    frames = []
    try:
        frames.append(cpu_rows(t).assign(device="cpu", memory_mb=lambda d: d["peak_rss_mb"]))
    except Untestable:
        pass
    try:
        g = gpu_rows(t)
        frames.append(
            g.assign(
                device=g["gpu"] if "gpu" in g else "cuda",
                memory_mb=g.get("peak_gpu_mb", pd.Series(np.nan, index=g.index)),
            )
        )
    except Untestable:
        pass
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    rows = with_classes(rows[rows["speedup"].notna()])
    fid = {key: engine_fidelity(t, *key, e) for key, e in rows.groupby(["device", "model", "engine"])}
    out = []
    for (device, model, batch, length), cell in rows.groupby(["device", "model", "batch", "length"], sort=False):
        scored = []
        for engine, e in cell.groupby("engine"):
            recipe, fidelity = fid[(device, model, engine)]
            if not (fidelity.passes(policy) or fidelity.speed_only) or e["status"].ne("ok").any():
                continue
            scored.append((float(np.exp(np.log(e["speedup"]).mean())), engine, e, recipe, fidelity))
        if not scored:
            continue
        scored.sort(key=lambda s: -s[0])
        gm, engine, e, recipe, fidelity = scored[0]
        out.append(
            {
                "device": device,
                "model": model,
                "batch": batch,
                "length": length,
                "cells": len(e),
                "engine": engine,
                "speedup": gm,
                "ci_low": e["speedup_ci_low"].min(),
                "ci_high": e["speedup_ci_high"].max(),
                "min_cosine": np.nan if fidelity.cosine is None else fidelity.cosine,
                "recall_at_10": np.nan if fidelity.recall is None else fidelity.recall,
                "speed_only": fidelity.speed_only,
                "recipe": recipe,
                "fidelity_source": fidelity.source,
                "memory_mb": float(e["memory_mb"].median()) if e["memory_mb"].notna().any() else np.nan,
                "runner_up": scored[1][1] if len(scored) > 1 else "—",
                "runner_up_speedup": scored[1][0] if len(scored) > 1 else np.nan,
            }
        )
    out += unmeasured_classes(t, pd.DataFrame(out))
    order = {label: i for i, (_, _, label) in enumerate(BATCH_CLASSES + LENGTH_RANGES)}
    df = pd.DataFrame(out)
    if df.empty:
        return df
    return df.sort_values(
        ["device", "model", "batch", "length"],
        key=lambda s: s.map(order).fillna(s) if s.name in ("batch", "length") else s,
    ).reset_index(drop=True)


NOT_MEASURED = "not measured"  # the engine of a batch × length class 03 covered without a trusted cell


def unmeasured_classes(t: dict, measured: pd.DataFrame) -> list[dict]:
    """The CPU batch × length classes of each model that 03 covered (model-only, at its most
    threads) where no cell was trusted (every one skipped or failed): listed with the reason,
    never dropped from the table."""
    df = t.get("03_cpu_sweep")
    if df is None or not {"model", "threads", "batch_size", "seq_len", "scope", "status", "message"} <= set(df):
        return []
    df = with_classes(at_most_threads(df))
    done = set(map(tuple, measured[["model", "batch", "length"]].values)) if len(measured) else set()
    rows = []
    for (model, batch, length), cell in df.groupby(["model", "batch", "length"], sort=False):
        if (model, batch, length) in done:
            continue
        status = cell["status"].mode().iloc[0]
        reason = str(cell.loc[cell["status"] == status, "message"].iloc[0]).split(" (")[0]
        rows.append(
            {"device": "cpu", "model": model, "batch": batch, "length": length, "cells": 0, "engine": NOT_MEASURED}
            | {"speedup": np.nan, "ci_low": np.nan, "ci_high": np.nan, "min_cosine": np.nan, "recall_at_10": np.nan}
            | {"speed_only": False, "recipe": ""}
            | {"fidelity_source": f"every cell {status}: {reason}", "memory_mb": np.nan, "runner_up": "—"}
            | {"runner_up_speedup": np.nan}
        )
    return rows


def whole_pipeline(t: dict) -> pd.DataFrame:
    """07_pipeline's recommendation as one row: the whole pipeline (tokenization, batching,
    engine and precision, layout) it recommends among those that met its floors on the whole
    corpus, and its speed-up over the naive pipeline (eager fp32, one text at a time; not over
    eager fp32 at the same shape, as the rows of `recommendations`); the fastest one where that
    is another (`fastest`, '' otherwise), and the speed-up over the best peer with its CI where
    a peer met the floors. Empty when 07 did not run or no pipeline met its floors."""
    from helpers.report.recommend.pipeline import fastest, layout_words, recommended
    from helpers.studies.pipeline import results

    df = results(t.get("07_pipeline")) if t.get("07_pipeline") is not None else pd.DataFrame()
    best = recommended(df) if len(df) else None
    if best is None:
        return pd.DataFrame()
    top = fastest(df)
    peer = best.get("best_peer") if pd.notna(best.get("speedup_over_peer", np.nan)) else ""
    layout = layout_words(best["layout"], best["threads"])
    overlap = ", tokenization overlapped" if str(best["overlap"]) == "True" else ""
    return pd.DataFrame(
        [
            {
                "model": best["model"],
                "texts": int(best["n_texts"]),
                "pipeline": f"{best['variant']} ({best['precision']}), {best['strategy']} batches of "
                f"{int(best['batch_size'])}, {layout}{overlap}",
                "speedup_over_naive": float(best["speedup"]),
                "ci_low": float(best["speedup_ci_low"]),
                "ci_high": float(best["speedup_ci_high"]),
                "cosine_min": float(best["cosine_min"]),
                "recall_at_10": float(best["recall_at_10"]),
                "peak_rss_mb": float(best.get("peak_rss_mb", np.nan)),
                "fastest": "" if top["candidate"] == best["candidate"] else top["candidate"],
                "fastest_speedup": float(top["speedup"]),
                "best_peer": peer,
                "speedup_over_peer": float(best["speedup_over_peer"]) if peer else np.nan,
                "peer_ci_low": float(best["speedup_over_peer_ci_low"]) if peer else np.nan,
                "peer_ci_high": float(best["speedup_over_peer_ci_high"]) if peer else np.nan,
            }
        ]
    )


def disagreements(t: dict, policy: Policy = POLICY) -> list[str]:
    """Where the recommendation per workload and 07's whole pipeline would tell a reader two
    things about 07's model: a reduced-precision recipe the table recommends there that 07
    rejected (below its floors), or 07's recommended variant failing the table's fidelity rule.
    Empty when they agree (both read the same figures under one policy)."""
    from helpers.report.recommend.pipeline import recommended
    from helpers.studies.pipeline import results

    p = t.get("07_pipeline")
    df = results(p) if p is not None else pd.DataFrame()
    best = recommended(df) if len(df) else None
    if best is None:
        return []
    model, out = best["model"], []
    recs = recommendations(t, policy)
    for r in recs[recs["model"] == model].itertuples() if len(recs) else []:
        mine = p[(p["model"] == model) & (p["variant"] == r.recipe) & p["peer"].isna()]
        if r.recipe not in FP32_ENGINES and mine["status"].eq("mismatch").any():  # 07's own verdict
            out.append(f"{model} {r.batch} × {r.length}: {r.engine} ({r.recipe}), which 07 measured below the floors")
    variant = best["variant"]
    if not recipe_fidelity(t, variant, model).passes(policy):
        out.append(f"07 recommends {variant} on {model}; its fidelity there does not meet {policy.words()}")
    return out


# ---------------------------------------------------------------- summary across notebooks
def summary_points(t: dict) -> pd.DataFrame:
    """One point per engine and notebook: speed-up over its fp32 baseline (median over the
    configurations), fidelity on its notebook's terms, and memory."""
    points = []
    v, s = t.get("02_variants"), t.get("02_speed")
    if v is not None and s is not None:
        from helpers.backends.variants import random_weights

        speed = s[s["speedup"].notna()].groupby(["model", "method"])["speedup"].median()
        v = v.assign(weights=np.where(random_weights(v), ", random weights", ""))
        for r in v[v["cosine_min"].notna()].itertuples():
            if (r.model, r.method) in speed:
                points.append(
                    {
                        "notebook": "02 quantization",
                        "label": f"{r.method} ({r.model}{r.weights})",
                        "speedup": speed[(r.model, r.method)],
                        "fidelity": r.cosine_min,
                        "fidelity_kind": "min cosine, real text",
                        "memory_mb": getattr(r, "peak_rss_mb", np.nan),
                        "status": r.status,
                    }
                )
    try:
        cpu = cpu_rows(t)
        for (model, engine), e in cpu.groupby(["model", "engine"]):
            if model == cpu.sort_values("n_params")["model"].iloc[-1]:
                points.append(
                    {
                        "notebook": "03 CPU sweeps",
                        "label": f"{engine} ({model})",
                        "speedup": e["speedup"].median(),
                        "fidelity": e["cosine_min"].min(),
                        "fidelity_kind": "min cosine vs eager (random-weight shapes)",
                        "memory_mb": e["peak_rss_mb"].median(),
                        "status": "ok",
                    }
                )
    except Untestable:
        pass
    gen, mem, agr = t.get("06_generation"), t.get("06_memory"), t.get("06_agreement")
    if gen is not None and agr is not None:
        g = trusted(gen).groupby("engine")["speedup"].median()
        m = (
            mem.set_index("engine")["inference_mb"]
            if mem is not None and "inference_mb" in mem
            else pd.Series(dtype=float)
        )
        for r in agr.itertuples():
            if r.engine in g and pd.notna(getattr(r, "token_agreement", np.nan)):
                points.append(
                    {
                        "notebook": "06 seq2seq",
                        "label": r.engine,
                        "speedup": g[r.engine],
                        "fidelity": r.token_agreement,
                        "fidelity_kind": "token agreement",
                        "memory_mb": m.get(r.engine, np.nan),
                        "status": r.status,
                    }
                )
    return pd.DataFrame(points)
