"""Notebook parameters: read each notebook's `parameters` cell, merge a profile and the
command line over it, and reject unknown names, wrong types and impossible values before
anything runs (papermill alone only warns about unknown names). The rule of each parameter
name lives in helpers.runner.checks."""

from __future__ import annotations

import ast
import io
import json
import tokenize
from pathlib import Path

import yaml

from helpers.core import paths
from helpers.runner.checks import Param, ParameterError, check_type, check_value


# -- reading notebooks -----------------------------------------------------------------------
def parameters_cell(cells: list[dict]) -> str:
    """The source of the code cell tagged `parameters`, from a notebook's cells as stored (JSON)."""
    for cell in cells:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell["source"]
            return source if isinstance(source, str) else "".join(source)
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
    # read as JSON, not with nbformat: its schema validation costs every notebook's kernel a second to import
    return parse_parameters(parameters_cell(json.loads(Path(path).read_text(encoding="utf-8"))["cells"]))


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
        overrides[key.strip()] = _yaml_value(key.strip(), value)
    return overrides


def _yaml_value(key: str, text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:  # e.g. an unclosed [ or a !!python tag (never constructed)
        why = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ParameterError(
            f"{key}: {text!r} is not a plain YAML value ({why}); accepted: YAML literals "
            "such as 8, 2.5, [1, 8], cpu, true or a quoted string"
        ) from None


# -- one vocabulary ---------------------------------------------------------------------------
# A user names their model once for the whole study: notebooks that sweep several take
# `models`, the others `model`, and each spelling is given to the notebooks that take the other.
ALIASES = {"model": "models", "models": "model"}


def _takes(spec: dict, name: str) -> bool:
    return name in spec or ALIASES.get(name) in spec


def takers(declared: dict[str, dict]) -> dict[str, list[str]]:
    """Parameter name -> the notebooks that take it (model and models together, as model)."""
    out: dict[str, list[str]] = {}
    for stem, spec in declared.items():
        for name in spec:
            out.setdefault("model" if name == "models" else name, []).append(stem)
    return out


def _one_model(value):
    if not isinstance(value, list):
        return value  # the type check reports anything odd
    if len(value) != 1:
        raise ParameterError(
            f"models: {value!r} names {len(value)} models, but this notebook measures one "
            "(its parameter is model); accepted: a list of one model, or -p model=NAME"
        )
    return value[0]


def _spelled_for(spec: dict, given: dict) -> tuple[dict, dict]:
    """`given` (profile defaults or -p) in the notebook's own names, and {own name: given name}
    for the converted ones: model=X is models=[X] where a notebook takes a list, models=[X] is
    model=X where it takes one (a longer list is refused)."""
    values, renamed = {k: v for k, v in given.items() if k in spec}, {}
    for name, other in ALIASES.items():
        if name in given and other in spec and other not in given:
            values[other] = [given[name]] if other == "models" else _one_model(given[name])
            renamed[other] = name
    return values, renamed


def _chosen(spec: dict, stem: str, profile: dict, overrides: dict) -> tuple[dict, dict]:
    """A notebook's given values: profile defaults < its profile section < -p; and the names
    converted from the other spelling of model/models."""
    section = {k: v for k, v in (profile["notebooks"].get(stem) or {}).items() if k in spec}
    layers = [_spelled_for(spec, profile["defaults"]), (section, {}), _spelled_for(spec, overrides)]
    values, renamed, origin = {}, {}, {}
    for i, (layer, converted) in enumerate(layers):
        values |= layer
        origin |= dict.fromkeys(layer, i)
        renamed = {k: v for k, v in renamed.items() if k not in layer} | converted
    # heatmap_model must be among models: where models given later leave it out, it follows them
    if "heatmap_model" in spec and origin.get("models", -1) > origin.get("heatmap_model", -1):
        models, heat = values["models"], values.get("heatmap_model", spec["heatmap_model"].default)
        if heat and isinstance(models, list) and models and heat not in models:
            values["heatmap_model"] = models[0]
    return values, renamed


def _not_taken(name: str, source: str, declared: dict, selected: dict) -> str:
    """Why `name` is refused ('' if a selected notebook takes it)."""
    if any(_takes(spec, name) for spec in selected.values()):
        return ""
    where = " (profile defaults)" if source != "-p" else ""
    others = [stem for stem, spec in declared.items() if _takes(spec, name)]
    if others:
        return f"{name}: not a parameter of {', '.join(selected)}{where}; taken by {', '.join(others)}"
    known = sorted(set().union(*selected.values())) if selected else []
    return f"{name}: unknown parameter ({source}); accepted: {', '.join(known)}"


# -- resolution ------------------------------------------------------------------------------
def resolve(
    notebooks: list[Path], profile: dict, overrides: dict, all_notebooks: list[Path] | None = None
) -> dict[str, dict]:
    """Every parameter of each selected notebook: defaults < profile < overrides, all validated.
    Raises ParameterError listing every problem found, each once with the notebooks it concerns."""
    declared = {nb.stem: notebook_parameters(nb) for nb in (all_notebooks or notebooks)}
    for nb in notebooks:
        declared.setdefault(nb.stem, notebook_parameters(nb))
    selected = {nb.stem: declared[nb.stem] for nb in notebooks}
    errors: dict[str, list[str]] = {}  # message -> notebooks
    for source, names in (("profile defaults", profile["defaults"]), ("-p", overrides)):
        for name in names:
            if problem := _not_taken(name, source, declared, selected):
                errors.setdefault(problem, [])
    for nb_name, section in profile["notebooks"].items():
        if nb_name not in declared:
            errors.setdefault(f"profile: unknown notebook {nb_name!r}; accepted: {', '.join(declared)}", [])
            continue
        for n in section or {}:
            if n not in declared[nb_name]:
                errors.setdefault(f"{n}: unknown parameter of {nb_name}; accepted: {', '.join(declared[nb_name])}", [])
    resolved = {}
    for stem, spec in selected.items():
        try:
            values, renamed = _chosen(spec, stem, profile, overrides)
        except ParameterError as exc:
            errors.setdefault(str(exc), []).append(stem)
            continue
        merged = {k: p.default for k, p in spec.items()} | values
        for name, value in merged.items():
            try:
                check_type(spec[name], value)
                check_value(name, value, merged)
            except ParameterError as exc:
                message = str(exc)
                if name in renamed and message.startswith(f"{name}:"):  # as the user spelled it
                    message = renamed[name] + message[len(name) :]
                errors.setdefault(message, []).append(stem)
        resolved[stem] = merged  # every parameter, so a run records what it used
    if errors:
        raise ParameterError(
            "\n".join(
                f"{', '.join(dict.fromkeys(stems))}: {message}" if stems else message
                for message, stems in errors.items()
            )
        )
    return resolved
