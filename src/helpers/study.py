"""The study runner: `python -m helpers.study run|list|readme`.

    python -m helpers.study run [--profile quick] [--only 03,05] [-p key=value ...] [--out DIR] [--fresh]
    python -m helpers.study run --profile full --reference NAME [--replace]
    python -m helpers.study list
    python -m helpers.study readme [NAME]

Every parameter of every selected notebook is checked before the first notebook starts (files
and model directories included); a parameter no selected notebook takes is refused.
Executed notebooks go to <out>/runs/<profile>/; a failing notebook is reported with its cell
error and the others still run. results/ holds one run (see helpers.core.session): the same request
on the same machine resumes it; anything else first archives it to runs/archive/<run id>/.
`--reference NAME` runs the study in reference/.partial-NAME/ and, when every notebook
succeeded, publishes it as reference/NAME/ (see helpers.report.reference): the only writer there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from helpers.core import paths
from helpers.core import session as runs
from helpers.core.progress import HEADLESS_ENV
from helpers.core.session import PROFILE_ENV, RUN_ID_ENV, RunRecordError
from helpers.core.tables import ForeignRowsError
from helpers.params import (
    ParameterError,
    available_profiles,
    discover_notebooks,
    load_profile,
    notebook_parameters,
    parse_overrides,
    resolve,
    takers,
)
from helpers.report import reference

KERNEL_NAME = "inference-workbook"


@dataclass
class Outcome:
    notebook: str
    seconds: float
    error: str = ""


def select(notebooks: list[Path], only: str | None) -> list[Path]:
    """Notebooks whose number (or full name) is in the comma-separated `only`."""
    if not only:
        return notebooks
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen = [nb for nb in notebooks if nb.stem[:2] in wanted or nb.stem in wanted]
    unknown = [w for w in wanted if not any(nb.stem[:2] == w or nb.stem == w for nb in notebooks)]
    if unknown:
        raise ParameterError(
            f"--only: unknown notebook {unknown[0]!r}; accepted: "
            f"{', '.join(nb.stem[:2] for nb in notebooks)} (or full names)"
        )
    return chosen


def ensure_kernel() -> str:
    """Register this interpreter as the project's Jupyter kernel (in sys.prefix) if missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL_NAME, display_name="Inference workbook", prefix=sys.prefix)
    return KERNEL_NAME


def execute(nb: Path, out_dir: Path, params: dict, kernel: str) -> Outcome:
    import papermill as pm

    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb),
            str(out_dir / nb.name),
            parameters=params,
            kernel_name=kernel,
            language="python",
            cwd=str(nb.parent),
            progress_bar=False,
            log_output=False,
        )
        return Outcome(nb.stem, time.perf_counter() - start)
    except pm.PapermillExecutionError as exc:
        error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel died, notebook unreadable ...
        error = f"{type(exc).__name__}: {exc}"
    return Outcome(nb.stem, time.perf_counter() - start, error)


def run(
    profile: str = "quick",
    only: str | None = None,
    overrides: list[str] | None = None,
    out: str | None = None,
    fresh: bool = False,
    reference_name: str | None = None,
    replace: bool = False,
) -> int:
    """Validate everything, then run the selected notebooks in order; 0 if all succeeded."""
    if reference_name:
        if out:
            raise ParameterError("--out: a reference run is written under reference/; give --out or --reference")
        out = reference.staging_dir(reference.check_name(reference_name, replace))
    if out:
        paths.set_out_root(out)
    all_nbs = discover_notebooks()
    chosen = select(all_nbs, only)
    given = parse_overrides(overrides or [])
    params = resolve(chosen, load_profile(profile), given, all_nbs)
    say_who_uses(given, params)
    record = runs.begin(profile, {nb.stem: params[nb.stem] for nb in chosen}, fresh)
    outcomes = execute_all(chosen, params, profile, record["run_id"])
    if not any(o.error for o in outcomes):
        runs.mark_finished()
        if reference_name:
            print(f"reference: published {reference.publish(reference_name, profile)}")
    elif reference_name:
        print(
            f"reference: not published (a notebook failed); the run stays in {paths.out_root()}: "
            "the same command resumes it"
        )
    return 1 if any(o.error for o in outcomes) else 0


def execute_all(chosen: list[Path], params: dict, profile: str, run_id: str) -> list[Outcome]:
    os.environ.update({PROFILE_ENV: profile, RUN_ID_ENV: run_id, HEADLESS_ENV: "1"})
    kernel = ensure_kernel()
    out_dir = paths.runs_dir(profile)
    outcomes = []
    print(f"study: profile {profile}, run {run_id}, {len(chosen)} notebook(s), output under {paths.out_root()}")
    for i, nb in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {nb.stem} ...", flush=True)
        runs.mark_notebook(nb.stem, started=runs.now(), finished=None, status="running")
        outcome = execute(nb, out_dir, params[nb.stem], kernel)
        runs.mark_notebook(
            nb.stem,
            finished=runs.now(),
            seconds=round(outcome.seconds, 1),
            status="failed" if outcome.error else "ok",
            error=outcome.error,
        )
        status = "ok" if not outcome.error else f"FAILED: {outcome.error}"
        print(f"[{i}/{len(chosen)}] {nb.stem} {status} ({outcome.seconds:.0f} s)", flush=True)
        outcomes.append(outcome)
    failed = [o for o in outcomes if o.error]
    total = sum(o.seconds for o in outcomes)
    print(
        f"study: {len(outcomes) - len(failed)} of {len(outcomes)} notebooks ran in {total:.0f} s; "
        f"executed notebooks in {out_dir}"
    )
    for o in failed:
        print(f"  FAILED {o.notebook}: {o.error}  (see {out_dir / (o.notebook + '.ipynb')})")
    return outcomes


def say_who_uses(given: dict, params: dict[str, dict]) -> None:
    """Name the notebooks that use the model and the corpus given with -p."""
    for names in (("model", "models"), ("corpus",)):
        for name in (n for n in names if n in given):
            users = [nb for nb, values in params.items() if any(n in values for n in names)]
            others = [nb for nb in params if nb not in users]
            print(
                f"{name}={given[name]}: used by {', '.join(users)}"
                + (f"; not by {', '.join(others)} (no {names[0]} parameter)" if others else "")
            )


def list_notebooks() -> None:
    print(f"profiles: {', '.join(available_profiles())}")
    declared = {nb.stem: notebook_parameters(nb) for nb in discover_notebooks()}
    for stem, spec in declared.items():
        print(f"\n{stem}")
        for p in spec.values():
            print(f"  {p.name}: {p.type_name} = {p.default!r}" + (f"  # {p.comment}" if p.comment else ""))
    print("\nshared names (-p NAME=... sets every selected notebook that takes it):")
    for name, stems in takers(declared).items():
        if len(stems) > 1:
            label = "model / models" if name == "model" else name
            print(f"  {label}: {', '.join(stems)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.study", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the notebooks headless with a parameter profile")
    r.add_argument("--profile", default="quick", help="params/<profile>.yaml (default: quick)")
    r.add_argument("--only", help="comma-separated notebook numbers, e.g. 00,03")
    r.add_argument(
        "-p",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a parameter in every selected notebook that takes it (YAML value); "
        "model=X is models=[X] where a notebook takes a list",
    )
    r.add_argument("--out", help="output root for results/, figures/ and runs/ (default: the project)")
    r.add_argument("--fresh", action="store_true", help="archive the current run and start a new one")
    r.add_argument("--reference", metavar="NAME", help="write this run as reference/NAME/ (committed reference)")
    r.add_argument("--replace", action="store_true", help="with --reference: replace an existing reference/NAME/")
    sub.add_parser("list", help="list notebooks and their parameters")
    rd = sub.add_parser("readme", help="regenerate reference/NAME/README.md and the README findings (no measuring)")
    rd.add_argument("name", nargs="?", help="a folder of reference/ (default: the one the README names)")
    args = parser.parse_args(argv)
    if args.command == "list":
        list_notebooks()
        return 0
    try:
        if args.command == "readme":
            print(f"readme: {reference.write_readmes(args.name)}")
            return 0
        return run(args.profile, args.only, args.overrides, args.out, args.fresh, args.reference, args.replace)
    except ParameterError as exc:
        print(f"study: bad parameters, nothing was run:\n{exc}", file=sys.stderr)
        return 2
    except (RunRecordError, ForeignRowsError) as exc:
        print(f"study: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
