"""Benchmarks (`make bench`): figures written to docs/benchmarks.md, never timed unit tests."""
