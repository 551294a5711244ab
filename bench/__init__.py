"""Benchmarks: `python -m bench NAME` measures and prints JSON (and writes it with --out).

Speed and memory are measured here, never asserted by tests. Results kept in bench/results/.
"""
