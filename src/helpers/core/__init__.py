"""Measurement infrastructure every study shares: paths, timing, memory, result tables and raw
samples, the machine fingerprint and facts, progress, fidelity metrics."""
