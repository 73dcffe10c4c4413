"""How the report writes numbers: one wording for a ratio and for a speed-up with its CI,
shared by the takeaways and the claims' verdicts."""

from __future__ import annotations


def times(value: float) -> str:
    """A ratio: 2.00×."""
    return f"{value:.2f}×"


NO_DIFFERENCE = "no detectable difference"


def straddles_one(low: float, high: float) -> bool:
    """A speed-up whose 95% CI holds 1: faster or slower cannot be told apart from noise."""
    return low <= 1.0 <= high


NO_CI = "no CI: a single timed pass"


def interval(low: float, high: float) -> str:
    """A 95% CI in words: '95% CI 1.90–2.10', or NO_CI where there is none (one sample)."""
    if low != low or high != high:
        return NO_CI
    return f"95% CI {low:.2f}–{high:.2f}"


def ci(r) -> str:
    """A row's speed-up with its 95% CI: 2.00× (95% CI 1.90–2.10), labelled when the CI
    straddles 1: 1.01× (95% CI 0.96–1.06: no detectable difference)."""
    label = f": {NO_DIFFERENCE}" if straddles_one(r.speedup_ci_low, r.speedup_ci_high) else ""
    return f"{r.speedup:.2f}× ({interval(r.speedup_ci_low, r.speedup_ci_high)}{label})"


def less(before: float, after: float) -> str:
    """How much less (or more) `after` is than `before`: 2.00× less."""
    return f"{times(before / after)} less" if after <= before else f"{times(after / before)} more"


def fmt_list(items) -> str:
    """Items joined by commas, or "none"."""
    items = list(items)
    return ", ".join(items) if items else "none"
