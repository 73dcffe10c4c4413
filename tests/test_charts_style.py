"""The charts speak one visual language: an engine has one colour on every chart, a figure has one
legend that is right for every panel, a failed or skipped cell is marked where it would be, labels
do not overprint each other, and wide sweeps come as grids. Charts are drawn from small
synthetic tables and their artists inspected."""

import itertools
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from helpers.report.charts import cpu_sweep as cpu_charts  # noqa: E402
from helpers.report.charts import pipeline as pipeline_charts  # noqa: E402
from helpers.report.charts import quantization as quantization_charts  # noqa: E402
from helpers.report.charts import report as report_charts  # noqa: E402
from helpers.report.charts import seq2seq as seq2seq_charts  # noqa: E402
from helpers.report.charts import sorting as sorting_charts  # noqa: E402
from helpers.report.charts import style  # noqa: E402

MODELS = {"bert-tiny": 4e6, "bert-mini": 11e6, "bert-small": 29e6, "bert-medium": 41e6, "bert-base": 110e6}
ENGINES = ["eager", "torchscript", "compile", "torch-bf16", "ort", "ort-int8"]


@pytest.fixture(autouse=True)
def _close_figures():
    style.apply_style()
    yield
    plt.close("all")


def sweep(missing=(("bert-base", "compile"),), failed=(("bert-tiny", "torchscript", 4),)) -> pd.DataFrame:
    """An 03 table: batch and length sweeps of five models, an engine absent from a model
    (`missing`) and a cell that failed (`failed`: model, engine, batch size)."""
    rows = []
    for (model, n), engine in itertools.product(MODELS.items(), ENGINES):
        if (model, engine) in missing:
            continue
        k = 1 + ENGINES.index(engine) / 10
        shapes = [("batch", b, 128) for b in (1, 4, 16)] + [("length", 8, s) for s in (32, 64, 128)]
        for part, b, s in shapes:
            bad = (model, engine, b) in failed and part == "batch"
            p50 = np.nan if bad else n / 1e6 * b * s / 100 / k
            rows.append(
                {
                    "model": model,
                    "engine": engine,
                    "precision": "bf16" if "bf16" in engine else "int8" if "int8" in engine else "fp32",
                    "part": part,
                    "scope": "model",
                    "threads": 2,
                    "batch_size": b,
                    "seq_len": s,
                    "status": "error" if bad else "ok",
                    "noisy": False,
                    "p50_ms": p50,
                    "ci_low_ms": p50 * 0.95,
                    "ci_high_ms": p50 * 1.05,
                    "items_per_s": b / p50 * 1e3,
                    "speedup": k if not bad else np.nan,
                    "speedup_ci_low": k * 0.9,
                    "speedup_ci_high": k * 1.1,
                    "n_params": n,
                    "flops": 2 * n * b * s,
                    "gflops": 2 * n * b * s / p50 / 1e6,
                    "ceiling_gflops": 400.0,
                    "nominal_gflops": 800.0,
                    "efficiency": 0.5,
                    "peak_rss_mb": 500 + 100 * k,
                    "load_mb": 100 * k,
                    "cosine_min": 1.0 - (k - 1) / 100,
                }
            )
    return pd.DataFrame(rows)


def generation() -> pd.DataFrame:
    rows = []
    for engine, bs, new in itertools.product(["torch", "torch-bf16", "ort", "ort-o3", "ort-int8"], [1, 4], [1, 8, 32]):
        rows.append(
            {
                "engine": engine,
                "batch_size": bs,
                "seq_len": 32,
                "new_tokens": new,
                "status": "ok",
                "noisy": False,
                "p50_ms": 10 + new * (3 + len(engine)) * bs,
            }
        )
    return pd.DataFrame(rows)


def quantization() -> tuple[pd.DataFrame, pd.DataFrame]:
    methods = ["eager", "torch-bf16", "torch-int8", "ort-fp32", "ort-int8-pc", "ort-int8-pt"]
    variants = pd.DataFrame(
        {
            "model": "minilm",
            "method": methods,
            "recall_at_10": [1.0, 0.99, 0.73, 1.0, 0.89, 0.79],
            "cosine_min": [1.0, 0.9999, 0.88, 1.0, 0.98, 0.91],
            "status": ["ok", "ok", "mismatch", "ok", "ok", "mismatch"],
            "size_mb": 90.0,
            "peak_rss_mb": 600.0,
        }
    )
    speed = pd.DataFrame(
        [
            {
                "model": "minilm",
                "method": m,
                "batch_size": b,
                "seq_len": 128,
                "speedup": 1 + i / 3,
                "speedup_ci_low": 0.95 + i / 3,
                "speedup_ci_high": 1.05 + i / 3,
                "status": "ok",
            }
            for i, m in enumerate(methods)
            for b in (1, 8)
        ]
    )
    return variants, speed


def pipeline() -> pd.DataFrame:
    probe = [
        ("eager", 1.0, 1.0, 250.0, "ok"),
        ("torch-bf16", 0.99997, 0.995, 480.0, "ok"),
        ("torch-int8", 0.88, 0.73, np.nan, "mismatch"),
        ("ort-int8-matmul", 0.984, 0.90, 384.0, "mismatch"),
    ]
    rows = [
        {"stage": "probe-variant", "candidate": v, "variant": v, "cosine_min": c, "recall_at_10": r}
        | {"items_per_s": s, "status": st, "peak_rss_mb": np.nan}
        for v, c, r, s, st in probe
    ]
    for cand, variant, speed, mb in (
        ("naive", "eager", 110.0, 477.0),
        ("torch-bf16 sorted@32", "torch-bf16", 540, 704),
    ):
        fid = {"cosine_min": 0.99997 if variant != "eager" else 1.0, "recall_at_10": 0.995}
        rows.append(
            {"stage": "corpus", "candidate": cand, "variant": variant, "items_per_s": speed, "status": "ok"} | fid
        )
        rows.append({"stage": "memory", "candidate": cand, "peak_rss_mb": mb, "status": "ok"})
    return pd.DataFrame(rows)


def drawn_colours(fig) -> dict[str, set[str]]:
    """Colour of every labelled line, error-bar line and scatter in the figure's panels."""
    seen: dict[str, set[str]] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                seen.setdefault(line.get_label(), set()).add(to_hex(line.get_color()))
        for c in ax.containers:
            if isinstance(c, ErrorbarContainer) and not str(c.get_label()).startswith("_"):
                seen.setdefault(c.get_label(), set()).add(to_hex(c.lines[0].get_color()))
        for coll in ax.collections:
            if not coll.get_label().startswith("_") and len(coll.get_facecolor()):
                seen.setdefault(coll.get_label(), set()).add(to_hex(coll.get_facecolor()[0]))
    return seen


def legend_colours(fig) -> dict[str, str]:
    """Label -> colour of the figure's legend entries (every legend, figure- or panel-level)."""
    out = {}
    for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
        for h, t in zip(legend.legend_handles, legend.get_texts()):
            colour = h.get_color() if hasattr(h, "get_color") else h.get_facecolor()
            out[t.get_text()] = to_hex(colour if isinstance(colour, str) else np.ravel(colour)[:4])
    return out


def test_every_chart_gives_an_engine_the_same_colour():
    df = sweep()
    variants, speed = quantization()
    figs = {
        "latency_vs_length": cpu_charts.latency_vs(df, "seq_len"),
        "latency_vs_batch": cpu_charts.latency_vs(df, "batch_size"),
        "throughput": cpu_charts.throughput_vs_batch(df),
        "model_size": cpu_charts.latency_vs_model_size(df),
        "efficiency": cpu_charts.efficiency_vs_ceiling(df),
        "quantization": quantization_charts.quantization_pareto(variants, speed),
        "generation": seq2seq_charts.total_vs_new_tokens(generation()),
    }
    per_engine: dict[str, dict[str, set[str]]] = {}
    for name, fig in figs.items():
        for label, colours in {**drawn_colours(fig), **{k: {v} for k, v in legend_colours(fig).items()}}.items():
            per_engine.setdefault(label, {})[name] = colours
    engines = set(ENGINES) | {"torch-int8", "ort-int8-pc", "torch", "ort-o3"}
    assert engines <= set(per_engine)
    for engine in engines:
        colours = set().union(*per_engine[engine].values())
        assert colours == {style.colour(engine)}, (engine, per_engine[engine])
    assert len(per_engine["torch-bf16"]) >= 5  # the same engine checked across many charts


def test_bars_and_heatmap_titles_take_the_engine_colour():
    df = sweep()
    fig = cpu_charts.memory_per_engine(df)
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    solid = [p for p in ax.patches if p.get_fill()][: len(names)]
    assert [to_hex(p.get_facecolor()) for p in solid] == [style.colour(n.split(" (")[0]) for n in names]
    heat = cpu_charts.speedup_heatmaps(df.assign(part="heatmap"), "bert-tiny")
    for ax in heat.axes:
        if ax.get_title():
            assert to_hex(ax.title.get_color()) == style.colour(ax.get_title())


def test_one_legend_per_figure_right_for_every_panel_even_one_without_an_engine():
    fig = cpu_charts.latency_vs(sweep(), "seq_len")
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    legend = legend_colours(fig)
    assert set(ENGINES) <= set(legend)  # compile is listed though the bert-base panel lacks it
    base = next(ax for ax in fig.axes if ax.get_title().startswith("bert-base"))
    drawn = {c.get_label(): to_hex(c.lines[0].get_color()) for c in base.containers}
    assert "compile" not in drawn and len(drawn) == len(ENGINES) - 1
    for engine, colour in drawn.items():  # every line of the panel matches its legend entry
        assert legend[engine] == colour


def test_failed_cells_are_marked_not_dropped():
    fig = cpu_charts.latency_vs(sweep(), "batch_size")
    tiny = next(ax for ax in fig.axes if ax.get_title().startswith("bert-tiny"))
    crosses = [
        (tuple(off), to_hex(coll.get_facecolor()[0]))
        for coll in tiny.collections
        for off in coll.get_offsets()
        if len(coll.get_facecolor()) and coll.get_offset_transform() is not tiny.transData
    ]
    assert ((4.0, pytest.approx(0.03)), style.colour("torchscript")) in crosses
    assert "error or skipped (× at the foot)" in legend_colours(fig)
    heat = cpu_charts.speedup_heatmaps(sweep().assign(part="heatmap"), "bert-tiny")
    ax = next(a for a in heat.axes if a.get_title() == "torchscript")
    assert any(isinstance(p, Rectangle) and p.get_hatch() for p in ax.patches)
    assert "error" in [t.get_text() for t in ax.texts]


def test_wide_sweeps_come_as_grids_readable_at_page_width():
    fig = cpu_charts.latency_vs(sweep(), "seq_len")
    width, height = fig.get_size_inches()
    assert width <= 15 and width / height < 2.5  # five panels: two rows of three, not a strip
    fig = cpu_charts.memory_per_engine(sweep())
    assert fig.get_size_inches()[0] <= 15


def test_batch_sizes_are_the_measured_ones_and_log_only_where_positive():
    rows = [
        {"distribution": "docs", "engine": "ort", "strategy": s, "batch_size": b, "status": "ok"}
        | {"items_per_s": 100.0 + b, "n_texts": 96, "ideal_s": 0.2, "padding_waste": w}
        for s, w in (("unsorted", 1.5), ("sorted", 0.04))
        for b in (8, 64)
    ]
    df = pd.DataFrame(rows)
    fig = sorting_charts.sorting_throughput(df, "ort")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["8", "64"]
    assert sorting_charts.padding_waste(df).axes[0].get_yscale() == "log"
    zero = df.assign(padding_waste=np.where(df["strategy"] == "sorted", 0.0, df["padding_waste"]))
    ax = sorting_charts.padding_waste(zero).axes[0]
    assert ax.get_yscale() == "linear" and min(ax.get_yticks()) >= 0


def test_labels_do_not_overprint():
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [1.0 + 0.01 * i for i in range(10)] + [2.0, 2.02, 3.0]
    ys = [1.0 + 0.005 * (i % 3) for i in range(10)] + [2.0, 2.0, 1.5]
    names = [f"engine-{i} (model)" for i in range(len(xs))]
    ax.scatter(xs, ys)
    ax.set_xlim(0.5, 3.5)
    ax.set_ylim(0.5, 2.5)
    style.label_points(ax, xs, ys, names)
    fig.canvas.draw()
    boxes = [Text.get_window_extent(t) for t in ax.texts]  # the text, not its leader
    assert len(boxes) == len(names)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


def test_line_ends_are_named_in_order_without_overprint():
    fig = seq2seq_charts.total_vs_new_tokens(generation())
    fig.canvas.draw()
    for ax in fig.axes:
        boxes = [Text.get_window_extent(t) for t in ax.texts]  # the text, not its leader
        assert len(boxes) == 5
        assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


def test_pipeline_pareto_draws_both_floors_and_the_int8_candidates():
    fig = pipeline_charts.pareto(pipeline(), 0.99, 0.95)
    recall, cosine = fig.axes[:2]
    assert 0.95 in [line.get_xdata()[0] for line in recall.get_lines()]
    assert pytest.approx(0.01) in [line.get_xdata()[0] for line in cosine.get_lines()]
    plotted = {round(float(off[0]), 3) for coll in recall.collections for off in coll.get_offsets()}
    assert 0.90 in plotted  # the INT8 variant measured on the probe
    assert 0.73 in plotted  # the one pruned before timing: a cross at the foot
    assert any("ort-int8-matmul" in t.get_text() for t in recall.texts)


def test_summary_and_machines_use_the_engine_colours():
    points = pd.DataFrame(
        {
            "notebook": "03 CPU sweeps",
            "label": ["eager (bert-base)", "ort-int8 (bert-base)", "torch-bf16 (bert-base)"],
            "speedup": [1.0, 4.0, 2.0],
            "fidelity": [1.0, 0.999, 0.9999],
            "fidelity_kind": "min cosine",
            "memory_mb": 500.0,
            "status": "ok",
        }
    )
    fig = report_charts.speed_fidelity_memory(points)
    faces = [to_hex(c) for c in fig.axes[0].collections[0].get_facecolor()]
    assert faces == [style.colour(e) for e in ("eager", "ort-int8", "torch-bf16")]
    df = sweep()
    other = df[df["model"] != "bert-base"]  # the other machine lacks bert-base
    fig = report_charts.hosts_side_by_side({"here": df, "there": other}, batch_size=1, seq_len=128)
    assert [ax.get_title() for ax in fig.axes] == ["here: bert-medium, 2 threads", "there: bert-medium, 2 threads"]


def test_every_project_engine_has_its_own_registered_style():
    from helpers import pipeline
    from helpers.backends import peers, variants
    from helpers.backends.catalog import engine_registry

    registry = engine_registry()
    names = (
        set(registry.names("encode")) | set(pipeline.VARIANTS) | set(variants.METHODS) | set(registry.names("generate"))
    )
    for name in names | set(peers.PEERS):
        assert style.ALIASES.get(name, name) in style.STYLES, name
    colours = [c for c, _ in style.STYLES.values()]
    assert len(set(colours)) == len(colours)  # no two engines share a colour
    assert not set(style.FALLBACK_COLOURS) & set(colours)


def test_an_unknown_engine_gets_the_same_style_in_every_process():
    code = "from helpers.report.charts.style import style; print(style('ov-int8-new'), style('st-xyz'))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1 and style.style("ov-int8-new")["color"] in style.FALLBACK_COLOURS
    style.register("ov-int8-new", "#000001", "s")
    try:
        assert style.style("ov-int8-new") == {"color": "#000001", "marker": "s"}
    finally:
        del style.STYLES["ov-int8-new"]


def test_gpu_charts_mark_an_out_of_memory_cell():
    from helpers.report.charts import gpu_sweep as gpu_charts

    df = sweep().assign(gpu="a GPU", peak_gpu_mb=100.0)
    df.loc[(df["engine"] == "ort") & (df["batch_size"] == 16), ["status", "p50_ms", "speedup"]] = [
        "oom",
        np.nan,
        np.nan,
    ]
    for chart in (gpu_charts.speedup_vs_batch, gpu_charts.per_item_time_vs_batch):
        ax = chart(df, 128).axes[0]
        feet = [
            to_hex(face)
            for c in ax.collections
            if c.get_offset_transform() is not ax.transData
            for face in c.get_facecolor()
        ]
        assert style.colour("ort") in feet, chart.__name__


def test_generation_charts_mark_a_failed_engine():
    df = generation().assign(ttft_ms=5.0, per_token_ms=1.0, speedup=1.2, speedup_ci_low=1.1, speedup_ci_high=1.3)
    broken = df["engine"] == "ort-o3"
    df.loc[broken, ["status", "p50_ms", "per_token_ms", "ttft_ms", "speedup"]] = [
        "error",
        np.nan,
        np.nan,
        np.nan,
        np.nan,
    ]
    for chart in (seq2seq_charts.per_token_time, seq2seq_charts.generation_speedups):
        names = [t.get_text() for t in chart(df).axes[0].get_yticklabels()]
        assert "ort-o3 (× 6 failed or skipped)" in names, chart.__name__
    ax = seq2seq_charts.total_vs_new_tokens(df).axes[0]
    feet = [
        to_hex(f) for c in ax.collections if c.get_offset_transform() is not ax.transData for f in c.get_facecolor()
    ]
    assert feet.count(style.colour("ort-o3")) == 3  # 1, 8 and 32 new tokens


# ---------------------------------------------------------------- saving: the same table redraws byte for byte
DRAW = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from helpers.report.charts import seq2seq as seq2seq_charts
from helpers.report.charts import cpu_sweep as cpu_charts
from helpers.report.charts import style
style.apply_style()
df = pd.DataFrame({"engine": ["eager", "ort", "eager", "ort"], "batch_size": [1, 1, 8, 8], "seq_len": 128,
                   "model": "bert-tiny", "scope": "model", "status": "ok", "threads": 2, "n_params": 4e6,
                   "p50_ms": [2.0, 1.0, 9.0, 6.0], "ci_low_ms": [1.9, 0.9, 8.8, 5.9], "ci_high_ms": [2.1, 1.1, 9.2, 6.1],
                   "noisy": False, "speedup": [1.0, 2.0, 1.0, 1.5], "part": "batch"})
style.save(cpu_charts.latency_vs(df, "batch_size"), "redraw", caption="a fixed caption")
style.save(cpu_charts.speedup_heatmaps(df, "bert-tiny"), "redraw_heatmap", caption="a fixed caption")
gen = pd.DataFrame({"engine": ["torch", "ort", "torch", "ort"], "batch_size": 1, "seq_len": 32, "status": "ok",
                    "new_tokens": [1, 1, 8, 8], "p50_ms": [5.0, 4.0, 40.0, 30.0]})
style.save(seq2seq_charts.total_vs_new_tokens(gen), "redraw_labels", caption="a fixed caption")
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


# ΔE76 (CIELAB distance) at which two engines drawn on one chart are told apart at a glance:
# 2.3 is a just-noticeable difference; ov and ov-int8 once sat at 17.6 and read as one green
MIN_DELTA_E = 25.0


def lab(hex_colour: str) -> np.ndarray:
    """CIELAB (D65) of an sRGB hex colour."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def drawn_together() -> dict[str, set[str]]:
    """The engines each notebook draws on one chart (aliases resolved)."""
    from helpers import pipeline
    from helpers.backends import peers, variants
    from helpers.backends.catalog import engine_registry

    registry = engine_registry()
    sets = {
        "03": registry.names("encode"),
        "02": variants.METHODS,
        "07": set(pipeline.VARIANTS) | set(peers.PEERS),
        "06": registry.names("generate"),
    }
    return {k: {style.ALIASES.get(n, n) for n in names} for k, names in sets.items()}


def test_engines_drawn_together_are_clearly_apart_in_colour():
    assert lab("#ffffff") == pytest.approx([100, 0, 0], abs=0.1)
    too_close = [
        (notebook, a, b, round(float(np.linalg.norm(lab(style.colour(a)) - lab(style.colour(b)))), 1))
        for notebook, names in drawn_together().items()
        for a, b in itertools.combinations(sorted(names), 2)
        if np.linalg.norm(lab(style.colour(a)) - lab(style.colour(b))) < MIN_DELTA_E
    ]
    assert not too_close


def test_peers_have_markers_no_other_engine_uses():
    from helpers.backends import peers

    peer_markers = {style.style(p)["marker"] for p in peers.PEERS}
    others = {m for name, (_, m) in style.STYLES.items() if name not in peers.PEERS}
    assert len(peer_markers) == len(peers.PEERS) and not peer_markers & others
    assert style.style("st-new-backend")["marker"] in style.PEER_MARKERS


def test_strategies_have_a_palette_no_engine_uses():
    engines = {c.lower() for c, _ in style.STYLES.values()} | {c.lower() for c in style.FALLBACK_COLOURS}
    strategies = [c.lower() for c, _ in style.STRATEGIES.values()]
    assert len(set(strategies)) == len(strategies) and not set(strategies) & engines


def test_speedup_heatmaps_have_a_labelled_colour_bar_that_does_not_saturate():
    df = sweep().assign(part="heatmap")
    df.loc[(df["engine"] == "ort-int8") & (df["model"] == "bert-tiny"), "speedup"] = 9.0  # beyond 4x
    fig = cpu_charts.speedup_heatmaps(df, "bert-tiny")
    inner = [child for ax in fig.axes for child in ax.child_axes]  # the bar is an inset of a panel
    bars = [ax for ax in fig.axes + inner if getattr(ax, "_colorbar", None) is not None]
    assert len(bars) == 1 and "speed-up over eager" in bars[0].get_ylabel()
    low, high = bars[0]._colorbar.norm.vmin, bars[0]._colorbar.norm.vmax
    assert low == -high and high >= np.log2(9.0)  # centred at 1x, reaching the largest speed-up
    panel = next(ax for ax in fig.axes if ax.get_title() == "ort-int8")
    assert panel.collections[0].norm.vmax == high  # the panels draw on the bar's scale


def test_pipeline_pareto_rings_the_recommended_pipeline():
    from helpers.report.recommend.pipeline import recommended

    df = pipeline()
    best = recommended(df)
    fig = pipeline_charts.pareto(df, 0.99, 0.95)
    for ax, x in zip(fig.axes[:2], (best["recall_at_10"], 1 - best["cosine_min"])):
        rings = [
            tuple(off)
            for coll in ax.collections
            for off in coll.get_offsets()
            if not len(coll.get_facecolor()) and to_hex(coll.get_edgecolor()[0]) == "#000000"
        ]
        assert rings == [(pytest.approx(x), pytest.approx(best["items_per_s"]))]
        assert any(t.get_text().startswith(f"recommended: {best['candidate']}") for t in ax.texts)
    assert "recommended pipeline" in legend_colours(fig)


def test_per_channel_against_per_tensor_draws_points_not_bars_from_a_cut_axis():
    variants, _ = quantization()
    fig = quantization_charts.per_channel_vs_per_tensor(variants)
    for ax in fig.axes:
        bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() > 0]
        assert not bars or ax.get_ylim()[0] == 0  # a bar starts at 0, or there is none
        assert "points" in ax.get_ylabel() and ax.collections  # the cut axis says so


def test_one_thread_figure_caption_names_the_drawn_cells_thread_count(tmp_path, monkeypatch):
    from helpers.report.claims.figures import one_thread_by_size

    monkeypatch.setenv("WORKBOOK_OUT", str(tmp_path))
    df = sweep()
    df = pd.concat([df, df[df["batch_size"] == 1].assign(threads=1)], ignore_index=True)
    fig = one_thread_by_size(df)
    assert "1 thread" in fig.axes[0].get_title()
    entry = style.save(fig, "one_thread", caption="AMD EPYC · 2 cores · 2 threads · torch 2.13.0")
    assert entry["caption"] == "AMD EPYC · 2 cores · 1 thread (drawn cells) · torch 2.13.0"
    fig = cpu_charts.latency_vs(sweep(), "seq_len")  # a chart of the run's own cells keeps its caption
    assert style.save(fig, "latency", caption="x · 2 threads")["caption"] == "x · 2 threads"
