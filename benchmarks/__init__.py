"""Benchmarks of zoomer, run as modules (python -m benchmarks.engine); results go to BENCHMARKS.md."""
