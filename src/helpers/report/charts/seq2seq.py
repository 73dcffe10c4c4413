"""06_seq2seq's charts: generation cost per token, total time against new tokens, memory and
speed-ups per engine.

Each chart is drawn from a result table (never from kernel state); charts.style saves it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.report.charts.style import (
    GROUPS,
    MISSING,
    label_line_ends,
    line,
    mark_flagged,
    mark_not_timed,
    panel_grid,
    rows_legend,
)


def _generation_ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["p50_ms"].notna() & (df["status"].isin(["ok", "mismatch"]))] if len(df) else df


def _engine_names(df: pd.DataFrame) -> pd.Series:
    """Each engine of the table (timed or not), named with the count of its cells that failed
    or were skipped, so a missing bar reads as failed, not as absent."""
    engines = list(dict.fromkeys(df["engine"])) if len(df) else []
    failed = df[df["status"].isin(MISSING)].groupby("engine").size() if len(df) else pd.Series(dtype=int)
    return pd.Series({e: f"{e} (× {failed[e]} failed or skipped)" if e in failed else e for e in engines})


def _bars(ax, table: pd.DataFrame, names: pd.Series, **kw):
    """Grouped horizontal bars, one group per engine of `names` (in order), named with its failures."""
    table = table.reindex(names.index)
    table.plot.barh(ax=ax, colormap=GROUPS, **kw)
    ax.set_yticks(range(len(names)), names.to_list())


def _cell_tones(ax, top: pd.DataFrame) -> None:
    """Bars told apart by two cues, not six shades of one ramp: the batch size by a tone far
    from the others, the input length by a hatch."""
    cells = top.drop_duplicates("cell")
    batches, lengths = sorted(cells["batch_size"].unique()), sorted(cells["seq_len"].unique())
    tones = plt.get_cmap(GROUPS)(np.linspace(0.0, 1.0, max(len(batches), 2)))
    hatches = ["", "///", "...", "xx"]
    for container, (_, c) in zip(ax.containers, cells.iterrows()):
        tone, hatch = tones[batches.index(c["batch_size"])], hatches[lengths.index(c["seq_len"]) % len(hatches)]
        for bar in container:
            bar.set(facecolor=tone, hatch=hatch, edgecolor="white")
    if ax.get_legend() is not None:
        ax.legend()  # again: the legend keys take the bars' new tones and hatches


def per_token_time(df: pd.DataFrame):
    """Decode time per generated token (after the first) and time to first token, per engine,
    at the longest generation, one bar group per batch size x input length."""
    ok = _generation_ok(df)
    top = ok[(ok["new_tokens"] == ok["new_tokens"].max()) & ok["per_token_ms"].notna()]
    top = top.sort_values(["batch_size", "seq_len"])
    top = top.assign(cell=[f"batch {b} × {s} in" for b, s in zip(top["batch_size"], top["seq_len"])])
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    for ax, column, label in (
        (axes[0], "per_token_ms", "ms per generated token (decode)"),
        (axes[1], "ttft_ms", "time to first token (ms)"),
    ):
        table = top.pivot_table(index="engine", columns="cell", values=column, sort=False)
        _bars(ax, table, _engine_names(df), legend=ax is axes[1])
        _cell_tones(ax, top)
        ax.set_xlabel(label)
        ax.set_ylabel("")
        ax.invert_yaxis()
    if len(top):  # outside the panel: the long bars of large batches would hide it
        axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"Generation cost per engine ({int(top['new_tokens'].max()) if len(top) else 0} new tokens forced)")
    return fig


def total_vs_new_tokens(df: pd.DataFrame):
    """Total generate() time against the number of new tokens, one line per engine (named at its
    end), one panel per batch size (at the shortest input)."""
    rows = df[df["seq_len"] == df["seq_len"].min()] if len(df) else df
    ok = _generation_ok(rows)
    sizes = sorted(rows["batch_size"].unique()) if len(rows) else []
    fig, axes = panel_grid([f"batch {b}" for b in sizes], cols=3, width=4.8, height=4.8)
    ends = {}
    for ax, bs in zip(axes, sizes):
        sub = ok[ok["batch_size"] == bs]
        for name, g in sub.groupby("engine", sort=False):
            line(ax, g, "new_tokens", "p50_ms", name)
        mark_flagged(ax, sub, "new_tokens", "p50_ms")
        mark_not_timed(ax, rows[rows["batch_size"] == bs], "new_tokens")
        ends[ax] = sub.sort_values("new_tokens").groupby("engine", sort=False).tail(1)
        measured = rows.loc[rows["batch_size"] == bs, "new_tokens"]
        ax.set_xticks(sorted(set(measured)))
        ax.set_xlim(right=measured.max() * 1.45)  # room for the names at the line ends
        ax.set_ylim(bottom=0)
        ax.set_xlabel("new tokens per call")
        ax.set_ylabel("median time per call (ms)")
        ax.set_title(f"batch {bs}, {int(rows['seq_len'].min())} input tokens")
    rows_legend(fig, rows)
    for ax, end in ends.items():  # once every panel is drawn: labels are placed by distance
        label_line_ends(ax, end["new_tokens"], end["p50_ms"], end["engine"], fontsize=6.5)
    fig.suptitle("Total generation time against the number of generated tokens")
    return fig


def generation_memory(df: pd.DataFrame):
    """RSS increment of loading and of inference per engine (one fresh process each)."""
    ok = df[df["status"] == "ok"].set_index("engine") if len(df) else df
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if len(ok):
        ok[["load_mb", "inference_mb"]].rename(
            columns={"load_mb": "load increment", "inference_mb": "inference increment"}
        ).plot.barh(ax=ax, colormap=GROUPS)
        r = ok.iloc[0]
        ax.set_title(f"batch {int(r.batch_size)} × {int(r.seq_len)} input tokens, {int(r.new_tokens)} new tokens")
    ax.invert_yaxis()
    ax.set_xlabel("resident memory increment (MB)")
    ax.set_ylabel("")
    fig.suptitle("Memory per engine (a fresh process each)")
    return fig


def generation_speedups(df: pd.DataFrame):
    """Speed-up of total generate() time over PyTorch fp32 with its 95% CI, at the longest
    generation, one panel per input length, one bar per engine and batch size."""
    ok = _generation_ok(df)
    top = ok[(ok["new_tokens"] == ok["new_tokens"].max()) & ok["speedup"].notna()]
    lens = sorted(top["seq_len"].unique()) or [0]
    fig, axes = panel_grid([f"{n} input tokens" for n in lens], cols=2, width=5.5, height=4.5)
    for ax, n in zip(axes, lens):
        sub = top[top["seq_len"] == n]
        table = sub.pivot_table(index="engine", columns="batch_size", values="speedup", sort=False)
        low = table - sub.pivot_table(index="engine", columns="batch_size", values="speedup_ci_low", sort=False)
        high = sub.pivot_table(index="engine", columns="batch_size", values="speedup_ci_high", sort=False) - table
        if len(table):
            names = _engine_names(df[df["seq_len"] == n])
            low, high = low.reindex(names.index), high.reindex(names.index)
            errors = [[low[c].values, high[c].values] for c in table.columns]
            _bars(ax, table, names, xerr=errors, capsize=2)
            ax.legend(title="batch", fontsize=7)
        ax.axvline(1, color="0.4", lw=1, ls="--")
        ax.invert_yaxis()
        ax.set_xlabel("speed-up over PyTorch fp32 (95% CI)")
        ax.set_ylabel("")
        ax.set_title(f"{n} input tokens")
    fig.suptitle(f"Generation speed-up ({int(top['new_tokens'].max()) if len(top) else 0} new tokens)")
    return fig
