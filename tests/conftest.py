"""Every test writes below a temporary output root; caches go there too (the build cache of
model files and torch.compile's cache are one temporary folder for the whole test run, shared
by `make test`'s two worker processes, so the smoke study and the unit tests reuse each other's
files as runs on one machine do; the build cache is safe under races); no hub access."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# `make test` runs two test processes on two cores: idle OpenMP threads must sleep, not spin,
# or each process's thread pool steals the other's cores (tests assert no speed)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_collection_modifyitems(items):
    """End-to-end runs first: under `pytest -n` (make test) the longest file then overlaps the rest."""
    items.sort(key=lambda item: item.get_closest_marker("smoke") is None)


@pytest.fixture(autouse=True, scope="session")
def _isolated_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("out")
    # under pytest-xdist each worker has a folder of its own below one per test run
    run = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else root
    os.environ["WORKBOOK_OUT"] = str(root)
    os.environ["WORKBOOK_CACHE"] = str(run / "build-cache")
    os.environ["XDG_CACHE_HOME"] = str(root / "cache")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(run / "inductor")
    for var in ("WORKBOOK_PROFILE", "WORKBOOK_RUN_ID", "WORKBOOK_HEADLESS"):
        os.environ.pop(var, None)
    yield root


# -- models and real corpus text, shared by the engine tests --------------------------------------
@pytest.fixture(scope="module")
def tiny():
    """bert-tiny with seeded random weights, loaded (a LoadedModel)."""
    from helpers.workloads.models import load_model

    return load_model("bert-tiny")


@pytest.fixture(scope="module")
def minilm():
    """all-MiniLM-L6-v2 with its real weights, loaded (a LoadedModel)."""
    from helpers.workloads.models import load_model

    return load_model("minilm")


@pytest.fixture(scope="module")
def tokenizer():
    """MiniLM's tokenizer, from the installed package."""
    from transformers import AutoTokenizer

    from helpers.workloads.models import minilm_dir

    return AutoTokenizer.from_pretrained(minilm_dir())


@pytest.fixture(scope="module")
def texts():
    """The first 200 texts of the docstring corpus."""
    from helpers.workloads import corpora

    return corpora.load_corpus().texts[:200]


# -- a small project of fake notebooks, for the runner's tests --------------------------------
PARAMS = 'batch_sizes = [1]  # batch sizes\nlabel = "x"  # a label\n'


def write_nb(folder, name, body, params=PARAMS):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cell = new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nbformat.write(new_notebook(cells=[cell, new_code_cell(body)]), folder / f"{name}.ipynb")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """notebooks/ and params/ of a fake project; outputs under tmp/out."""
    from helpers.core import paths

    nbs, prm, out = tmp_path / "notebooks", tmp_path / "params", tmp_path / "out"
    nbs.mkdir(), prm.mkdir()
    write = "from helpers.core import paths\n(paths.results_dir() / f'{label}.txt').write_text(str(batch_sizes))"
    write_nb(nbs, "01_first", write)
    write_nb(nbs, "02_broken", "raise ValueError('boom in cell')")
    write_nb(nbs, "03_third", write)
    (prm / "smoke.yaml").write_text("defaults:\n  batch_sizes: [2]\nnotebooks:\n  03_third:\n    label: third\n")
    (prm / "other.yaml").write_text("defaults: {}\nnotebooks: {}\n")
    monkeypatch.setattr(paths, "NOTEBOOKS", nbs)
    monkeypatch.setattr(paths, "PARAMS", prm)
    monkeypatch.setattr(paths, "REFERENCE", tmp_path / "reference")
    monkeypatch.setenv("WORKBOOK_OUT", str(out))
    for var in ("WORKBOOK_PROFILE", "WORKBOOK_RUN_ID", "WORKBOOK_HEADLESS"):
        monkeypatch.delenv(var, raising=False)
    return out
