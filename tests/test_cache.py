"""The build cache (helpers.backends.cache): a file is built once per key and reused, a changed
recipe or model builds a new entry, failures are cached, lost files are rebuilt, an interrupted
build leaves nothing, and the real export and quantization go through it."""

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.backends import cache, export, quantize
from helpers.workloads.models import load_model


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fields(**recipe) -> dict:
    return {"model": "m0", "kind": "test", "level": None, "recipe": recipe, "opset": None, "versions": {}}


class Build:
    """A build that writes one small file and counts its calls."""

    def __init__(self, text="weights"):
        self.calls, self.text = 0, text

    def __call__(self, folder):
        self.calls += 1
        (folder / "model.bin").write_text(self.text)
        return folder / "model.bin"


def test_a_miss_then_a_hit_builds_once(own_cache):
    build = Build()
    first = cache.cached(fields(per_channel=True), build)
    second = cache.cached(fields(per_channel=True), build)
    assert build.calls == 1
    assert (first["cache"], second["cache"]) == ("miss", "hit")
    assert second["path"] == first["path"] and open(second["path"]).read() == "weights"
    assert second["built_s"] == first["built_s"] > 0 and second["status"] == "ok"
    assert cache.describe(second) == f"cached (built in {first['built_s']:.1f} s)"
    stored = json.loads((own_cache / "test" / first["key"] / cache.ENTRY).read_text())
    assert stored["files"] == ["model.bin"] and stored["fields"] == fields(per_channel=True)
    assert stored["built_at"].endswith("+00:00")


def test_a_changed_recipe_builds_a_new_entry(own_cache):
    build = Build()
    pc = cache.cached(fields(per_channel=True, exclude=None), build)
    pt = cache.cached(fields(per_channel=False, exclude=None), build)
    skip = cache.cached(fields(per_channel=True, exclude="ffn-down"), build)
    assert build.calls == 3 and len({pc["key"], pt["key"], skip["key"]}) == 3
    assert len(list((own_cache / "test").iterdir())) == 3


def test_a_failed_build_is_cached_with_its_message_and_not_retried():
    calls = []

    def broken(folder):
        calls.append(folder)
        raise ValueError("no kernel for this operator")

    first = cache.cached(fields(), broken)
    again = cache.cached(fields(), broken)
    assert len(calls) == 1
    assert first["status"] == again["status"] == "error" and again["cache"] == "hit"
    assert again["message"] == "ValueError: no kernel for this operator" and again["path"] is None


def test_an_ok_entry_whose_file_is_gone_is_rebuilt():
    build = Build()
    first = cache.cached(fields(), build)
    Path(first["path"]).unlink()
    again = cache.cached(fields(), build)
    assert build.calls == 2 and again["cache"] == "miss" and Path(again["path"]).is_file()


def test_keyboard_interrupt_propagates_and_leaves_no_entry(own_cache):
    def interrupted(folder):
        (folder / "half.bin").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.cached(fields(), interrupted)
    assert list((own_cache / "test").iterdir()) == []  # no entry, no temporary folder
    assert cache.cached(fields(), Build())["cache"] == "miss"


def test_a_race_keeps_the_first_finished_entry():
    """Two builders of one key: the one that finishes second keeps the first one's entry."""
    inner = Build("first")

    def outer(folder):
        cache.cached(fields(), inner)  # another process finishing the same entry meanwhile
        (folder / "model.bin").write_text("second")
        return folder / "model.bin"

    entry = cache.cached(fields(), outer)
    assert open(entry["path"]).read() == "first" and inner.calls == 1


def test_the_model_fingerprint_follows_weights_and_config(tiny):
    same = load_model("bert-tiny")
    assert cache.model_fingerprint(same) == cache.model_fingerprint(tiny)  # another object, same weights
    assert cache.model_fingerprint(load_model("bert-tiny", seed=1)) != cache.model_fingerprint(tiny)
    edited = dataclasses.replace(tiny, model=copy.deepcopy(tiny.model))
    with torch.no_grad():
        edited.model.encoder.layer[1].output.dense.weight[3, 5] += 1e-3  # one element of one tensor
    assert cache.model_fingerprint(edited) != cache.model_fingerprint(tiny)
    config = copy.deepcopy(tiny.config)
    config.layer_norm_eps = 1e-5
    assert cache.model_fingerprint(dataclasses.replace(same, config=config)) != cache.model_fingerprint(tiny)
    keys = {cache.key_of(cache.key_fields(m, "onnx", opset=17)) for m in (tiny, edited)}
    assert len(keys) == 2


def test_large_tensors_are_digested_by_their_whole_content():
    big = torch.randn(300_000)
    changed = big.clone()
    changed[123_457] += 1.0  # not on the strided sample
    assert cache.tensor_digest(big) == cache.tensor_digest(big.clone())
    assert cache.tensor_digest(changed) != cache.tensor_digest(big)


def test_relative_paths_and_clear(own_cache):
    entry = cache.cached(fields(), Build())
    name = cache.relative(entry["path"])
    assert not name.startswith("/") and cache.resolve(name) == Path(entry["path"])
    (own_cache / "test" / f"{cache.TMP_PREFIX}killed").mkdir()  # a build killed outright
    (own_cache / "notes.txt").write_text("not the cache's")
    assert cache.clear() == 2
    assert sorted(p.name for p in own_cache.iterdir()) == ["notes.txt"]


def test_the_real_export_and_int8_quantization_go_through_the_cache(tiny):
    plain = export.produce("onnx", tiny)
    again = export.produce("onnx", tiny)
    assert (plain.status, plain.cache, again.cache) == ("ok", "miss", "hit")
    assert again.path == plain.path and again.row()["export_seconds"] == plain.seconds > 0
    assert (again.node_count, again.warning_count, again.size_mb) == (
        plain.node_count,
        plain.warning_count,
        plain.size_mb,
    )
    int8 = quantize.cached_variant(tiny, {"kind": "dynamic", "per_channel": True})
    reused = quantize.cached_variant(tiny, {"kind": "dynamic", "per_channel": True, "op_types": None})
    assert (int8.status, int8.cache, reused.cache) == ("ok", "miss", "hit"), int8.message
    assert reused.path == int8.path and reused.seconds == int8.seconds and reused.row()["cache"] == "hit"
    assert reused.details["per_channel"] is True and reused.size_mb < 0.5 * plain.size_mb
    assert np.isfinite(quantize.smoke_run(reused.path)).all()  # a working file
    per_tensor = quantize.cached_variant(tiny, {"kind": "dynamic", "per_channel": False})
    assert per_tensor.cache == "miss" and per_tensor.path != int8.path
