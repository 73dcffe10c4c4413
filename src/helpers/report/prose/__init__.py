"""Sentences computed from tables: `text` (how numbers are written), `takeaways` (the sentences
under each chart) and `answers` (the lines each notebook opens with)."""
