"""Recommendations: `workload` (the engine per device, model, batch and length), `pipeline` (07's
whole pipeline and its waterfall), `gap` (where 07's pipeline spends its time, and the bounds on
any pipeline here), `machines` (runs and machines side by side)."""
