"""Everything drawn or written from result tables: figure style and saving, charts, takeaway
sentences, the published claims and their verdicts, recommendations, and reference READMEs."""
