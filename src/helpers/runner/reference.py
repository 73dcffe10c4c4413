"""Committed reference runs: reference/<name>/, one folder per machine and profile.

A reference folder holds results/ (tables, samples, environment.json, run.json), figures/
(PNG, SVG, index.json), notebooks/ (the executed notebooks with their outputs, machine paths
stripped) and a generated README.md (findings, claims table, figure gallery).

Only `python -m helpers.study run --reference NAME [--only 03,05]` writes one, in parts: the
study runs in reference/.partial-NAME/ (ignored by git; an interrupted run resumes from it),
and as each notebook completes, everything of the notebooks completed so far is copied to
reference/.publish-NAME/ and moved into place as reference/NAME/ with its README, so a part is
published whole or not at all, and a run cut off (even with its staging folder lost) keeps
every part it finished. A notebook longer than the machine's window keeps its finished rows
too: every few minutes, when it fails and when it is interrupted, the rows of the notebooks not
completed yet are saved to reference/NAME/unfinished/ (never read by a finding; commit it to
keep them). The next command on the same machine, profile and parameters goes on with the same
run (its published parts and unfinished rows copied back into staging), adding the notebooks
it selects; 08_report runs last every time, so the reference's report reads every part. The
project README's findings quote the reference its marker names.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd

from helpers.core import paths
from helpers.report.charts.style import gallery
from helpers.report.claims.registry import FAILS, HOLDS, UNTESTABLE, evaluate_claims, link, load_tables
from helpers.report.prose import text
from helpers.report.recommend.machines import describe_run, main_model, policy_of
from helpers.report.recommend.workload import NOT_MEASURED, SPEED_ONLY, recommendations, whole_pipeline
from helpers.runner.params import ParameterError

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
FINDINGS_START = re.compile(r"<!-- findings:start reference=([a-z0-9._-]+) -->")
FINDINGS_END = "<!-- findings:end -->"
PAPERMILL_PATHS = ("input_path", "output_path", "environment_variables")
REPORT = "08_report"  # regenerated after every part of a reference
UNFINISHED = "unfinished"  # reference/NAME/unfinished/: rows of notebooks that have not completed


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ParameterError(
            f"--reference: {name!r} is not a folder name; accepted: lower-case letters, digits, "
            "'.', '_' and '-', e.g. epyc-zen4-2c-full"
        )
    return name


def staging_dir(name: str) -> Path:
    return paths.REFERENCE / f".partial-{name}"


def _record_of(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "results" / "run.json").read_text())
    except (OSError, ValueError):
        return None


def with_report(chosen: list[Path], every: list[Path]) -> list[Path]:
    """The selection with the report notebook last, where the project has one: a reference's
    08 is regenerated after every part, so it reads every part."""
    return [nb for nb in chosen if nb.stem != REPORT] + [nb for nb in every if nb.stem == REPORT]


def prepare(name: str, profile: str, replace: bool, notebooks: dict[str, dict], say=print) -> Path:
    """The staging folder reference/.partial-NAME/ (ignored by git) to run `notebooks` (name ->
    parameters) in, as one run with the parts already published in reference/NAME/:

    - a staging folder of the published run (a run cut off in this session) is resumed as it is;
    - otherwise the published parts are copied into it (results, figures, executed notebooks), so
      the run goes on with the same run id, after a check that it can (same machine, profile and
      parameters), refused with the reason otherwise;
    - `replace` starts a new run instead; the old reference stays until its first part is published.
    """
    staging, target = staging_dir(name), paths.REFERENCE / name
    # the unfinished rows' record is the newer one: it also holds the parameters of a notebook cut off
    published, staged = _record_of(target / UNFINISHED) or _record_of(target), _record_of(staging)
    if replace:
        if published and staged and staged.get("run_id") == published.get("run_id"):
            shutil.rmtree(staging)  # the old run's: the replacement starts afresh
        return staging
    if not target.exists():
        return staging
    if published is None:
        raise ParameterError(f"--reference: reference/{name}/ holds no run record; pass --replace to measure it again")
    from helpers.runner import session

    why = session.why_not_continue(published, profile, session.this_machine(), notebooks)
    if why:
        raise ParameterError(
            f"--reference: reference/{name}/ cannot be continued ({why}); pass --replace to measure it "
            "again from the start (the old one stays until the first part is published), or give another NAME"
        )
    if staged and staged.get("run_id") == published.get("run_id"):
        return staging
    shutil.rmtree(staging, ignore_errors=True)  # a staging folder of another run: the published one wins
    for part in ("results", "figures"):
        if (target / part).is_dir():
            shutil.copytree(target / part, staging / part)
    # the unfinished notebooks' rows (and their newer run.json) over the published parts
    if (target / UNFINISHED / "results").is_dir():
        shutil.copytree(target / UNFINISHED / "results", staging / "results", dirs_exist_ok=True)
    executed = staging / "runs" / profile
    executed.mkdir(parents=True)
    for nb in (target / "notebooks").glob("*.ipynb"):
        shutil.copy2(nb, executed / nb.name)
    done = [nb for nb, e in published["notebooks"].items() if e.get("status") == "ok"]
    kept = unfinished_rows(target)
    say(
        f"reference: continuing reference/{name}/ (run {published['run_id']}; done: {', '.join(done) or 'none'}"
        + (f"; rows kept of unfinished {_rows_text(kept)}" if kept else "")
        + ")"
    )
    return staging


def _unfinished_files(staging: Path, done: list[str]) -> list[Path]:
    """The result files (tables, then samples) of the notebooks of staging's run not completed."""
    parts_done = {nb[:2] for nb in done}
    files = [
        p
        for p in (staging / "results").rglob("*")
        if p.is_file() and not p.name.endswith(".tmp") and _part_of(p.name) not in (None, *parts_done)
    ]
    return sorted(files, key=lambda p: (p.parent.name == "samples", p.name))  # a row's samples are written first


def _write_unfinished(dest: Path, staging: Path, done: list[str]) -> None:
    """dest/unfinished/: the unfinished notebooks' result files, the run's run.json and a README."""
    files = _unfinished_files(staging, done)
    if not files:
        return
    out = dest / UNFINISHED
    for f in files:
        copy = out / f.relative_to(staging)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, copy)
    _copy_without_machine_paths(staging / "results" / "run.json", out / "results" / "run.json", staging)
    rows = unfinished_rows(dest)
    (out / "README.md").write_text(
        f"# Unfinished notebooks of reference run `{_record_of(staging)['run_id']}`\n\n"
        f"Rows measured so far by {_rows_text(rows)}, saved {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}. "
        "No finding reads them. The same `make reference` command (NAME, PROFILE and the notebook in ONLY) "
        "goes on from them and publishes the notebook whole when it completes; commit this folder to keep them.\n"
    )


def unfinished_rows(folder: Path) -> dict[str, int]:
    """Rows kept in folder/unfinished/ per notebook part ('03': 812)."""
    counts: dict[str, int] = {}
    for table in sorted((folder / UNFINISHED / "results").glob("*.csv")):
        with table.open() as f:
            counts[table.name[:2]] = counts.get(table.name[:2], 0) + max(sum(1 for _ in f) - 1, 0)
    return counts


def _rows_text(rows: dict[str, int]) -> str:
    return ", ".join(f"{part} ({n} row{'' if n == 1 else 's'})" for part, n in rows.items())


def save_unfinished(name: str) -> str:
    """Save the rows the run in staging has finished for notebooks not completed yet to
    reference/NAME/unfinished/ (replaced whole: built beside it, then moved in), and say so;
    '' when there are none. A reference of another run (a --replace not yet published) is left
    as it is: the new run's rows then stay in staging only."""
    staging, target = staging_dir(name), paths.REFERENCE / name
    record = _record_of(staging)
    if record is None:
        return ""
    published = _record_of(target) or _record_of(target / UNFINISHED)
    if published and published.get("run_id") != record["run_id"]:
        return (
            f"reference: the unfinished rows stay in {staging} only: reference/{name}/ holds run "
            f"{published.get('run_id')} until this run's first part is published"
        )
    done = [nb for nb, e in record["notebooks"].items() if e.get("status") == "ok"]
    ready = paths.REFERENCE / f".unfinished-{name}"
    shutil.rmtree(ready, ignore_errors=True)
    _write_unfinished(ready, staging, done)
    if not (ready / UNFINISHED).is_dir():
        return ""
    target.mkdir(parents=True, exist_ok=True)
    _move_into_place(ready / UNFINISHED, target / UNFINISHED)
    shutil.rmtree(ready)
    if (target / "results").is_dir():  # a published part: its README lists what is unfinished
        (target / "README.md").write_text(reference_readme(target, name))
    return (
        f"reference: kept the finished rows of {_rows_text(unfinished_rows(target))} in reference/{name}/{UNFINISHED}/"
    )


def _move_into_place(new: Path, dest: Path) -> None:
    """Replace dest by new: the old one is renamed aside first, so one of them is always whole."""
    old = dest.with_name(f".old-{dest.name}")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    new.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def finish(name: str) -> None:
    """Remove the staging folder once its run completed and is published."""
    shutil.rmtree(staging_dir(name), ignore_errors=True)


def _part_of(file_name: str) -> str | None:
    """The notebook number a result or figure file belongs to ('07' for NN_..., None: the run's)."""
    if file_name == "recommended_pipeline.json":
        return "07"
    match = re.match(r"^(\d\d)_", file_name)
    return match.group(1) if match else None


def publish(name: str, profile: str) -> tuple[Path, list[str]]:
    """Publish what reference/.partial-NAME/ holds of every notebook that completed in its run
    as reference/NAME/ (the parts of unfinished notebooks left out), with its README, in one
    move: an interrupted publish leaves the previous reference intact. Returns the folder and
    the notebooks it holds."""
    staging, target = staging_dir(name), paths.REFERENCE / name
    record = _record_of(staging) or {"notebooks": {}}
    done = sorted(nb for nb, e in record["notebooks"].items() if e.get("status") == "ok")
    numbers = {nb[:2] for nb in done}

    def left_out(folder, names):
        return [n for n in names if (part := _part_of(n)) is not None and part not in numbers]

    ready = paths.REFERENCE / f".publish-{name}"
    shutil.rmtree(ready, ignore_errors=True)
    shutil.copytree(staging / "results", ready / "results", ignore=left_out)
    shutil.copytree(staging / "figures", ready / "figures", ignore=shutil.ignore_patterns("gallery.md", "index.json"))
    index = staging / "figures" / "index.json"
    entries = json.loads(index.read_text()) if index.exists() else {}
    kept = {k: v for k, v in entries.items() if _part_of(k) in numbers}
    (ready / "figures" / "index.json").write_text(json.dumps(kept, indent=2, sort_keys=True, default=str) + "\n")
    for png in (ready / "figures").iterdir():
        if _part_of(png.name) not in numbers and png.name != "index.json":
            png.unlink()
    (ready / "notebooks").mkdir()
    for nb in sorted((staging / "runs" / profile).glob("*.ipynb")):
        if nb.stem in done:
            clean_notebook(nb, ready / "notebooks" / nb.name, _machine_paths(staging))
    _copy_without_machine_paths(staging / "results" / "run.json", ready / "results" / "run.json", staging)
    _write_unfinished(ready, staging, done)
    (ready / "README.md").write_text(reference_readme(ready, name))
    _move_into_place(ready, target)
    if readme_reference() == name:
        write_project_findings(name)
    return target, done


def prepare_redraw(name: str) -> tuple[Path, dict]:
    """reference/.partial-NAME/ holding a copy of reference NAME's tables and figures, to redraw
    it from them (nothing measured), and its run record."""
    check_name(name)
    target, staging = paths.REFERENCE / name, staging_dir(name)
    record = _record_of(target)
    if record is None:
        available = ", ".join(p.name for p in paths.references()) or "none yet"
        raise ParameterError(f"redraw: reference/{name}/ holds no run record; accepted: {available}")
    shutil.rmtree(staging, ignore_errors=True)
    for part in ("results", "figures"):
        shutil.copytree(target / part, staging / part)
    (staging / "runs" / record["profile"]).mkdir(parents=True)
    return staging, record


def finish_redraw(name: str, record: dict) -> Path:
    """Publish the redrawn reference (figures, executed notebooks, 08's tables, README) with its
    run record as it was measured (the redraw's own times are not the run's)."""
    staging = staging_dir(name)
    (staging / "results" / "run.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    folder, _ = publish(name, record["profile"])
    shutil.rmtree(staging, ignore_errors=True)
    return folder


def _machine_paths(staging: Path) -> dict[str, str]:
    """This machine's paths in a run's outputs, and what a committed reference says instead."""
    return {str(staging): f"reference/{staging.name.removeprefix('.partial-')}", str(paths.ROOT): "."}


def _copy_without_machine_paths(source: Path, dest: Path, staging: Path) -> None:
    """Copy a text file (run.json: a failed notebook's error names files) with machine paths replaced."""
    dest.write_text(_replace(source.read_text(), _machine_paths(staging)))


def clean_notebook(source: Path, dest: Path, replacements: dict[str, str]) -> None:
    """An executed notebook without papermill's paths and with machine paths replaced."""
    import nbformat  # here, not at the top: its schema validator costs every `helpers.study` command seconds

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
    kept = unfinished_rows(folder)
    if kept:
        listed += [
            "",
            f"Unfinished: the rows measured so far by {_rows_text(kept)} are kept in "
            f"[{UNFINISHED}/]({UNFINISHED}/README.md), read by no finding, for the same command to go on from.",
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
        folder / "results",
        folder / "figures",
        link_prefix=f"reference/{name}/figures/",
        source=f"`reference/{name}/`",
        details=f"[reference/{name}/README.md](reference/{name}/README.md)",
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
    available = [p.name for p in paths.references()]
    if name not in available:
        raise ParameterError(f"readme: no reference {name!r}; accepted: {', '.join(available) or 'none yet'}")
    folder = paths.REFERENCE / name
    (folder / "README.md").write_text(reference_readme(folder, name))
    write_project_findings(name)
    return f"wrote {folder / 'README.md'} and the findings of {paths.README}"


# ---------------------------------------------------------------- findings of a reference run
def findings_markdown(
    results_dir: str | Path,
    figures_dir: str | Path,
    link_prefix: str = "figures/",
    source: str = "`results/`",
    details: str = "",
) -> str:
    """The findings of one run, computed from its tables, never typed by hand: for a
    reference's README and (through the reference command) the project README. With
    `details` (where the full findings are), the claims table keeps its verdicts and figures
    and leaves what was measured to that page."""
    results_dir = Path(results_dir)
    policy = policy_of(results_dir)
    t = load_tables(results_dir)
    verdicts = evaluate_claims(t, figures_dir)
    recs = main_model(recommendations(t, policy))
    counts = pd.Series([v.verdict for v in verdicts]).value_counts()
    lines = [
        f"Measured on {describe_run(results_dir)}. Generated from {source}; "
        "every number below is read from the tables.",
        "",
    ]
    if len(recs):
        lines += [
            f"**Recommendation** (the fastest engine meeting {policy.words()} on the model's real weights, or on "
            "speed only for random-weight shapes; speed-up over eager fp32, the geometric mean of the measured cells, "
            "beside the span of their 95% CIs):",
            "",
            "| device | model | batch | length | engine | speed-up | cells' CIs span | fidelity | runner-up |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [_recommendation_line(r) for r in recs.itertuples()]
        lines.append("")
        if recs["speed_only"].fillna(False).astype(bool).any():
            lines += [SPEED_ONLY_NOTE, ""]
    lines += _whole_pipeline_lines(t, results_dir)
    lines += _failure_lines(t)
    lines += [
        f"**Published claims**: {counts.get(HOLDS, 0)} hold, {counts.get(FAILS, 0)} do not hold, "
        f"{counts.get(UNTESTABLE, 0)} cannot be tested here.",
        "",
    ]
    if details:
        lines += [f"What was measured for each, and why it decided so: {details}.", ""]
        lines += ["| claim | verdict | figure |", "|---|---|---|"]
        lines += [f"| {v.id}: {v.claim} | {v.verdict} | {link(v.figure, link_prefix)} |" for v in verdicts]
        return "\n".join(lines)
    lines += ["| claim | verdict | measured here | why | figure |", "|---|---|---|---|---|"]
    lines += [
        f"| {v.id}: {v.claim} | {v.verdict} | {v.ours} | {v.reason} | {link(v.figure, link_prefix)} |" for v in verdicts
    ]
    return "\n".join(lines)


SPEED_ONLY_NOTE = (
    "*Speed only*: seeded random weights, so no fidelity figure carries these rows (none is borrowed from "
    "another model); `07_pipeline` on your model (`-p model=<dir or hub id>`) measures the recipe's and decides."
)


def _recommendation_line(r) -> str:
    """One row of the recommendation table; a class with no trusted cell says why, with no figures."""
    cell = f"| {r.device} | {r.model} | {r.batch} | {r.length} | {r.engine} | "
    if r.engine == NOT_MEASURED:
        return cell + f"— | — | {r.fidelity_source} | — |"
    fidelity = SPEED_ONLY if r.speed_only else r.fidelity_source
    if pd.notna(r.min_cosine):
        recall = f", recall@10 {r.recall_at_10:.3f}" if pd.notna(r.recall_at_10) else ""
        fidelity = f"min cosine {r.min_cosine:.5f}{recall}, {fidelity}"
    return cell + f"{r.speedup:.2f}× | {r.ci_low:.2f}–{r.ci_high:.2f} | {fidelity} | {r.runner_up} |"


def _failure_lines(t: dict) -> list[str]:
    """03's failed cells (error, oom, mismatch) by engine and reason; none when every cell ran."""
    from helpers.core.tables import failures

    failed = failures(t.get("03_cpu_sweep"))
    if failed.empty:
        return []
    lines = ["**Failed cells in 03_cpu_sweeps** (absent from its speed-ups and from the recommendation):", ""]
    lines += [f"- {r.engine}: {r.status} in {r.cells} cells ({r.models}): {r.reason}" for r in failed.itertuples()]
    return [*lines, ""]


def _whole_pipeline_lines(t: dict, results_dir: Path) -> list[str]:
    """07_pipeline's recommended whole pipeline, when the run has one (no lines otherwise, so
    the findings of a run without 07 are unchanged)."""
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
        f"(eager fp32, one text at a time; {text.interval(r.ci_low, r.ci_high)}), worst-text cosine "
        f"{r.cosine_min:.5f}, recall@10 {r.recall_at_10:.3f}."
        + (
            f" The fastest, {r.fastest} ({r.fastest_speedup:.2f}×), lies within its CI and costs more to run."
            if r.fastest
            else ""
        )
        + (
            f" Against the best peer (what a user would run instead), {r.best_peer}: {r.speedup_over_peer:.2f}× "
            f"({text.interval(r.peer_ci_low, r.peer_ci_high)})."
            if r.best_peer
            else ""
        ),
        "",
    ]
