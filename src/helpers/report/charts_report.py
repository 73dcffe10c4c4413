"""08_report's charts: speed, fidelity and memory across notebooks, and one sweep on each
machine side by side.

Each chart is drawn from a result table (never from kernel state); report.figures saves it."""

from __future__ import annotations

import pandas as pd

from helpers.report.charts_common import per_model_axes


def speed_fidelity_memory(points: pd.DataFrame):
    """Speed-up over each notebook's fp32 baseline against fidelity, marker area by memory,
    one panel per notebook; crosses mark variants outside tolerance."""
    books = list(dict.fromkeys(points["notebook"])) if len(points) else ["nothing measured"]
    fig, axes = per_model_axes(books, width=5.2, height=4.6)
    for ax, book in zip(axes, books):
        sub = points[points["notebook"] == book] if len(points) else points
        if sub.empty:
            continue
        mem = sub["memory_mb"].fillna(sub["memory_mb"].median() if sub["memory_mb"].notna().any() else 100)
        area = 20 + 200 * mem / max(mem.max(), 1)
        good = sub["status"] == "ok"
        ax.scatter(sub.loc[good, "fidelity"], sub.loc[good, "speedup"], s=area[good], alpha=0.6)
        ax.scatter(
            sub.loc[~good, "fidelity"],
            sub.loc[~good, "speedup"],
            s=area[~good],
            marker="x",
            color="k",
            label="outside tolerance",
        )
        for r in sub.itertuples():
            ax.annotate(r.label, (r.fidelity, r.speedup), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.axhline(1, color="0.4", lw=1, ls="--")
        ax.set_xlabel(sub["fidelity_kind"].iloc[0])
        ax.set_ylabel("speed-up over fp32 baseline (median)")
        ax.set_title(book)
    fig.suptitle("Speed, fidelity and memory across notebooks (marker area: memory)")
    return fig


def hosts_side_by_side(per_host: dict[str, pd.DataFrame], batch_size: int = 1, seq_len: int = 128):
    """03's speed-up over eager per engine at one shape, one panel per host (largest model
    each host measured at that shape)."""
    hosts = list(per_host) or ["none"]
    fig, axes = per_model_axes(hosts, width=5.0)
    for ax, host in zip(axes, hosts):
        df = per_host.get(host)
        if df is None or df.empty:
            ax.text(0.5, 0.5, "no 03 results", ha="center", transform=ax.transAxes)
            continue
        sub = df[
            (df["scope"] == "model")
            & (df["status"] == "ok")
            & (df["batch_size"] == batch_size)
            & (df["seq_len"] == seq_len)
            & df["speedup"].notna()
        ]
        sub = sub[sub["threads"] == sub["threads"].max()]
        if sub.empty:
            ax.text(0.5, 0.5, f"nothing at batch {batch_size} × {seq_len}", ha="center", transform=ax.transAxes)
            continue
        model = sub.sort_values("n_params")["model"].iloc[-1]
        m = sub[sub["model"] == model].drop_duplicates("engine").set_index("engine")
        m["speedup"].plot.barh(
            ax=ax, xerr=[m["speedup"] - m["speedup_ci_low"], m["speedup_ci_high"] - m["speedup"]], capsize=2
        )
        ax.axvline(1, color="0.4", lw=1, ls="--")
        ax.invert_yaxis()
        ax.set_xlabel("speed-up over eager fp32 (95% CI)")
        ax.set_ylabel("")
        ax.set_title(f"{host}: {model}, {int(m['threads'].iloc[0])} threads")
    fig.suptitle(f"The same sweep on each machine (batch {batch_size} × {seq_len})")
    return fig
