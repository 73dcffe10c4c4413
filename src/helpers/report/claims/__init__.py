"""The published claims: `registry` (C1–C17: text, source, thresholds, check, chart; their
verdicts and docs/claims.md), `rules` (the checks and the thresholds they apply) and `figures`
(the charts of the cells a claim reads)."""
