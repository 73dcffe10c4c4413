"""The published claims: the registry, its generated docs, and each check on small
synthetic tables (one where the claim holds, one where it does not), on partial tables and on
slices of the committed reference results."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.core import paths
from helpers.report.claims import registry, rules
from helpers.runner import reference

ROOT = Path(__file__).resolve().parents[1]


def sweep_rows(model="bert-base", n_params=110e6, threads=2, cells=None):
    """03-style rows: cells maps (engine, batch, seq_len) -> p50_ms; eager is the baseline."""
    rows = []
    for (engine, bs, n), ms in cells.items():
        base = cells[("eager", bs, n)]
        s = base / ms
        rows.append(
            {
                "model": model,
                "n_params": n_params,
                "engine": engine,
                "batch_size": bs,
                "seq_len": n,
                "threads": threads,
                "scope": "model",
                "status": "ok",
                "p50_ms": ms,
                "items_per_s": bs * 1e3 / ms,
                "speedup": s,
                "speedup_ci_low": s * 0.95,
                "speedup_ci_high": s * 1.05,
                "peak_rss_mb": 500.0,
                "cosine_min": 1.0,
                "message": "",
            }
        )
    return pd.DataFrame(rows)


def test_every_claim_gets_a_verdict_or_a_reason_on_empty_results():
    verdicts = registry.evaluate_claims({name: None for name in registry.TABLES})
    assert [v.id for v in verdicts] == [f"C{i}" for i in range(1, 18)]
    assert all(v.verdict == registry.UNTESTABLE and v.reason for v in verdicts)
    assert "03_cpu_sweeps has not produced" in verdicts[0].reason and "04_gpu_sweeps has not run" in verdicts[1].reason


def test_length_claim_holds_only_when_the_advantage_grows():
    cells = {}
    for n, ort in ((16, 10.0), (128, 7.0), (512, 4.0)):
        cells[("eager", 8, n)], cells[("ort", 8, n)] = 20.0, ort
    verdict, ours, reason = rules.c10({"03_cpu_sweep": sweep_rows(cells=cells)})
    assert verdict == registry.HOLDS and "2.00×" in ours and "5.00×" in ours and "grows" in reason
    cells[("ort", 8, 512)] = 16.0
    verdict, _, reason = rules.c10({"03_cpu_sweep": sweep_rows(cells=cells)})
    assert verdict == registry.FAILS and "shrinks" in reason


def generation(speedups: dict, new_tokens=32):
    """06-style ort-o3-int8 rows: speedups maps (batch, input length) -> speed-up (CI ±5%)."""
    return pd.DataFrame(
        [
            {
                "engine": "ort-o3-int8",
                "status": "ok",
                "p50_ms": 100.0,
                "batch_size": b,
                "seq_len": n,
                "new_tokens": new_tokens,
                "speedup": s,
                "speedup_ci_low": s * 0.95,
                "speedup_ci_high": s * 1.05,
            }
            for (b, n), s in speedups.items()
        ]
    )


def memory(torch_mb, recipe_mb, batch=1, seq_len=32):
    return pd.DataFrame(
        [
            {"engine": e, "status": "ok", "inference_mb": mb, "batch_size": batch, "seq_len": seq_len}
            for e, mb in (("torch", torch_mb), ("ort-o3-int8", recipe_mb))
        ]
    )


def test_c6_reads_one_text_at_the_shortest_input_and_uses_the_roughly_rule():
    """Their measurement is one text: batch 1, the shortest input, the most new tokens; a larger
    batch or input, listed first or faster, is not read."""
    gen = pd.concat([generation({(4, 32): 5.0, (1, 128): 5.0, (1, 32): 3.0}), generation({(1, 32): 5.0}, new_tokens=8)])
    verdict, ours, reason = rules.c6({"06_generation": gen, "06_memory": memory(44.0, 10.0)})
    assert verdict == registry.FAILS and ours.startswith("batch 1 × 32 input tokens, 32 new tokens")
    assert "06_speedups: the 32-token panel, batch-1 bar" in ours and "3.00× (95% CI 2.85–3.15)" in ours
    assert "speed-up 3.00× (95% CI 2.85–3.15) against their 5× (outside 3.33–7.50×)" in reason
    assert "+44.0 → +10.0 MB (4.40× less)" in ours  # memory outside 1.47–3.30× too
    gen.loc[(gen["batch_size"] == 1) & (gen["seq_len"] == 32) & (gen["new_tokens"] == 32), "speedup"] = 4.0
    gen["speedup_ci_low"], gen["speedup_ci_high"] = gen["speedup"] * 0.95, gen["speedup"] * 1.05
    assert rules.c6({"06_generation": gen, "06_memory": memory(25.0, 10.0)})[0] == registry.HOLDS
    verdict, ours, _ = rules.c6({"06_generation": gen, "06_memory": memory(25.0, 50.0)})
    assert verdict == registry.FAILS and "2.00× more" in ours and "batch 1 × 32" in ours


def test_c6_straddling_the_band_does_not_hold_and_memory_at_another_batch_is_untested():
    gen = generation({(1, 32): 3.5})  # CI 3.33–3.68: its low end below 5 / 1.5 = 3.33
    gen["speedup_ci_low"] = 3.3
    verdict, _, reason = rules.c6({"06_generation": gen, "06_memory": memory(25.0, 10.0)})
    assert verdict == registry.FAILS and "(straddling the edge of 3.33–7.50×)" in reason
    batch_16 = memory(106.8, 155.3, batch=16, seq_len=128)
    with pytest.raises(registry.Untestable, match=r"at batch 16 × 128, not for a single text \(batch 1\)"):
        rules.c6({"06_generation": generation({(1, 32): 4.0}), "06_memory": batch_16})


def test_c6_on_the_reference_reads_batch_1_at_32_tokens():
    t = registry.load_tables(paths.REFERENCE / "epyc-zen4-2c-full" / "results")
    verdict, ours, reason = rules.c6(t)
    assert verdict == registry.FAILS and ours.startswith("batch 1 × 32 input tokens, 32 new tokens")
    assert "3.46× (95% CI 3.29–3.61)" in ours and "straddling the edge of 3.33–7.50×" in reason
    assert "not decided: 06 measured the inference memory of torch and ort-o3-int8 at batch 16 × 128" in reason


def test_gpu_int8_claim_is_never_silently_tested():
    with pytest.raises(registry.Untestable, match="TensorRT"):
        rules.c4({"04_gpu_sweep": None})


def tiny_tables():
    """Only bert-tiny, at 1 thread, batch 1 and 8 × 128 tokens: most claims cannot be tested."""
    cells = {(e, bs, 128): ms * bs for bs in (1, 8) for e, ms in (("eager", 10.0), ("torchscript", 9.0), ("ort", 5.0))}
    return {"03_cpu_sweep": sweep_rows(model="bert-tiny", n_params=4.4e6, threads=1, cells=cells)}


def test_partial_tables_give_a_verdict_or_a_reason_for_every_claim():
    t = tiny_tables()
    verdicts = {v.id: v for v in registry.evaluate_claims(t)}
    assert len(verdicts) == 17 and verdicts["C1"].verdict == registry.HOLDS
    assert "was not measured at 16 and 512 tokens (lengths 128)" in verdicts["C10"].reason
    assert "no batch 32–64" in verdicts["C9"].reason
    cpu = t["03_cpu_sweep"]
    lacking = {
        "03_cpu_sweep": cpu.drop(columns=["speedup", "speedup_ci_low", "speedup_ci_high"]),
        "05_sorting": pd.DataFrame([{"engine": "eager", "batch_size": 16, "p50_ms": 5.0, "status": "ok"}]),
        "06_generation": pd.DataFrame([{"engine": "ort-o3-int8", "status": "error", "message": "boom"}]),
        "02_variants": pd.DataFrame([{"model": "bert-tiny", "method": "ort-int8-pc", "status": "ok"}]),
    }
    verdicts = {v.id: v for v in registry.evaluate_claims(lacking)}
    assert verdicts["C1"].verdict == registry.HOLDS  # it needs no speed-up column
    assert verdicts["C9"].reason == "03_cpu_sweep.csv has no speedup column in these results"
    assert verdicts["C14"].reason == "05_sorting.csv has no distribution, strategy, n_texts columns in these results"
    assert "no trusted measurement" in verdicts["C6"].reason and "no cosine_min" in verdicts["C15"].reason
    failed = {"03_cpu_sweep": cpu.assign(status="error", p50_ms=np.nan)}
    assert all(v.verdict == registry.UNTESTABLE for v in registry.evaluate_claims(failed))


@pytest.mark.parametrize("exc", [ZeroDivisionError("division by zero"), KeyError("speedup"), IndexError("oops")])
def test_a_claim_that_raises_fails_the_report(monkeypatch, exc):
    def broken(t):
        raise exc

    monkeypatch.setitem(registry.CLAIMS, "C5", dataclasses.replace(registry.CLAIMS["C5"], check=broken))
    with pytest.raises(type(exc)):
        registry.evaluate_claims(tiny_tables())


def test_claims_on_slices_of_the_reference_results():
    """03 with each model or engine alone, 03 and 06 each without any one column the claims
    read: every claim still gets a verdict or a reason (nothing raises)."""
    t = registry.load_tables(paths.REFERENCE / reference.readme_reference() / "results")
    cpu, gen = t["03_cpu_sweep"], t["06_generation"]
    read = (
        "model",
        "engine",
        "threads",
        "batch_size",
        "seq_len",
        "scope",
        "n_params",
        "status",
        "p50_ms",
        "items_per_s",
        "speedup",
        "speedup_ci_low",
        "speedup_ci_high",
        "new_tokens",
    )
    cases = [{"03_cpu_sweep": cpu[cpu[k] == v]} for k in ("model", "engine") for v in cpu[k].unique()]
    cases += [{"03_cpu_sweep": cpu.drop(columns=c)} for c in read if c in cpu]
    cases += [{"06_generation": gen.drop(columns=c), "06_memory": t["06_memory"]} for c in read if c in gen]
    for case in cases:
        assert len(registry.evaluate_claims(case)) == 17


# ---------------------------------------------------------------- the registry and its docs
def test_the_registry_holds_c1_to_c17_with_sources_and_named_thresholds():
    assert list(registry.CLAIMS) == [f"C{i}" for i in range(1, 18)]
    for c in registry.CLAIMS.values():
        assert c.text and c.source.title and callable(c.check)
        assert all(hasattr(rules, name) for name in c.thresholds), c.id
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.CLAIMS["C1"].text = "changed"


def test_the_committed_claims_doc_is_the_generated_one():
    """Regenerate with: PYTHONPATH=src python -m helpers.report.claims.registry > docs/claims.md"""
    doc = registry.claims_doc()
    assert (ROOT / "docs" / "claims.md").read_text() == doc
    assert "`C11_WITHIN` = 1.1" in doc and "https://habr.com/" in doc and "`figures/05_throughput_eager.png`" in doc


def test_published_figures_have_one_definition():
    from helpers.report.prose import takeaways

    assert takeaways.C6_MEMORY_MIB is rules.C6_MEMORY_MIB
    assert "+11.3 → +4.9 MiB" in registry.CLAIMS["C6"].theirs


# ---------------------------------------------------------------- each check, holds and does not
def cpu(*frames):
    return {"03_cpu_sweep": pd.concat(frames, ignore_index=True)}


def gpu(*frames):
    return {"04_gpu_sweep": pd.concat(frames, ignore_index=True)}


def three_engines(ort_at_8):
    cells = {}
    for bs in (1, 8):
        cells.update({("eager", bs, 128): 10.0 * bs, ("torchscript", bs, 128): 9.0 * bs, ("ort", bs, 128): 5.0 * bs})
    cells[("ort", 8, 128)] = ort_at_8
    return sweep_rows(cells=cells)


def test_c1_cpu_ort_beats_eager_and_torchscript():
    verdict, ours, reason = rules.c1(cpu(three_engines(ort_at_8=40.0)))
    assert verdict == registry.HOLDS and "batch 8: eager 80.0 ms, TorchScript 72.0, ORT 40.0" in ours
    assert "batch 8: ort runs at 2.00× eager's speed (95% CI 1.90–2.10)" in reason and "not faster" not in reason
    verdict, ours, reason = rules.c1(cpu(three_engines(ort_at_8=75.0)))
    assert verdict == registry.FAILS and "ORT 75.0" in ours
    assert "batch 8: ort runs at 1.07× eager's speed" in reason and "not faster than torchscript (CI" in reason


def test_c1_reads_their_batch_sizes_not_every_batch_measured():
    """Batch 32 is not in their table: ORT losing there, or a noisy row there, decides nothing."""
    rows = three_engines(ort_at_8=40.0)
    cells = {("eager", 32, 128): 320.0, ("torchscript", 32, 128): 288.0, ("ort", 32, 128): 400.0}
    at_32 = sweep_rows(cells=cells).assign(noisy=True)
    verdict, ours, _ = rules.c1(cpu(rows, at_32))
    assert verdict == registry.HOLDS and "batch 32" not in ours
    with pytest.raises(registry.Untestable, match="not all measured at batch 1 × 128 \\(their figure\\)"):
        rules.c1(cpu(rows[rows["batch_size"] == 8]))
    bert_large = sweep_rows("bert-large", 335e6, cells={(e, 1, 128): 10.0 for e in ("eager", "torchscript", "ort")})
    assert rules.c1(cpu(rows, bert_large))[1].startswith("bert-base, 128 tokens")  # the model nearest BERT-base


def gpu_batches(ort_at_256):
    cells = {("eager", 1, 128): 5.6, ("torchscript", 1, 128): 4.0, ("ort", 1, 128): 2.0}
    cells.update({("eager", 256, 128): 22.3, ("torchscript", 256, 128): 21.8, ("ort", 256, 128): ort_at_256})
    return sweep_rows(cells=cells)


def test_c2_gpu_cross_over_from_ort_to_torchscript():
    verdict, ours, reason = rules.c2(gpu(gpu_batches(ort_at_256=25.2)))
    assert verdict == registry.HOLDS and "batch 1: eager 5.60 / TorchScript 4.00 / ORT 2.00 ms" in ours
    assert "ORT 25.20 ms" in ours and "at batch 256 torchscript runs at 1.16× ort's speed" in reason
    verdict, ours, reason = rules.c2(gpu(gpu_batches(ort_at_256=15.0)))
    assert verdict == registry.FAILS and "ORT 15.00 ms" in ours
    assert "at batch 256 torchscript runs at 0.69× ort's speed" in reason and "not faster than ort" in reason
    close = gpu_batches(ort_at_256=22.5)  # TorchScript's median 3% lower, its CI not above 1
    assert rules.c2(gpu(close))[0] == registry.FAILS


def test_c2_reads_batch_256_not_the_largest_batch_measured():
    at_512 = {("eager", 512, 128): 44.0, ("torchscript", 512, 128): 60.0, ("ort", 512, 128): 40.0}
    assert rules.c2(gpu(gpu_batches(ort_at_256=25.2), sweep_rows(cells=at_512)))[0] == registry.HOLDS
    with pytest.raises(registry.Untestable, match="not all measured at batch 256 \\(together at 1\\)"):
        rules.c2(gpu(gpu_batches(ort_at_256=25.2).query("batch_size == 1")))


def test_c3_gpu_ort_roughly_three_times_eager_and_tensorrt_five():
    cells = {("eager", 8, 128): 9.0, ("ort", 8, 128): 3.0, ("ort-trt", 8, 128): 1.8}
    cells |= {("eager", 1, 128): 2.0, ("ort", 1, 128): 1.0}  # a cell of a smaller ORT speed-up: not the best
    verdict, ours, reason = rules.c3(gpu(sweep_rows(cells=cells)))
    assert verdict == registry.HOLDS and "best ORT: ort, bert-base at batch 8 × 128, 3.00× (95% CI 2.85–3.15)" in ours
    assert "best TensorRT 5.00× (95% CI 4.75–5.25) against their 5× (inside 3.33–7.50×)" in reason
    verdict, ours, _ = rules.c3(gpu(sweep_rows(cells=cells | {("ort", 8, 128): 7.5})))
    assert verdict == registry.FAILS and "best ORT: ort, bert-base at batch 1 × 128, 2.00×" in ours
    with pytest.raises(registry.Untestable, match=r"^TensorRT \(ort-trt\) was not measured on the GPU$"):
        rules.c3(gpu(sweep_rows(cells={("eager", 8, 128): 9.0, ("ort", 8, 128): 3.0})))


def test_c4_gpu_int8_is_untestable_with_or_without_a_gpu():
    with pytest.raises(registry.Untestable, match="needs QDQ graphs on TensorRT$"):
        rules.c4(gpu(gpu_batches(ort_at_256=25.2)))
    failed = pd.DataFrame([{"engine": "eager", "status": "skipped", "message": "no CUDA device"}])
    with pytest.raises(registry.Untestable, match="and no GPU results: no CUDA device"):
        rules.c4({"04_gpu_sweep": failed})


def with_ms_ci(df, half=0.03):
    """Rows with a 95% CI of each median (ci_low_ms, ci_high_ms), ±half of it."""
    return df.assign(ci_low_ms=df["p50_ms"] * (1 - half), ci_high_ms=df["p50_ms"] * (1 + half))


def c5_table(gain_at_8=2.0, small_ms=5.0):
    """bert-base eager at batch 1 and 8 × 128 (items/s `gain_at_8` times batch 1's), batch 8 × 32 (a
    quarter of 128's time), a batch 128 endpoint; bert-tiny at batch 1 × 128 in `small_ms`."""
    base = {("eager", 1, 128): 100.0, ("eager", 8, 128): 800.0 / gain_at_8, ("eager", 8, 32): 200.0 / gain_at_8}
    base[("eager", 128, 128)] = 4000.0
    tiny = sweep_rows("bert-tiny", 4.4e6, cells={("eager", 1, 128): small_ms})
    return cpu(with_ms_ci(sweep_rows(cells=base)), with_ms_ci(tiny))


def test_c5_batching_short_sequences_and_small_models():
    verdict, ours, reason = rules.c5(c5_table())
    assert verdict == registry.HOLDS and ours.startswith("bert-base, eager: items/s batch 8 over batch 1 × 128: 2.00×")
    assert "batching to 8 raises eager items/s 2.00× (95% CI 1.88–2.12): it pays" in reason
    assert "32 tokens are 4.00× (95% CI 3.77–4.25) as fast per item as 128: faster" in reason
    assert "small models against bert-base at batch 1: every one faster" in reason
    verdict, _, reason = rules.c5(c5_table(gain_at_8=1.1))
    assert verdict == registry.FAILS and "1.10× (95% CI 1.04–1.17): not at least 1.2× by its CI" in reason
    assert rules.c5(c5_table(gain_at_8=1.22))[0] == registry.FAILS  # the median clears 1.2, its CI does not
    verdict, _, reason = rules.c5(c5_table(small_ms=120.0))
    assert verdict == registry.FAILS and "bert-tiny not faster (CI not above 1)" in reason
    with pytest.raises(registry.Untestable, match="no base-size model"):
        rules.c5(tiny_tables())


def test_c5_reads_batch_8_not_a_noisy_batch_128_endpoint():
    df = c5_table()["03_cpu_sweep"].assign(ci_half_width=0.02)
    at_128 = df.assign(n=np.where(df["batch_size"] == 128, 2, 10))
    assert rules.c5({"03_cpu_sweep": at_128})[0] == registry.HOLDS
    at_8 = df.assign(n=np.where((df["batch_size"] == 8) & (df["seq_len"] == 128), 2, 10))
    with pytest.raises(registry.Untestable, match=r"^cannot be decided: noisy \(bert-base eager batch 8 × 128 \(n = 2"):
        rules.c5({"03_cpu_sweep": at_8})


def test_c5_on_the_references_holds_on_rows_that_decide():
    """The old check rested on a noisy batch-128 endpoint of bert-medium and ignored model size."""
    for name, gain in (("epyc-zen4-2c-full", "1.49×"), ("xeon-spr-2c-full", "1.38×")):
        verdict, ours, _ = rules.c5(registry.load_tables(paths.REFERENCE / name / "results"))
        assert verdict == registry.HOLDS and f"bert-base, eager: items/s batch 8 over batch 1 × 128: {gain}" in ours


def by_size(small_ratio, base_ratio, engine="ort", base="eager", threads=1):
    """A small and a base-size model at batch 1 × 128: `base` takes `ratio` times as long as `engine`."""
    frames = []
    for model, n_params, ratio in (("tiny", 4.4e6, small_ratio), ("base", 110e6, base_ratio)):
        cells = {("eager", 1, 128): 50.0, (base, 1, 128): 10.0 * ratio, (engine, 1, 128): 10.0}
        frames.append(sweep_rows(model, n_params, threads, cells))
    return frames


def test_c7_one_core_ort_over_eager_by_model_size():
    verdict, ours, _ = rules.c7(cpu(*by_size(2.2, 1.8)))
    assert verdict == registry.HOLDS and "small: tiny 2.20×; base-size: base 1.80×" in ours
    verdict, ours, _ = rules.c7(cpu(*by_size(1.2, 1.8)))
    assert verdict == registry.FAILS and "small: tiny 1.20×" in ours


def int8_by_length(ratio_at_512=1.25):
    """A small model's length sweep at batch 8: ORT INT8 1.25× ORT fp32, `ratio_at_512` at 512."""
    cells = {}
    for n in (16, 128, 512):
        cells[("eager", 8, n)], cells[("ort", 8, n)] = 30.0, 10.0
        cells[("ort-int8", 8, n)] = 10.0 / (ratio_at_512 if n == 512 else 1.25)
    return sweep_rows("tiny", 4.4e6, threads=2, cells=cells)


def test_c8_int8_over_ort_fp32_by_model_size_and_length():
    sizes = by_size(1.45, 2.4, engine="ort-int8", base="ort", threads=2)
    verdict, ours, reason = rules.c8(cpu(*sizes, int8_by_length()))
    assert verdict == registry.HOLDS and "small: tiny 1.45×; base-size: base 2.40×" in ours
    assert "; tiny at batch 8, 16–512 tokens: 1.25×–1.25×" in ours
    assert "tiny × 512 1.25× (95% CI 1.13–1.38) against their 1.25× (inside 0.83–1.88×)" in reason
    verdict, ours, _ = rules.c8(cpu(*by_size(0.8, 2.4, engine="ort-int8", base="ort", threads=2), int8_by_length()))
    assert verdict == registry.FAILS and "small: tiny 0.80×" in ours
    verdict, _, reason = rules.c8(cpu(*sizes, int8_by_length(ratio_at_512=3.0)))
    assert verdict == registry.FAILS and "tiny × 512 3.00× (95% CI 2.71–3.32) against their 1.25× (outside" in reason
    with pytest.raises(registry.Untestable, match="no small model was measured with ort and ort-int8 across lengths"):
        rules.c8(cpu(*sizes))


def ort_by_batch(small_speedup, large_speedup, int8=None):
    """bert-base at batch 1, 8, 32, 64 × 128: ORT's speed-up over eager at batch ≤ 8 and above;
    int8 = (ORT INT8 over ORT fp32 at batch ≤ 32, above 32) when given."""
    cells = {}
    for bs in (1, 8, 32, 64):
        cells[("eager", bs, 128)] = 10.0 * bs
        cells[("ort", bs, 128)] = 10.0 * bs / (small_speedup if bs <= 8 else large_speedup)
        if int8:
            cells[("ort-int8", bs, 128)] = cells[("ort", bs, 128)] / (int8[0] if bs <= 32 else int8[1])
    return sweep_rows(cells=cells)


def test_c9_ort_edge_largest_at_small_batch():
    verdict, ours, reason = rules.c9(cpu(ort_by_batch(2.0, 1.2, int8=(2.0, 3.0))))
    assert verdict == registry.HOLDS and "2.00× at batch 1–8, 1.20× at 32–64" in ours
    assert "clearly larger at batch 1–8 (2.00×, CI from 1.90×) than at 32–64 (1.20×, CI to 1.26×)" in reason
    verdict, ours, _ = rules.c9(cpu(ort_by_batch(1.2, 2.0, int8=(2.0, 3.0))))
    assert verdict == registry.FAILS and "1.20× at batch 1–8, 2.00× at 32–64" in ours
    with pytest.raises(registry.Untestable, match="INT8 was not measured at batch 32 and above it"):
        rules.c9(cpu(ort_by_batch(2.0, 1.2)))


def test_c9_int8_edge_must_grow_above_batch_32():
    verdict, ours, reason = rules.c9(cpu(ort_by_batch(2.0, 1.2, int8=(4.0, 3.0))))
    assert verdict == registry.FAILS and "batch 8: 4.00×" in ours and "batch 64: 3.00×" in ours
    assert "INT8's edge over ORT fp32 shrinks above batch 32 (4.00× → 3.00×" in reason
    assert rules.c9(cpu(ort_by_batch(2.0, 1.2, int8=(4.0, 6.0))))[0] == registry.HOLDS


def test_every_verdict_gives_the_measured_figures_that_decided_it():
    import re

    t = registry.load_tables(paths.REFERENCE / reference.readme_reference() / "results")
    for v in registry.evaluate_claims(t):
        if v.verdict != registry.UNTESTABLE:
            assert re.search(r"\d\.\d+×|\d\.\d\d|\d+%", v.reason), (v.id, v.reason)


def test_c7_and_c13_figures_show_the_cell_their_check_reads():
    import matplotlib

    matplotlib.use("Agg")
    from helpers.report.claims import figures

    assert registry.CLAIMS["C7"].figure == "03_one_thread" and registry.CLAIMS["C13"].figure == "03_length_slopes"
    rows = eager_by_length(slope_at_1=0.3).assign(ci_low_ms=lambda d: d["p50_ms"], ci_high_ms=lambda d: d["p50_ms"])
    fig = figures.length_slopes_by_batch(rows)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["batch 1: slope 0.30", "batch 8: slope 1.00"]
    sizes = cpu(*by_size(2.2, 1.8))["03_cpu_sweep"]
    sizes = sizes.assign(ci_low_ms=sizes["p50_ms"], ci_high_ms=sizes["p50_ms"])
    fig = figures.one_thread_by_size(sizes)
    assert "1 thread, batch 1" in fig.axes[0].get_title()
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["1.80×", "2.20×"]


def formats_by_batch(ort_at_64):
    cells = {}
    for bs in (1, 8):
        cells.update({("eager", bs, 128): 10.0 * bs, ("torchscript", bs, 128): 9.0 * bs, ("ort", bs, 128): 5.0 * bs})
    cells.update({("eager", 64, 128): 100.0, ("torchscript", 64, 128): 98.0, ("ort", 64, 128): ort_at_64})
    return sweep_rows(cells=cells)


def test_c11_onnx_wins_below_32_and_the_formats_converge_by_64():
    verdict, ours, reason = rules.c11(cpu(formats_by_batch(ort_at_64=97.0)))
    assert verdict == registry.HOLDS and "2.00×–2.00× below batch 32" in ours
    assert "at batch 64 the slowest is 3% behind the fastest (CI to 8%; claimed within 10%)" in reason
    verdict, _, reason = rules.c11(cpu(formats_by_batch(ort_at_64=92.0)))  # 9% behind, its CI to 14%
    assert verdict == registry.FAILS and "the slowest is 9% behind the fastest (CI to 14%" in reason
    verdict, ours, _ = rules.c11(cpu(formats_by_batch(ort_at_64=50.0)))
    assert verdict == registry.FAILS and "the slowest (eager) is 2.00×" in ours
    rows = formats_by_batch(ort_at_64=97.0)
    rows.loc[(rows["engine"] == "ort") & (rows["batch_size"] == 8), "speedup_ci_low"] = 0.99
    verdict, _, why = rules.c11(cpu(rows))
    assert verdict == registry.FAILS and "batch 8: ort runs at 2.00× eager's speed (95% CI 0.99–2.10)" in why
    assert "not faster than eager or torchscript (CI not above 1)" in why
    with pytest.raises(registry.Untestable, match="batch 64 was not measured for all three"):
        rules.c11(cpu(formats_by_batch(ort_at_64=97.0).query("batch_size < 64")))


def gpu_eager_by_batch(ms_at_64):
    return sweep_rows(cells={("eager", 1, 128): 10.0, ("eager", 8, 128): 12.0, ("eager", 64, 128): ms_at_64})


def test_c12_gpu_batching_gain_over_batch_one():
    verdict, ours, _ = rules.c12(gpu(with_ms_ci(gpu_eager_by_batch(ms_at_64=20.0))))
    assert verdict == registry.HOLDS and "best per-item time at batch 64, 32.00× (95% CI 30.14–33.98) batch 1's" in ours
    verdict, ours, reason = rules.c12(gpu(with_ms_ci(gpu_eager_by_batch(ms_at_64=400.0))))
    assert verdict == registry.FAILS and "best per-item time at batch 8, 6.67×" in ours
    assert "the claim needs at least 8× by the CI" in reason
    verdict, _, _ = rules.c12(gpu(with_ms_ci(gpu_eager_by_batch(ms_at_64=64 * 10.0 / 8.2))))
    assert verdict == registry.FAILS  # 8.2× at the median, 7.72× at its CI's low end


def eager_by_length(slope_at_1):
    cells = {}
    for n in (32, 128, 512):
        cells[("eager", 1, n)] = (n / 32) ** slope_at_1
        cells[("eager", 8, n)] = 8.0 * n / 32
    return sweep_rows(cells=cells)


def test_c13_time_grows_linearly_with_length_at_large_batch_only():
    verdict, ours, _ = rules.c13(cpu(eager_by_length(slope_at_1=0.3)))
    assert verdict == registry.HOLDS and "length^1.00 at batch 8, length^0.30 at batch 1" in ours
    verdict, ours, _ = rules.c13(cpu(eager_by_length(slope_at_1=1.0)))
    assert verdict == registry.FAILS and "length^1.00 at batch 1" in ours


def sorting_rows(unsorted_at_64, sorted_at_64, distribution="sentences", noisy=False):
    rows = []
    for strategy, t16, t64 in (("unsorted", 1.0, unsorted_at_64), ("sorted", 1.0, sorted_at_64)):
        for bs, t in ((16, t16), (64, t64)):
            rows.append(
                {
                    "distribution": distribution,
                    "noisy": noisy and bs == 64 and strategy == "sorted",
                    "n": 3,
                    "cv": 0.2 if noisy and bs == 64 and strategy == "sorted" else 0.02,
                    "engine": "eager",
                    "strategy": strategy,
                    "batch_size": bs,
                    "p50_ms": t * 1000,
                    "n_texts": 1000,
                    "status": "ok",
                }
            )
    return {"05_sorting": pd.DataFrame(rows)}


def test_c14_sorting_keeps_larger_batches_paying():
    verdict, ours, _ = rules.c14(sorting_rows(1.2, 0.9))
    assert verdict == registry.HOLDS and "batch 16 → 64, time per item: unsorted +20%, sorted -10%" in ours
    verdict, ours, _ = rules.c14(sorting_rows(0.9, 1.2))
    assert verdict == registry.FAILS and "unsorted -10%, sorted +20%" in ours
    with pytest.raises(registry.Untestable, match="at batch 16 and 64"):
        rules.c14({"05_sorting": sorting_rows(1.2, 0.9)["05_sorting"].query("batch_size == 16")})


def test_c14_reads_the_sentences_scenario_with_eager_not_the_first_rows():
    """The old check took the table's first distribution and engine (the docstrings): the claim is
    about 1k sentences of varied length, 05's synthetic `sentences` scenario, on PyTorch eager."""
    docstrings = sorting_rows(0.9, 1.2, distribution="docstrings")["05_sorting"]  # would not hold
    sentences = sorting_rows(1.2, 0.9)["05_sorting"]
    ort = sentences.assign(engine="ort", p50_ms=sentences["p50_ms"][::-1].to_numpy())
    verdict, ours, _ = rules.c14({"05_sorting": pd.concat([docstrings, ort, sentences])})
    assert verdict == registry.HOLDS and ours.startswith("sentences, eager, batch 16 → 64") and "unsorted +20%" in ours
    with pytest.raises(
        registry.Untestable, match=r"did not measure the sentences scenario with eager \(measured: docstrings × eager\)"
    ):
        rules.c14({"05_sorting": docstrings})


def test_c14_a_noisy_cell_cannot_decide():
    with pytest.raises(
        registry.Untestable, match=r"^cannot be decided: noisy \(sentences eager sorted batch 64 \(n = 3, CV 20%\)\)$"
    ):
        rules.c14(sorting_rows(1.2, 0.9, noisy=True))


def test_c14_on_the_reference_reads_its_sentences_rows():
    t = registry.load_tables(paths.REFERENCE / "epyc-zen4-2c-full" / "results")
    d = t["05_sorting"].query("distribution == 'sentences' and engine == 'eager'").set_index(["strategy", "batch_size"])
    unsorted = d.loc[("unsorted", 64), "p50_ms"] / d.loc[("unsorted", 16), "p50_ms"] - 1
    sorted_ = d.loc[("sorted", 64), "p50_ms"] / d.loc[("sorted", 16), "p50_ms"] - 1
    assert round(unsorted, 2) == 0.31 and round(sorted_, 3) == -0.004  # unsorted 31% slower, sorted 0.4% faster
    verdict, ours, _ = rules.c14(t)
    assert verdict == registry.HOLDS and "sentences, eager" in ours and "unsorted +31%, sorted -0%" in ours


def int8_variants(cosines, statuses=("ok", "ok")):
    return {
        "02_variants": pd.DataFrame(
            [
                {
                    "model": m,
                    "method": "ort-int8-pc",
                    "status": status,
                    "cosine_min": cosine,
                    "random_weights": m == "base",
                }
                for m, cosine, status in zip(("tiny", "base"), cosines, statuses)
            ]
        )
    }


def test_c15_int8_fidelity_differs_by_model():
    verdict, ours, _ = rules.c15(int8_variants((0.99, 0.95)))
    assert verdict == registry.HOLDS and "ranges 0.950 (base, random weights, ort-int8-pc) to 0.990 (tiny," in ours
    verdict, ours, reason = rules.c15(int8_variants((0.990, 0.995)))
    assert verdict == registry.FAILS and "0 of 2 INT8 variants fail" in ours and "about the same" in reason


def test_a_batch_claim_is_judged_on_the_largest_model_spanning_the_batches_it_needs():
    from helpers.report.rows import widest

    ranges = {"bert-medium": (41, [1, 8, 32, 64, 128]), "bert-base": (109, [1, 8, 32, 64]), "bert-large": (335, [1, 8])}
    df = pd.DataFrame(
        [
            {"model": m, "n_params": n, "engine": e, "batch_size": b, "seq_len": 128}
            for m, (n, batches) in ranges.items()
            for b in batches
            for e in ("eager", "ort")
        ]
    )
    assert widest(df, "batch_size", ("eager", "ort"), {"seq_len": 128})[0] == "bert-medium"  # the widest
    model, rows = widest(df, "batch_size", ("eager", "ort"), {"seq_len": 128}, spans=(8, 64))
    assert model == "bert-base" and set(rows["batch_size"]) == {1, 8, 32, 64}
    assert widest(df, "batch_size", ("eager", "ort"), {"seq_len": 128}, spans=(8, 256))[0] == "bert-medium"


def test_a_claim_about_bert_base_is_judged_on_the_model_nearest_its_size():
    from helpers.report.rows import largest

    df = pd.DataFrame(
        [
            {"model": m, "n_params": n, "engine": e}
            for m, n in (("bert-mini", 11e6), ("bert-base", 109e6), ("bert-large", 335e6))
            for e in ("eager", "ort")
        ]
    )
    assert largest(df, ("eager", "ort"))[0] == "bert-large"
    assert largest(df, ("eager", "ort"), near=110e6)[0] == "bert-base"
    assert largest(df[df["model"] != "bert-base"], ("eager", "ort"), near=110e6)[0] == "bert-large"


def peer_table(speeds: dict, int8_recall=0.997, openvino_precision="bf16", half=0.0):
    """07-style whole-corpus peer rows at batch 32 over 512 texts: speeds maps peer -> items/s
    (the CI of each median ±half of it)."""
    rows = [
        {
            "stage": "corpus",
            "candidate": f"{p} @32 (default)",
            "peer": p,
            "batch_size": 32,
            "status": "ok",
            "items_per_s": x,
            "p50_ms": 512e3 / x,
            "ci_low_ms": 512e3 / x * (1 - half),
            "ci_high_ms": 512e3 / x * (1 + half),
            "recall_at_10": int8_recall if "qint8" in p else 1.0,
            "precision": openvino_precision if p == "st-openvino" else ("int8" if "qint8" in p else "fp32"),
        }
        for p, x in speeds.items()
    ]
    naive = {"stage": "corpus", "candidate": "naive", "peer": "", "batch_size": 1, "status": "ok", "items_per_s": 10.0}
    return {"07_pipeline": pd.DataFrame([naive | {"p50_ms": 51200.0}, *rows])}


def test_c16_sentence_transformers_backends_against_its_torch_fp32():
    shape = {"st-torch": 100.0, "st-openvino-qint8": 470.0, "st-onnx-qint8": 240.0, "st-onnx": 110.0}
    shape |= {"st-openvino": 115.0}
    verdict, ours, reason = rules.c16(peer_table(shape))
    assert verdict == registry.HOLDS and "st-openvino-qint8 4.70×" in ours and "st-onnx-qint8 2.40×" in ours
    assert "st-openvino 1.15× (ran bf16)" in ours
    assert "st-openvino-qint8 is faster than st-torch, st-onnx-qint8, st-onnx, st-openvino (CI above 1)" in reason
    assert "recall@10: st-openvino-qint8 0.997, st-onnx-qint8 0.997" in ours
    assert "the workbook's proxy, recall@10 against the eager fp32 neighbours, not their benchmark score" in reason
    assert "it now reports 5.29× openvino-qint8, 3.23× onnx-qint8" in registry.CLAIMS["C16"].theirs
    assert rules.c16(peer_table(shape, int8_recall=0.9))[0] == registry.FAILS  # below 99.6% of the score
    assert rules.c16(peer_table(shape | {"st-onnx-qint8": 500.0}))[0] == registry.FAILS  # static INT8 not the fastest
    assert rules.c16(peer_table(shape | {"st-openvino-qint8": 250.0}))[0] == registry.FAILS  # far from 4.8x
    verdict, _, reason = rules.c16(peer_table(shape | {"st-openvino-qint8": 340.0}, half=0.05))
    assert (
        verdict == registry.FAILS
        and "st-openvino-qint8 3.40× (95% CI 3.08–3.76) against their 4.8× (straddling" in reason
    )
    assert rules.c16(peer_table(shape, half=0.05))[0] == registry.HOLDS
    with pytest.raises(registry.Untestable, match="07 did not measure st-openvino-qint8 and st-onnx-qint8 at batch 32"):
        rules.c16(peer_table({"st-torch": 100.0, "st-openvino": 115.0}))
    with pytest.raises(registry.Untestable, match="07 measured no peer"):
        rules.c16({"07_pipeline": peer_table(shape)["07_pipeline"].drop(columns=["peer"])})


def test_c16_fails_on_its_score_though_a_timed_row_is_noisy():
    """The score part is untimed: an INT8 peer below C16_SCORE decides "does not hold" even where a
    timed row cannot decide the speed parts; with the score kept, the noisy row leaves it undecided."""
    shape = {"st-torch": 100.0, "st-openvino-qint8": 470.0, "st-onnx-qint8": 240.0}
    t = peer_table(shape, int8_recall=0.9)
    t["07_pipeline"]["noisy"] = t["07_pipeline"]["peer"] == "st-onnx-qint8"
    verdict, _, reason = rules.c16(t)
    assert verdict == registry.FAILS and "not every INT8 backend keeps recall@10" in reason
    assert "not decided: cannot be decided: noisy" in reason
    t = peer_table(shape)
    t["07_pipeline"]["noisy"] = t["07_pipeline"]["peer"] == "st-onnx-qint8"
    with pytest.raises(registry.Untestable, match="^cannot be decided: noisy"):
        rules.c16(t)


def test_c17_openvino_bf16_and_int8_over_fp32_at_bert_base():
    cells = {("eager", 8, 128): 600.0, ("ov", 8, 128): 500.0, ("ov-bf16", 8, 128): 120.0, ("ov-int8", 8, 128): 80.0}
    cells |= {("eager", 1, 128): 80.0, ("ov", 1, 128): 70.0, ("ov-bf16", 1, 128): 60.0, ("ov-int8", 1, 128): 50.0}
    verdict, ours, reason = rules.c17({"03_cpu_sweep": sweep_rows(cells=cells)})
    assert verdict == registry.HOLDS and "batch 8 × 128 tokens: ov-bf16 4.17×; ov-int8 6.25× over ov (fp32)" in ours
    assert "whether this CPU has AMX is unknown (00 has not run)" in reason
    assert "bf16 4.17× (95% CI 3.77–4.61) against their 4.2× (inside" in reason
    assert "INT8 6.25× (95% CI 5.65–6.91) against their 6.4× (inside" in reason
    assert "the order INT8 > bf16 > fp32 holds" in reason
    nominal = pd.DataFrame(
        [{"kind": "nominal", "precision": "bf16", "message": "64 ops/cycle/core (AVX512-BF16 dot products); 2 core(s)"}]
    )
    reason = rules.c17({"03_cpu_sweep": sweep_rows(cells=cells), "00_ceilings": nominal})[2]
    assert "this CPU has no AMX (00's bf16 peak: 64 ops/cycle/core (AVX512-BF16 dot products))" in reason
    cells[("ov-bf16", 8, 128)], cells[("ov-int8", 8, 128)] = 300.0, 400.0
    verdict, _, reason = rules.c17({"03_cpu_sweep": sweep_rows(cells=cells)})
    assert verdict == registry.FAILS and "bf16 1.67× (95% CI 1.51–1.84) against their 4.2× (outside" in reason
    assert "the order INT8 > bf16 > fp32 does not hold" in reason
    with pytest.raises(registry.Untestable, match="03 measured no ov, ov-bf16, ov-int8 rows"):
        rules.c17(tiny_tables())


def test_faster_needs_the_ratio_ci_above_one():
    rows = three_engines(ort_at_8=40.0)
    ort, eager, ts = (rows[rows["engine"] == e] for e in ("ort", "eager", "torchscript"))
    over_eager = rules.faster(ort, eager)
    assert list(over_eager["ratio"]) == [2.0, 2.0] and list(over_eager["ci_low"]) == [1.9, 1.9]  # ORT's own CI
    over_ts = rules.faster(ort, ts)  # a bound from both CIs: 1.9 / (1.111 × 1.05)
    assert over_ts["faster"].all() and round(over_ts["ci_low"].iloc[0], 3) == round(1.9 / (10 / 9 * 1.05), 3)
    close = rules.faster(ort.assign(speedup_ci_low=0.98), eager)
    assert not close["faster"].any() and (close["ratio"] > 1).all()  # a lower median alone is not "faster"
    assert rules.faster(ort.drop(columns="speedup_ci_low"), eager)["faster"].all()  # no CIs: medians only


def test_c1_and_c11_judge_faster_by_the_same_rule():
    rows = three_engines(ort_at_8=40.0)
    at_8 = (rows["engine"] == "ort") & (rows["batch_size"] == 8)
    rows.loc[at_8, "speedup_ci_low"] = 0.99  # median 2× faster, CI not above 1
    verdict, _, reason = rules.c1(cpu(rows))
    assert verdict == registry.FAILS and "batch 8: ort runs at 2.00× eager's speed (95% CI 0.99–2.10)" in reason
    cells = formats_by_batch(ort_at_64=97.0)
    assert rules.c11(cpu(cells))[0] == registry.HOLDS
    cells.loc[(cells["engine"] == "ort") & (cells["batch_size"] == 8), "speedup_ci_low"] = 0.99
    assert rules.c11(cpu(cells))[0] == registry.FAILS
    noisy = rows.assign(noisy=at_8)
    with pytest.raises(registry.Untestable, match="cannot be decided: noisy"):
        rules.c1(cpu(noisy))


def test_c9_int8_edge_must_grow_by_the_named_threshold():
    verdict, _, reason = rules.c9(cpu(ort_by_batch(2.0, 1.2, int8=(2.84, 2.85))))
    assert verdict == registry.FAILS and "does not clearly grow above batch 32 (2.84× → 2.85×" in reason
    assert f"a rise of more than {100 * (rules.C9_INT8_GROWS - 1):.0f}% over its edge at batch 32" in reason
    assert rules.c9(cpu(ort_by_batch(2.0, 1.2, int8=(2.0, 2.4))))[0] == registry.FAILS  # 1.2× rise, CI from 0.98×
    assert rules.c9(cpu(ort_by_batch(2.0, 1.2, int8=(2.0, 3.0))))[0] == registry.HOLDS  # 1.5× rise, CI from 1.23×
    rows = ort_by_batch(2.0, 1.2, int8=(2.0, 3.0))
    noisy = rows.assign(noisy=(rows["engine"] == "ort-int8") & (rows["batch_size"] == 64))
    with pytest.raises(registry.Untestable, match=r"noisy \(bert-base ort-int8 batch 64 × 128"):
        rules.c9(cpu(noisy))


HOLDING = {  # a hand-built table on which each check that compares timed cells holds
    "c1": lambda: cpu(three_engines(ort_at_8=40.0)),
    "c5": lambda: c5_table(),
    "c7": lambda: cpu(*by_size(2.2, 1.8)),
    "c8": lambda: cpu(*by_size(1.45, 2.4, engine="ort-int8", base="ort", threads=2), int8_by_length()),
    "c9": lambda: cpu(ort_by_batch(2.0, 1.2, int8=(2.0, 3.0))),
    "c11": lambda: cpu(formats_by_batch(ort_at_64=97.0)),
    "c13": lambda: cpu(eager_by_length(slope_at_1=0.3)),
    "c14": lambda: sorting_rows(1.2, 0.9),
    "c10": lambda: cpu(
        sweep_rows(
            cells={(e, 8, n): ms for n, o in ((16, 10.0), (512, 4.0)) for e, ms in (("eager", 20.0), ("ort", o))}
        )
    ),
    "c17": lambda: cpu(
        sweep_rows(
            cells={
                ("eager", 8, 128): 600.0,
                ("ov", 8, 128): 500.0,
                ("ov-bf16", 8, 128): 120.0,
                ("ov-int8", 8, 128): 80.0,
            }
        )
    ),
}


@pytest.mark.parametrize("check", sorted(HOLDING))
def test_noisy_deciding_rows_leave_a_holding_claim_undecided(check):
    t = HOLDING[check]()
    assert getattr(rules, check)(t)[0] == registry.HOLDS
    (name,) = t
    with pytest.raises(registry.Untestable, match=r"^cannot be decided: noisy \(.*batch"):
        getattr(rules, check)({name: t[name].assign(noisy=True)})


def test_c6_a_noisy_recipe_row_cannot_decide():
    gen = generation({(1, 32): 4.0}).assign(n=5, noisy=False)
    assert rules.c6({"06_generation": gen, "06_memory": memory(25.0, 10.0)})[0] == registry.HOLDS
    with pytest.raises(registry.Untestable, match=r"noisy \(ort-o3-int8 batch 1 × 32 \(n = 5, CI 3.80–4.20\)\)"):
        rules.c6({"06_generation": gen.assign(noisy=True), "06_memory": memory(25.0, 10.0)})


# ---------------------------------------------------------------- written rules: each claim's, and how parts decide
def test_every_claim_has_a_written_rule_that_names_exactly_its_thresholds():
    """The rule in docs/claims.md is the check's docstring; it names every threshold the registry
    lists for the claim, and every threshold it names is listed."""
    import re

    doc = registry.claims_doc()
    for c in registry.CLAIMS.values():
        rule = registry.rule(c)
        assert f"- rule: {rule}" in doc and len(rule) > 100, c.id
        named = {
            w
            for w in re.findall(r"\b[A-Z][A-Z0-9_]+\b", rule)
            if isinstance(getattr(rules, w, None), (int, float, tuple, str))
        }
        quoted = {"C6_SECONDS", "C6_MEMORY_MIB"}  # their figures, shown beside the verdict
        assert named == set(c.thresholds) - quoted, (c.id, named ^ (set(c.thresholds) - quoted))


def test_a_claim_of_parts_holds_when_all_do_and_a_decided_part_that_fails_decides():
    def holds():
        return True, "a", "a holds"

    def fails():
        return False, "b", "b does not"

    def noisy(cell):
        def part():
            raise registry.Untestable(f"cannot be decided: noisy ({cell})")

        return part

    def missing():
        raise registry.Untestable("not measured")

    assert rules.decide(holds, holds) == (registry.HOLDS, "a; a", "a holds; a holds")
    verdict, ours, reason = rules.decide(holds, noisy("x batch 1"), fails, missing)
    assert verdict == registry.FAILS and ours == "a; b"
    assert reason == "a holds; b does not; not decided: cannot be decided: noisy (x batch 1); not measured"
    with pytest.raises(registry.Untestable, match=r"^cannot be decided: noisy \(x batch 1; y batch 2\); not measured$"):
        rules.decide(holds, noisy("x batch 1"), missing, noisy("y batch 2; x batch 1"))


def test_c10_reads_16_and_512_tokens_not_the_extremes_measured():
    cells = {}
    for n, ort in ((16, 10.0), (128, 7.0), (512, 4.0), (1024, 12.0)):  # at 1024 ORT's edge falls to 1.67×
        cells[("eager", 8, n)], cells[("ort", 8, n)] = 20.0, ort
    verdict, ours, _ = rules.c10(cpu(sweep_rows(cells=cells)))
    assert verdict == registry.HOLDS and "5.00× (95% CI 4.75–5.25) at 512" in ours
    cells[("ort", 8, 128)] = 2.0  # the edge at 128 (10×) clearly above 512's: not largest at 512
    verdict, _, reason = rules.c10(cpu(sweep_rows(cells=cells)))
    assert verdict == registry.FAILS and "the edge at 128 tokens is clearly above 512's" in reason
    with pytest.raises(registry.Untestable, match="was not measured at 16 and 512 tokens"):
        rules.c10(cpu(sweep_rows(cells={k: v for k, v in cells.items() if k[2] != 16})))


def test_c13_the_gap_must_clear_its_threshold_within_the_cis():
    assert rules.c13(cpu(eager_by_length(slope_at_1=0.8)))[0] == registry.HOLDS  # medians: 0.2 apart
    verdict, _, reason = rules.c13(cpu(with_ms_ci(eager_by_length(slope_at_1=0.8), half=0.05)))
    assert verdict == registry.FAILS and "0.13 lower at least (not more than 0.15" in reason
    assert rules.c13(cpu(with_ms_ci(eager_by_length(slope_at_1=0.3), half=0.05)))[0] == registry.HOLDS
