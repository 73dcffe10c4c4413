"""Every input is honoured or refused before anything runs (issue 13), on the real notebooks.

A probe is a command a user might type with a bad input: it must exit 2 before the first
notebook starts (no runs/ or results/ folder), with one line naming the parameter. Valid but
unusual inputs must reach every selected notebook that takes them.
"""

import json
import re
import shutil

import pytest
from transformers import BertConfig, BertModel

from helpers import study
from helpers.runner import params
from helpers.runner.checks import CHECKS
from helpers.workloads import batching, models
from helpers.workloads.models import minilm_dir

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def tiny_bert(folder, weights=True, tokenizer=True, model_type="bert"):
    """A small random BERT saved as a user would (512 positions, the MiniLM tokenizer)."""
    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    if weights:
        BertModel(config).save_pretrained(folder)
    else:
        config.save_pretrained(folder)
    if tokenizer:
        for name in TOKENIZER_FILES:
            shutil.copy(minilm_dir() / name, folder / name)
    data = json.loads((folder / "config.json").read_text())
    if model_type != "bert":
        data.pop("model_type")
        data.update({"model_type": model_type} if model_type else {})
        (folder / "config.json").write_text(json.dumps(data))
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The probe inputs: corpus files and model directories."""
    d = tmp_path_factory.mktemp("inputs")
    (d / "user.csv").write_text("text,label\nhello world,a\nsecond text,b\nthird one,a\n")
    (d / "many.csv").write_text("text,label\n" + "".join(f"text number {i},{i % 2}\n" for i in range(30)))
    (d / "nocol.csv").write_text("body,label\nhello,a\nworld,b\n")
    (d / "empty.csv").write_text("")
    (d / "header.csv").write_text("text,label\n")
    (d / "latin1.csv").write_bytes("text\ncafé au lait\nnaïve text\n".encode("latin-1"))
    (d / "tickets.csv").write_bytes(
        "id,body,category\n".encode()
        + "".join(f"{i},ticket {i}: le café est froid,{'ab'[i % 2]}\n" for i in range(30)).encode("latin-1")
    )
    for name in ("notype", "warpnet", "notok", "noweights", "my-bert"):
        (d / name).mkdir()
    tiny_bert(d / "notype", model_type=None)
    tiny_bert(d / "warpnet", model_type="warpnet")
    tiny_bert(d / "notok", tokenizer=False)
    tiny_bert(d / "noweights", weights=False)
    tiny_bert(d / "my-bert")
    return d


@pytest.fixture
def out(tmp_path, monkeypatch):
    """A fresh output root; the runner's --out changes the environment, restored afterwards."""
    monkeypatch.setenv("WORKBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models.hub_problem.cache_clear()
    return tmp_path / "out"


PROBES = [  # (arguments, the line it must print); {d} is the folder of the probe inputs
    # the 9 refused up front before issue 13
    ("--only 03 -p batch_sizes=[0]", r"03_cpu_sweeps: batch_sizes: 0 is impossible; accepted: integers >= 1"),
    ("--only 03 -p seq_lens=[4096]", r"seq_lens: 4096 is above the maximum length of model 'bert-tiny'"),
    ("--only 03 -p engines=[warp]", r"engines: unknown engine 'warp'; accepted: eager, "),
    ("--only 03 -p threads=two", r"threads: expected list .*got str 'two'"),
    ("--only 03 -p threads=[-1]", r"threads: -1 is impossible; accepted: integers from 1 to"),
    ("--profile turbo", r"profile: unknown profile 'turbo'; accepted: full, quick, smoke"),
    ("--only 99", r"--only: unknown notebook '99'; accepted: 00, 01"),
    ("--only 05 -p model=/nope/model", r"05_sequence_sorting: model: '/nope/model' looks like a path but no such"),
    ("-p colour=blue", r"colour: unknown parameter \(-p\); accepted: .*batch_sizes"),
    # silently ignored before
    ("--only 01 -p model=/nope/model", r"01_export: model: '/nope/model' looks like a path but no such directory"),
    (
        "--only 05 -p corpus={d}/user.csv -p text_column=sentence",
        r"05_sequence_sorting: text_column: 'sentence' is not a column of user.csv; accepted: \['text', 'label'\]",
    ),
    ("--only 08 -p min_cosine=2", r"08_report: min_cosine: 2 is impossible; accepted: a number > 0 and <= 1"),
    # refused late, or with a raw error, before
    (
        "--only 05 -p corpus={d}/nocol.csv",
        r"text_column: 'text' is not a column of nocol.csv; accepted: \['body', 'label'\]",
    ),
    ("--only 05 -p corpus={d}/empty.csv", r"corpus: '.*empty.csv' is empty; accepted: a file with texts"),
    (
        "--only 05 -p corpus={d}/header.csv",
        r"corpus: '.*header.csv' has 0 non-empty text\(s\) in column 'text'; accepted: a corpus of at least 2 texts",
    ),
    (
        "--only 05 -p corpus={d}/latin1.csv",
        r"corpus: '.*latin1.csv' is not valid utf-8 \(byte 0xe9 at offset \d+\); accepted: .*-p encoding=",
    ),
    ("--only 05 -p model={d}/notype", r"model: '.*notype' has a config.json without model_type; accepted: a directory"),
    (
        "--only 05 -p model=org/name",
        r"model: cannot reach the model hub to fetch org/name \(.*\); pass a local directory",
    ),
    (
        "--only 05 -p model=!!python/object:os.system",
        r"model: '!!python/object:os.system' is not a plain YAML value \(could not determine a constructor",
    ),
    # one per new check
    ("--only 05 -p batch_sizes=[1,", r"batch_sizes: '\[1,' is not a plain YAML value"),
    (
        "--only 08 -p corpus={d}/user.csv",
        r"corpus: not a parameter of 08_report; taken by 01_export, 02_quantization, 03_cpu_sweeps, 05_sequence_sorting",
    ),
    ("--only 06 -p model=bert-tiny", r"model: not a parameter of 06_seq2seq; taken by 01_export, "),
    ("--only 05 -p models=[bert-tiny,bert-mini]", r"models: \['bert-tiny', 'bert-mini'\] names 2 models, but"),
    ("--only 05 -p scenarios=[tweets]", r"scenarios: unknown value 'tweets'; accepted: short_queries"),
    (
        "--only 05 -p text_column=body",
        r"text_column: 'body' names a column of a user corpus, but corpus is the built-in 'docstrings'",
    ),
    ("--only 05 -p corpus=/nowhere/texts.csv", r"corpus: '/nowhere/texts.csv' is neither a built-in corpus"),
    ("--only 02 -p corpus={d}/user.csv", r"02_quantization: corpus: .*has 3 non-empty text\(s\).* at least 21 texts"),
    (
        "--only 02 -p corpus={d}/many.csv -p label_column=topic",
        r"label_column: 'topic' is not a column of many.csv; accepted: \['text', 'label'\]",
    ),
    ("--only 05 -p corpus={d}/user.csv -p encoding=utf-9", r"encoding: 'utf-9' is not a codec Python knows"),
    ("--only 05 -p model={d}/warpnet", r"model: '.*warpnet' has model_type 'warpnet', unknown to transformers"),
    ("--only 05 -p model={d}/notok", r"model: '.*notok' has no tokenizer \(none of tokenizer.json, "),
    ("--only 05 -p model={d}/noweights", r"model: '.*noweights' has no weights"),
    ("--only 06 -p seq2seq_model={d}/notype", r"seq2seq_model: '.*notype' has a config.json without model_type"),
    ("--only 06 -p seq2seq_model=org/t5", r"seq2seq_model: cannot reach the model hub to fetch org/t5"),
    ("--only 05 -p max_length=1024", r"max_length: 1024 is above the maximum length of model 'bert-tiny'"),
    ("--only 03 -p max_gflop=0", r"max_gflop: 0 is impossible; accepted: a number > 0"),
    ("--only 03 -p max_time_s=0.01", r"max_time_s: 0.01 is below min_time_s 0.02"),
    ("--only 04 -p fidelity_size=5", r"fidelity_size: 5 is impossible; accepted: integers >= 11"),
    ("--only 02 -p task_size=5", r"task_size: 5 is impossible; accepted: integers >= 11 \(recall@10 .*0: not measured"),
    ("--only 06 -p rounds=0", r"06_seq2seq: rounds: 0 is impossible"),
    # 07_pipeline's own parameters
    (
        "--only 07_pipeline -p min_recall_at_10=1.5",
        r"07_pipeline: min_recall_at_10: 1.5 is impossible; accepted: a number > 0 and <= 1 \(a recall\)",
    ),
    ("--only 07_pipeline -p variants=[ort-int9]", r"variants: unknown value 'ort-int9'; accepted: eager, torch-bf16, "),
    ("--only 07_pipeline -p layouts=[gpus]", r"layouts: unknown value 'gpus'; accepted: threads, processes, streams"),
    ("--only 07_pipeline -p budget_s=0", r"budget_s: 0 is impossible; accepted: a number > 0 \(seconds\)"),
    ("--only 07_pipeline -p cores=-1", r"cores: -1 is impossible; accepted: integers from 0 to \d+ \(0: all logical"),
    ("--only 07_pipeline -p corpus_size=0", r"corpus_size: 0 is impossible; accepted: integers >= 1"),
    ("--only 07_pipeline -p probe_size=0", r"probe_size: 0 is impossible; accepted: integers >= 1"),
    ("--only 07_pipeline -p finalists=0", r"finalists: 0 is impossible; accepted: integers >= 1"),
    ("--only 07_pipeline -p strategies=[random]", r"strategies: unknown value 'random'; accepted: fixed, unsorted"),
    # one problem in five notebooks is one line
    (
        "-p model=/nope/model",
        r"01_export, 02_quantization, 03_cpu_sweeps, 04_gpu_sweeps, 05_sequence_sorting, 07_pipeline: "
        r"model: '/nope/model' looks like a path",
    ),
]


@pytest.mark.parametrize("args, expected", PROBES, ids=[a for a, _ in PROBES])
def test_probe_is_refused_before_anything_runs(inputs, out, capsys, args, expected):
    argv = ["run", "--profile", "smoke", *args.format(d=inputs).split(), "--out", str(out)]
    assert study.main(argv) == 2
    printed = capsys.readouterr()
    header, *lines = printed.err.strip().splitlines()
    assert header == "study: bad parameters, nothing was run:"
    assert len(lines) == 1, lines
    assert re.search(expected, lines[0]), lines[0]
    assert not printed.out  # no notebook announced
    assert not (out / "runs").exists() and not (out / "results").exists()


def resolve_all(overrides, only=None):
    notebooks = params.discover_notebooks()
    chosen = [nb for nb in notebooks if only is None or nb.stem[:2] in only]
    return params.resolve(chosen, params.load_profile("smoke"), overrides, notebooks)


def test_a_local_model_reaches_every_notebook_that_takes_one(inputs, out, capsys):
    model = str(inputs / "my-bert")
    resolved = resolve_all({"model": model})
    got = {nb: values.get("models", values.get("model")) for nb, values in resolved.items()}
    assert got == {
        "00_environment": None,
        "01_export": [model],
        "02_quantization": [model],
        "03_cpu_sweeps": [model],
        "04_gpu_sweeps": [model],
        "05_sequence_sorting": model,
        "06_seq2seq": None,
        "07_pipeline": model,
        "08_report": None,
    }
    assert resolved["03_cpu_sweeps"]["heatmap_model"] == model  # the heatmap follows the user's models
    assert resolve_all({"models": [model]}, only=["05"])["05_sequence_sorting"]["model"] == model
    study.say_who_uses({"model": model}, resolved)
    assert capsys.readouterr().out.startswith(
        f"model={model}: used by 01_export, 02_quantization, 03_cpu_sweeps, 04_gpu_sweeps, 05_sequence_sorting, "
        "07_pipeline; "
        "not by 00_environment, 06_seq2seq, 08_report"
    )


def test_an_unusual_corpus_reaches_every_notebook_that_takes_one(inputs, out):
    corpus = str(inputs / "tickets.csv")  # latin-1, text in "body", labels in "category"
    given = {"corpus": corpus, "text_column": "body", "encoding": "latin-1", "label_column": "category"}
    resolved = resolve_all(given)
    takers = {nb for nb, values in resolved.items() if "corpus" in values}
    assert takers == {
        "01_export",
        "02_quantization",
        "03_cpu_sweeps",
        "05_sequence_sorting",
        "06_seq2seq",
        "07_pipeline",
    }
    for nb in takers:
        assert {k: resolved[nb][k] for k in ("corpus", "text_column", "encoding")} == {
            "corpus": corpus,
            "text_column": "body",
            "encoding": "latin-1",
        }, nb
    assert resolved["02_quantization"]["label_column"] == "category"
    # 05 measures the corpus (decoded as named) beside the scenarios, each named in its tables
    values = resolved["05_sequence_sorting"]
    texts_of = batching.datasets(values["corpus"], values["scenarios"], 40, text_column="body", encoding="latin-1")
    assert list(texts_of) == ["tickets.csv", "short_queries"]
    assert len(texts_of["tickets.csv"]) == 30 and any("café" in t for t in texts_of["tickets.csv"])


def test_every_numeric_or_list_parameter_has_a_rule():
    for nb in params.discover_notebooks():
        for name, param in params.notebook_parameters(nb).items():
            assert isinstance(param.default, bool) or name in CHECKS, (nb.stem, name)


def test_list_shows_which_notebooks_take_each_shared_name(capsys):
    study.main(["list"])
    printed = capsys.readouterr().out
    assert (
        "  model / models: 01_export, 02_quantization, 03_cpu_sweeps, 04_gpu_sweeps, 05_sequence_sorting, 07_pipeline"
        in printed
    )
    assert (
        "  corpus: 01_export, 02_quantization, 03_cpu_sweeps, 05_sequence_sorting, 06_seq2seq, 07_pipeline" in printed
    )
