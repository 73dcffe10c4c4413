"""Bad parameters are rejected, each with a message naming it and what is accepted."""

import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from helpers.runner import params
from helpers.runner.params import ParameterError

CELL = """
model = "bert-tiny"  # model to run
batch_sizes = [1, 8]  # batch sizes
seq_lens = [16, 128]  # sequence lengths
threads = []  # thread counts; [] = up to the cores
engines = ["eager", "ort"]  # engines
corpus = "docstrings"  # corpus
device = "cpu"  # device
min_time_s = 0.5  # minimum time
verbose = False  # chatty output
formats = ["onnx"]  # formats
methods = ["eager"]  # variants
strategies = ["sorted"]  # strategies
scenarios = ["sentences"]  # length scenarios
"""


@pytest.fixture
def nb(tmp_path):
    cell = new_code_cell(CELL)
    cell.metadata["tags"] = ["parameters"]
    path = tmp_path / "99_demo.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    return path


def resolve(nb, **overrides):
    return params.resolve([nb], {"defaults": {}, "notebooks": {}}, overrides)["99_demo"]


def test_parameters_cell_is_parsed_with_comments(nb):
    spec = params.notebook_parameters(nb)
    assert list(spec) == [
        "model",
        "batch_sizes",
        "seq_lens",
        "threads",
        "engines",
        "corpus",
        "device",
        "min_time_s",
        "verbose",
        "formats",
        "methods",
        "strategies",
        "scenarios",
    ]
    assert spec["batch_sizes"].default == [1, 8] and spec["batch_sizes"].comment == "batch sizes"
    assert spec["batch_sizes"].type_name == "list[int]"


def test_good_values_pass(nb, tmp_path):
    corpus = tmp_path / "mine.csv"
    corpus.write_text("text\nhello world\nhello again\n")  # two texts: the least a notebook needs
    values = resolve(
        nb,
        batch_sizes=[1, 2, 64],
        seq_lens=[512],
        min_time_s=2,
        engines=["eager"],
        threads=[1],
        device="auto",
        corpus=str(corpus),
        model="minilm",
    )
    assert values["batch_sizes"] == [1, 2, 64] and values["min_time_s"] == 2


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"batchsize": 8}, r"batchsize: unknown parameter .*accepted: .*batch_sizes"),
        ({"batch_sizes": "8"}, r"batch_sizes: expected list\[int\]"),
        ({"batch_sizes": [1.5]}, r"batch_sizes: expected list\[int\]"),
        ({"verbose": 1}, r"verbose: expected bool"),
        ({"min_time_s": "fast"}, r"min_time_s: expected float"),
        ({"batch_sizes": [0, 8]}, r"batch_sizes: 0 is impossible; accepted: integers >= 1"),
        ({"batch_sizes": []}, r"batch_sizes: the list is empty"),
        (
            {"seq_lens": [16, 1024]},
            r"seq_lens: 1024 is above the maximum length of model 'bert-tiny'; accepted: integers from 1 to 512",
        ),
        ({"engines": ["eager", "tensorrt-magic"]}, r"engines: unknown engine 'tensorrt-magic'; accepted: eager, "),
        ({"model": "./no/such/model"}, r"model: .*no/such/model"),
        ({"model": "bert-gigantic"}, r"model: .*bert-tiny"),
        ({"threads": [0]}, r"threads: 0 is impossible"),
        ({"threads": [os.cpu_count() + 1]}, r"threads: .* accepted: integers from 1 to"),
        ({"device": "tpu"}, r"device: unknown device 'tpu'; accepted: cpu, cuda, cuda:N, auto"),
        (
            {"corpus": "/nowhere/texts.csv"},
            r"corpus: '/nowhere/texts.csv' is neither a built-in corpus .*accepted: docstrings",
        ),
        ({"min_time_s": 0}, r"min_time_s: 0 is impossible; accepted: a number > 0"),
        ({"methods": ["eager", "int3"]}, r"methods: unknown value 'int3'; accepted: eager, torch-bf16"),
        ({"strategies": ["sorted", "random"]}, r"strategies: unknown value 'random'; accepted: fixed, unsorted"),
        ({"scenarios": ["tweets"]}, r"scenarios: unknown value 'tweets'; accepted: short_queries, sentences"),
        ({"formats": ["onnx", "tflite"]}, r"formats: unknown value 'tflite'; accepted: torchscript, onnx"),
    ],
)
def test_bad_values_are_rejected_with_their_name(nb, overrides, expected):
    with pytest.raises(ParameterError, match=expected):
        resolve(nb, **overrides)


@pytest.mark.parametrize(
    "overrides",
    [{"engines": ["eager", "ov-bf16"]}, {"methods": ["eager", "ov-int8"]}, {"formats": ["onnx", "openvino"]}],
)
def test_openvino_names_are_refused_where_openvino_is_not_installed(nb, overrides, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else find_spec(name, *a)
    )
    name, value = next(iter(overrides.items()))
    with pytest.raises(ParameterError, match=rf"{name}: '{value[1]}' needs OpenVINO: OpenVINO is not installed") as err:
        resolve(nb, **overrides)
    accepted = str(err.value).split("accepted here: ")[1]
    assert "eager" in accepted or "onnx" in accepted
    assert not any(n in accepted.split(", ") for n in ("ov", "ov-bf16", "ov-int8", "openvino"))
    monkeypatch.undo()
    assert resolve(nb, **overrides)[name] == value  # installed here: accepted


def test_profile_with_unknown_names_is_rejected(nb):
    with pytest.raises(ParameterError, match="warp_speed: unknown parameter"):
        params.resolve([nb], {"defaults": {"warp_speed": 9}, "notebooks": {}}, {})
    with pytest.raises(ParameterError, match="unknown notebook '42_nope'"):
        params.resolve([nb], {"defaults": {}, "notebooks": {"42_nope": {}}}, {})


def test_every_problem_is_reported_at_once(nb):
    with pytest.raises(ParameterError) as err:
        resolve(nb, batch_sizes=[0], device="tpu")
    assert "batch_sizes" in str(err.value) and "device" in str(err.value)


def test_overrides_parse_as_yaml():
    assert params.parse_overrides(["batch_sizes=[1, 8]", "device=cpu", "x=2.5", "f=true"]) == {
        "batch_sizes": [1, 8],
        "device": "cpu",
        "x": 2.5,
        "f": True,
    }
    with pytest.raises(ParameterError, match="expected key=value"):
        params.parse_overrides(["batch_sizes"])


def test_unknown_profile_lists_the_profiles():
    with pytest.raises(ParameterError, match=r"profile: unknown profile 'turbo'; accepted: .*quick"):
        params.load_profile("turbo")


@pytest.mark.parametrize("profile", params.available_profiles())
def test_every_shipped_profile_is_valid_for_every_notebook(profile):
    notebooks = params.discover_notebooks()
    resolved = params.resolve(notebooks, params.load_profile(profile), {}, notebooks)
    assert set(resolved) == {nb.stem for nb in notebooks}


def test_empty_threads_means_up_to_the_cores(nb):
    assert resolve(nb, threads=[])["threads"] == []
    from helpers.core import machine

    assert machine.thread_counts([]) == machine.default_thread_counts() and machine.thread_counts([3]) == [3]
    assert machine.default_thread_counts(6) == [1, 2, 4, 6] and machine.default_thread_counts(4) == [1, 2, 4]


def test_every_notebook_that_declares_a_floor_declares_the_decision_policys():
    from helpers.core.policy import POLICY

    declared = {}
    for path in params.discover_notebooks():
        for name, p in params.notebook_parameters(path).items():
            if name in POLICY.floors:
                declared.setdefault(name, {})[path.stem] = p.default
    assert set(declared) == set(POLICY.floors) and {"07_pipeline", "08_report"} <= set(declared["min_cosine"])
    assert all(v == POLICY.floors[name] for name, by_nb in declared.items() for v in by_nb.values()), declared
    for profile in params.available_profiles():  # no profile sets another floor for one notebook only
        spec = params.load_profile(profile)
        floors = {k: v for nb in spec.get("notebooks", {}).values() for k, v in nb.items() if k in POLICY.floors}
        assert not floors, (profile, floors)
