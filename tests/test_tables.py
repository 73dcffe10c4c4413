import csv

import pytest

from helpers.core.tables import COMMON_COLUMNS, ResultTable, failure_row

KEY = ("engine", "batch_size")


def rows_of(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_append_then_resume_skips_done(tmp_path):
    path = tmp_path / "t.csv"
    table = ResultTable(path, KEY, {"run_id": "r1"})
    for bs in (1, 2):
        table.append({"engine": "eager", "batch_size": bs, "p50_ms": 1.5 * bs})
    reopened = ResultTable(path, KEY)
    assert reopened.done(engine="eager", batch_size=1)
    assert reopened.done(engine="eager", batch_size=2.0)  # a float read back as 2.0 is the same config
    assert not reopened.done(engine="eager", batch_size=4)
    with pytest.raises(ValueError, match="already recorded"):
        reopened.append({"engine": "eager", "batch_size": 2, "p50_ms": 9})
    reopened.append({"engine": "eager", "batch_size": 4, "p50_ms": 6.0})
    rows = rows_of(path)
    assert [r["batch_size"] for r in rows] == ["1", "2", "4"]
    assert rows[0]["run_id"] == "r1" and rows[0]["status"] == "ok"


def test_crash_mid_write_loses_only_the_unfinished_row(tmp_path):
    path = tmp_path / "t.csv"
    table = ResultTable(path, KEY)
    table.append({"engine": "ort", "batch_size": 1, "p50_ms": 2.0})
    table.append({"engine": "ort", "batch_size": 8, "p50_ms": 9.0})
    with open(path, "a") as f:  # a crash in the middle of writing the third row
        f.write("ort,,,16,3.")
    resumed = ResultTable(path, KEY)
    assert len(resumed) == 2 and not resumed.done(engine="ort", batch_size=16)
    resumed.append({"engine": "ort", "batch_size": 16, "p50_ms": 15.0})
    rows = rows_of(path)
    assert [(r["engine"], r["batch_size"], r["p50_ms"]) for r in rows] == [
        ("ort", "1", "2.0"),
        ("ort", "8", "9.0"),
        ("ort", "16", "15.0"),
    ]


def test_new_columns_widen_the_table_without_losing_rows(tmp_path):
    path = tmp_path / "t.csv"
    table = ResultTable(path, KEY)
    table.append({"engine": "eager", "batch_size": 1, "p50_ms": 1.0})
    table.append({"engine": "int8", "batch_size": 1, "p50_ms": 0.5, "cosine_min": 0.99})
    rows = rows_of(path)
    assert len(rows) == 2 and rows[0]["cosine_min"] == "" and rows[1]["cosine_min"] == "0.99"
    header = list(rows[0])
    common = [c for c in header if c in COMMON_COLUMNS]
    assert common == [c for c in COMMON_COLUMNS if c in header]  # documented order first
    assert header[-1] == "cosine_min"


def test_status_rows_and_validation(tmp_path):
    table = ResultTable(tmp_path / "t.csv", KEY)
    table.append({"engine": "compile", "batch_size": 1, **failure_row(RuntimeError("CUDA out of memory"))})
    table.append({"engine": "trt", "batch_size": 1, "status": "skipped", "message": "no TensorRT"})
    df = table.read()
    assert list(df["status"]) == ["oom", "skipped"]
    assert "out of memory" in df["message"][0]
    with pytest.raises(ValueError, match="status must be one of"):
        table.append({"engine": "x", "batch_size": 1, "status": "fine"})
    with pytest.raises(KeyError):
        table.append({"engine": "x"})
    assert failure_row(ValueError("bad"))["status"] == "error"
    assert failure_row(MemoryError())["status"] == "oom"


def test_samples_round_trip_and_recompute_the_row(tmp_path):
    import numpy as np

    from helpers.core.tables import SAMPLES, load_samples
    from helpers.core.timing import summarize

    rng = np.random.default_rng(3)
    table = ResultTable(tmp_path / "03_t.csv", ["engine", "batch_size"], {"run_id": "r1"})
    kept = {}
    for engine, b in [("eager", 1), ("ort", 1), ("ort", 8)]:
        samples = rng.lognormal(1.0, 0.2, size=50)
        kept[(engine, b)] = samples
        table.append({"engine": engine, "batch_size": b, **summarize(samples), SAMPLES: samples})
    assert SAMPLES not in table.read().columns  # samples live beside the table, not in it
    loaded = load_samples("03_t", tmp_path).set_index(["engine", "batch_size"])
    assert set(loaded["run_id"]) == {"r1"} and len(loaded) == 3
    for key, samples in kept.items():
        np.testing.assert_allclose(loaded.loc[key, SAMPLES], samples, atol=1e-6)  # integer nanoseconds
    row = table.read().set_index(["engine", "batch_size"]).loc[("ort", 8)]
    again = summarize(loaded.loc[("ort", 8), SAMPLES])
    assert again["p50_ms"] == pytest.approx(row["p50_ms"], abs=1e-6)
    assert again["ci_low_ms"] == pytest.approx(row["ci_low_ms"], abs=1e-6)


def test_a_torn_samples_line_is_dropped_and_the_row_measured_again(tmp_path):
    from helpers.core.tables import SAMPLES, load_samples

    table = ResultTable(tmp_path / "t.csv", ["i"], {"run_id": "r"})
    table.append({"i": 0, SAMPLES: [1.0, 2.0]})
    with table.samples_path.open("a") as f:
        f.write('{"key":{"run_id":"r","i":"1"},"samples_ns":[10')  # cut short by a crash
    table = ResultTable(tmp_path / "t.csv", ["i"], {"run_id": "r"})
    table.append({"i": 1, SAMPLES: [3.0]})
    loaded = load_samples("t", tmp_path).set_index("i")
    assert list(loaded.loc[1, SAMPLES]) == [3.0] and list(loaded.loc[0, SAMPLES]) == [1.0, 2.0]
