"""The answer each notebook opens with, under its question: two or three lines computed from the
run's result tables (never typed). `Answer(notebook)` shows it where the notebook starts (a note
that it comes once the cells have run, while the tables are empty) and `Answer.update()`, the
notebook's last cell, replaces it in place with the answer of the tables just written, so an
executed notebook opens with its answer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.core.policy import POLICY
from helpers.core.tables import failures
from helpers.report.claims.rules import c6
from helpers.report.prose import text
from helpers.report.rows import Untestable, cpu_rows, gpu_rows, trusted

PENDING = "*The answer appears here once this notebook's cells have run (it is computed from their tables).*"


class NoAnswer(Exception):
    """The tables hold nothing to answer from yet; str says what is missing."""


def _need(t: dict, name: str, *columns: str) -> pd.DataFrame:
    """Table `name` with `columns` (a table whose rows all failed can lack a measured column)."""
    df = t.get(name)
    if df is None or df.empty or not {"status", *columns} <= set(df.columns):
        raise NoAnswer(f"no {name} table with {', '.join(columns)}")
    return df


def _leaders(best: pd.DataFrame, column: str, what: str, baseline: str) -> str:
    """Which value of `column` is the fastest in most cells (`best`: one winning row per cell),
    ties named together, each with its median speed-up over `baseline` where it wins; then the
    others' counts."""
    counts = best[column].value_counts()
    leaders = list(counts[counts == counts.iloc[0]].index)
    gains = {k: best.loc[best[column] == k, "speedup"].median() if "speedup" in best else np.nan for k in leaders}
    named = " and ".join(
        f"**{k}**"
        + (f" (median {text.times(gains[k])} {baseline} over the cells it wins)" if gains[k] == gains[k] else "")
        for k in leaders
    )
    verb = "is the fastest" if len(leaders) == 1 else "are each the fastest"
    others = ", ".join(f"{k} {n}" for k, n in counts.iloc[len(leaders) : len(leaders) + 3].items())
    return f"{named} {verb} in {counts.iloc[0]} of {len(best)} {what}" + (f"; then {others}" if others else "") + "."


def _wins(rows: pd.DataFrame, cell: list[str], what: str, baseline: str = "eager fp32") -> str:
    """How often each engine is the fastest (lowest p50) in a cell, most wins first."""
    return _leaders(rows.loc[rows.groupby(cell)["p50_ms"].idxmin()], "engine", what, baseline)


# ---------------------------------------------------------------- one function per notebook
def _environment(t: dict) -> str:
    from helpers.core.machine import ceiling_for

    df = _need(t, "00_ceilings", "kind", "threads", "value")
    top = int(df.loc[df["kind"] == "gemm", "threads"].max())
    rates = {p: ceiling_for(df, p, threads=top) for p in ("fp32", "bf16", "int8")}
    bw = df.loc[(df["kind"] == "bandwidth") & (df["status"] == "ok"), "value"]
    parts = [f"{p} **{v:.0f}** {'GOP/s' if p == 'int8' else 'GFLOP/s'}" for p, v in rates.items() if v == v]
    lines = [f"Best GEMM rates at {top} thread(s): " + ", ".join(parts) + "."]
    lines.append(
        f"Memory bandwidth (one-thread copy): **{bw.max():.1f} GB/s**."
        if len(bw)
        else "Memory bandwidth: not measured."
    )
    check = t.get("00_harness_check")
    if check is not None and len(check) and "ratio" in check:
        r = check.iloc[-1]
        agrees = "agrees with" if r["agrees"] else "**differs from**"
        lines.append(f"The sweeps' worker harness {agrees} a plain loop: ratio {r['ratio']:.3f}.")
    return "\n".join(lines)


def _export(t: dict) -> str:
    df = _need(t, "01_export", "model", "format")
    ok = df[df["status"] == "ok"]
    bad = df[df["status"] != "ok"]
    line = f"**{len(ok)} of {len(df)}** format × model exports were produced and matched eager fp32 at every checked shape."
    if len(bad):
        line += " Not: " + text.fmt_list(f"{r.format} on {r.model} ({r.status})" for r in bad.itertuples()) + "."
    if len(ok) and "export_seconds" in ok:
        slow = ok.loc[ok["export_seconds"].idxmax()]
        line += f"\nThe slowest export: {slow.format} on {slow.model}, {slow.export_seconds:.1f} s."
    return line


def _quantization(t: dict) -> str:
    from helpers.backends.variants import random_weights

    v, s = _need(t, "02_variants", "cosine_min"), _need(t, "02_speed", "speedup")
    real = v[~random_weights(v)]
    if real.empty:
        return (
            "No model with real weights was measured: random-weight fidelity says nothing about a real model's "
            "loss, so no variant's cost is known here."
        )
    lines = []
    for model, m in real.groupby("model", sort=False):
        meets = m.apply(POLICY.meets, axis=1) & (m["status"] == "ok")
        passing = m[meets & (m["method"] != "eager")]["method"]
        speed = s[(s["model"] == model) & s["method"].isin(passing) & s["speedup"].notna()]
        below = m[~meets & m["status"].isin(["ok", "mismatch"])]
        line = f"On **{model}** (real weights), at {POLICY.words()}: "
        if len(speed):
            best = speed.groupby("method")["speedup"].median()
            cells = speed[speed["method"] == best.idxmax()]
            span = ""
            if {"speedup_ci_low", "speedup_ci_high"} <= set(cells):
                span = f"; its cells' 95% CIs span {cells['speedup_ci_low'].min():.2f}–{cells['speedup_ci_high'].max():.2f}"
            line += (
                f"the fastest variant is **{best.idxmax()}**, {text.times(best.max())} eager fp32 "
                f"(the median of its {len(cells)} batch sizes{span})"
            )
        else:
            line += "no variant meeting them was timed"
        if len(below):
            line += "; below them (min cosine / recall@10): " + text.fmt_list(
                f"{r.method} ({r.cosine_min:.3f} / {getattr(r, 'recall_at_10', float('nan')):.3f})"
                for r in below.itertuples()
            )
        lines.append(line + ".")
    if random_weights(v).any():
        lines.append("Random-weight rows are for speed only: their fidelity is not a real model's.")
    return "\n".join(lines)


def _cpu(t: dict) -> str:
    try:
        rows = cpu_rows(t)
    except Untestable as exc:
        raise NoAnswer(str(exc)) from exc
    line = _wins(rows, ["model", "batch_size", "seq_len"], "measured model × batch × length cells")
    line += _fidelity_note(t, rows)
    failed = failures(t.get("03_cpu_sweep"))
    if len(failed):
        line += "\nFailed cells (see the table below): " + text.fmt_list(
            f"{r.engine} {r.status} in {r.cells}" for r in failed.itertuples()
        )
        line += "."
    return line


def _fidelity_note(t: dict, rows: pd.DataFrame) -> str:
    """What the winners' reduced-precision recipes are worth on real text under the decision
    policy: speed only on random-weight shapes (with the check that would carry them), or
    below the floors on a real model (their speed is real, their answers are not the model's)."""
    from helpers.report.recommend.workload import engine_fidelity

    best = rows.loc[rows.groupby(["model", "batch_size", "seq_len"])["p50_ms"].idxmin()]
    speed_only, below = [], []
    for (model, engine), _ in best.groupby(["model", "engine"], sort=False):
        recipe, fid = engine_fidelity(
            t, "cpu", model, engine, rows[(rows["engine"] == engine) & (rows["model"] == model)]
        )
        if fid.speed_only:
            speed_only.append(engine)
        elif not fid.passes(POLICY):
            cosine = f"min cosine {fid.cosine:.3f}, " if fid.cosine is not None else ""
            below.append(f"{engine} on {model} ran {recipe} ({cosine}{fid.source})")
    notes = ""
    if speed_only:
        engines = text.fmt_list(dict.fromkeys(speed_only))
        notes += f"\nSpeed only on random-weight shapes: {engines}; 07 on your model checks their fidelity."
    if below:
        notes += f"\nNot recommendable at {POLICY.words()} on real text: " + "; ".join(below) + "."
    return notes


def _gpu(t: dict) -> str:
    try:
        rows = gpu_rows(t)
    except Untestable as exc:
        return f"Not measured here: {exc}."
    return _wins(rows, ["model", "batch_size", "seq_len"], "measured model × batch × length cells")


def _sorting(t: dict) -> str:
    from helpers.report.prose.takeaways import fastest_strategies

    best = fastest_strategies(_need(t, "05_sorting", "p50_ms", "strategy"))
    if best.empty:
        raise NoAnswer("no trusted 05 row")
    return _leaders(best, "strategy", "dataset × engine × batch-size cells", "unsorted")


def _seq2seq(t: dict) -> str:
    gen = trusted(_need(t, "06_generation", "p50_ms", "new_tokens", "speedup"))
    if gen.empty:
        raise NoAnswer("no trusted 06 row")
    top = gen[gen["new_tokens"] == gen["new_tokens"].max()]
    what = f"configurations at {int(top['new_tokens'].iloc[0])} new tokens"
    line = _wins(top, ["batch_size", "seq_len"], what, "PyTorch fp32")
    try:
        verdict, _, reason = c6(t)
        line += f"\nThe published recipe (ONNX + O3 + INT8, claim C6) **{verdict}**: {reason}."
    except Untestable as exc:
        line += f"\nThe published recipe (claim C6) cannot be tested here: {exc}."
    return line


def _pipeline(t: dict) -> str:
    from helpers.report.recommend.workload import whole_pipeline

    _need(t, "07_pipeline", "stage", "candidate", "items_per_s", "speedup")
    row = whole_pipeline(t)
    if not len(row):
        return "**No pipeline met the fidelity floors** on the whole corpus; the tables below say how close each came."
    r = row.iloc[0]
    return (
        f"**{r.pipeline}**: {text.times(r.speedup_over_naive)} the naive pipeline ({text.interval(r.ci_low, r.ci_high)})"
        f" on {r.texts} texts of {r.model}, worst-text cosine {r.cosine_min:.5f}, "
        f"recall@10 {r.recall_at_10:.3f}."
    )


def _report(t: dict) -> str:
    from helpers.report.claims.registry import FAILS, HOLDS, UNTESTABLE, evaluate_claims
    from helpers.report.recommend.workload import NOT_MEASURED, recommendations

    counts = pd.Series([v.verdict for v in evaluate_claims(t)]).value_counts()
    lines = [
        f"Published claims: **{counts.get(HOLDS, 0)} hold**, {counts.get(FAILS, 0)} do not hold, "
        f"{counts.get(UNTESTABLE, 0)} cannot be tested here."
    ]
    recs = recommendations(t)
    recs = recs[recs["engine"] != NOT_MEASURED] if len(recs) else recs
    if len(recs):
        main = recs.groupby("model")["cells"].sum().idxmax()
        engines = recs[recs["model"] == main]["engine"].value_counts()
        lines.append(
            f"For {main}, the recommended engine is **{engines.index[0]}** in {engines.iloc[0]} of "
            f"{engines.sum()} workload classes (the table below, by batch and length)."
        )
    return "\n".join(lines)


ANSWERS = {
    "00_environment": _environment,
    "01_export": _export,
    "02_quantization": _quantization,
    "03_cpu_sweeps": _cpu,
    "04_gpu_sweeps": _gpu,
    "05_sequence_sorting": _sorting,
    "06_seq2seq": _seq2seq,
    "07_pipeline": _pipeline,
    "08_report": _report,
}


def answer_markdown(notebook: str, tables: dict | None = None) -> str:
    """The notebook's answer from `tables` (default: this run's), two or three lines."""
    if tables is None:
        from helpers.core import paths
        from helpers.report.claims.registry import load_tables

        tables = load_tables(paths.results_dir())
    try:
        body = ANSWERS[notebook](tables)
    except NoAnswer:
        body = PENDING
    return "**Answer.** " + body.replace("\n", "  \n")


class Answer:
    """The notebook's opening answer: shown where it is created, replaced by `update()`."""

    def __init__(self, notebook: str):
        from IPython.display import Markdown, display

        self.notebook = notebook
        self.handle = display(Markdown(answer_markdown(notebook)), display_id=True)

    def update(self) -> None:
        from IPython.display import Markdown

        self.handle.update(Markdown(answer_markdown(self.notebook)))
