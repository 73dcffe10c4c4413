"""The charts: `style` (one look for every chart, one colour and marker per engine, byte-identical
saving and the gallery), then one module per notebook, each drawing from its result tables."""
