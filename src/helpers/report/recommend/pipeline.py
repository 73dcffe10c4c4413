"""07_pipeline's recommendation, from results/07_pipeline.csv: among the whole-corpus pipelines
that met both floors, the cheapest one within the fastest one's 95% CI (fewest processes, no
tokenization thread, then clearly less peak memory; the fastest itself when none is cheaper),
or the closest one when none met them; the measured waterfall naive -> recommended, beside the
best peer; and results/recommended_pipeline.json, which
`helpers.pipeline.Pipeline.from_json(path).encode(texts)` runs again.

The peers (rows with `peer` set: sentence-transformers' backends) never compete for it.

Read by the study (to write the file), its takeaway and 08_report; it measures nothing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.pipeline import CALIBRATED, Pipeline
from helpers.report.prose import text
from helpers.studies.pipeline import NAIVE
from helpers.workloads.corpora import sample_texts

STEPS = ("naive", "batching", "sorting", "engine", "precision", "layout")  # the waterfall, in order
BEST_PEER = "best peer"  # the bar beside the waterfall
MEMORY_SHARE = 0.9  # "cheaper in memory": a peak RSS at most this share of the fastest's


CORPUS_COLUMNS = [  # what the notebook shows of each whole-corpus row
    "candidate",
    "peer",
    "waterfall_step",
    "status",
    "items_per_s",
    "speedup",
    "speedup_ci_low",
    "speedup_ci_high",
    "speedup_over_peer",
    "speedup_over_peer_ci_low",
    "speedup_over_peer_ci_high",
    "cosine_min",
    "recall_at_10",
    "peak_rss_mb",
    "memory_note",
]


def corpus_table(df: pd.DataFrame) -> pd.DataFrame:
    """The whole-corpus rows in CORPUS_COLUMNS (a column no row has a value for is shown empty)."""
    return df[df["stage"] == "corpus"].reindex(columns=CORPUS_COLUMNS) if len(df) else pd.DataFrame()


def is_peer(df: pd.DataFrame) -> pd.Series:
    """Which rows are peers (tables written before peers existed have none)."""
    return df["peer"].fillna("").astype(str).ne("") if "peer" in df else pd.Series(False, index=df.index)


def candidates(df: pd.DataFrame) -> pd.DataFrame:
    """The whole-corpus candidates: neither the naive pipeline nor a peer."""
    if not len(df):
        return df
    return df[(df["stage"] == "corpus") & (df["candidate"] != NAIVE) & ~is_peer(df)]


def _met(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[(rows["status"] == "ok") & rows["items_per_s"].notna()] if len(rows) else rows


def fastest(df: pd.DataFrame) -> pd.Series | None:
    """The fastest whole-corpus candidate that met both floors."""
    ok = _met(candidates(df))
    return None if not len(ok) else ok.sort_values("items_per_s", ascending=False).iloc[0]


def layout_words(layout: str, threads: int) -> str:
    """A pipeline's layout in words: '2 threads', '2 single-threaded processes', '2 OpenVINO streams'."""
    words = {"threads": "threads", "processes": "single-threaded processes", "streams": "OpenVINO streams"}
    return f"{int(threads)} {words.get(layout, layout)}"


def _cost(row: pd.Series, top: pd.Series) -> tuple:
    """What running a pipeline costs, lowest first: its processes, a tokenization thread, and
    whether its peak RSS is clearly (MEMORY_SHARE) below the fastest's."""
    workers = int(row["threads"]) if row["layout"] == "processes" else 1
    peak, top_peak = row.get("peak_rss_mb"), top.get("peak_rss_mb")
    lighter = pd.notna(peak) and pd.notna(top_peak) and peak <= MEMORY_SHARE * top_peak
    return (workers, bool(row["overlap"]), not lighter)


def recommended(df: pd.DataFrame) -> pd.Series | None:
    """The cheapest whole-corpus candidate that met both floors and whose speed-up over naive
    lies within the fastest one's 95% CI (the fastest itself when none is cheaper)."""
    top = fastest(df)
    if top is None:
        return None
    ok = _met(candidates(df))
    close = ok[ok["speedup"] >= top["speedup_ci_low"]] if "speedup" in ok else ok.iloc[:0]
    if not len(close):
        return top
    ranked = sorted(close.iterrows(), key=lambda kv: (_cost(kv[1], top), -kv[1]["items_per_s"]))
    return ranked[0][1]


def cost_note(df: pd.DataFrame) -> str:
    """Why the recommended pipeline is not the fastest one ('' when it is)."""
    best, top = recommended(df), fastest(df)
    if best is None or best["candidate"] == top["candidate"]:
        return ""
    simpler, cost = [], _cost(best, top)
    if cost[0] < _cost(top, top)[0]:
        simpler.append(f"{cost[0]} process{'es' * (cost[0] > 1)} instead of {_cost(top, top)[0]}")
    if not cost[1] and bool(top["overlap"]):
        simpler.append("no tokenization thread")
    if not cost[2]:
        simpler.append(f"peak RSS {best['peak_rss_mb']:.0f} MB instead of {top['peak_rss_mb']:.0f}")
    return (
        f"The fastest, **{top['candidate']}** ({top['speedup']:.2f}x the naive pipeline, "
        f"{text.interval(top['speedup_ci_low'], top['speedup_ci_high'])}), is not recommended: **{best['candidate']}** "
        f"({best['speedup']:.2f}x) lies within its CI and is cheaper to run ({', '.join(simpler)})."
    )


def peers(df: pd.DataFrame) -> pd.DataFrame:
    """The peers' whole-corpus rows."""
    return df[(df["stage"] == "corpus") & is_peer(df)] if len(df) else df


def best_peer(df: pd.DataFrame) -> pd.Series | None:
    """The fastest peer that met both floors on the whole corpus."""
    ok = _met(peers(df))
    return None if not len(ok) else ok.sort_values("items_per_s", ascending=False).iloc[0]


def closest(df: pd.DataFrame) -> pd.Series | None:
    """The measured candidate nearest the floors (highest cosine_min, then fastest)."""
    if not len(df) or "cosine_min" not in df:
        return None
    rows = df[(df["candidate"] != NAIVE) & df["cosine_min"].notna() & ~is_peer(df)]
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
        "fastest": _summary(fastest(df)),
        "chosen_because": cost_note(df).replace("**", "") or "the fastest that met the floors",
        "speedup_over_best_peer": _over_peer(best),
        "best_peer": _summary(best_peer(df)),
        "corpus": {"corpus": str(params["corpus"]), "n_texts": int(best["n_texts"])},
        "machine": machine,
        "run_id": str(best.get("run_id", "")),
    }
    return pipe.to_json(path)


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _summary(row: pd.Series | None) -> dict | None:
    """A whole-corpus row in a few numbers (for the recommendation's info)."""
    if row is None:
        return None
    keys = ("items_per_s", "speedup", "speedup_ci_low", "speedup_ci_high", "cosine_min", "recall_at_10", "peak_rss_mb")
    return {"candidate": str(row["candidate"])} | {k: _number(row.get(k)) for k in keys}


def _over_peer(row: pd.Series) -> dict | None:
    """The row's speed-up over the best peer, from the same interleaved passes (None without one)."""
    if pd.isna(row.get("speedup_over_peer")):
        return None
    return {
        "peer": str(row["best_peer"]),
        "speedup": float(row["speedup_over_peer"]),
        "ci_low": float(row["speedup_over_peer_ci_low"]),
        "ci_high": float(row["speedup_over_peer_ci_high"]),
    }


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
    """The machine that measured this run (its environment.json; this machine's where none is
    recorded): a redrawn reference keeps its own."""
    import json

    from helpers.core import paths
    from helpers.core.fingerprint import fingerprint, machine, machine_label

    env = paths.environment_file()
    recorded = json.loads(env.read_text()).get("machine") if env.exists() else None
    return machine_label(recorded or machine(fingerprint()))


LIMIT = "limit"  # the waterfall's last bar: the machine's limit for the recommended precision


def waterfall(df: pd.DataFrame, limit=None) -> pd.DataFrame:
    """The measured steps naive -> recommended: one row per step that changed the pipeline,
    in STEPS order, with its items/s and speed-up over naive (every one its own measurement).
    Steps are those planned towards the predicted best; the recommended pipeline closes it
    when it is another one, and the best peer (BEST_PEER) stands beside it. With `limit`
    (gap.Limit), the machine's limit for the recommended precision ends it (LIMIT: computed
    from 00's GEMM rate and the measured tokenization, not a pipeline)."""
    corpus = df[(df["stage"] == "corpus") & (df["status"] == "ok") & ~is_peer(df)] if len(df) else df
    if not len(corpus) or "waterfall_step" not in corpus:
        return pd.DataFrame()
    best = recommended(df)
    steps = corpus[corpus["waterfall_step"].isin(STEPS[:-1])].copy()
    steps = steps.assign(order=steps["waterfall_step"].map(STEPS.index)).sort_values("order")
    if best is not None and best["candidate"] not in set(steps["candidate"]):
        last = steps.iloc[-1] if len(steps) else None
        label = "layout" if last is not None and last["variant"] == best["variant"] else "recommended"
        steps = pd.concat([steps, best.to_frame().T.assign(waterfall_step=label)])
    peer = best_peer(df)
    if peer is not None and len(steps):
        steps = pd.concat([steps, peer.to_frame().T.assign(waterfall_step=BEST_PEER)])
    naive = corpus[corpus["waterfall_step"] == "naive"]
    if limit is not None and len(steps) and len(naive):
        bound = {"waterfall_step": LIMIT, "candidate": f"{limit.precision} at GEMM rate"}
        bound |= {"items_per_s": limit.texts_per_s, "speedup": limit.texts_per_s / naive["items_per_s"].iloc[0]}
        steps = pd.concat([steps, pd.DataFrame([bound])])
    cols = ["waterfall_step", "candidate", "items_per_s", "speedup", "speedup_ci_low", "speedup_ci_high"]
    return steps.reindex(columns=cols).reset_index(drop=True)
