"""08_report: the published claims C1-C17 as a registry (CLAIMS: one Claim each, with its
source, their figure, the thresholds its check applies and the chart beside it), their
verdicts on a run's result tables, and docs/claims.md generated from the registry.

The checks and their thresholds are in report.claims.rules, the rows they read in
report.rows. Each claim's written rule is its check's docstring (`rule`), printed in
docs/claims.md: one place, beside the code that implements it. Regenerate the docs with `python -m helpers.report.claims.registry > docs/claims.md`.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from helpers.core.policy import POLICY
from helpers.report.claims import rules
from helpers.report.claims.rules import FAILS, HOLDS, UNTESTABLE  # noqa: F401 (the verdicts, read from here)
from helpers.report.rows import Untestable

TABLES = (
    "00_ceilings",
    "01_export",
    "02_variants",
    "02_speed",
    "03_cpu_sweep",
    "04_gpu_sweep",
    "04_fidelity",
    "05_sorting",
    "06_generation",
    "06_memory",
    "06_agreement",
    "07_pipeline",
    "00_harness_check",
)


@dataclass(frozen=True)
class Source:
    """A published write-up: its title, author or site, year, and link where public."""

    title: str
    author: str
    year: str = ""
    link: str = ""

    def markdown(self) -> str:
        title = f"[{self.title}]({self.link})" if self.link else self.title
        return ", ".join(part for part in (f'"{title}"', self.author, self.year) if part)


@dataclass(frozen=True)
class Claim:
    """One published claim: what it says, on what setup, their figure, where it comes from,
    the named thresholds (constants of report.claims.rules) its check applies, the check (whose
    docstring is the claim's written rule), and the chart that shows our side."""

    id: str
    text: str
    setup: str
    theirs: str
    source: Source
    check: Callable
    figure: str = ""
    thresholds: tuple[str, ...] = ()
    tested_by: str = ""


ALIBABA = Source(
    "模型推理加速系列 04: BERT加速方案对比 TorchScript vs. ONNX (Model inference acceleration series 04: "
    "BERT acceleration compared, TorchScript vs. ONNX)",
    "Alibaba Cloud developer community",
)
ELS_RD = Source(
    "transformer-deploy, and its write-up on Transformer inference with ONNX Runtime, Triton and TensorRT "
    "(read in a Chinese translation, 你在用 PyTorch 写 transformer 吗?)",
    "ELS-RD",
    "2021–2022",
    "https://github.com/ELS-RD/transformer-deploy",
)
T5_OPTIMUM = Source(
    "Accelerating T5 inference with Hugging Face Optimum and ONNX Runtime (export, O3 optimization, dynamic INT8; "
    "read in a Chinese translation)",
    "an article on Hugging Face Optimum",
)
HABR = Source(
    "Ускорение инференса модели BERT с помощью ONNX и ONNX Runtime на примере решения задачи классификации текста "
    "(Speeding up BERT inference with ONNX and ONNX Runtime on a text classification task)",
    "Rostelecom corporate blog on Habr",
    "2022",
    "https://habr.com/ru/company/rostelecom/blog/704844",
)
LETTRIA = Source(
    "An empirical approach to speedup your BERT inference with ONNX/Torchscript",
    "Lettria blog",
    "2021-02-05",
    "https://www.lettria.com/blogpost/an-empirical-approach-to-speedup-your-bert-inference-with-onnx-torchscript",
)
SBERT = Source(
    "Speeding up Inference (efficiency guide: CPU benchmark of the backends)",
    "sentence-transformers documentation",
    "2024–2025",
    "https://sbert.net/docs/sentence_transformer/usage/efficiency.html",
)
OPENVINO = Source(
    "Performance benchmarks (bert-base-cased, Intel Xeon Platinum 8490H, fp32 / bf16 / int8 throughput)",
    "OpenVINO documentation",
    "2025",
    "https://docs.openvino.ai/2025/about-openvino/performance-benchmarks.html",
)
ALL_OF_THEM = Source("the common lesson of all of the write-ups above", "")

_c6_s, _c6_mib = rules.C6_SECONDS, rules.C6_MEMORY_MIB

_REGISTRY = (
    Claim(
        "C1",
        "CPU: ORT beats eager and TorchScript for BERT-base",
        "BERT-base, AMD EPYC 7713",
        "b1: eager 1870 ms, TS 2200, ONNX 36.2",
        ALIBABA,
        rules.c1,
        "03_latency_vs_batch",
        ("C1_BATCHES", "BERT_BASE_PARAMS"),
        "03: bert-base shape, batch 1/8/16, eager vs TorchScript vs ORT",
    ),
    Claim(
        "C2",
        "GPU: ORT fastest at small batch, TorchScript at large",
        "BERT-base, RTX 3090",
        "b1: 5.6/4.0/2.0 ms; b256: 22.3/21.8/25.2",
        ALIBABA,
        rules.c2,
        "04_speedup_vs_batch",
        ("C2_BATCHES", "BERT_BASE_PARAMS"),
        "04: batch 1 and 256, same three engines",
    ),
    Claim(
        "C3",
        "GPU: ORT/Triton 2–4× over PyTorch, TensorRT about 5×",
        "GPU, transformer models",
        "2–4×; TensorRT 5× (up to 10×)",
        ELS_RD,
        rules.c3,
        "04_speedup_vs_batch",
        ("C3_ORT", "C3_TENSORRT", "ROUGHLY"),
        "04: the best ORT cell and the best TensorRT cell vs eager fp32",
    ),
    Claim(
        "C4",
        "GPU INT8 (QDQ) 4.5× faster for −0.4 accuracy points",
        "RoBERTa-base, seq 256, batch 32, RTX 3090; 3.2× with no loss",
        "RTX 3090: 77 → 17 ms",
        ELS_RD,
        rules.c4,
        "",
        (),
        "04 / 02 where the GPU stack allows; otherwise cannot be tested here, with the reason",
    ),
    Claim(
        "C5",
        "CPU inference is weak without batching, short sequences, small models",
        "CPU; quantization is easy",
        "qualitative",
        HABR,
        rules.c5,
        "03_throughput",
        ("C5_BATCHING_GAIN", "C5_BATCH", "C5_SHORT", "BERT_BASE_PARAMS", "SMALL_PARAMS", "LARGE_PARAMS"),
        "03: eager, bert-base's items/s at batch 8 against batch 1 and its time per item at 32 against 128 tokens; "
        "small models against bert-base at batch 1",
    ),
    Claim(
        "C6",
        "T5-small: ONNX + O3 + INT8 about 5× faster, 2.2× less inference memory",
        "T5-small generation on CPU, optimum",
        f"{_c6_s[0]} → {_c6_s[1]} s; +{_c6_mib[0]} → +{_c6_mib[1]} MiB",
        T5_OPTIMUM,
        rules.c6,
        "06_speedups",
        ("C6_BATCH", "C6_SPEEDUP", "C6_MEMORY_RATIO", "ROUGHLY", "C6_SECONDS", "C6_MEMORY_MIB"),
        "06: T5-small, one text (batch 1) at the shortest input and the most new tokens, PyTorch generate vs "
        "ort-o3-int8; time and memory increment. In `figures/06_speedups.png` that is the panel of the shortest "
        "input, ort-o3-int8's batch-1 bar",
    ),
    Claim(
        "C7",
        "1 CPU core: ORT 2.1–2.3× over PyTorch (small BERTs), 1.8× (base size)",
        "rubert-tiny / rubert-tiny2 / rubert-base (3.6M–180M params), i5-1135G7, 1 thread",
        "i5-1135G7, 1 thread",
        HABR,
        rules.c7,
        "03_one_thread",
        ("C7_SMALL", "C7_BASE", "SMALL_PARAMS", "LARGE_PARAMS", "ROUGHLY"),
        "03: model-size sweep at 1 thread",
    ),
    Claim(
        "C8",
        "Dynamic INT8 adds 1.4–1.5× (small), 2.4× (base) over ORT fp32; ~1.25× at every length",
        "rubert models, i5-1135G7",
        "",
        HABR,
        rules.c8,
        "03_latency_vs_length",
        ("C8_SMALL", "C8_BASE", "C8_BY_LENGTH", "C8_BATCH", "SMALL_PARAMS", "LARGE_PARAMS", "ROUGHLY"),
        "02 / 03: INT8 vs fp32 ORT across sizes and lengths",
    ),
    Claim(
        "C9",
        "ORT's edge largest at batch 1–8; INT8's edge grows above batch 32",
        "rubert-tiny2, i5-1135G7",
        "rubert-tiny2, batch 1…128",
        HABR,
        rules.c9,
        "03_throughput",
        ("C9_SMALL_BATCH", "C9_LARGE_BATCHES", "C9_INT8_FROM", "C9_INT8_GROWS"),
        "03: speed-up vs batch size curves; INT8's edge over ORT fp32 grows when its mean above batch 32 is more "
        "than `C9_INT8_GROWS` times its edge at batch 32",
    ),
    Claim(
        "C10",
        "ORT's edge grows with sequence length, largest at 512",
        "rubert models, i5-1135G7",
        "16…512 tokens",
        HABR,
        rules.c10,
        "03_latency_vs_length",
        ("C10_BATCH", "C10_LENGTHS", "C10_GROWS"),
        "03: speed-up vs sequence length at batch 8, 16 to 512 tokens",
    ),
    Claim(
        "C11",
        "CPU: ONNX wins below batch 32; the three formats within ~10% by batch 64",
        "camemBERT on CPU",
        "camemBERT",
        LETTRIA,
        rules.c11,
        "03_latency_vs_batch",
        ("C11_BELOW", "C11_AT", "C11_WITHIN"),
        "03: eager / TorchScript / ORT at batch 1…64",
    ),
    Claim(
        "C12",
        "GPU: best batch depends on the GPU; 12× (T4) to 28× (V100) over batch-1",
        "camemBERT on T4 and V100",
        "T4: batch 8; V100: 32–64",
        LETTRIA,
        rules.c12,
        "04_per_item_vs_batch",
        ("C12_GAIN", "C12_KNEE", "ROUGHLY", "BERT_BASE_PARAMS"),
        "04: per-item time vs batch; the knee",
    ),
    Claim(
        "C13",
        "Per-item time grows ~linearly with length at large batch, not at batch 1",
        "camemBERT",
        "",
        LETTRIA,
        rules.c13,
        "03_length_slopes",
        ("C13_LINEAR", "C13_GAP"),
        "03 / 04: time vs length per batch size",
    ),
    Claim(
        "C14",
        "Sorting by length: batch 16→64, unsorted ~20% slower per item, sorted ~10% faster",
        "camemBERT, 1k sentences of varied length",
        "1k sentences",
        LETTRIA,
        rules.c14,
        "05_throughput_eager",
        ("C14_DISTRIBUTION", "C14_ENGINE", "C14_BATCHES", "C14_UNSORTED", "C14_SORTED", "C14_SORTED_MAX"),
        "05: unsorted vs sorted, time per item from batch 16 to 64, on the synthetic sentences scenario with eager",
    ),
    Claim(
        "C15",
        "Quantization costs a small, model-dependent accuracy loss: measure it per model",
        "every write-up above",
        "",
        ALL_OF_THEM,
        rules.c15,
        "02_pareto",
        ("C15_SPREAD",),
        "02: fidelity per model and method",
    ),
    Claim(
        "C16",
        "sentence-transformers CPU backends: OpenVINO static INT8 ~4.8× torch fp32, onnx qint8 ~2.3×, "
        "fp32 ones ~1.1×, at over 99.6% of its score",
        "its own CPU (no AMX); short sentences",
        "OpenVINO static INT8 4.8×; onnx qint8 2.3×; onnx, openvino 1.1× (the version of the guide judged here; "
        "it now reports 5.29× openvino-qint8, 3.23× onnx-qint8, 1.06× onnx / 1.13× openvino on an i7-13700K)",
        SBERT,
        rules.c16,
        "07_pareto",
        ("C16_STATIC", "C16_QINT8", "C16_FP32", "C16_SCORE", "C16_BATCH", "ROUGHLY"),
        "07: the peer rows (sentence-transformers' backends) against st-torch, with fidelity",
    ),
    Claim(
        "C17",
        "OpenVINO on a Xeon with AMX: bert-base ~4.2× faster in bf16, ~6.4× in INT8 than in fp32",
        "bert-base-cased, Xeon Platinum 8490H (AMX), throughput",
        "bf16 4.2×; INT8 6.4×",
        OPENVINO,
        rules.c17,
        "03_throughput",
        ("C17_BF16", "C17_INT8", "ROUGHLY", "BERT_BASE_PARAMS"),
        "03: ov / ov-bf16 / ov-int8 at bert-base, the largest batch all three ran",
    ),
)

CLAIMS: dict[str, Claim] = {c.id: c for c in _REGISTRY}


@dataclass
class Verdict:
    id: str
    claim: str
    theirs: str
    ours: str
    verdict: str
    reason: str
    figure: str


def load_tables(results_dir: str | Path) -> dict[str, pd.DataFrame | None]:
    """Every result table of a run (None where its notebook has not run)."""
    from helpers.core.tables import read_one_run

    return {name: read_one_run(Path(results_dir) / f"{name}.csv") for name in TABLES}


def evaluate_claims(t: dict, figures_dir: str | Path | None = None) -> list[Verdict]:
    """Every claim with a verdict and its reason; nothing left blank."""
    out = []
    for claim in CLAIMS.values():
        try:
            verdict, ours, reason = claim.check(t)
        except Untestable as exc:  # anything else is a bug, and raises
            verdict, ours, reason = UNTESTABLE, "—", str(exc)
        figure = claim.figure
        exists = figure and (figures_dir is None or (Path(figures_dir) / f"{figure}.png").exists())
        out.append(
            Verdict(claim.id, claim.text, claim.theirs or "—", ours, verdict, reason, f"{figure}.png" if exists else "")
        )
    return out


def claims_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([asdict(v) for v in verdicts])


def link(figure: str, prefix: str) -> str:
    return f"[{figure.removesuffix('.png')}]({prefix}{figure})" if figure else "—"


def claims_markdown(verdicts: list[Verdict], figure_prefix: str = "../figures/") -> str:
    lines = ["| claim | their figure | ours, on this hardware | verdict | why | figure |", "|---|---|---|---|---|---|"]
    lines += [
        f"| **{v.id}** {v.claim} | {v.theirs} | {v.ours} | **{v.verdict}** | {v.reason} | {link(v.figure, figure_prefix)} |"
        for v in verdicts
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- docs/claims.md
def _threshold(name: str) -> str:
    value = getattr(rules, name)
    return f"`{name}` = {value:g}" if isinstance(value, (int, float)) else f"`{name}` = {value}"


def rule(claim: Claim) -> str:
    """A claim's written rule: its check's docstring on one line (the rows it selects, the
    metric, the thresholds by name, and when it holds, does not hold or cannot be tested)."""
    return " ".join(inspect.getdoc(claim.check).split())


def claims_doc() -> str:
    """docs/claims.md: every claim of the registry with its source, their figure, its written
    rule, the thresholds its check applies and its chart."""
    lines = [
        "# The published claims the study re-tests",
        "",
        "<!-- Generated from helpers.report.claims.registry.CLAIMS; do not edit by hand. Regenerate with",
        "     PYTHONPATH=src python -m helpers.report.claims.registry > docs/claims.md -->",
        "",
        "Each claim comes from a published write-up. `08_report` puts each one beside the figure measured",
        "here and gives a verdict: **holds**, **does not hold**, or **cannot be tested here** (with the reason).",
        "A claim's numbers belong to its authors' hardware; what is tested is its shape (which engine wins, by",
        f"roughly how much, where the cross-over is). *Roughly* is within a factor of `ROUGHLY` = {rules.ROUGHLY:g}",
        "of their figure. Each claim's **rule** below is its check's docstring (`helpers.report.claims.rules`,",
        "whose module docstring says how every rule decides; the selectors it names are in",
        "`helpers.report.rows`): the rows it reads, by their conditions and never by their position, the",
        "metric, and its thresholds by name. Four things hold for every rule:",
        "",
        "- A verdict resting on a row whose median is not known (the decision policy, `helpers.core.policy`:",
        f"  fewer than {POLICY.deciding_n} timings, or a 95% CI wider than {POLICY.deciding_ci:.0%} of the median) is",
        '  **cannot be tested here** ("cannot be decided: noisy", naming the cells).',
        "- *Faster* is one rule (`rules.faster`): the ratio of medians with its 95% CI above 1. A ratio's CI",
        "  (`rules.ratio_ci`) comes from the rows' speed-up CIs for two engines at one shape, from the two",
        "  medians' CIs for two shapes.",
        "- **Holds** needs the CI to clear the threshold: above it for *faster*, *grows* and *at least*, inside",
        "  the band for *roughly*. A CI that reaches the threshold, or straddles the band's edge, **does not",
        "  hold**: the claim is not shown on rows whose medians are known.",
        "- A claim of several parts holds when every part holds, does not hold when a part decided on",
        "  trusted rows does not, and otherwise cannot be tested here, the undecided parts named",
        "  (`rules.decide`).",
        "",
    ]
    for c in CLAIMS.values():
        lines += [
            f"## {c.id}: {c.text}",
            "",
            f"- their setup: {c.setup}",
            f"- their figure: {c.theirs or '—'}",
            f"- source: {c.source.markdown()}",
            f"- tested by: {c.tested_by or '—'}",
            f"- rule: {rule(c)}",
            f"- check: `rules.{c.check.__name__}`; thresholds: "
            + (", ".join(_threshold(n) for n in c.thresholds) or "none"),
            f"- chart: {f'`figures/{c.figure}.png`' if c.figure else '—'}",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(claims_doc(), end="")
