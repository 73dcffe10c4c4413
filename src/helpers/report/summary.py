"""What 08_report shows, composed from claims, recommendations and charts.report: the note on the
tables found, the recommendation table or why there is none, and this run beside the
references (the run list, the machine tables and their chart). 08 measures nothing, so it
has no study module; this is the module its cells call."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.core import paths
from helpers.core.policy import POLICY, Policy
from helpers.report.charts import report, style
from helpers.report.claims.registry import load_tables
from helpers.report.recommend import machines, workload
from helpers.report.rows import trusted


def tables_note(results_dir: str | Path, tables: dict) -> str:
    """Which run results_dir holds, and which of its tables were found and which are missing."""
    found = [name for name, df in tables.items() if df is not None]
    missing = [name for name, df in tables.items() if df is None]
    return (
        f"This run: {machines.describe_run(results_dir)}. Tables found: "
        + ", ".join(found)
        + "; missing: "
        + (", ".join(missing) or "none")
        + "."
    )


def harness_note(tables: dict) -> str:
    """00's harness self-check in one sentence, with what it means for the verdicts when the
    worker harness and a plain loop disagree."""
    df = tables.get("00_harness_check")
    if df is None or not len(df):
        return "00_environment's harness self-check is not in this run: the verdicts assume the harness is neutral."
    row = df.iloc[-1]
    if bool(row["agrees"]):
        return str(row["message"])
    return (
        f"{row['message']} The verdicts above compare engines measured through the same harness, "
        "so they stand; a figure compared across notebooks (worker processes against in-process loops) does not."
    )


def recommendations_view(recommendations: pd.DataFrame):
    """The recommendation table to display (rounded), or a note that there is nothing to
    recommend from."""
    from IPython.display import Markdown

    if len(recommendations):
        return recommendations.round(3)
    return Markdown("No sweep results to recommend from (run 03 or 04).")


def whole_pipeline_view(tables: dict):
    """07_pipeline's recommended whole pipeline (its speed-up is over the naive pipeline), or a
    note that there is none."""
    from IPython.display import Markdown

    row = workload.whole_pipeline(tables)
    if len(row):
        return row.round(3)
    return Markdown("No whole pipeline to recommend: 07_pipeline did not run here, or no pipeline met its floors.")


def runs_markdown(runs: dict[str, Path]) -> str:
    """One bullet per run compared: its label and the machine, profile and run id behind it."""
    return "\n".join(f"- **{label}**: {machines.describe_run(d)}" for label, d in runs.items())


def machines_side_by_side(runs: dict[str, Path], policy: Policy = POLICY) -> dict[str, pd.DataFrame]:
    """The runs side by side: claim verdicts, the recommended engine, and 00's ceilings."""
    return {
        "verdicts": machines.verdicts_by_machine(runs),
        "recommendations": machines.recommendation_by_machine(runs, policy),
        "ceilings": machines.ceilings_by_machine(runs),
    }


def write_tables(frames: dict[str, pd.DataFrame], prefix: str) -> None:
    """results/<prefix>_<name>.csv for each frame (with its index: the row labels)."""
    for name, frame in frames.items():
        frame.to_csv(paths.result_table(f"{prefix}_{name}"))


HOSTS_SHAPE = (1, 128)  # batch size × sequence length the runs are compared at


def common_models(per_run: dict[str, pd.DataFrame | None], batch_size: int, seq_len: int) -> list[str]:
    """Models every run measured (trusted, model only) at batch_size × seq_len: what can be
    compared like with like."""
    sets = []
    for df in per_run.values():
        if df is None or df.empty:
            return []
        at = trusted(df[(df["scope"] == "model") & (df["batch_size"] == batch_size) & (df["seq_len"] == seq_len)])
        sets.append(set(at["model"]))
    return sorted(set.intersection(*sets)) if sets else []


def hosts_figure(runs: dict[str, Path]):
    """03's speed-up per engine at one shape, one panel per run compared, on a model every run
    measured there (the largest of them); a figure that says so when the runs share none."""
    batch_size, seq_len = HOSTS_SHAPE
    per_run = {label: load_tables(d)["03_cpu_sweep"] for label, d in runs.items()}
    common = common_models(per_run, batch_size, seq_len)
    if not common:
        measured = "; ".join(
            f"{label}: {', '.join(sorted(set(df['model']))) if df is not None else 'no 03 results'}"
            for label, df in per_run.items()
        )
        return style.notice(
            "The runs side by side",
            f"Nothing to compare: no model was measured by every run at batch {batch_size} × {seq_len} ({measured}).",
        )
    same = {label: df[df["model"].isin(common)] for label, df in per_run.items()}
    return report.hosts_side_by_side(same, batch_size, seq_len)
