"""Figures redraw byte for byte: the same table drawn twice (in two processes) gives identical files."""

import subprocess
import sys

DRAW = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from helpers.report import charts_seq2seq, charts_sweeps
from helpers.report import figures as plots
plots.apply_style()
df = pd.DataFrame({"engine": ["eager", "ort", "eager", "ort"], "batch_size": [1, 1, 8, 8], "seq_len": 128,
                   "model": "bert-tiny", "scope": "model", "status": "ok", "threads": 2, "n_params": 4e6,
                   "p50_ms": [2.0, 1.0, 9.0, 6.0], "ci_low_ms": [1.9, 0.9, 8.8, 5.9], "ci_high_ms": [2.1, 1.1, 9.2, 6.1],
                   "noisy": False, "speedup": [1.0, 2.0, 1.0, 1.5], "part": "batch"})
plots.save(charts_sweeps.latency_vs(df, "batch_size"), "redraw", caption="a fixed caption")
plots.save(charts_sweeps.speedup_heatmaps(df, "bert-tiny"), "redraw_heatmap", caption="a fixed caption")
gen = pd.DataFrame({"engine": ["torch", "ort", "torch", "ort"], "batch_size": 1, "seq_len": 32, "status": "ok",
                    "new_tokens": [1, 1, 8, 8], "p50_ms": [5.0, 4.0, 40.0, 30.0]})
plots.save(charts_seq2seq.total_vs_new_tokens(gen), "redraw_labels", caption="a fixed caption")
"""


def test_the_same_table_draws_byte_identical_png_and_svg(tmp_path, monkeypatch):
    files = []
    for attempt in ("first", "second"):
        monkeypatch.setenv("WORKBOOK_OUT", str(tmp_path / attempt))
        subprocess.run([sys.executable, "-c", DRAW], check=True, timeout=120)
        files.append(
            {
                f"{name}.{ext}": (tmp_path / attempt / "figures" / f"{name}.{ext}").read_bytes()
                for name in ("redraw", "redraw_heatmap", "redraw_labels")
                for ext in ("png", "svg")
            }
        )
    for name in ("redraw", "redraw_heatmap", "redraw_labels"):
        assert files[0][f"{name}.png"] == files[1][f"{name}.png"] and len(files[0][f"{name}.png"]) > 1000
        assert files[0][f"{name}.svg"] == files[1][f"{name}.svg"] and b"<dc:date>" not in files[0][f"{name}.svg"]
