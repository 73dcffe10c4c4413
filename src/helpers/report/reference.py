"""Committed reference runs: reference/<name>/, one folder per machine and profile.

A reference folder holds results/ (tables, samples, environment.json, run.json), figures/
(PNG, SVG, index.json), notebooks/ (the executed notebooks with their outputs, machine paths
stripped) and a generated README.md (findings, claims table, figure gallery).

Only `python -m helpers.study run --reference NAME` writes one: the study runs in
reference/.partial-NAME/ (resumable), and only when every notebook succeeded is it copied to
reference/.publish-NAME/ and moved into place, so an interrupted run leaves the previous
reference intact. The project README's findings quote the reference its marker names.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd

from helpers.core import paths
from helpers.params import ParameterError
from helpers.report.claims import FAILS, HOLDS, UNTESTABLE, _link, evaluate_claims, load_tables
from helpers.report.figures import gallery
from helpers.report.recommend import _main_model, _min_cosine_of, describe_run, recommendations, whole_pipeline

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
FINDINGS_START = re.compile(r"<!-- findings:start reference=([a-z0-9._-]+) -->")
FINDINGS_END = "<!-- findings:end -->"
PAPERMILL_PATHS = ("input_path", "output_path", "environment_variables")


def check_name(name: str, replace: bool) -> str:
    if not NAME.match(name):
        raise ParameterError(
            f"--reference: {name!r} is not a folder name; accepted: lower-case letters, digits, "
            "'.', '_' and '-', e.g. epyc-zen4-2c-full"
        )
    if (paths.REFERENCE / name).exists() and not replace:
        raise ParameterError(
            f"--reference: reference/{name}/ already exists; pass --replace to replace it "
            "(the old one stays until the new run is complete)"
        )
    return name


def staging_dir(name: str) -> Path:
    return paths.REFERENCE / f".partial-{name}"


def publish(name: str, profile: str) -> Path:
    """Move the finished run of reference/.partial-NAME/ into reference/NAME/."""
    staging, target = staging_dir(name), paths.REFERENCE / name
    ready = paths.REFERENCE / f".publish-{name}"
    shutil.rmtree(ready, ignore_errors=True)
    shutil.copytree(staging / "results", ready / "results")
    shutil.copytree(staging / "figures", ready / "figures", ignore=shutil.ignore_patterns("gallery.md"))
    (ready / "notebooks").mkdir()
    for nb in sorted((staging / "runs" / profile).glob("*.ipynb")):
        clean_notebook(nb, ready / "notebooks" / nb.name, {str(staging): f"reference/{name}", str(paths.ROOT): "."})
    (ready / "README.md").write_text(reference_readme(ready, name))
    if target.exists():
        old = paths.REFERENCE / f".old-{name}"
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        ready.rename(target)
        shutil.rmtree(old)
    else:
        ready.rename(target)
    shutil.rmtree(staging)
    if readme_reference() == name:
        write_project_findings(name)
    return target


def clean_notebook(source: Path, dest: Path, replacements: dict[str, str]) -> None:
    """An executed notebook without papermill's paths and with machine paths replaced."""
    nb = nbformat.read(source, as_version=4)
    for key in PAPERMILL_PATHS:
        nb.metadata.get("papermill", {}).pop(key, None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = _replace(output["text"], replacements)
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    output["data"][mime] = _replace(value, replacements)
    nbformat.write(nb, dest)


def _replace(text: str, replacements: dict[str, str]) -> str:
    for old, new in sorted(replacements.items(), key=lambda kv: -len(kv[0])):  # longest first
        text = text.replace(old, new)
    return text


def reference_readme(folder: Path, name: str) -> str:
    """reference/NAME/README.md: what was measured where, the findings, the notebooks, the gallery."""
    results, figures = folder / "results", folder / "figures"
    notebooks = sorted((folder / "notebooks").glob("*.ipynb"))
    listed = [f"- [{nb.stem}](notebooks/{nb.name})" for nb in notebooks] or [
        "- none kept: this run predates keeping executed notebooks with references"
    ]
    return "\n".join(
        [
            f"# Reference run `{name}`",
            "",
            "Written by `python -m helpers.study run --reference` (or, without measuring, `python -m helpers.study "
            "readme`); do not edit by hand. Tables are in `results/` (raw per-call samples in `results/samples/` "
            "where kept), charts in `figures/`.",
            "",
            "## Findings",
            "",
            findings_markdown(results, figures, source=f"`reference/{name}/results/`"),
            "",
            "## Executed notebooks",
            "",
            *listed,
            "",
            gallery(figures, link_prefix="figures/", heading="##"),
            "",
        ]
    )


# -- the project README -----------------------------------------------------------------------
def readme_reference(readme: Path | None = None) -> str | None:
    """The reference the README's findings quote (named in its findings marker)."""
    match = FINDINGS_START.search((readme or paths.README).read_text())
    return match.group(1) if match else None


def project_findings(name: str) -> str:
    folder = paths.REFERENCE / name
    return findings_markdown(
        folder / "results", folder / "figures", link_prefix=f"reference/{name}/figures/", source=f"`reference/{name}/`"
    )


def findings_in(readme: str) -> str:
    start, end = FINDINGS_START.search(readme), readme.index(FINDINGS_END)
    return readme[start.end() : end].strip("\n")


def replace_findings(readme: str, name: str, findings: str) -> str:
    start, end = FINDINGS_START.search(readme), readme.index(FINDINGS_END)
    return readme[: start.start()] + f"<!-- findings:start reference={name} -->\n{findings}\n" + readme[end:]


def write_project_findings(name: str) -> Path:
    paths.README.write_text(replace_findings(paths.README.read_text(), name, project_findings(name)))
    return paths.README


def write_readmes(name: str | None = None) -> str:
    """Regenerate reference/NAME/README.md and the README findings from NAME's tables (no measuring)."""
    name = name or readme_reference()
    if not name or not (paths.REFERENCE / name / "results").is_dir():
        available = sorted(p.name for p in paths.REFERENCE.glob("*") if (p / "results").is_dir())
        raise ParameterError(f"readme: no reference {name!r}; accepted: {', '.join(available) or 'none yet'}")
    folder = paths.REFERENCE / name
    (folder / "README.md").write_text(reference_readme(folder, name))
    write_project_findings(name)
    return f"wrote {folder / 'README.md'} and the findings of {paths.README}"


# ---------------------------------------------------------------- findings of a reference run
def findings_markdown(
    results_dir: str | Path, figures_dir: str | Path, link_prefix: str = "figures/", source: str = "`results/`"
) -> str:
    """The findings of one run, computed from its tables, never typed by hand: for a
    reference's README and (through the reference command) the project README."""
    results_dir = Path(results_dir)
    min_cosine = _min_cosine_of(results_dir)
    t = load_tables(results_dir)
    verdicts = evaluate_claims(t, figures_dir)
    recs = _main_model(recommendations(t, min_cosine))
    counts = pd.Series([v.verdict for v in verdicts]).value_counts()
    lines = [
        f"Measured on {describe_run(results_dir)}. Generated from {source}; "
        "every number below is read from the tables.",
        "",
    ]
    if len(recs):
        lines += [
            f"**Recommendation** (fastest engine whose real-text fidelity is at least min cosine {min_cosine}, "
            "speed-up over eager fp32 as the geometric mean over the measured cells, with the range of their 95% CIs):",
            "",
            "| device | model | batch | length | engine | speed-up | CI range | runner-up |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.device} | {r.model} | {r.batch} | {r.length} | {r.engine} | {r.speedup:.2f}× | "
            f"{r.ci_low:.2f}–{r.ci_high:.2f} | {r.runner_up} |"
            for r in recs.itertuples()
        ]
        lines.append("")
    lines += _whole_pipeline_lines(t, results_dir)
    lines += [
        f"**Published claims**: {counts.get(HOLDS, 0)} hold, {counts.get(FAILS, 0)} do not hold, "
        f"{counts.get(UNTESTABLE, 0)} cannot be tested here.",
        "",
        "| claim | verdict | measured here | figure |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {v.id}: {v.claim} | {v.verdict} | {v.ours if v.verdict != UNTESTABLE else v.reason} | "
        f"{_link(v.figure, link_prefix)} |"
        for v in verdicts
    ]
    return "\n".join(lines)


def _whole_pipeline_lines(t: dict, results_dir: Path) -> list[str]:
    """07_pipeline's recommended whole pipeline, when the run has one (no lines otherwise, so
    the findings of a run without 07 are unchanged)."""
    import json

    row = whole_pipeline(t)
    if not len(row):
        return []
    r = row.iloc[0]
    saved = results_dir / "recommended_pipeline.json"
    floors = json.loads(saved.read_text()).get("info", {}).get("floors", {}) if saved.exists() else {}
    at = ", ".join(f"{k} {v:g}" for k, v in floors.items())
    return [
        f"**Whole pipeline** (07_pipeline, {r.model}, {r.texts} texts embedded whole, tokenization included"
        f"{'; floors ' + at if at else ''}): {r.pipeline}, **{r.speedup_over_naive:.2f}×** the naive pipeline "
        f"(eager fp32, one text at a time; 95% CI {r.ci_low:.2f}–{r.ci_high:.2f}), worst-text cosine "
        f"{r.cosine_min:.5f}, recall@10 {r.recall_at_10:.3f}."
        + (
            f" The fastest, {r.fastest} ({r.fastest_speedup:.2f}×), lies within its CI and costs more to run."
            if r.fastest
            else ""
        )
        + (
            f" Against the best sentence-transformers backend, {r.best_peer}: {r.speedup_over_peer:.2f}× "
            f"(95% CI {r.peer_ci_low:.2f}–{r.peer_ci_high:.2f})."
            if r.best_peer
            else ""
        ),
        "",
    ]
