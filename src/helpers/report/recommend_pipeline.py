"""07_pipeline's recommendation, from results/07_pipeline.csv: the fastest whole-corpus
pipeline that met both floors (or the closest one when none did), the measured waterfall
naive -> recommended, and results/recommended_pipeline.json, which
`helpers.pipeline.Pipeline.from_json(path).encode(texts)` runs again.

Read by the study (to write the file), its takeaway and 08_report; it measures nothing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.pipeline import CALIBRATED, Pipeline
from helpers.workloads.corpora import sample_texts

NAIVE = "naive"  # the candidate name of the naive pipeline (eager fp32, one text at a time)
STEPS = ("naive", "batching", "sorting", "engine", "precision", "layout")  # the waterfall, in order


def results(df: pd.DataFrame) -> pd.DataFrame:
    """The table with each corpus row's memory (stage memory) merged onto it."""
    if df is None or not len(df):
        return pd.DataFrame()
    memory = df[df["stage"] == "memory"][["candidate", "peak_rss_mb", "memory_note"]]
    rest = df[df["stage"] != "memory"].drop(columns=["peak_rss_mb", "memory_note"], errors="ignore")
    corpus = rest[rest["stage"] == "corpus"].merge(memory, on="candidate", how="left")
    return pd.concat([rest[rest["stage"] != "corpus"], corpus], ignore_index=True)


def recommended(df: pd.DataFrame) -> pd.Series | None:
    """The fastest whole-corpus pipeline (the naive one aside) that met both floors."""
    corpus = df[(df["stage"] == "corpus") & (df["candidate"] != NAIVE)] if len(df) else df
    ok = corpus[(corpus["status"] == "ok") & corpus["items_per_s"].notna()] if len(corpus) else corpus
    return None if not len(ok) else ok.sort_values("items_per_s", ascending=False).iloc[0]


def closest(df: pd.DataFrame) -> pd.Series | None:
    """The measured candidate nearest the floors (highest cosine_min, then fastest)."""
    if not len(df) or "cosine_min" not in df:
        return None
    rows = df[(df["candidate"] != NAIVE) & df["cosine_min"].notna()]
    corpus = rows[rows["stage"] == "corpus"]
    rows = corpus if len(corpus) else rows  # whole-corpus measurements first, else the probes
    if not len(rows):
        return None
    return rows.sort_values(["cosine_min", "items_per_s"], ascending=False).iloc[0]


def write_recommendation(df: pd.DataFrame, path: str | Path, params: dict, machine: str) -> Path | None:
    """results/recommended_pipeline.json: the recommended pipeline, what it meets and buys, and
    the machine; None (and no file, an old one removed) when no pipeline met the floors."""
    path = Path(path)
    best = recommended(df)
    if best is None:
        path.unlink(missing_ok=True)
        return None
    pipe = Pipeline(
        params["model"],
        best["variant"],
        best["strategy"],
        int(best["batch_size"]),
        int(params["max_length"]),
        best["layout"],
        int(best["threads"]),
        bool(best["overlap"]),
        onnx_file=_artifact(best),
        calibration_texts=sample_texts(
            params["corpus"], 2 * params["calibration_size"], params["text_column"], params["encoding"], seed=1
        )[: params["calibration_size"]]
        if best["variant"] in CALIBRATED
        else [],
    )
    pipe.info = {
        "candidate": best["candidate"],
        "floors": {"min_cosine": params["min_cosine"], "min_recall_at_10": params["min_recall_at_10"]},
        "measured": {
            "cosine_min": float(best["cosine_min"]),
            "recall_at_10": None if pd.isna(best["recall_at_10"]) else float(best["recall_at_10"]),
            "items_per_s": float(best["items_per_s"]),
            "peak_rss_mb": None if pd.isna(best.get("peak_rss_mb")) else float(best["peak_rss_mb"]),
        },
        "speedup_over_naive": {
            "speedup": float(best["speedup"]),
            "ci_low": float(best["speedup_ci_low"]),
            "ci_high": float(best["speedup_ci_high"]),
            "naive": "eager fp32, one text at a time, in corpus order",
        },
        "corpus": {"corpus": str(params["corpus"]), "n_texts": int(best["n_texts"])},
        "machine": machine,
        "run_id": str(best.get("run_id", "")),
    }
    return pipe.to_json(path)


def recommendation_note(written: Path | None) -> str:
    """What the notebook says about results/recommended_pipeline.json."""
    if written is None:
        return "No pipeline met the floors: no `recommended_pipeline.json` was written (an older one was removed)."
    return (
        f"Written to `{Path(written).name}` in results/. Reuse it: "
        f"`Pipeline.from_json(path).encode(texts)` (from `helpers.pipeline`): embeddings in input order."
    )


def _artifact(best: pd.Series) -> str:
    """The absolute path of the recommended pipeline's ONNX file (the table holds it relative
    to the build cache)."""
    from helpers.backends import cache

    name = best.get("onnx_file")
    if not isinstance(name, str) or not name:
        return ""
    return str(cache.resolve(name))


def machine_label() -> str:
    from helpers.core.fingerprint import fingerprint, machine, machine_label

    return machine_label(machine(fingerprint()))


def waterfall(df: pd.DataFrame) -> pd.DataFrame:
    """The measured steps naive -> recommended: one row per step that changed the pipeline,
    in STEPS order, with its items/s and speed-up over naive (every one its own measurement).
    Steps are those planned towards the predicted best; the recommended pipeline closes it
    when it is another one."""
    corpus = df[(df["stage"] == "corpus") & (df["status"] == "ok")] if len(df) else df
    if not len(corpus) or "waterfall_step" not in corpus:
        return pd.DataFrame()
    best = recommended(df)
    steps = corpus[corpus["waterfall_step"].isin(STEPS[:-1])].copy()
    steps = steps.assign(order=steps["waterfall_step"].map(STEPS.index)).sort_values("order")
    if best is not None and best["candidate"] not in set(steps["candidate"]):
        last = steps.iloc[-1] if len(steps) else None
        label = "layout" if last is not None and last["variant"] == best["variant"] else "recommended"
        steps = pd.concat([steps, best.to_frame().T.assign(waterfall_step=label)])
    cols = ["waterfall_step", "candidate", "items_per_s", "speedup", "speedup_ci_low", "speedup_ci_high"]
    return steps[cols].reset_index(drop=True)
