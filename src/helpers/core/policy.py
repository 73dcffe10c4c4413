"""The one decision policy behind every answer: the README's recommendation, 07's pipeline,
08's claims and every chart that marks a floor.

- **Floors.** A reduced-precision recipe is recommended only where its embeddings keep every
  text's cosine to eager fp32's at least `min_cosine` and the nearest-neighbour recall@10
  against fp32's at least `min_recall_at_10`, measured on real text with real weights for the
  (model, recipe) that was timed. Random weights say nothing about a real model's loss: a
  random-weight shape is judged on speed only, and its answer names the check that would carry
  it (07 on the user's model). One pair of floors for every notebook (the parameters
  `min_cosine` and `min_recall_at_10` wherever a notebook declares them).
- **Rows that decide.** A timed row decides a verdict only when its median is known: at least
  `deciding_n` timings (or passes) and a 95% CI half-width within `deciding_ci` of the median.
  Which rows are trusted at all (status ok, agreement with fp32) is helpers.report.rows'.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from helpers.core.fidelity import floor_message, meets_floors


@dataclass(frozen=True)
class Policy:
    min_cosine: float = 0.99
    min_recall_at_10: float = 0.95
    deciding_n: int = 3
    deciding_ci: float = 0.10

    @classmethod
    def from_params(cls, params: Mapping) -> "Policy":
        """The policy with the floors a notebook's parameters name (the defaults where it names none)."""
        floors = {k: float(params[k]) for k in ("min_cosine", "min_recall_at_10") if params.get(k) is not None}
        return replace(cls(), **floors)

    def meets(self, fidelity: Mapping) -> bool:
        """Whether a measured fidelity ({cosine_min, recall_at_10}) is at or above both floors."""
        return meets_floors(fidelity, self.min_cosine, self.min_recall_at_10)

    def shortfall(self, fidelity: Mapping) -> str:
        """Which floor a measured fidelity misses, and by how much ('' when it meets both)."""
        return floor_message(fidelity, self.min_cosine, self.min_recall_at_10)

    def decides(self, n: float, ci_half_width: float) -> bool:
        """Whether a timed row's median is known well enough to decide a verdict."""
        return n >= self.deciding_n and ci_half_width <= self.deciding_ci

    @property
    def floors(self) -> dict:
        return {"min_cosine": self.min_cosine, "min_recall_at_10": self.min_recall_at_10}

    def words(self) -> str:
        return f"min cosine {self.min_cosine:g} and recall@10 {self.min_recall_at_10:g}"


POLICY = Policy()  # the defaults every notebook declares
