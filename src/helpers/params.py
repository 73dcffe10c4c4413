"""Notebook parameters: read each notebook's `parameters` cell, merge a profile and the
command line over it, and reject unknown names, wrong types and impossible values before
anything runs (papermill alone only warns about unknown names)."""
from __future__ import annotations

import ast
import io
import os
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

from . import paths

DEVICES = ("cpu", "cuda", "auto")


class ParameterError(ValueError):
    """A bad parameter: the message names it and says what is accepted."""


@dataclass(frozen=True)
class Param:
    name: str
    default: object
    comment: str

    @property
    def type_name(self) -> str:
        d = self.default
        if isinstance(d, list):
            inner = sorted({type(x).__name__ for x in d})
            return f"list[{'|'.join(inner)}]" if inner else "list"
        return type(d).__name__


# -- reading notebooks -----------------------------------------------------------------------
def parameters_cell(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell.source
    raise ParameterError("notebook has no cell tagged 'parameters'")


def _comments_by_line(source: str) -> dict[int, str]:
    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    return comments


def parse_parameters(source: str) -> dict[str, Param]:
    """`name = literal  # comment` assignments of a parameters cell, in order."""
    comments = _comments_by_line(source)
    params = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            try:
                default = ast.literal_eval(node.value)
            except ValueError as exc:
                raise ParameterError(f"parameter {ast.unparse(target)!r} must be a literal") from exc
            params[target.id] = Param(target.id, default, comments.get(node.lineno, ""))
    return params


def notebook_parameters(path: Path) -> dict[str, Param]:
    return parse_parameters(parameters_cell(nbformat.read(path, as_version=4)))


def discover_notebooks() -> list[Path]:
    return sorted(p for p in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


# -- profiles --------------------------------------------------------------------------------
def available_profiles() -> list[str]:
    return sorted(p.stem for p in paths.PARAMS.glob("*.yaml"))


def load_profile(name: str) -> dict:
    path = paths.PARAMS / f"{name}.yaml"
    if not path.exists():
        raise ParameterError(f"profile: unknown profile {name!r}; accepted: {', '.join(available_profiles())}")
    data = yaml.safe_load(path.read_text()) or {}
    return {"defaults": data.get("defaults") or {}, "notebooks": data.get("notebooks") or {}}


def parse_overrides(items: list[str]) -> dict:
    """`key=value` pairs from the command line; values are YAML (1, 2.5, [1, 8], cpu, true)."""
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"-p {item!r}: expected key=value, e.g. -p batch_sizes=[1,8]")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


# -- type and value checks -------------------------------------------------------------------
def _type_ok(default, value) -> bool:
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, list):
        if not isinstance(value, list):
            return False
        kinds = {type(x) for x in default}
        return not kinds or all(any(_type_ok(k(), v) for k in kinds) for v in value)
    return isinstance(value, type(default))


def check_type(param: Param, value) -> None:
    if not _type_ok(param.default, value):
        raise ParameterError(f"{param.name}: expected {param.type_name} (like {param.default!r}), "
                             f"got {type(value).__name__} {value!r}")


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _positive_ints(name: str, value, upper: int | None = None, what: str = "",
                   allow_empty: bool = False) -> None:
    for v in _as_list(value):
        if not isinstance(v, int) or isinstance(v, bool):
            raise ParameterError(f"{name}: {v!r} is not an integer; accepted: integers >= 1")
        if v < 1 or (upper is not None and v > upper):
            accepted = f"integers from 1 to {upper}{what}" if upper else "integers >= 1"
            raise ParameterError(f"{name}: {v} is impossible; accepted: {accepted}")
    if isinstance(value, list) and not value and not allow_empty:
        raise ParameterError(f"{name}: the list is empty; give at least one value")


def _check_names(name: str, value, check) -> None:
    """Run a module's name check (it raises ValueError) on each value, as a ParameterError."""
    for v in _as_list(value):
        try:
            check(v)
        except ValueError as exc:
            raise ParameterError(f"{name}: {exc}") from exc


def _check_seq_lens(name: str, value, values: dict) -> None:
    from .models import model_max_length

    _positive_ints(name, value)
    for m in _as_list(values.get("models", values.get("model", []))):
        try:
            limit = model_max_length(m)
        except ValueError:  # a bad model name is reported by the model check
            continue
        too_long = [v for v in _as_list(value) if limit and v > limit]
        if too_long:
            raise ParameterError(f"{name}: {too_long[0]} is above the maximum length of model {m!r}; "
                                 f"accepted: integers from 1 to {limit}")


def _check_engines(name: str, value) -> None:
    from .engines import ENGINE_NAMES

    unknown = [e for e in _as_list(value) if e not in ENGINE_NAMES]
    if unknown:
        raise ParameterError(f"{name}: unknown engine {unknown[0]!r}; accepted: {', '.join(ENGINE_NAMES)}")
    if not _as_list(value):
        raise ParameterError(f"{name}: the list is empty; accepted: {', '.join(ENGINE_NAMES)}")


def _check_choices(name: str, value, accepted) -> None:
    unknown = [v for v in _as_list(value) if v not in accepted]
    if unknown or not _as_list(value):
        what = f"unknown value {unknown[0]!r}" if unknown else "the list is empty"
        raise ParameterError(f"{name}: {what}; accepted: {', '.join(accepted)}")


def _check_device(name: str, value) -> None:
    ok = value in DEVICES or (value.startswith("cuda:") and value[5:].isdigit())
    if not ok:
        raise ParameterError(f"{name}: unknown device {value!r}; accepted: cpu, cuda, cuda:N, auto")


def _check_corpus(name: str, value) -> None:
    from .data import CORPORA, FILE_TYPES

    if value in CORPORA:
        return
    path = Path(value).expanduser()
    if not path.is_file() or path.suffix.lower() not in FILE_TYPES:
        raise ParameterError(f"{name}: {value!r} is neither a built-in corpus nor an existing "
                             f"{'/'.join(FILE_TYPES)} file; accepted: "
                             f"{', '.join(CORPORA)} or a path to such a file")


def check_value(name: str, value, values: dict) -> None:
    """Rules for the parameter names the notebooks share (DESIGN.md); others only type-checked."""
    if name in ("batch_sizes", "batch_size"):
        _positive_ints(name, value)
    elif name in ("threads",):
        # [] means "1, 2, 4 ... up to the cores", resolved by the notebook
        _positive_ints(name, value, os.cpu_count(), " (the logical cores of this machine)", allow_empty=True)
    elif name in ("seq_lens", "seq_len"):
        _check_seq_lens(name, value, values)
    elif name in ("model", "models"):
        from .models import check_model_name

        _check_names(name, value, check_model_name)
    elif name == "engines":
        _check_engines(name, value)
    elif name == "formats":
        from .export import FORMATS

        _check_choices(name, value, FORMATS)
    elif name == "methods":
        from .variants import METHODS

        _check_choices(name, value, list(METHODS))
    elif name == "strategies":
        from .batching import STRATEGIES

        _check_choices(name, value, STRATEGIES)
    elif name == "distributions":
        from .batching import SCENARIOS

        for v in _as_list(value):
            if v not in SCENARIOS:
                try:
                    _check_corpus(name, v)
                except ParameterError as exc:
                    raise ParameterError(f"{exc} or a scenario: {', '.join(SCENARIOS)}") from None
    elif name == "scopes":
        from .sweeps import SCOPES

        _check_choices(name, value, SCOPES)
    elif name == "ort_level":
        _check_choices(name, value, ["O1", "O2", "O3"])
    elif name == "heatmap_model":
        if value and value not in _as_list(values.get("models", [])):
            raise ParameterError(f"{name}: {value!r} is not among models {values.get('models')}; "
                                 "accepted: one of the models, or empty")
    elif name == "seq2seq_model":
        from .seq2seq import check_model_name

        _check_names(name, value, check_model_name)
    elif name == "generation_engines":
        from .seq2seq import BASELINE, ENGINE_NAMES

        _check_choices(name, value, ENGINE_NAMES)
        if BASELINE not in value:
            raise ParameterError(f"{name}: must include {BASELINE!r} (the fp32 baseline every engine is "
                                 f"checked and timed against); accepted: {', '.join(ENGINE_NAMES)}")
    elif name in ("input_lens", "new_tokens"):
        _positive_ints(name, value, 512 if name == "input_lens" else None, " (the tokenizer's limit)")
    elif name == "result_dirs":
        missing = [d for d in _as_list(value) if not Path(d).expanduser().is_dir()]
        if missing:
            raise ParameterError(f"{name}: {missing[0]!r} is not a directory; accepted: result directories "
                                 "(each a results/ folder of a run, with environment.json)")
    elif name == "focus_seq_len":
        if value not in _as_list(values.get("seq_lens", [])):
            raise ParameterError(f"{name}: {value} is not among seq_lens {values.get('seq_lens')}; "
                                 "accepted: one of seq_lens")
    elif name == "device":
        _check_device(name, value)
    elif name == "corpus":
        _check_corpus(name, value)
    elif name.endswith(("_s", "_size", "_count")) and isinstance(value, (int, float)) and value <= 0:
        raise ParameterError(f"{name}: {value} is impossible; accepted: a number > 0")


# -- resolution ------------------------------------------------------------------------------
def resolve(notebooks: list[Path], profile: dict, overrides: dict,
            all_notebooks: list[Path] | None = None) -> dict[str, dict]:
    """Every parameter of each selected notebook: defaults < profile < overrides, all validated.
    Raises ParameterError listing every problem found."""
    declared = {nb.stem: notebook_parameters(nb) for nb in (all_notebooks or notebooks)}
    for nb in notebooks:
        declared.setdefault(nb.stem, notebook_parameters(nb))
    known = set().union(*declared.values()) if declared else set()
    errors = []
    for source, names in (("profile defaults", profile["defaults"]), ("-p", overrides)):
        errors += [f"{n}: unknown parameter ({source}); accepted: {', '.join(sorted(known))}"
                   for n in names if n not in known]
    for nb_name, section in profile["notebooks"].items():
        if nb_name not in declared:
            errors.append(f"profile: unknown notebook {nb_name!r}; accepted: {', '.join(declared)}")
            continue
        errors += [f"{n}: unknown parameter of {nb_name}; accepted: {', '.join(declared[nb_name])}"
                   for n in section or {} if n not in declared[nb_name]]
    resolved = {}
    for nb in notebooks:
        spec = declared[nb.stem]
        chosen = {**profile["defaults"], **(profile["notebooks"].get(nb.stem) or {}), **overrides}
        values = {k: v for k, v in chosen.items() if k in spec}
        merged = {k: p.default for k, p in spec.items()} | values
        for name, value in merged.items():
            try:
                check_type(spec[name], value)
                check_value(name, value, merged)
            except ParameterError as exc:
                errors.append(f"{nb.stem}: {exc}")
        resolved[nb.stem] = merged  # every parameter, so a run records what it used
    if errors:
        raise ParameterError("\n".join(dict.fromkeys(errors)))
    return resolved
