"""Runs side by side: this run beside every committed reference, each described by its machine,
with its claim verdicts, recommended engine and 00's ceilings per run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from helpers.core import paths
from helpers.core.policy import POLICY, Policy
from helpers.report.claims.registry import claims_frame, evaluate_claims, load_tables
from helpers.report.recommend.workload import recommendations


def environment_of(results_dir: str | Path) -> dict:
    path = Path(results_dir) / "environment.json"
    return json.loads(path.read_text()) if path.exists() else {}


def machine_of(results_dir: str | Path) -> str:
    """The machine a run was measured on, named by CPU, cores, memory, GPU and fingerprint."""
    from helpers.core.fingerprint import machine, machine_label

    env = environment_of(results_dir)
    return machine_label(env.get("machine") or machine(env)) if env else "an unrecorded machine"


def describe_run(results_dir: str | Path) -> str:
    env = environment_of(results_dir)
    return (
        f"{machine_of(results_dir)}, profile `{env.get('profile', '?')}`, run `{env.get('run_id', '?')}`"
        if env
        else "an unrecorded run"
    )


def policy_of(results_dir: Path) -> Policy:
    """The decision policy that run's report used: the floors its 08_report named. A run
    recorded before one pair of floors served every answer (its report named min_cosine
    alone, a looser one) is read with today's policy: its tables decide, not its old floor."""
    notebooks = environment_of(results_dir).get("notebooks") or {}
    report = notebooks.get("08_report") or {}
    return Policy.from_params(report) if "min_recall_at_10" in report else POLICY


def runs_to_compare(results_dir: Path, reference_root: Path, extra: list | tuple = ()) -> dict[str, Path]:
    """This run, every committed reference under reference/ but the one this run was
    published as (the same run id), and any extra results folders, by label."""
    runs = {"this run": Path(results_dir)}
    this = environment_of(results_dir).get("run_id")
    for ref in paths.references(reference_root):
        if this is None or environment_of(ref / "results").get("run_id") != this:
            runs[f"reference {ref.name}"] = ref / "results"
    runs.update({f"results {Path(d).name or d}": Path(d) for d in extra})
    return runs


def verdicts_by_machine(runs: dict[str, Path]) -> pd.DataFrame:
    """Each claim's verdict per run (columns), claims as rows."""
    return pd.DataFrame(
        {label: claims_frame(evaluate_claims(load_tables(d))).set_index("id")["verdict"] for label, d in runs.items()}
    )


def recommendation_by_machine(runs: dict[str, Path], policy: Policy = POLICY) -> pd.DataFrame:
    """Per run: the recommended engine and its speed-up for the main model of each device."""
    frames = []
    for label, d in runs.items():
        recs = main_model(recommendations(load_tables(d), policy))
        frames.append(recs.assign(run=label, machine=machine_of(d)))
    frames = [f for f in frames if len(f)]
    columns = ["run", "machine", "device", "model", "batch", "length", "engine", "speedup", "ci_low", "ci_high"]
    return pd.concat(frames)[columns].reset_index(drop=True) if frames else pd.DataFrame(columns=columns)


def ceilings_by_machine(runs: dict[str, Path]) -> pd.DataFrame:
    """00's ceilings per run: the best GEMM rate per library and precision, and the bandwidth."""
    out = {}
    for label, d in runs.items():
        df = load_tables(d)["00_ceilings"]
        if df is None:
            continue
        ok = df[(df["status"] == "ok") & (df["kind"] != "nominal")]  # measured rates only
        best = ok.groupby(["kind", "library", "precision", "device", "unit"])["value"].max()
        out[label] = {f"{kind} {lib} {prec} ({dev}, {unit})": v for (kind, lib, prec, dev, unit), v in best.items()}
    return pd.DataFrame(out)


def main_model(recs: pd.DataFrame) -> pd.DataFrame:
    """Per device, the recommendation rows of the model measured on the most cells."""
    if not len(recs):
        return recs
    main = recs.groupby(["device", "model"])["cells"].sum().reset_index()
    main = main.loc[main.groupby("device")["cells"].idxmax(), ["device", "model"]]
    return recs.merge(main, on=["device", "model"])
