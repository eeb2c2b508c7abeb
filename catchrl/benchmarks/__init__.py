"""The benchmarks users run: ``catchrl bench env``, ``agents``, ``modules``, ``supervised``.

Their current figures, each with the command that made it, are in ``BENCHMARKS.md``.
"""
