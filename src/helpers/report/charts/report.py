"""08_report's charts: speed, fidelity and memory across notebooks, and one sweep on each
machine side by side.

Each chart is drawn from a result table (never from kernel state); charts.style saves it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from helpers.report.charts.style import colour, figure_legend, label_points, panel_grid


def speed_fidelity_memory(points: pd.DataFrame):
    """Speed-up over each notebook's fp32 baseline against fidelity, marker area by memory,
    one panel per notebook, each engine in its colour; crosses mark variants outside tolerance."""
    books = list(dict.fromkeys(points["notebook"])) if len(points) else ["nothing measured"]
    fig, axes = panel_grid(books, cols=2, width=6.0, height=4.8)
    for ax, book in zip(axes, books):
        sub = points[points["notebook"] == book] if len(points) else points
        if sub.empty:
            continue
        mem = sub["memory_mb"].fillna(sub["memory_mb"].median() if sub["memory_mb"].notna().any() else 100)
        area = 20 + 200 * mem / max(mem.max(), 1)
        good = sub["status"] == "ok"
        engines = sub["label"].str.split(" (", regex=False).str[0]
        ax.scatter(
            sub.loc[good, "fidelity"], sub.loc[good, "speedup"], s=area[good], c=engines[good].map(colour), alpha=0.7
        )
        ax.scatter(sub.loc[~good, "fidelity"], sub.loc[~good, "speedup"], s=area[~good], marker="x", color="k")
        ax.axhline(1, color="0.4", lw=1, ls="--")
        ax.set_xlabel(sub["fidelity_kind"].iloc[0])
        ax.set_ylabel("speed-up over fp32 baseline (median)")
        ax.set_title(book)
    outside = Line2D([], [], ls="", marker="x", color="k", label="outside tolerance")
    names = points["label"].str.split(" (", regex=False).str[0] if len(points) else []
    figure_legend(fig, names, extra=[outside] if len(points) and (points["status"] != "ok").any() else [])
    for ax, book in zip(axes, books):  # once every panel is drawn: labels are placed by distance
        sub = points[points["notebook"] == book] if len(points) else points
        label_points(ax, sub.get("fidelity", []), sub.get("speedup", []), sub.get("label", []), fontsize=6)
    fig.suptitle("Speed, fidelity and memory across notebooks (marker area: memory)")
    return fig


def hosts_side_by_side(per_host: dict[str, pd.DataFrame], batch_size: int = 1, seq_len: int = 128):
    """03's speed-up over eager per engine at one shape, one panel per host, on the largest model
    that every host measured at that shape (like with like); a host without it says so."""
    hosts = list(per_host) or ["none"]
    shape = {
        host: _at_shape(df, batch_size, seq_len) if df is not None and len(df) else pd.DataFrame()
        for host, df in per_host.items()
    }
    measured = [set(s["model"]) for s in shape.values() if len(s)]
    common = set.intersection(*measured) if measured else set()
    sizes = pd.concat([s[["model", "n_params"]] for s in shape.values() if len(s)] or [pd.DataFrame()])
    model = sizes[sizes["model"].isin(common)].sort_values("n_params")["model"].iloc[-1] if common else None
    fig, axes = panel_grid(hosts, cols=2, width=5.2, height=4.2)
    for ax, host in zip(axes, hosts):
        sub = shape.get(host, pd.DataFrame())
        if model is None or sub.empty:
            what = "no 03 results" if sub.empty else "no model measured on every machine at this shape"
            ax.text(0.5, 0.5, what, ha="center", transform=ax.transAxes)
            ax.set_title(host)
            ax.axis("off")
            continue
        m = sub[sub["model"] == model].drop_duplicates("engine")
        y = np.arange(len(m))[::-1]
        ax.barh(
            y,
            m["speedup"],
            xerr=[m["speedup"] - m["speedup_ci_low"], m["speedup_ci_high"] - m["speedup"]],
            color=[colour(e) for e in m["engine"]],
            capsize=2,
            height=0.7,
        )
        ax.set_yticks(y, m["engine"])
        ax.axvline(1, color="0.4", lw=1, ls="--")
        ax.set_xlabel("speed-up over eager fp32 (95% CI)")
        ax.set_title(f"{host}: {model}, {int(m['threads'].iloc[0])} threads", fontsize=10)
    what = f"{model} on every machine" if model else "no model measured on every machine"
    fig.suptitle(f"The same sweep on each machine ({what}, batch {batch_size} × {seq_len})")
    return fig


def _at_shape(df: pd.DataFrame, batch_size: int, seq_len: int) -> pd.DataFrame:
    """Model-only rows that ran at one shape, at the host's most threads."""
    sub = df[
        (df["scope"] == "model")
        & (df["status"] == "ok")
        & (df["batch_size"] == batch_size)
        & (df["seq_len"] == seq_len)
        & df["speedup"].notna()
    ]
    return sub[sub["threads"] == sub["threads"].max()]
