"""The three descriptions of the environment must not drift apart."""

import tomllib

import yaml
from packaging.requirements import Requirement

from helpers.core import paths


def pyproject():
    return tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_mirrors_pyproject():
    project = pyproject()
    expected = (
        set(project["dependencies"])
        | set(project["optional-dependencies"]["cpu"])
        | set(project["optional-dependencies"]["test"])
    )
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {line for line in pip_section if not line.startswith("-")}
    assert listed == expected
    assert "-e ." in pip_section and "-c constraints.txt" in pip_section


def test_lock_satisfies_every_pin():
    lock = {}
    for line in (paths.ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            req = Requirement(line)
            lock[req.name.lower()] = next(iter(req.specifier)).version
    project = pyproject()
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for text in reqs:
        req = Requirement(text)
        assert req.name.lower() in lock, f"{req.name} is not in constraints.txt"
        assert req.specifier.contains(lock[req.name.lower()], prereleases=True), (
            f"constraints.txt has {req.name}=={lock[req.name.lower()]}, outside {req.specifier}"
        )


def test_cpu_and_gpu_onnxruntime_are_separate_extras():
    extras = pyproject()["optional-dependencies"]
    deps = " ".join(pyproject()["dependencies"])
    assert "onnxruntime" not in deps
    assert any(r.startswith("onnxruntime==") for r in extras["cpu"])
    assert any(r.startswith("onnxruntime-gpu==") for r in extras["gpu"])
    assert not any("onnxruntime-gpu" in r for r in extras["cpu"])
