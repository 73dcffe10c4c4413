"""report.rows: which rows of a table are trusted and which cells they belong to."""


def test_trusted_rows_are_ok_and_timed():
    import numpy as np
    import pandas as pd

    from helpers.report.rows import trusted

    df = pd.DataFrame(
        {"engine": ["a", "b", "c", "d"], "status": ["ok", "ok", "mismatch", "error"], "p50_ms": [1.0, np.nan, 2.0, 3.0]}
    )
    assert list(trusted(df)["engine"]) == ["a"]
    assert trusted(df.drop(columns="p50_ms")).empty and trusted(df.drop(columns="status")).empty


def test_at_most_threads_keeps_model_scope_at_each_models_most_threads():
    import pandas as pd

    from helpers.report.rows import at_most_threads

    df = pd.DataFrame(
        {
            "model": ["tiny", "tiny", "tiny", "base", "base"],
            "scope": ["model", "model", "end_to_end", "model", "model"],
            "threads": [1, 2, 4, 1, 1],
            "p50_ms": [4.0, 2.0, 1.0, 9.0, 8.0],
        }
    )
    kept = at_most_threads(df)
    assert list(zip(kept["model"], kept["threads"])) == [("tiny", 2), ("base", 1), ("base", 1)]
