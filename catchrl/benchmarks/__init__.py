"""Throughput benchmarks (the environment: :mod:`catchrl.benchmarks.env`).

Results, with the commands that made them, are in ``BENCHMARKS.md``.
"""
