"""The engine registry: every engine the study runs, by task, each added at import by the
backend module that builds it (helpers.backends.engines and .ov: "encode", a BERT-family
encoder's last hidden state; helpers.backends.generation: "generate", seq2seq generation).

A name is unique within its task only: "ort" is an encoder engine and a generation engine.
`names(task)` lists a task's engines torch first, then ONNX Runtime, then OpenVINO, each
runtime's in the order its module added them (so the order never depends on which module was
imported first). This module imports nothing from helpers.backends: a reader that needs every
engine gets the registry from helpers.backends.catalog.engine_registry(), which imports the modules
that add them.
"""

from __future__ import annotations

from dataclasses import dataclass

TASKS = ("encode", "generate")
RUNTIMES = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")


@dataclass(frozen=True)
class Entry:
    """One engine of one task: what it is and the precision it claims."""

    name: str
    task: str  # one of TASKS
    description: str
    precision: str  # the precision it claims: one of PRECISIONS
    runtime: str  # one of RUNTIMES
    reference: bool = False  # the fp32 baseline the task's other engines are checked and timed against
    hint: str = ""  # OpenVINO engines: the INFERENCE_PRECISION_HINT they compile with (f32, bf16)
    # the file it runs, by how that file is made: OpenVINO engines their IR ("fp32": converted from
    # the ONNX export; "int8", "int8-ac", "int8-skip-<rule>": NNCF on it), generation ORT engines
    # their ONNX file set (generation.FILE_VARIANTS); "" for the others
    file: str = ""

    def __post_init__(self) -> None:
        for field, value, accepted in (
            ("task", self.task, TASKS),
            ("precision", self.precision, PRECISIONS),
            ("runtime", self.runtime, RUNTIMES),
        ):
            if value not in accepted:
                raise ValueError(f"engine {self.name!r}: {field}={value!r}; accepted: {', '.join(accepted)}")


class UnknownEngine(ValueError):
    """A name the registry lacks for that task; the message lists the accepted names."""


_ENTRIES: dict[tuple[str, str], Entry] = {}


def add(*entries: Entry) -> None:
    """Register engines. Adding an engine again is a no-op when it is the same entry (a module
    imported twice); a different entry under a registered name raises ValueError."""
    for entry in entries:
        known = _ENTRIES.get((entry.task, entry.name))
        if known is not None and known != entry:
            raise ValueError(f"{entry.task} engine {entry.name!r} is registered already, differently: {known}")
        _ENTRIES[(entry.task, entry.name)] = entry


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task={task!r}; accepted: {', '.join(TASKS)}")


def entries(task: str, runtime: str | None = None) -> tuple[Entry, ...]:
    """The task's engines (those of `runtime` only, when given), in the registry's order."""
    _check_task(task)
    found = [e for e in _ENTRIES.values() if e.task == task and runtime in (None, e.runtime)]
    return tuple(sorted(found, key=lambda e: RUNTIMES.index(e.runtime)))  # stable: added order within a runtime


def names(task: str, runtime: str | None = None) -> tuple[str, ...]:
    """The names of the task's engines (of `runtime` only, when given), in the registry's order."""
    return tuple(e.name for e in entries(task, runtime))


def find(name: str, task: str) -> Entry | None:
    """The task's engine `name`, or None."""
    _check_task(task)
    return _ENTRIES.get((task, name))


def get(name: str, task: str) -> Entry:
    """The task's engine `name`; UnknownEngine (a ValueError) naming the accepted names if none."""
    entry = find(name, task)
    if entry is None:
        raise UnknownEngine(f"{task} engine {name!r} unknown; accepted: {', '.join(names(task))}")
    return entry


def baseline(task: str) -> str:
    """The name of the task's reference engine (the fp32 baseline)."""
    found = [e.name for e in entries(task) if e.reference]
    if len(found) != 1:
        raise LookupError(f"{task}: {len(found)} reference engines registered ({', '.join(found)}); one expected")
    return found[0]
