"""The checks of the published claims (c1..c17, registered in report.claims) and the rows
they read.

A check takes the result tables (name -> DataFrame or None) and returns (verdict, ours,
reason), or raises Untestable with the reason the results cannot test the claim. A claim's
numbers belong to its authors' hardware; what is tested is its shape (which engine wins, by
roughly how much, where the cross-over is). Every threshold a check applies is a named constant
below; report.claims lists them per claim and prints each check's docstring, its written rule,
in docs/claims.md. How every rule decides:

- Rows. A rule names the rows it reads by their conditions (table, model or size, corpus or
  distribution, batch, length, threads, engines), never by their position in a table. A timed
  row decides only when its median is known (`decided_by`, the decision policy: n >= 3 and a
  95% CI within 10% of the median); otherwise the claim "cannot be decided: noisy".
- Ratios. `ratio_ci`: a ratio of two medians with a 95% CI, from the rows' speed-up CIs when
  the two rows are engines of one shape, from the two medians' CIs when they are two shapes.
  Where a (hand-built) table carries no CI, the CI is the ratio itself.
- Thresholds. Holds needs the CI to clear the threshold: above it for "faster" (`faster`: above
  1), "grows" and "at least"; inside the band for "roughly their figure" (within a factor of
  ROUGHLY of it). A CI that reaches the threshold or straddles a band's edge does not hold: the
  claim is not shown on rows whose medians are known.
- Parts. A claim of several parts holds when every part holds; it does not hold when a part
  decided on rows that decide does not hold; otherwise (a part without rows, or on a noisy row)
  it cannot be tested here, with the reason (`decide`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from helpers.report.prose import text
from helpers.report.rows import (
    Untestable,
    anchor_len,
    complete,
    cpu_rows,
    decided_by,
    gpu_rows,
    has_columns,
    largest,
    length_slope_cell,
    need,
    one_thread_cell,
    timed_recipe,
    trusted_table,
    widest,
)

HOLDS, FAILS, UNTESTABLE = "holds", "does not hold", "cannot be tested here"

# ---------------------------------------------------------------- thresholds and their figures
ROUGHLY = 1.5  # "roughly their figure": within this factor of it
SMALL_PARAMS, LARGE_PARAMS = 30e6, 100e6  # "small BERTs" (3.6M-29M) and BERT-base size
BERT_BASE_PARAMS = 110e6  # the model C1, C2, C5, C12 and C17 name
C1_BATCHES = (1, 8, 16)  # the batch sizes of their table (batch 1: their figure)
C2_BATCHES = (1, 256)  # their small and large batch
C3_ORT, C3_TENSORRT = 3.0, 5.0  # ORT/Triton 2-4× (its middle), TensorRT about 5×
C5_BATCHING_GAIN = 1.2  # batching "pays" when it raises eager items/s at least this much
C5_BATCH = 8  # "with batching": batch 8, where 03 measures every model and its length sweep
C5_SHORT = 32  # a "short sequence", against 03's batch-sweep length (128 tokens)
C6_BATCH = 1  # their measurement: a single text
C6_SPEEDUP, C6_MEMORY_RATIO = 5.0, 2.2  # ONNX + O3 + INT8 over PyTorch: time, inference memory
C6_SECONDS = (0.497, 0.099)  # their time for 5 runs, PyTorch then ONNX + O3 + INT8
C6_MEMORY_MIB = (11.3, 4.9)  # their inference memory increment, PyTorch then ONNX + O3 + INT8
C7_SMALL, C7_BASE = 2.2, 1.8  # ORT over PyTorch at 1 thread: small BERTs, BERT-base size
C8_SMALL, C8_BASE, C8_BY_LENGTH = 1.45, 2.4, 1.25  # INT8 over ORT fp32: small, base, any length
C8_BATCH = 8  # the batch of 03's length sweep, where "every length" is read
C9_SMALL_BATCH, C9_LARGE_BATCHES, C9_INT8_FROM = 8, (32, 64), 32  # batch 1-8 vs 32-64; INT8 above 32
C9_INT8_GROWS = 1.1  # INT8's edge "grows above batch 32": above it, more than 10% over its edge at batch 32
C10_BATCH, C10_LENGTHS = 8, (16, 512)  # 03's length sweep batch; their shortest and longest length
C10_GROWS = 1.1  # the advantage "grows" with length when it rises by more than 10%
C11_BELOW, C11_AT, C11_WITHIN = 32, 64, 1.10  # ONNX wins below batch 32; within 10% by batch 64
C12_GAIN, C12_KNEE = 12.0, 0.9  # their least gain over batch 1 (T4); the knee: under 10% per doubling
C13_LINEAR, C13_GAP = 0.8, 0.15  # log-log slope "about linear" at large batch; batch 1 clearly lower
C14_BATCHES = (16, 64)  # per-item time from batch 16 to 64
C14_UNSORTED, C14_SORTED = 0.20, -0.10  # their change: unsorted +20%, sorted -10% per item
# "1k sentences of varied length" on PyTorch: 05's synthetic sentences (workloads.batching.SCENARIOS), eager
C14_DISTRIBUTION, C14_ENGINE = "sentences", "eager"
C14_SORTED_MAX = 0.05  # sorted "keeps gaining": its per-item time rises by less than 5%
C15_SPREAD = 0.01  # INT8 fidelity "differs by model and method": min cosines more than this apart
C16_STATIC, C16_QINT8, C16_FP32 = 4.8, 2.3, 1.1  # over st-torch: openvino static INT8; onnx qint8; onnx / openvino
C16_SCORE = 0.996  # "over 99.6% of the fp32 score": recall@10 against eager fp32 is the score here
C16_BATCH = 32  # the peers are compared at SentenceTransformer.encode's default batch size
C17_BF16, C17_INT8 = 4.2, 6.4  # OpenVINO bf16 and INT8 over its fp32, bert-base on a Xeon with AMX


# ---------------------------------------------------------------- how a rule decides
def ratio_ci(a_rows: pd.DataFrame, b_rows: pd.DataFrame, on: str = "batch_size", paired: bool = True) -> pd.DataFrame:
    """How many times faster a is than b, per value of `on` both measured: b's median time over
    a's (`ratio`) with a 95% CI (`ci_low`, `ci_high`). Paired (engines of one shape): from the
    rows' speed-up CIs over the table's baseline (speedup, speedup_ci_low, speedup_ci_high), a
    baseline row (speed-up 1) counting as exactly 1: a's low end over b's high end, a's high end
    over b's low end (a bound, as the two CIs are not joint). Not paired (two shapes, e.g. two
    batch sizes of one engine): from the two medians' CIs (ci_low_ms, ci_high_ms), b's low end over
    a's high end and b's high end over a's low end. Without CIs (a hand-built table) the CI is the ratio."""
    a, b = a_rows.set_index(on), b_rows.set_index(on)
    a, b = a.align(b, join="inner", axis=0)
    ratio = b["p50_ms"] / a["p50_ms"]
    out = pd.DataFrame({"ratio": ratio, "ci_low": ratio, "ci_high": ratio})
    speed = {"speedup", "speedup_ci_low", "speedup_ci_high"}
    if paired and speed <= set(a.columns) and speed <= set(b.columns):
        a_base, b_base = a["speedup"] == 1, b["speedup"] == 1
        a_low, a_high = a["speedup_ci_low"].where(~a_base, 1.0), a["speedup_ci_high"].where(~a_base, 1.0)
        b_low, b_high = b["speedup_ci_low"].where(~b_base, 1.0), b["speedup_ci_high"].where(~b_base, 1.0)
        out["ci_low"], out["ci_high"] = a_low / b_high, a_high / b_low
    elif not paired and {"ci_low_ms", "ci_high_ms"} <= set(a.columns) & set(b.columns):
        out["ci_low"], out["ci_high"] = b["ci_low_ms"] / a["ci_high_ms"], b["ci_high_ms"] / a["ci_low_ms"]
    out["ci_low"], out["ci_high"] = out["ci_low"].fillna(ratio), out["ci_high"].fillna(ratio)
    return out.sort_index()


def faster(a_rows: pd.DataFrame, b_rows: pd.DataFrame, on: str = "batch_size", paired: bool = True) -> pd.DataFrame:
    """The one rule for "a is faster than b", per value of `on` both measured: `ratio_ci` (b's
    median time over a's, with its 95% CI), and `faster` where the CI lies above 1."""
    out = ratio_ci(a_rows, b_rows, on, paired)
    out["faster"] = out["ci_low"] > 1
    return out


def _per_item(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with their median time and its CI per item (divided by the batch size)."""
    cols = [c for c in ("p50_ms", "ci_low_ms", "ci_high_ms") if c in rows]
    return rows.assign(**{c: rows[c] / rows["batch_size"] for c in cols})


def _shape_ratio(a: pd.DataFrame, b: pd.DataFrame) -> pd.Series:
    """`ratio_ci` of one row of a over one row of b at two shapes (not paired)."""
    return ratio_ci(a.assign(_key=0), b.assign(_key=0), on="_key", paired=False).iloc[0]


def _ci(r) -> str:
    """A ratio with its CI: 2.00× (95% CI 1.90–2.10)."""
    return f"{text.times(r.ratio)} ({text.interval(r.ci_low, r.ci_high)})"


def _band(
    what: str, theirs: float, ratio: float, low: float | None = None, high: float | None = None
) -> tuple[bool, str]:
    """Roughly their figure: whether the CI (low, high; none: one measurement, the ratio itself)
    lies inside theirs / ROUGHLY … theirs × ROUGHLY, and the reason: inside, outside, or
    straddling the band's edge (which does not hold)."""
    ci = "" if low is None else f" ({text.interval(low, high)})"
    low, high = (ratio, ratio) if low is None else (low, high)
    lo, hi = theirs / ROUGHLY, theirs * ROUGHLY
    ok = lo <= low and high <= hi
    where = "inside" if ok else ("outside" if high < lo or low > hi else "straddling the edge of")
    return ok, f"{what}{text.times(ratio)}{ci} against their {theirs:g}× ({where} {lo:.2f}–{hi:.2f}×)"


Part = Callable[[], tuple[bool, str, str]]
NOISY = "cannot be decided: noisy ("


def decide(*parts: Part) -> tuple[str, str, str]:
    """The verdict of a claim of one or more parts, each (holds, our figures, the reason) or
    Untestable: holds when every part holds; does not hold when a decided part does not (the
    undecided ones named); otherwise Untestable, the noisy cells of every part named together."""
    done, noisy, other = [], [], []
    for part in parts:
        try:
            done.append(part())
        except Untestable as exc:
            why = str(exc)
            if why.startswith(NOISY) and why.endswith(")"):
                noisy += [c for c in why[len(NOISY) : -1].split("; ") if c not in noisy]
            elif why not in other:
                other.append(why)
    undecided = ([f"{NOISY}{'; '.join(noisy)})"] if noisy else []) + other
    ours = "; ".join(o for _, o, _ in done if o)
    reason = "; ".join(r for _, _, r in done if r)
    if any(not ok for ok, _, _ in done):
        return FAILS, ours, reason + ("; not decided: " + "; ".join(undecided) if undecided else "")
    if undecided:
        raise Untestable("; ".join(undecided))
    return HOLDS, ours, reason


def _verdict(ok: bool) -> str:
    return HOLDS if ok else FAILS


def _engine(rows: pd.DataFrame, engine: str) -> pd.DataFrame:
    return rows[rows["engine"] == engine]


def _faster_than(cell: pd.DataFrame, a: str, others: tuple[str, ...]) -> tuple[bool, str]:
    """Whether engine a is faster (`faster`) than each of `others` in one cell, and the figures."""
    rs = {o: faster(_engine(cell, a), _engine(cell, o)).iloc[0] for o in others}
    figures = " and ".join(
        f"{text.times(r.ratio)} {o}'s speed ({text.interval(r.ci_low, r.ci_high)})" for o, r in rs.items()
    )
    slower = [o for o, r in rs.items() if not r.faster]
    said = f"not faster than {' or '.join(slower)} (CI not above 1)" if slower else "faster (CI above 1)"
    return not slower, f"{a} runs at {figures}: {said}"


# ---------------------------------------------------------------- the claims
CPU_ENGINES = ("eager", "torchscript", "ort")


def c1(t):
    """03's model-only rows at each model's most threads (`cpu_rows`), 128 tokens (`anchor_len`), the
    model nearest BERT_BASE_PARAMS with eager, torchscript and ort all measured, at each of C1_BATCHES
    measured (batch 1, their figure, must be). Holds when ORT is faster (`faster`: the ratio's CI
    above 1) than eager and than TorchScript at every one of them; otherwise does not hold."""
    df = cpu_rows(t)
    n = anchor_len(df)
    at = df[(df["seq_len"] == n) & df["batch_size"].isin(C1_BATCHES)]
    if at.empty:
        raise Untestable(f"03 measured no batch of {', '.join(map(str, C1_BATCHES))} at {n} tokens")
    model, m = largest(at, CPU_ENGINES, near=BERT_BASE_PARAMS)
    p = complete(m, "batch_size", CPU_ENGINES, model)
    if 1 not in p.index:
        raise Untestable(f"{model}: eager, TorchScript and ORT were not all measured at batch 1 × {n} (their figure)")

    def at_batch(b):
        def part():
            cell = m[(m["batch_size"] == b) & m["engine"].isin(CPU_ENGINES)]
            decided_by(cell)
            ok, why = _faster_than(cell, "ort", ("eager", "torchscript"))
            r = p.loc[b]
            return (
                ok,
                f"batch {b}: eager {r.eager:.1f} ms, TorchScript {r.torchscript:.1f}, ORT {r.ort:.1f}",
                f"batch {b}: {why}",
            )

        return part

    verdict, ours, reason = decide(*(at_batch(b) for b in p.index))
    return verdict, f"{model}, {n} tokens: {ours}", reason + " (their ORT was about 50× eager)"


def c2(t):
    """04's trusted rows, the model nearest BERT_BASE_PARAMS with eager, torchscript and ort, 128
    tokens (`anchor_len`), at batch C2_BATCHES[0] and C2_BATCHES[1] (their two; cannot be tested
    unless all three ran at both). Holds when ORT is faster (`faster`) than eager and TorchScript at
    the small batch and TorchScript faster than ORT at the large one; otherwise does not hold."""
    df = gpu_rows(t)
    model, m = largest(df, CPU_ENGINES, near=BERT_BASE_PARAMS)
    length = anchor_len(m)
    m = m[(m["seq_len"] == length) & m["engine"].isin(CPU_ENGINES)]
    p = complete(m, "batch_size", CPU_ENGINES, model)
    small, large = C2_BATCHES
    missing = [str(b) for b in C2_BATCHES if b not in p.index]
    if missing:
        raise Untestable(
            f"{model}, {length} tokens: eager, TorchScript and ORT were not all measured at batch "
            f"{' and '.join(missing)} (together at {', '.join(str(b) for b in p.index)})"
        )

    def at(b, a, others, claimed):
        def part():
            cell = m[m["batch_size"] == b]
            decided_by(cell)
            ok, why = _faster_than(cell, a, others)
            r = p.loc[b]
            ours = f"batch {b}: eager {r.eager:.2f} / TorchScript {r.torchscript:.2f} / ORT {r.ort:.2f} ms"
            return ok, ours, f"at batch {b} {why} (claimed: {claimed})"

        return part

    verdict, ours, reason = decide(
        at(small, "ort", ("eager", "torchscript"), "ORT fastest"),
        at(large, "torchscript", ("ort",), "TorchScript faster than ORT"),
    )
    return verdict, f"{model}, {length} tokens: {ours}", reason


def c3(t):
    """04's trusted rows: the ORT engines (ort, ort-fp16) over eager fp32 at the cell (model, batch,
    length) of their largest median speed-up (their 2–4× is what ORT reaches), and TensorRT
    (ort-trt) likewise (cannot be tested without it). Holds when ORT's speed-up CI lies within a
    factor ROUGHLY of C3_ORT and TensorRT's within ROUGHLY of C3_TENSORRT; otherwise does not hold."""
    df = gpu_rows(t, "speedup", "speedup_ci_low", "speedup_ci_high")

    def best(engines, label, theirs):
        def part():
            rows = df[df["engine"].isin(engines) & df["speedup"].notna()]
            if rows.empty:
                raise Untestable(f"{label} ({', '.join(engines)}) was not measured on the GPU")
            r = rows.loc[rows["speedup"].idxmax()]
            same = (df["model"] == r.model) & (df["batch_size"] == r.batch_size) & (df["seq_len"] == r.seq_len)
            decided_by(df[same & df["engine"].isin([r.engine, "eager"])])
            ok, why = _band(f"best {label} ", theirs, r.speedup, r.speedup_ci_low, r.speedup_ci_high)
            return ok, f"best {label}: {r.engine}, {r.model} at batch {r.batch_size} × {r.seq_len}, {text.ci(r)}", why

        return part

    return decide(best(("ort", "ort-fp16"), "ORT", C3_ORT), best(("ort-trt",), "TensorRT", C3_TENSORRT))


def c4(t):
    """Cannot be tested here, always: their INT8 is QDQ graphs on TensorRT on a GPU (RoBERTa-base,
    256 tokens, batch 32), and the study's INT8 engines are CPU ones (ORT dynamic and static QDQ);
    the reason says whether 04 ran at all."""
    reason = "the study's INT8 engines are CPU ones (ORT dynamic and static QDQ); GPU INT8 needs QDQ graphs on TensorRT"
    try:
        gpu_rows(t)
    except Untestable as exc:
        reason += f", and {exc}"
    raise Untestable(reason)


def c5(t):
    """03's model-only eager rows at each model's most threads, the model nearest BERT_BASE_PARAMS (at
    least LARGE_PARAMS) at 128 tokens (`anchor_len`). Three parts: its items/s at batch C5_BATCH over
    batch 1 at least C5_BATCHING_GAIN (by the CI's low end); its time per item at C5_SHORT tokens
    faster (`faster`) than at 128, at batch C5_BATCH; every model of at most SMALL_PARAMS faster than
    it at batch 1. Holds when all three parts hold; otherwise does not hold."""
    df = cpu_rows(t)
    n = anchor_len(df)
    eager = _engine(df, "eager")
    if not (eager["n_params"] >= LARGE_PARAMS).any():
        raise Untestable("03 measured no base-size model (≥ 100M parameters) with eager")
    model, m = largest(eager[eager["n_params"] >= LARGE_PARAMS], ("eager",), near=BERT_BASE_PARAMS)

    def cell(rows, column, values, what):
        got = rows[rows[column].isin(values)]
        if set(got[column]) != set(values):
            raise Untestable(f"{model} eager was not measured at {what}")
        decided_by(got)
        return got

    def batching():
        rows = _per_item(cell(m[m["seq_len"] == n], "batch_size", (1, C5_BATCH), f"batch 1 and {C5_BATCH} × {n}"))
        g = _shape_ratio(rows[rows["batch_size"] == C5_BATCH], rows[rows["batch_size"] == 1])
        ok = g.ci_low >= C5_BATCHING_GAIN
        return (
            ok,
            f"items/s batch {C5_BATCH} over batch 1 × {n}: {_ci(g)}",
            (
                f"batching to {C5_BATCH} raises eager items/s {_ci(g)}: "
                + ("it pays" if ok else f"not at least {C5_BATCHING_GAIN:g}× by its CI")
            ),
        )

    def short():
        if C5_SHORT >= n:
            raise Untestable(f"03's batch-sweep length ({n}) is not above {C5_SHORT} tokens")
        rows = cell(m[m["batch_size"] == C5_BATCH], "seq_len", (C5_SHORT, n), f"{C5_SHORT} and {n} tokens × {C5_BATCH}")
        rows = _per_item(rows)
        f = faster(
            rows[rows["seq_len"] == C5_SHORT].assign(_key=0), rows[rows["seq_len"] == n].assign(_key=0), "_key", False
        )
        f = f.iloc[0]
        return (
            bool(f.faster),
            f"per item at {C5_SHORT} tokens: {_ci(f)} faster than at {n}",
            (
                f"{C5_SHORT} tokens are {_ci(f)} as fast per item as {n}: "
                + ("faster" if f.faster else "not faster (CI not above 1)")
            ),
        )

    def small():
        at = eager[(eager["batch_size"] == 1) & (eager["seq_len"] == n)]
        base, smalls = at[at["model"] == model], at[at["n_params"] <= SMALL_PARAMS]
        if base.empty or smalls.empty:
            raise Untestable(
                f"03 did not measure {model} and a small model (≤ 30M parameters) with eager at batch 1 × {n}"
            )
        decided_by(base, smalls)
        f = faster(smalls, pd.concat([base.assign(model=s) for s in smalls["model"]]), on="model", paired=False)
        slower = list(f.index[~f["faster"]])
        return (
            not slower,
            f"at batch 1 × {n}: " + ", ".join(f"{s} {_ci(r)}" for s, r in f.iterrows()) + f" {model}'s speed",
            (
                f"small models against {model} at batch 1: "
                + (f"{', '.join(slower)} not faster (CI not above 1)" if slower else "every one faster")
            ),
        )

    verdict, ours, reason = decide(batching, short, small)
    return verdict, f"{model}, eager: {ours}", reason


def c6(t):
    """06 at batch C6_BATCH (their one text), the most new tokens generated and the shortest input
    length measured there (their input is one short sentence; in 06_speedups, that length's panel,
    ort-o3-int8's batch-1 bar). Speed: ort-o3-int8's speed-up CI over PyTorch fp32 within a factor
    ROUGHLY of C6_SPEEDUP; memory: 06_memory's inference increment of torch over ort-o3-int8 at batch
    C6_BATCH (one measurement) within ROUGHLY of C6_MEMORY_RATIO. Holds when both do; memory
    measured at another batch only leaves that part untested."""
    gen = trusted_table(
        t,
        "06_generation",
        "06_seq2seq",
        "engine",
        "new_tokens",
        "batch_size",
        "seq_len",
        "speedup",
        "speedup_ci_low",
        "speedup_ci_high",
    )
    one = gen[(gen["engine"] == "ort-o3-int8") & (gen["batch_size"] == C6_BATCH)]
    if one.empty:
        raise Untestable(f"06 did not measure ort-o3-int8 at batch {C6_BATCH} (their single text)")
    tokens = one["new_tokens"].max()
    length = one[one["new_tokens"] == tokens]["seq_len"].min()
    at = (gen["batch_size"] == C6_BATCH) & (gen["new_tokens"] == tokens) & (gen["seq_len"] == length)
    r = gen[at & (gen["engine"] == "ort-o3-int8")].iloc[0]  # one row: 06 times each cell once
    where = f"batch {C6_BATCH} × {length} input tokens, {tokens} new tokens"

    def speed():
        if pd.isna(r.speedup):
            raise Untestable(f"06 has no speed-up of ort-o3-int8 at {where} (no PyTorch baseline there)")
        decided_by(gen[at & gen["engine"].isin(["ort-o3-int8", "torch"])])
        ok, why = _band("speed-up ", C6_SPEEDUP, r.speedup, r.speedup_ci_low, r.speedup_ci_high)
        return ok, f"{where} (06_speedups: the {length}-token panel, batch-1 bar): {text.ci(r)}", why

    def memory():
        mem = t.get("06_memory")
        if mem is None or not {"engine", "status", "inference_mb", "batch_size", "seq_len"} <= set(mem.columns):
            raise Untestable("06 did not measure inference memory")
        ok_rows = mem[(mem["status"] == "ok") & mem["engine"].isin(["torch", "ort-o3-int8"])]
        both = ok_rows[ok_rows["batch_size"] == C6_BATCH].groupby("seq_len")["engine"].nunique()
        if not (both == 2).any():
            shapes = sorted({f"batch {b} × {s}" for b, s in zip(ok_rows["batch_size"], ok_rows["seq_len"])})
            raise Untestable(
                f"06 measured the inference memory of torch and ort-o3-int8 at {', '.join(shapes) or 'no shape'}, "
                f"not for a single text (batch {C6_BATCH}), so the memory half is untested"
            )
        cell = ok_rows[(ok_rows["batch_size"] == C6_BATCH) & (ok_rows["seq_len"] == both[both == 2].index.min())]
        mb = cell.set_index("engine")["inference_mb"]
        a, b = mb["torch"], mb["ort-o3-int8"]
        ok, why = _band("memory ratio ", C6_MEMORY_RATIO, a / b)
        ours = f"inference memory at batch {C6_BATCH} × {cell['seq_len'].iloc[0]}: +{a:.1f} → +{b:.1f} MB ({text.less(a, b)})"
        return ok, ours, why

    return decide(speed, memory)


def _size_group(rows: pd.DataFrame, engine: str, base: str, small: bool, theirs: float, where: str) -> Part:
    """One size group's part of C7 or C8: per model of the group (small: at most SMALL_PARAMS;
    base-size: at least LARGE_PARAMS), `ratio_ci` of engine over base in `rows` (one shape); the
    group's median ratio, its CI the medians of the models' CI ends, within ROUGHLY of theirs."""
    label = "small" if small else "base-size"

    def part():
        group = rows[rows["n_params"] <= SMALL_PARAMS] if small else rows[rows["n_params"] >= LARGE_PARAMS]
        r = ratio_ci(_engine(group, engine), _engine(group, base), on="model")
        if r.empty:
            size = "≤ 30M" if small else "≥ 100M"
            raise Untestable(f"no {label} model ({size} parameters) has {engine} and {base} measured at {where}")
        decided_by(group[group["model"].isin(r.index) & group["engine"].isin([engine, base])])
        ok, why = _band(
            f"{label} models' median ", theirs, r["ratio"].median(), r["ci_low"].median(), r["ci_high"].median()
        )
        return ok, f"{label}: " + ", ".join(f"{m} {text.times(v)}" for m, v in r["ratio"].items()), why

    return part


def c7(t):
    """03 at 1 thread, batch 1, the length measured most there (`one_thread_cell`), ORT fp32 (ort)
    over eager per model by its speed-up CI. Holds when the small models' (at most SMALL_PARAMS)
    median ratio lies within a factor ROUGHLY of C7_SMALL and the base-size models' (at least
    LARGE_PARAMS) within ROUGHLY of C7_BASE, each group's CI the medians of its models' CI ends;
    otherwise does not hold (cannot be tested without both groups)."""
    length, cell = one_thread_cell(t)
    where = f"1 thread, batch 1 × {length}"
    verdict, ours, reason = decide(
        _size_group(cell, "ort", "eager", True, C7_SMALL, where),
        _size_group(cell, "ort", "eager", False, C7_BASE, where),
    )
    return verdict, f"ORT fp32 over eager, {where}: {ours}", reason


def c8(t):
    """03's model-only rows at each model's most threads, ORT INT8 (ort-int8, its recipe named) over
    ORT fp32 (ort): at batch 1 × 128 (`anchor_len`) per size group as in C7, and at every length of the
    length sweep (batch C8_BATCH) of the small model measured over the widest range of lengths.
    Holds when the small models' (at most SMALL_PARAMS) median lies within a factor ROUGHLY of
    C8_SMALL by its CI, the base-size models' (at least LARGE_PARAMS) of C8_BASE, and each length's
    ratio of C8_BY_LENGTH; otherwise does not hold."""
    df = cpu_rows(t)
    n = anchor_len(df)
    int8 = _engine(df, "ort-int8")
    if int8.empty:
        raise Untestable("03 measured no ort-int8 row")
    recipe = timed_recipe("ort-int8", int8, t)
    at = df[(df["batch_size"] == 1) & (df["seq_len"] == n)]
    parts = [
        _size_group(at, "ort-int8", "ort", small, want, f"batch 1 × {n}")
        for small, want in ((True, C8_SMALL), (False, C8_BASE))
    ]
    try:
        model, m = widest(df[df["n_params"] <= SMALL_PARAMS], "seq_len", ("ort", "ort-int8"), {"batch_size": C8_BATCH})
    except Untestable:

        def no_sweep():
            raise Untestable(f"no small model was measured with ort and ort-int8 across lengths at batch {C8_BATCH}")

        parts.append(no_sweep)
        sweep = ""
    else:

        def at_length(length):
            def part():
                cell = m[m["seq_len"] == length]
                decided_by(cell)
                r = ratio_ci(_engine(cell, "ort-int8"), _engine(cell, "ort"), on="seq_len").iloc[0]
                ok, why = _band(f"{model} × {length} ", C8_BY_LENGTH, r.ratio, r.ci_low, r.ci_high)
                return ok, "", why

            return part

        lengths = sorted(m["seq_len"].unique())
        parts += [at_length(length) for length in lengths]
        p = m.pivot_table(index="seq_len", columns="engine", values="p50_ms")
        by_len = p["ort"] / p["ort-int8"]
        sweep = (
            f"; {model} at batch {C8_BATCH}, {lengths[0]}–{lengths[-1]} tokens: "
            f"{text.times(by_len.min())}–{text.times(by_len.max())}"
        )
    verdict, ours, reason = decide(*parts)
    return verdict, f"ORT INT8 ({recipe}) over ORT fp32, batch 1 × {n}: {ours}{sweep}", reason


def _mean_ci(rows: pd.DataFrame) -> tuple[float, float, float]:
    """The mean speed-up of rows and its CI, the means of their CI ends (the medians' when none)."""
    low = rows["speedup_ci_low"] if "speedup_ci_low" in rows else rows["speedup"]
    high = rows["speedup_ci_high"] if "speedup_ci_high" in rows else rows["speedup"]
    return rows["speedup"].mean(), low.fillna(rows["speedup"]).mean(), high.fillna(rows["speedup"]).mean()


def c9(t):
    """03's model-only rows at each model's most threads, 128 tokens (`anchor_len`), the largest model
    with eager and ort measured from batch C9_SMALL_BATCH or below to C9_LARGE_BATCHES[1] (`widest`).
    ORT's edge: its mean speed-up over eager at batch 1 to C9_SMALL_BATCH, by the mean of its CIs' low
    ends, above the mean of the high ends at C9_LARGE_BATCHES; INT8's edge (ort-int8 over ort,
    `ratio_ci`): its mean above batch C9_INT8_FROM more than C9_INT8_GROWS times its edge at batch
    C9_INT8_FROM (the low ends' mean over the high end). Holds when both parts do; otherwise does not hold."""
    df = cpu_rows(t, "speedup")
    n = anchor_len(df)
    model, m = widest(df, "batch_size", ("eager", "ort"), {"seq_len": n}, (C9_SMALL_BATCH, C9_LARGE_BATCHES[1]))
    lo, hi = C9_LARGE_BATCHES
    s = _engine(m, "ort").set_index("batch_size")

    def edge():
        small, large = s[s.index <= C9_SMALL_BATCH], s[(s.index >= lo) & (s.index <= hi)]
        if large.empty:
            raise Untestable(f"the batch sweep of {model} stops at batch {s.index.max()} (no batch {lo}–{hi})")
        if small.empty:
            raise Untestable(
                f"the batch sweep of {model} starts at batch {s.index.min()} (no batch 1–{C9_SMALL_BATCH})"
            )
        decided_by(m[m["batch_size"].isin([*small.index, *large.index])])
        (sm, s_low, _), (lg, _, l_high) = _mean_ci(small), _mean_ci(large)
        ok = s_low > l_high
        return (
            ok,
            f"ORT over eager {text.times(sm)} at batch 1–{C9_SMALL_BATCH}, {text.times(lg)} at {lo}–{hi}",
            (
                f"ORT's edge is {'' if ok else 'not '}clearly larger at batch 1–{C9_SMALL_BATCH} ({text.times(sm)}, CI from "
                f"{text.times(s_low)}) than at {lo}–{hi} ({text.times(lg)}, CI to {text.times(l_high)})"
            ),
        )

    def int8():
        same = df[(df["model"] == model) & (df["seq_len"] == n)]
        q = ratio_ci(_engine(same, "ort-int8"), _engine(same, "ort"))
        above = q[q.index > C9_INT8_FROM]
        if C9_INT8_FROM not in q.index or above.empty:
            raise Untestable(
                f"INT8 was not measured at batch {C9_INT8_FROM} and above it ({model}, {n} tokens), so its half is untested"
            )
        decided_by(
            same[same["engine"].isin(["ort", "ort-int8"]) & same["batch_size"].isin([C9_INT8_FROM, *above.index])]
        )
        at = q.loc[C9_INT8_FROM]
        change, low = above["ratio"].mean() / at.ratio, above["ci_low"].mean() / at.ci_high
        ok = low > C9_INT8_GROWS
        trend = "grows" if ok else ("shrinks" if change < 1 / C9_INT8_GROWS else "does not clearly grow")
        recipe = timed_recipe("ort-int8", _engine(same, "ort-int8"), t)
        return (
            ok,
            (
                f"INT8 ({recipe}) over ORT fp32 {text.times(at.ratio)} at batch {C9_INT8_FROM}, "
                f"{text.times(above['ratio'].mean())} above ({', '.join(f'batch {b}: {text.times(v)}' for b, v in q['ratio'].items())})"
            ),
            (
                f"INT8's edge over ORT fp32 {trend} above batch {C9_INT8_FROM} ({text.times(at.ratio)} → "
                f"{text.times(above['ratio'].mean())}, CI of the change from {text.times(low)}): a rise of more than "
                f"{100 * (C9_INT8_GROWS - 1):.0f}% over its edge at batch {C9_INT8_FROM} counts"
            ),
        )

    verdict, ours, reason = decide(edge, int8)
    return verdict, f"{model}, {n} tokens: {ours}", reason


def c10(t):
    """03's model-only rows at each model's most threads, batch C10_BATCH (03's length sweep), the
    largest model with eager and ort measured from C10_LENGTHS[0] to C10_LENGTHS[1] tokens
    (`widest`). Holds when ORT's speed-up over eager at the longer length over the shorter, by the
    CI (low end over high end), is more than C10_GROWS and no length's speed-up CI lies wholly above
    the longer length's (largest at 512); otherwise does not hold."""
    df = cpu_rows(t, "speedup", "speedup_ci_low", "speedup_ci_high")
    model, m = widest(df, "seq_len", ("eager", "ort"), {"batch_size": C10_BATCH}, C10_LENGTHS)
    s = _engine(m, "ort").set_index("seq_len").sort_index()
    short, long_ = C10_LENGTHS
    if not {short, long_} <= set(s.index):
        raise Untestable(
            f"{model} at batch {C10_BATCH} was not measured at {short} and {long_} tokens "
            f"(lengths {', '.join(str(x) for x in s.index)})"
        )
    a, b = s.loc[short], s.loc[long_]

    def grows():
        decided_by(m[m["seq_len"].isin([short, long_])])
        change, low = b.speedup / a.speedup, b.speedup_ci_low / a.speedup_ci_high
        ok = low > C10_GROWS
        trend = "grows" if ok else ("shrinks" if change < 1 / C10_GROWS else "does not clearly grow")
        return (
            ok,
            f"ORT over eager {text.ci(a)} at {short} tokens, {text.ci(b)} at {long_}",
            (
                f"ORT's advantage {trend} with length: {text.times(a.speedup)} at {short} tokens, {text.times(b.speedup)} "
                f"at {long_} (CI of the rise from {text.times(low)}; more than {100 * (C10_GROWS - 1):.0f}% counts)"
            ),
        )

    def largest_at_long():
        decided_by(m)
        above = [str(x) for x, r in s.iterrows() if r.speedup_ci_low > b.speedup_ci_high]
        return (
            not above,
            "",
            (
                f"the edge at {', '.join(above)} tokens is clearly above {long_}'s"
                if above
                else f"no length's edge is clearly above {long_}'s"
            ),
        )

    verdict, ours, reason = decide(grows, largest_at_long)
    return verdict, f"{model}, batch {C10_BATCH}: {ours}", reason


def c11(t):
    """03's model-only rows at each model's most threads, 128 tokens (`anchor_len`), the largest model
    with eager, torchscript and ort measured from below C11_BELOW to C11_AT (`widest`). Holds when at
    every batch below C11_BELOW ORT is faster (`faster`) than eager and than TorchScript, and at
    batch C11_AT the slowest of the three over the fastest is at most C11_WITHIN by its CI's high
    end; otherwise does not hold."""
    df = cpu_rows(t, "speedup", "speedup_ci_low", "speedup_ci_high")
    n = anchor_len(df)
    model, m = widest(df, "batch_size", CPU_ENGINES, {"seq_len": n}, (C11_BELOW - 1, C11_AT))
    p = complete(m, "batch_size", CPU_ENGINES, model)
    below = [b for b in p.index if b < C11_BELOW]
    if not below:
        raise Untestable(f"the batch sweep of {model} starts at batch {p.index.min()} (none below {C11_BELOW})")

    def at_batch(b):
        def part():
            cell = m[m["batch_size"] == b]
            decided_by(cell)
            ok, why = _faster_than(cell, "ort", ("eager", "torchscript"))
            return ok, "", f"batch {b}: {why}"

        return part

    def converged():
        if C11_AT not in p.index:
            raise Untestable(f"{model}: batch {C11_AT} was not measured for all three (largest {p.index.max()})")
        cell = m[m["batch_size"] == C11_AT]
        decided_by(cell)
        row = p.loc[C11_AT]
        r = ratio_ci(_engine(cell, row.idxmin()), _engine(cell, row.idxmax())).iloc[0]
        ok = r.ci_high <= C11_WITHIN
        return (
            ok,
            f"at batch {C11_AT} the slowest ({row.idxmax()}) is {_ci(r)} the fastest's time",
            (
                f"at batch {C11_AT} the slowest is {100 * (r.ratio - 1):.0f}% behind the fastest (CI to "
                f"{100 * (r.ci_high - 1):.0f}%; claimed within {100 * (C11_WITHIN - 1):.0f}%)"
            ),
        )

    verdict, ours, reason = decide(*(at_batch(b) for b in below), converged)
    e = p.loc[below]
    ours = f"{model}, {n} tokens: ORT over eager {text.times((e['eager'] / e['ort']).min())}–" + (
        f"{text.times((e['eager'] / e['ort']).max())} below batch {C11_BELOW}" + (f"; {ours}" if ours else "")
    )
    return verdict, ours, reason


def c12(t):
    """04's trusted eager rows of the model nearest BERT_BASE_PARAMS at 128 tokens (`anchor_len`): the
    time per item at batch 1 over the lowest time per item of the batch sizes measured (the best
    batch), its CI from the two medians'. Holds when the CI lies at or above C12_GAIN / ROUGHLY (their
    least gain, within a factor ROUGHLY); otherwise does not hold; the knee (the first doubling that
    keeps more than C12_KNEE of the time per item) is reported, not judged."""
    df = gpu_rows(t)
    model, m = largest(_engine(df, "eager"), ("eager",), near=BERT_BASE_PARAMS)
    length = anchor_len(m)
    e = _per_item(m[m["seq_len"] == length])
    per = e.set_index("batch_size")["p50_ms"].sort_index()
    if 1 not in per.index or len(per) < 2:
        raise Untestable(f"eager was not measured at batch 1 and a larger batch ({model}, {length} tokens)")
    best = per.idxmin()
    decided_by(e[e["batch_size"].isin([1, best])])
    g = _shape_ratio(e[e["batch_size"] == best], e[e["batch_size"] == 1])
    knee = next((b for prev, b in zip(per.index, per.index[1:]) if per[b] > C12_KNEE * per[prev]), per.index[-1])
    need_gain = C12_GAIN / ROUGHLY
    return (
        _verdict(g.ci_low >= need_gain),
        (
            f"{model}, eager, {length} tokens: stops gaining 10% per doubling at batch {knee}; best per-item time at "
            f"batch {best}, {_ci(g)} batch 1's"
        ),
        (
            f"the best per-item time is {_ci(g)} batch 1's; the claim needs at least {need_gain:g}× by the CI "
            f"(their {C12_GAIN:g}× on a T4, within a factor {ROUGHLY})"
        ),
    )


def _slope_ci(rows: pd.DataFrame) -> tuple[float, float, float]:
    """The log-log slope of median latency against sequence length (least squares) and its
    range when each median moves within its CI (ci_low_ms, ci_high_ms; none: the slope)."""
    x = np.log(rows["seq_len"].astype(float).to_numpy())
    w = (x - x.mean()) / ((x - x.mean()) ** 2).sum()
    slope = float((w * np.log(rows["p50_ms"].astype(float).to_numpy())).sum())
    if not {"ci_low_ms", "ci_high_ms"} <= set(rows.columns) or rows[["ci_low_ms", "ci_high_ms"]].isna().any().any():
        return slope, slope, slope
    lo, hi = np.log(rows["ci_low_ms"].astype(float).to_numpy()), np.log(rows["ci_high_ms"].astype(float).to_numpy())
    return slope, float((w * np.where(w > 0, lo, hi)).sum()), float((w * np.where(w > 0, hi, lo)).sum())


def c13(t):
    """03's eager rows of `length_slope_cell` (the model measured at 3 or more lengths for the most
    batch sizes): the log-log slope of latency against length at batch 1 and at the largest batch
    measured at 3 or more lengths, each with its range when every median moves within its CI. Holds
    when the large batch's slope is at least C13_LINEAR (low end) and above batch 1's by more than
    C13_GAP (low end minus batch 1's high end); otherwise does not hold."""
    model, rows = length_slope_cell(t)
    sizes = sorted(rows["batch_size"].unique())
    if 1 not in sizes:
        raise Untestable(f"{model} was not measured at 3 or more lengths at batch 1 (batch sizes {sizes})")
    hi = sizes[-1]
    decided_by(rows[rows["batch_size"].isin([1, hi])])
    (s_lo, _, lo_high), (s_hi, hi_low, _) = (
        _slope_ci(rows[rows["batch_size"] == 1]),
        _slope_ci(rows[rows["batch_size"] == hi]),
    )
    linear, gap = hi_low >= C13_LINEAR, hi_low - lo_high > C13_GAP
    return (
        _verdict(linear and gap),
        f"{model}, eager: time ∝ length^{s_hi:.2f} at batch {hi}, length^{s_lo:.2f} at batch 1 (log-log slope)",
        (
            f"slope {s_hi:.2f} at batch {hi} (at least {hi_low:.2f} within the CIs: {'at least' if linear else 'below'} "
            f"{C13_LINEAR:g}, about linear) and {s_lo:.2f} at batch 1 (at most {lo_high:.2f}), "
            f"{hi_low - lo_high:.2f} lower at least ({'more' if gap else 'not more'} than {C13_GAP:g}, clearly lower)"
        ),
    )


def per_item_change(d: pd.DataFrame) -> pd.Series | None:
    """05 rows of one distribution and engine: per strategy, the relative change of the time per
    item from batch C14_BATCHES[0] to C14_BATCHES[1] (None unless unsorted and sorted were
    both measured at both)."""
    lo, hi = C14_BATCHES
    per_item = d.pivot_table(index="batch_size", columns="strategy", values="p50_ms") / d["n_texts"].iloc[0]
    if not {lo, hi} <= set(per_item.index) or not {"unsorted", "sorted"} <= set(per_item.columns):
        return None
    return per_item.loc[hi] / per_item.loc[lo] - 1


def per_item_change_text(change: pd.Series) -> str:
    lo, hi = C14_BATCHES
    return (
        f"batch {lo} → {hi}, time per item: unsorted {100 * change['unsorted']:+.0f}%, "
        f"sorted {100 * change['sorted']:+.0f}%"
    )


def c14(t):
    """05's trusted rows of the C14_DISTRIBUTION scenario (1k sentences of varied length) with
    C14_ENGINE: per strategy, the change of the time per item from batch C14_BATCHES[0] to
    C14_BATCHES[1], its CI from the two medians'. Holds when sorted's change lies below
    C14_SORTED_MAX (the CI's high end) and unsorted's above sorted's (its low end above sorted's high
    end); otherwise does not hold; their figures (C14_UNSORTED, C14_SORTED) are quoted, not judged."""
    df = trusted_table(
        t, "05_sorting", "05_sequence_sorting", "distribution", "engine", "strategy", "batch_size", "n_texts"
    )
    d = df[(df["distribution"] == C14_DISTRIBUTION) & (df["engine"] == C14_ENGINE)]
    if d.empty:
        measured = sorted({f"{r.distribution} × {r.engine}" for r in df.itertuples()})
        raise Untestable(
            f"05 did not measure the {C14_DISTRIBUTION} scenario with {C14_ENGINE} (measured: {', '.join(measured)})"
        )
    change = per_item_change(d)
    lo, hi = C14_BATCHES
    if change is None:
        raise Untestable(
            f"05 did not measure unsorted and sorted at batch {lo} and {hi} (batches {', '.join(str(int(b)) for b in sorted(d['batch_size'].unique()))})"
        )
    rows = d[d["strategy"].isin(["unsorted", "sorted"]) & d["batch_size"].isin([lo, hi])]
    decided_by(rows)
    r = ratio_ci(rows[rows["batch_size"] == lo], rows[rows["batch_size"] == hi], on="strategy", paired=False) - 1
    ok = r.loc["sorted", "ci_high"] < C14_SORTED_MAX and r.loc["unsorted", "ci_low"] > r.loc["sorted", "ci_high"]
    span = {s: f"{100 * r.loc[s, 'ci_low']:+.0f}% to {100 * r.loc[s, 'ci_high']:+.0f}%" for s in ("sorted", "unsorted")}
    return (
        _verdict(ok),
        f"{C14_DISTRIBUTION}, {C14_ENGINE}, {per_item_change_text(change)}",
        (
            f"per item, sorted changes {100 * change['sorted']:+.0f}% (CI {span['sorted']}) and unsorted "
            f"{100 * change['unsorted']:+.0f}% (CI {span['unsorted']}): "
            + (
                "sorted keeps gaining from larger batches while unsorted does not"
                if ok
                else f"the claim needs sorted below {100 * C14_SORTED_MAX:+.0f}% and unsorted above it, by their CIs"
            )
        ),
    )


def _weights_label(row) -> str:
    """The model's name, marked where its fidelity is of random weights (not a real model's)."""
    random = str(row.get("random_weights", "")).lower() in ("true", "1")
    return f"{row['model']}, random weights" if random else str(row["model"])


def c15(t):
    """02_variants' INT8 variants (methods named int8) with a min cosine to eager fp32, every model and
    method (fidelity, untimed). Holds when their min cosines span more than C15_SPREAD, or some fail
    the tolerance (status mismatch) while others pass: the loss depends on the model and method;
    otherwise does not hold."""
    v = need(t, "02_variants", "02_quantization", "model", "method", "status", "cosine_min")
    int8 = v[v["method"].str.contains("int8", na=False) & v["cosine_min"].notna()]
    if int8.empty:
        raise Untestable("02 measured no INT8 variant's fidelity")
    spread = float(int8["cosine_min"].max() - int8["cosine_min"].min())
    bad = int8[int8["status"] == "mismatch"]
    ok = spread > C15_SPREAD or (len(bad) and (int8["status"] == "ok").any())
    worst, best = int8.loc[int8["cosine_min"].idxmin()], int8.loc[int8["cosine_min"].idxmax()]
    return (
        _verdict(ok),
        (
            f"INT8 min cosine ranges {worst.cosine_min:.3f} ({_weights_label(worst)}, {worst.method}) to "
            f"{best.cosine_min:.3f} ({_weights_label(best)}, {best.method}); "
            f"{len(bad)} of {len(int8)} INT8 variants fail the tolerance"
        ),
        (
            f"INT8 min cosines span {spread:.3f} across models and methods and {len(bad)} of {len(int8)} fail: "
            + (
                "fidelity differs by model and method, so it must be measured"
                if ok
                else "every variant lost about the same"
            )
        ),
    )


# ---------------------------------------------------------------- the peers and OpenVINO
def _peer_rows(t) -> pd.DataFrame:
    """07's whole-corpus peer rows at C16_BATCH that were timed, one per peer (07 times each once)."""
    df = need(t, "07_pipeline", "07_pipeline", "stage", "status")
    if "peer" not in df:
        raise Untestable("07 measured no peer (sentence-transformers backend) in these results")
    has_columns(df, "07_pipeline", "batch_size", "p50_ms", "items_per_s", "recall_at_10", "precision")
    rows = df[(df["stage"] == "corpus") & df["peer"].fillna("").ne("") & df["p50_ms"].notna()]
    rows = rows[rows["batch_size"] == C16_BATCH].drop_duplicates("peer")
    return rows.assign(engine=rows["peer"]).set_index("peer", drop=False)


def c16(t):
    """07's whole-corpus peer rows (sentence-transformers backends) at batch C16_BATCH, each over
    st-torch by its median time (`ratio_ci`, the CI from the two medians'). Holds when
    st-openvino-qint8's CI lies within a factor ROUGHLY of C16_STATIC, st-onnx-qint8's of C16_QINT8,
    st-onnx's and st-openvino's (where measured) of C16_FP32, st-openvino-qint8 is faster (`faster`)
    than the other four, and each INT8 peer's recall@10 against eager fp32 (the proxy for their
    score) is at least C16_SCORE; otherwise does not hold."""
    rows = _peer_rows(t)
    missing = [p for p in ("st-torch", "st-openvino-qint8", "st-onnx-qint8") if p not in rows.index]
    if missing:
        raise Untestable(
            f"07 did not measure {' and '.join(missing)} at batch {C16_BATCH} (the full profile runs every peer)"
        )
    torch = rows.loc[["st-torch"]]
    figures = {
        "st-openvino-qint8": C16_STATIC,
        "st-onnx-qint8": C16_QINT8,
        "st-onnx": C16_FP32,
        "st-openvino": C16_FP32,
    }

    def speed(peer):
        def part():
            mine = rows.loc[[peer]]
            decided_by(mine, torch)
            r = _shape_ratio(mine, torch)
            ok, why = _band(f"{peer} ", figures[peer], r.ratio, r.ci_low, r.ci_high)
            ran = f" (ran {rows.loc[peer, 'precision']})" if peer == "st-openvino" else ""
            return ok, f"{peer} {text.times(r.ratio)}{ran}", why

        return part

    def fastest():
        others = rows.loc[[p for p in ("st-torch", *figures) if p in rows.index and p != "st-openvino-qint8"]]
        best = rows.loc[["st-openvino-qint8"]]
        decided_by(best, others)
        f = pd.DataFrame({p: _shape_ratio(best, rows.loc[[p]]) for p in others.index}).T
        f["faster"] = f["ci_low"] > 1
        slower = list(f.index[~f["faster"]])
        return (
            not slower,
            "",
            (
                f"st-openvino-qint8 is not faster than {', '.join(slower)} (CI not above 1)"
                if slower
                else f"st-openvino-qint8 is faster than {', '.join(others.index)} (CI above 1)"
            ),
        )

    def score():
        recall = {p: float(rows.loc[p, "recall_at_10"]) for p in ("st-openvino-qint8", "st-onnx-qint8")}
        kept = all(r >= C16_SCORE for r in recall.values())
        return (
            kept,
            "recall@10: " + ", ".join(f"{p} {r:.3f}" for p, r in recall.items()),
            (
                f"{'every' if kept else 'not every'} INT8 backend keeps recall@10 at or above {C16_SCORE:g}. That is the "
                "workbook's proxy, recall@10 against the eager fp32 neighbours, not their benchmark score, which was not "
                "measured here; the static INT8 model is calibrated on corpus texts (their default set is on the hub), and "
                "OpenVINO fp32 runs at its plugin's default precision (bf16 on a CPU with bf16 instructions)"
            ),
        )

    measured = [p for p in figures if p in rows.index]
    verdict, ours, reason = decide(*(speed(p) for p in measured), fastest, score)
    return verdict, f"over st-torch, batch {C16_BATCH}, whole corpus: {ours}", reason


def c17(t):
    """03's model-only rows at each model's most threads, 128 tokens (`anchor_len`), the model nearest
    BERT_BASE_PARAMS with ov, ov-bf16 and ov-int8, at the largest batch all three ran (their figure is
    throughput): ov-bf16 and ov-int8 over ov (fp32) by `ratio_ci`. Holds when bf16's CI lies within a
    factor ROUGHLY of C17_BF16 and INT8's of C17_INT8; otherwise does not hold; the order INT8 > bf16
    > fp32 and whether this CPU has AMX are reported, not judged."""
    engines = ("ov", "ov-bf16", "ov-int8")
    df = cpu_rows(t)
    missing = [e for e in engines if e not in set(df["engine"])]
    if missing:
        raise Untestable(f"03 measured no {', '.join(missing)} rows (the OpenVINO engines) in these results")
    n = anchor_len(df)
    model, m = largest(df[df["seq_len"] == n], engines, near=BERT_BASE_PARAMS)
    p = complete(m, "batch_size", engines, model)
    b = p.index.max()  # throughput: the largest batch all three ran
    cell = m[(m["batch_size"] == b) & m["engine"].isin(engines)]

    def over_fp32(engine, theirs, label):
        def part():
            decided_by(cell)
            r = ratio_ci(_engine(cell, engine), _engine(cell, "ov")).iloc[0]
            ok, why = _band(f"{label} ", theirs, r.ratio, r.ci_low, r.ci_high)
            return ok, f"{engine} {text.times(r.ratio)}", why

        return part

    verdict, ours, reason = decide(over_fp32("ov-bf16", C17_BF16, "bf16"), over_fp32("ov-int8", C17_INT8, "INT8"))
    bf16, int8 = p.loc[b, "ov"] / p.loc[b, "ov-bf16"], p.loc[b, "ov"] / p.loc[b, "ov-int8"]
    order = "holds" if int8 > bf16 > 1 else "does not hold"
    return (
        verdict,
        f"{model}, batch {b} × {n} tokens: {ours} over ov (fp32)",
        (
            f"{reason}; the order INT8 > bf16 > fp32 {order}. Their figures are from a Xeon with AMX, whose tile units "
            f"multiply bf16 and INT8 several times faster than AVX-512; {_amx_note(t)}"
        ),
    )


def _amx_note(t) -> str:
    """Whether this run's CPU has AMX, from 00's nominal bf16 peak (which names its instructions)."""
    ceilings = t.get("00_ceilings")
    rows = (
        ceilings[(ceilings["kind"] == "nominal") & (ceilings["precision"] == "bf16")]
        if ceilings is not None and "kind" in ceilings
        else None
    )
    if rows is None or not len(rows):
        return "whether this CPU has AMX is unknown (00 has not run), so whether their sizes are expected here is too"
    how = str(rows["message"].iloc[0]).split(";")[0]
    if "AMX" in how:
        return f"this CPU has AMX too ({how}), so their sizes are expected here"
    return f"this CPU has no AMX (00's bf16 peak: {how}), so their sizes are not expected here (the verdict is on them)"
