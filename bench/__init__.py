"""Benchmarks: measured, not asserted. Run with `make bench`; results go to bench-results/."""
