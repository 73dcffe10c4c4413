"""What is measured: models (real and seeded random-weight shapes), corpora, batching plans."""
