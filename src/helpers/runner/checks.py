"""The rule of each notebook parameter name (`CHECKS`): its type against its default
(`check_type`) and its value (`check_value`), each failure a `ParameterError` that names the
parameter and says what is accepted. helpers.runner.params applies them to every resolved value."""

from __future__ import annotations

import codecs
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

DEVICES = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class Param:
    """A parameter a notebook's `parameters` cell declares: its name, default and comment."""

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


class ParameterError(ValueError):
    """A bad parameter: the message names it and says what is accepted."""


Check = Callable[[str, object, dict], None]  # (name, value, the notebook's values); raises ParameterError


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
        raise ParameterError(
            f"{param.name}: expected {param.type_name} (like {param.default!r}), got {type(value).__name__} {value!r}"
        )


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _error(name: str, exc: ValueError) -> ParameterError:
    """A module's ValueError ('param=value why; accepted: ...') as one line 'param: value why; ...'.
    The parameter is the one the error blames (a corpus error may blame text_column) or `name`."""
    param = getattr(exc, "parameter", name)
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ParameterError(f"{param}: {re.sub(r'^[a-z0-9_]+(=|: )', '', text)}")


def _positive_ints(
    name: str, value, upper: int | None = None, what: str = "", allow_empty: bool = False, low: int = 1
) -> None:
    for v in _as_list(value):
        if not isinstance(v, int) or isinstance(v, bool):
            raise ParameterError(f"{name}: {v!r} is not an integer; accepted: integers >= {low}")
        if v < low or (upper is not None and v > upper):
            accepted = f"integers from {low} to {upper}{what}" if upper else f"integers >= {low}{what}"
            raise ParameterError(f"{name}: {v} is impossible; accepted: {accepted}")
    if isinstance(value, list) and not value and not allow_empty:
        raise ParameterError(f"{name}: the list is empty; give at least one value")


def _ints(low: int = 1, upper: int | None = None, what: str = "", allow_empty: bool = False) -> Check:
    return lambda name, value, values: _positive_ints(name, value, upper, what, allow_empty, low)


def _number(low: float = 0, high: float | None = None, what: str = "") -> Check:
    """A finite number in (low, high]; high None: no upper bound."""

    def check(name, value, values):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return  # the type check reports it
        if not (math.isfinite(value) and low < value and (high is None or value <= high)):
            upper = f" and <= {high}" if high is not None else ""
            raise ParameterError(f"{name}: {value} is impossible; accepted: a number > {low}{upper}{what}")

    return check


def _check_task_size(name: str, value, values: dict) -> None:
    """0 turns the task score off; otherwise more pairs than the 10 that recall@10 ranks."""
    if value == 0 and not isinstance(value, bool):
        return
    _positive_ints(name, value, what=" (recall@10 ranks 10 documents; 0: not measured)", low=11)


def _check_max_time(name: str, value, values: dict) -> None:
    _number()(name, value, values)
    low = values.get("min_time_s")
    if isinstance(low, (int, float)) and isinstance(value, (int, float)) and value < low:
        raise ParameterError(f"{name}: {value} is below min_time_s {low}; accepted: a number >= min_time_s")


def _check_names(name: str, value, check) -> None:
    """Run a module's name check (it raises ValueError) on each value, as a ParameterError."""
    for v in _as_list(value):
        try:
            check(v)
        except ValueError as exc:
            raise _error(name, exc) from exc


def _check_model(name: str, value, values: dict) -> None:
    from helpers.workloads.models import check_model_usable

    _check_names(name, value, check_model_usable)


def _check_seq2seq_model(name: str, value, values: dict) -> None:
    from helpers.workloads.models import SEQ2SEQ_SHAPES, check_hub_model, check_local_model, check_seq2seq_name

    _check_names(name, value, check_seq2seq_name)
    if value in SEQ2SEQ_SHAPES:
        return
    can_load = check_local_model if Path(value).expanduser().is_dir() else check_hub_model
    _check_names(name, value, lambda v: can_load(v, name))


def _check_seq_lens(name: str, value, values: dict) -> None:
    from helpers.workloads.models import model_max_length

    _positive_ints(name, value)
    for m in _as_list(values.get("models", values.get("model", []))):
        try:
            limit = model_max_length(m)
        except ValueError:  # a bad model name is reported by the model check
            continue
        too_long = [v for v in _as_list(value) if limit and v > limit]
        if too_long:
            raise ParameterError(
                f"{name}: {too_long[0]} is above the maximum length of model {m!r}; "
                f"accepted: integers from 1 to {limit}"
            )


def _check_known(name: str, value, accepted, allow_empty: bool = False) -> None:
    unknown = [v for v in _as_list(value) if v not in accepted]
    if unknown or not (_as_list(value) or allow_empty):
        what = f"unknown value {unknown[0]!r}" if unknown else "the list is empty"
        raise ParameterError(f"{name}: {what}; accepted: {', '.join(accepted)}")


def _check_choices(name: str, value, accepted, allow_empty: bool = False) -> None:
    _check_known(name, value, accepted, allow_empty)
    _check_openvino(name, value, accepted)


def _choices(vocabulary: Callable[[], Iterable[str]], allow_empty: bool = False) -> Check:
    """One of the names `vocabulary()` lists (imported when checked: `study list` stays quick)."""

    def check(name, value, values):
        _check_choices(name, value, list(vocabulary()), allow_empty)

    return check


# The vocabularies of list parameters, each where the layer that uses it defines it.
def _formats():
    from helpers.backends.export import FORMATS

    return FORMATS


def _methods():
    from helpers.backends.variants import METHODS

    return METHODS


def _strategies():
    from helpers.workloads.batching import STRATEGIES

    return STRATEGIES


def _scenarios():
    from helpers.workloads.batching import SCENARIOS

    return SCENARIOS


def _variants():
    from helpers.pipeline import VARIANTS

    return VARIANTS


def _layouts():
    from helpers.pipeline import LAYOUTS

    return LAYOUTS


def _scopes():
    from helpers.studies.cpu_sweep import SCOPES

    return SCOPES


def _check_openvino(name: str, value, accepted) -> None:
    """An OpenVINO engine or variant asked for where OpenVINO is not installed."""
    from helpers.backends.peers import needs_openvino, openvino_missing

    wants = [v for v in _as_list(value) if needs_openvino(str(v))]
    why = openvino_missing() if wants else ""
    if why:
        runnable = [a for a in accepted if not needs_openvino(a)]
        raise ParameterError(f"{name}: {wants[0]!r} needs OpenVINO: {why}; accepted here: {', '.join(runnable)}")


def _check_engines(name: str, value, values: dict) -> None:
    from helpers.backends.catalog import engine_registry

    accepted = engine_registry().names("encode")
    unknown = [e for e in _as_list(value) if e not in accepted]
    if unknown:
        raise ParameterError(f"{name}: unknown engine {unknown[0]!r}; accepted: {', '.join(accepted)}")
    if not _as_list(value):
        raise ParameterError(f"{name}: the list is empty; accepted: {', '.join(accepted)}")
    _check_openvino(name, value, accepted)


def _check_generation_engines(name: str, value, values: dict) -> None:
    from helpers.backends.catalog import engine_registry

    registry = engine_registry()
    accepted, baseline = list(registry.names("generate")), registry.baseline("generate")
    _check_choices(name, value, accepted)
    if baseline not in value:
        raise ParameterError(
            f"{name}: must include {baseline!r} (the fp32 baseline every engine is "
            f"checked and timed against); accepted: {', '.join(accepted)}"
        )


def _check_peers(name: str, value, values: dict) -> None:
    """Known peer names whose backend is installed here (empty: no peers)."""
    from helpers.backends.peers import PEERS, unavailable

    _check_known(name, value, list(PEERS), allow_empty=True)
    for peer in _as_list(value):  # each peer's own missing package (openvino, optimum-intel ...)
        why = unavailable(peer)
        if why:
            runnable = [p for p in PEERS if not unavailable(p)]
            raise ParameterError(f"{name}: {why}; accepted here: {', '.join(runnable) or 'none'}")


def _check_device(name: str, value, values: dict) -> None:
    ok = value in DEVICES or (value.startswith("cuda:") and value[5:].isdigit())
    if not ok:
        raise ParameterError(f"{name}: unknown device {value!r}; accepted: cpu, cuda, cuda:N, auto")


def _check_member(of: str, allow_empty: bool = False) -> Check:
    """A value that must be one of another parameter's list."""

    def check(name, value, values):
        if (value or not allow_empty) and value not in _as_list(values.get(of, [])):
            raise ParameterError(
                f"{name}: {value!r} is not among {of} {values.get(of)}; "
                f"accepted: one of {of}" + (", or empty" if allow_empty else "")
            )

    return check


def _check_result_dirs(name: str, value, values: dict) -> None:
    missing = [d for d in _as_list(value) if not Path(d).expanduser().is_dir()]
    if missing:
        raise ParameterError(
            f"{name}: {missing[0]!r} is not a directory; accepted: result directories "
            "(each a results/ folder of a run, with environment.json)"
        )


# Texts a notebook needs at least: two, because the even and odd positions are disjoint sets
# (checked texts and calibration texts); 02 scores recall@10 over the even ones, so 11 of those.
MIN_TEXTS, MIN_TEXTS_RECALL = 2, 21


def _check_corpus(name: str, value, values: dict) -> None:
    from helpers.workloads.corpora import CORPORA, FILE_TYPES, CorpusError, count_texts

    text_column = values.get("text_column", "text")
    label_column = values.get("label_column") or None  # "" means no labels
    if value in CORPORA:  # text_column and label_column describe a user file
        for param, given, default in (("text_column", text_column, "text"), ("label_column", label_column, None)):
            if given != default:
                raise ParameterError(
                    f"{param}: {given!r} names a column of a user corpus, but corpus is "
                    f"the built-in {value!r}; accepted: {default or ''!r}, or a corpus file "
                    "(-p corpus=...)"
                )
        return
    path = Path(value).expanduser()
    if not path.is_file() or path.suffix.lower() not in FILE_TYPES:
        raise ParameterError(
            f"{name}: {value!r} is neither a built-in corpus nor an existing "
            f"{'/'.join(FILE_TYPES)} file; accepted: "
            f"{', '.join(CORPORA)} or a path to such a file"
        )
    try:
        n = count_texts(
            value, text_column=text_column, label_column=label_column, encoding=values.get("encoding", "utf-8")
        )
    except CorpusError as exc:
        raise _error(name, exc) from None
    needed = MIN_TEXTS_RECALL if "fidelity_size" in values else MIN_TEXTS
    if n < needed:
        where = "" if path.suffix.lower() == ".txt" else f" in column {text_column!r}"
        why = (
            " (recall@10 over every other text needs 11 of them)"
            if needed == MIN_TEXTS_RECALL
            else " (every other text calibrates, the rest are checked)"
        )
        raise ParameterError(
            f"{name}: {value!r} has {n} non-empty text(s){where}; accepted: a corpus of at least {needed} texts{why}"
        )


def _check_encoding(name: str, value, values: dict) -> None:
    try:
        codecs.lookup(value)
    except LookupError:
        raise ParameterError(
            f"{name}: {value!r} is not a codec Python knows; accepted: e.g. utf-8, latin-1, cp1252, utf-16"
        ) from None


def _with_corpus(name: str, value, values: dict) -> None:
    """text_column and label_column are checked by reading the corpus (_check_corpus)."""


# The rules of every parameter name the notebooks declare (a test checks that each one not a
# bool has one); every value is type-checked against its default first.
CHECKS: dict[str, Check] = {
    # shapes and counts
    "batch_sizes": _ints(),
    "batch_size": _ints(),
    "seq_lens": _check_seq_lens,
    "seq_len": _check_seq_lens,
    "max_length": _check_seq_lens,
    "input_lens": _ints(upper=512, what=" (the tokenizer's limit)"),
    "new_tokens": _ints(),
    # [] means "1, 2, 4 ... up to the cores", resolved by the notebook
    "threads": _ints(upper=os.cpu_count(), what=" (the logical cores of this machine)", allow_empty=True),
    "rounds": _ints(),
    "passes": _ints(),
    "warmup_count": _ints(),
    "gemm_size": _ints(),
    "gemm_hidden": _ints(),
    "gemm_tokens": _ints(),
    "bandwidth_mb": _ints(),
    "dataset_size": _ints(),
    "calibration_size": _ints(),
    "check_size": _ints(),
    "fidelity_size": _ints(low=11, what=" (recall@10 needs more than 10 texts)"),
    "corpus_size": _ints(),
    "probe_size": _ints(),
    "task_size": _check_task_size,
    "finalists": _ints(),
    "cores": _ints(low=0, upper=os.cpu_count(), what=" (0: all logical cores)"),
    "focus_seq_len": _check_member("seq_lens"),
    # budgets and bounds
    "min_time_s": _number(),
    "max_time_s": _check_max_time,
    "max_gflop": _number(),
    "end_to_end_max_gflop": _number(),
    "min_cosine": _number(0, 1, what=" (a cosine)"),
    "min_recall_at_10": _number(0, 1, what=" (a recall)"),
    "relaxed_min_cosine": _number(0, 1, what=" (a cosine)"),
    "target_speedup": _number(1, what=" (times the naive pipeline)"),
    "budget_s": _number(what=" (seconds)"),
    "target_ci": _number(0, 1, what=" (the 95% CI half-width as a share of the median, e.g. 0.02)"),
    # models
    "model": _check_model,
    "models": _check_model,
    "heatmap_model": _check_member("models", allow_empty=True),
    "seq2seq_model": _check_seq2seq_model,
    # what is measured
    "engines": _check_engines,
    "generation_engines": _check_generation_engines,
    "formats": _choices(_formats),
    "methods": _choices(_methods),
    "strategies": _choices(_strategies),
    "variants": _choices(_variants),
    "peers": _check_peers,
    "layouts": _choices(_layouts),
    "scenarios": _choices(_scenarios, allow_empty=True),
    "scopes": _choices(_scopes),
    "ort_level": lambda name, value, values: _check_choices(name, value, ["O1", "O2", "O3"]),
    "device": _check_device,
    # texts
    "corpus": _check_corpus,
    "text_column": _with_corpus,
    "label_column": _with_corpus,
    "encoding": _check_encoding,
    # inputs of the report
    "result_dirs": _check_result_dirs,
}


def check_value(name: str, value, values: dict) -> None:
    """The rule of a parameter name (CHECKS); `values` are the notebook's other parameters."""
    check = CHECKS.get(name)
    if check:
        check(name, value, values)
