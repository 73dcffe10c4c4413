"""Everything drawn or written from result tables: `rows` (which rows of a table are trusted and
which cells they belong to), `charts/`, `claims/`, `recommend/`, `prose/`, and `summary` (what
08_report shows). Report reads tables and names from the layers below; no study imports it."""
