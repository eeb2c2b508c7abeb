"""The benchmarks users run: ``catchrl bench env|agents|modules|supervised`` (BENCHMARKS.md)."""
