"""Notebook defaults are the quick profile, so Run All in JupyterLab measures what
`python -m helpers.study run --profile quick` measures."""

from helpers.runner.params import discover_notebooks, load_profile, notebook_parameters, resolve


def test_quick_profile_adds_nothing_to_the_notebook_defaults():
    profile = load_profile("quick")
    assert profile["defaults"] == {} and not any(profile["notebooks"].values())


def test_quick_profile_resolves_to_the_notebook_defaults():
    notebooks = discover_notebooks()
    resolved = resolve(notebooks, load_profile("quick"), {}, notebooks)
    for nb in notebooks:
        defaults = {name: p.default for name, p in notebook_parameters(nb).items()}
        assert resolved[nb.stem] == defaults, nb.stem


def test_full_profile_only_lists_values_that_differ_from_the_defaults():
    full = load_profile("full")["notebooks"]
    for nb in discover_notebooks():
        spec = notebook_parameters(nb)
        same = [name for name, value in (full.get(nb.stem) or {}).items() if value == spec[name].default]
        assert not same, f"{nb.stem}: {same} equal the notebook defaults"
