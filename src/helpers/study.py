"""The study runner: `python -m helpers.study run|list|readme`.

    python -m helpers.study run [--profile quick] [--only 03,05] [-p key=value ...] [--out DIR] [--fresh]
    python -m helpers.study run --profile full --reference NAME [--only 03,05] [--replace]
    python -m helpers.study list
    python -m helpers.study readme [NAME]

Every parameter of every selected notebook is checked before the first notebook starts (files
and model directories included); a parameter no selected notebook takes is refused.
Executed notebooks go to <out>/runs/<profile>/; a failing notebook is reported with its cell
error and the others still run. results/ holds one run (see helpers.runner.session): the same request
on the same machine resumes it; anything else first archives it to runs/archive/<run id>/.
`--reference NAME` runs the selected notebooks (and 08_report last) in reference/.partial-NAME/
and publishes reference/NAME/ after each notebook that completes, every completed part whole;
the same command goes on where it stopped, and another selection adds its notebooks to the
same run (see helpers.runner.reference): the only writer there.

As each notebook starts the runner says how long it took last time and when the study should
end (from runs/<profile>/durations.json); every line it prints also goes, timestamped, to
runs/<profile>/study.log (see helpers.core.runlog). Ctrl-C (or SIGTERM) stops the notebook's kernel, says
what finished and the command that resumes, and exits with status 130.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from helpers.core import paths, runlog
from helpers.core.memory import steady_allocator
from helpers.core.progress import HEADLESS_ENV
from helpers.core.tables import ForeignRowsError
from helpers.runner import reference, session
from helpers.runner.params import (
    ParameterError,
    available_profiles,
    discover_notebooks,
    load_profile,
    notebook_parameters,
    parse_overrides,
    resolve,
    takers,
)
from helpers.runner.session import RunRecordError

KERNEL_NAME = "inference-workbook"
CHECKPOINT_S = 300.0  # how often a reference run saves the rows of the notebook it is running


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


def execute(
    nb: Path, out_dir: Path, params: dict, kernel: str, checkpoint: Callable[[], None] | None = None
) -> Outcome:
    """Run one notebook with papermill, in a thread of its own: Ctrl-C then reaches the runner
    here (nbclient would take it in the main thread, for a slow kernel shutdown that prints
    tracebacks), which stops the kernel at once and lets papermill save the outputs so far.
    `checkpoint()` is called every CHECKPOINT_S while the notebook runs."""
    start, errors = time.perf_counter(), []
    thread = threading.Thread(target=_papermill, args=(nb, out_dir, params, kernel, errors), daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(CHECKPOINT_S if checkpoint else None)
            if checkpoint and thread.is_alive():
                checkpoint()
    except KeyboardInterrupt:
        papermill_log = logging.getLogger("papermill")
        level = papermill_log.level
        papermill_log.setLevel(logging.CRITICAL)  # "Kernel died ...": the runner says why
        try:
            stop_kernel()
            thread.join(30)
        finally:
            papermill_log.setLevel(level)
        raise
    return Outcome(nb.stem, time.perf_counter() - start, errors[0] if errors else "")


def _papermill(nb: Path, out_dir: Path, params: dict, kernel: str, errors: list[str]) -> None:
    import papermill as pm

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
            # bars and phase lines go to the kernel's real stderr, the runner's terminal: without
            # this, ipykernel would also copy every bar update into the executed notebook
            # and its log at ERROR: ipykernel 7 warns at every start that a local TCP kernel is
            # unencrypted, on the terminal of every notebook of the run
            extra_arguments=["--IPKernelApp.capture_fd_output=False", "--IPKernelApp.log_level=ERROR"],
        )
    except pm.PapermillExecutionError as exc:
        errors.append(f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}")
    except Exception as exc:  # kernel died, notebook unreadable ...
        errors.append(f"{type(exc).__name__}: {exc}")


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
    os.environ.pop(runlog.RUNS_ENV, None)
    if reference_name and out:
        raise ParameterError("--out: a reference run is written under reference/; give --out or --reference")
    name = reference.check_name(reference_name) if reference_name else ""
    all_nbs = discover_notebooks()
    chosen = select(all_nbs, only)
    if reference_name:
        chosen = reference.with_report(chosen, all_nbs)
    given = parse_overrides(overrides or [])
    params = resolve(chosen, load_profile(profile), given, all_nbs)
    wanted = {nb.stem: params[nb.stem] for nb in chosen}
    on_done = checkpoint = None
    if reference_name:
        out = reference.prepare(name, profile, replace, wanted, lambda line: say(profile, line))
        os.environ[runlog.RUNS_ENV] = str(paths.out_root() / "runs")
        on_done = lambda nb: say(profile, published(name, profile))  # noqa: E731
        checkpoint = lambda: keep_unfinished(name, profile)  # noqa: E731
    if out:
        paths.set_out_root(out)
    say_who_uses(given, params, lambda line: say(profile, line))
    record = session.begin(profile, wanted, fresh, lambda line: say(profile, line))
    outcomes = execute_all(chosen, params, profile, record["run_id"], on_done, checkpoint)
    if not any(o.error for o in outcomes):
        session.mark_finished()
        if reference_name:
            say(profile, published(name, profile))  # again: its run.json now records the end
            reference.finish(name)
    elif reference_name:
        say(
            profile,
            f"reference: the failed notebook(s) were not published; the run stays in {paths.out_root()}: "
            "the same command resumes it",
        )
    return 1 if any(o.error for o in outcomes) else 0


def redraw(name: str) -> int:
    """Redraw reference NAME from its tables on any machine: every notebook it completed runs
    again with its recorded parameters and measures nothing (a table append raises), then the
    figures, executed notebooks, 08's tables and the README are published in its place."""
    staging, record = reference.prepare_redraw(name)
    chosen = [nb for nb in discover_notebooks() if record["notebooks"].get(nb.stem, {}).get("status") == "ok"]
    params = {nb.stem: record["notebooks"][nb.stem].get("params", {}) for nb in chosen}
    paths.set_out_root(staging)
    os.environ[paths.REDRAW_ENV] = "1"
    try:
        outcomes = execute_all(chosen, params, record["profile"], record["run_id"])
    finally:
        os.environ.pop(paths.REDRAW_ENV, None)
    if any(o.error for o in outcomes):
        say(record["profile"], f"redraw: nothing published; the redraw stays in {staging}")
        return 1
    say(record["profile"], f"redraw: published {reference.finish_redraw(name, record)}")
    return 0


def published(name: str, profile: str) -> str:
    """Publish reference NAME's completed notebooks, and say so."""
    folder, done = reference.publish(name, profile)
    return f"reference: published {folder} ({len(done)} notebook(s): {', '.join(done)})"


def keep_unfinished(name: str, profile: str) -> None:
    """Save the finished rows of reference NAME's unfinished notebooks, and say so (a failed
    save is said too: the run goes on, its rows are still in the staging folder)."""
    try:
        line = reference.save_unfinished(name)
    except OSError as exc:
        line = f"reference: could not save the unfinished rows ({exc}); they are still in {reference.staging_dir(name)}"
    if line:
        say(profile, line)


class Terminated(KeyboardInterrupt):
    """SIGTERM: the run stops as on Ctrl-C (rows saved, resume command said)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a notebook, once the runner has said what finished."""


def stop_cause(exc: BaseException) -> str:
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"


def say(profile: str, line: str, err: bool = False) -> None:
    """Print a runner line and append it, timestamped, to runs/<profile>/study.log."""
    print(line, file=sys.stderr if err else sys.stdout, flush=True)
    runlog.append(profile, line)


def execute_all(
    chosen: list[Path],
    params: dict,
    profile: str,
    run_id: str,
    on_done: Callable[[str], None] | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Run the notebooks in order; `on_done(notebook)` after each one that succeeds,
    `checkpoint()` while one runs and after one fails or is interrupted."""
    os.environ.update({paths.PROFILE_ENV: profile, paths.RUN_ID_ENV: run_id, HEADLESS_ENV: "1"})
    steady_allocator()  # the kernels and every process they start
    kernel = ensure_kernel()
    out_dir = paths.runs_dir(profile)
    outcomes = []
    say(
        profile,
        f"study: profile {profile}, run {run_id}, {len(chosen)} notebook(s), output under {paths.out_root()}; "
        f"log in {runlog.log_file(profile)}",
    )
    for i, nb in enumerate(chosen, 1):
        label = f"[{i}/{len(chosen)}] {nb.stem}"
        spent = spent_seconds()
        left = [n.stem for n in chosen[i - 1 :]]
        note = runlog.start_note(left, runlog.read_durations(profile), spent, datetime.now().astimezone())
        say(profile, f"{label} ... ({note})")
        session.mark_notebook(nb.stem, started=session.now(), finished=None, status="running")
        start = time.perf_counter()
        try:
            outcome = execute(nb, out_dir, params[nb.stem], kernel, checkpoint)
        except KeyboardInterrupt as exc:
            seconds, cause = time.perf_counter() - start, stop_cause(exc)
            finish_notebook(profile, nb.stem, seconds, "interrupted", cause, spent.get(nb.stem, 0.0))
            if checkpoint:
                checkpoint()
            say_interrupted(profile, nb.stem, seconds, outcomes, cause)
            raise Interrupted from None
        status = "failed" if outcome.error else "ok"
        finish_notebook(profile, nb.stem, outcome.seconds, status, outcome.error, spent.get(nb.stem, 0.0))
        if checkpoint and outcome.error:
            checkpoint()
        shown = "ok" if not outcome.error else f"FAILED: {outcome.error}"
        say(profile, f"{label} {shown} ({runlog.span(outcome.seconds)})")
        outcomes.append(outcome)
        if on_done and not outcome.error:
            on_done(nb.stem)
    failed = [o for o in outcomes if o.error]
    total = sum(o.seconds for o in outcomes)
    say(
        profile,
        f"study: {len(outcomes) - len(failed)} of {len(outcomes)} notebooks ran in {runlog.span(total)}; "
        f"executed notebooks in {out_dir}",
    )
    for o in failed:
        say(profile, f"  FAILED {o.notebook}: {o.error}  (see {out_dir / (o.notebook + '.ipynb')})")
    return outcomes


def spent_seconds() -> dict[str, float]:
    """Seconds each notebook already ran in the current run, over its tries (inf once one completed)."""
    notebooks = session.read_record()["notebooks"]
    return {nb: math.inf if e.get("status") == "ok" else float(e.get("spent_s") or 0) for nb, e in notebooks.items()}


def finish_notebook(profile: str, notebook: str, seconds: float, status: str, error: str, before: float) -> None:
    """Record a notebook's outcome in run.json; when it first completes in this run, its time
    over every try becomes its duration in runs/<profile>/durations.json."""
    spent = (0.0 if before == math.inf else before) + seconds
    session.mark_notebook(
        notebook,
        finished=session.now(),
        seconds=round(seconds, 1),
        spent_s=round(spent, 1),
        status=status,
        error=error,
    )
    if status == "ok" and before != math.inf:
        runlog.record_duration(profile, notebook, spent)


def stop_kernel() -> None:
    """Stop what an interrupted notebook left running: its kernel (in a session of its own,
    so Ctrl-C does not reach it) and the kernel's processes (engine workers). Killed at once:
    every finished row is already on disk, a shutdown request would wait for the running
    cell, and a worker left behind prints a traceback when it finds its pipe closed."""
    import psutil

    for child in psutil.Process().children(recursive=True):  # listed before any dies
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def say_interrupted(profile: str, notebook: str, seconds: float, outcomes: list[Outcome], cause: str) -> None:
    finished = ", ".join(f"{o.notebook} ({'FAILED, ' if o.error else ''}{runlog.span(o.seconds)})" for o in outcomes)
    say(
        profile,
        f"study: interrupted ({cause}) in {notebook} after {runlog.span(seconds)}; "
        "every row it measured is saved (tables are written row by row)",
        err=True,
    )
    say(profile, f"study: finished in this run: {finished or 'no notebook'}", err=True)


def resume_command(args: argparse.Namespace) -> str:
    """The command that continues this run: the same request, less --fresh (which would archive it)."""
    parts = ["run", "--profile", args.profile]
    parts += ["--only", args.only] if args.only else []
    parts += [a for o in args.overrides for a in ("-p", o)]
    parts += ["--out", args.out] if args.out else []
    parts += ["--reference", args.reference] if args.reference else []  # without --replace: it would start again
    python = os.path.relpath(sys.executable)
    command = shlex.join([python if not python.startswith("..") else sys.executable, "-m", "helpers.study", *parts])
    plain = not (args.only or args.overrides or args.out or args.reference)
    return command + (f"  (or: make study PROFILE={args.profile})" if plain else "")


def interrupted(args: argparse.Namespace, exc: KeyboardInterrupt) -> int:
    if not isinstance(exc, Interrupted):  # stopped outside a notebook: nothing said yet
        say(args.profile, f"study: interrupted ({stop_cause(exc)})", err=True)
    say(args.profile, f"study: to resume where it stopped: {resume_command(args)}", err=True)
    return 130


def say_who_uses(given: dict, params: dict[str, dict], out=print) -> None:
    """Name the notebooks that use the model and the corpus given with -p."""
    for names in (("model", "models"), ("corpus",)):
        for name in (n for n in names if n in given):
            users = [nb for nb, values in params.items() if any(n in values for n in names)]
            others = [nb for nb in params if nb not in users]
            out(
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


def _interrupt(signum, frame) -> None:
    raise Terminated


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
    r.add_argument(
        "--replace",
        action="store_true",
        help="with --reference: measure reference/NAME/ again from the start (not to continue one: drop it then)",
    )
    sub.add_parser("list", help="list notebooks and their parameters")
    rw = sub.add_parser(
        "redraw", help="redraw reference/NAME/ from its tables: figures, notebooks, 08, README (no measuring)"
    )
    rw.add_argument("name", help="a folder of reference/")
    rd = sub.add_parser("readme", help="regenerate reference/NAME/README.md and the README findings (no measuring)")
    rd.add_argument("name", nargs="?", help="a folder of reference/ (default: the one the README names)")
    args = parser.parse_args(argv)
    if args.command == "list":
        try:
            list_notebooks()
        except BrokenPipeError:  # `study list | head` closed the pipe: nothing is left to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    on_term = None
    if args.command == "run" and threading.current_thread() is threading.main_thread():
        on_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.command == "redraw":
            return redraw(args.name)
        if args.command == "readme":
            print(f"readme: {reference.write_readmes(args.name)}")
            return 0
        return run(args.profile, args.only, args.overrides, args.out, args.fresh, args.reference, args.replace)
    except KeyboardInterrupt as exc:
        if args.command != "run":
            raise
        return interrupted(args, exc)
    except ParameterError as exc:
        print(f"study: bad parameters, nothing was run:\n{exc}", file=sys.stderr)
        return 2
    except (RunRecordError, ForeignRowsError) as exc:
        print(f"study: {exc}", file=sys.stderr)
        return 2
    finally:
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)


if __name__ == "__main__":
    sys.exit(main())
