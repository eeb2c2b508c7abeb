"""Stable-Baselines3 on Catch: one import for the algorithms, the ``VecEnv`` and loading.

The code lives in two modules, one job each:

- :mod:`catchrl.agents.sb3_algos`: :data:`ALGOS`, per-algorithm
  :data:`DEFAULTS`, :func:`sb3_kwargs` (checked options),
  :func:`make_sb3_model`, :func:`load_sb3_model`, :func:`detect_algo`;
- :mod:`catchrl.agents.sb3_env`: :class:`CatchSB3VecEnv`, the native vector
  env as an SB3 ``VecEnv`` (:func:`make_catch_vec_env`).

A saved ``.zip`` is loaded as a policy by :mod:`catchrl.policies`.

This module re-exports their public names, the ones the trainer and the
commands import from here. Nothing imports SB3 or torch until it is used.
"""

from __future__ import annotations

from catchrl.agents.sb3_algos import (
    ALGOS,
    DEFAULTS,
    OFF_POLICY,
    TARGET_PERIOD,
    AlgoSpec,
    SB3ConfigError,
    SB3NotInstalled,
    algorithm_class,
    constructor_options,
    detect_algo,
    load_sb3_model,
    make_sb3_model,
    policy_name,
    sb3_kwargs,
)
from catchrl.agents.sb3_env import CatchSB3VecEnv, make_catch_vec_env

__all__ = [
    "ALGOS",
    "DEFAULTS",
    "OFF_POLICY",
    "TARGET_PERIOD",
    "AlgoSpec",
    "CatchSB3VecEnv",
    "SB3ConfigError",
    "SB3NotInstalled",
    "algorithm_class",
    "constructor_options",
    "detect_algo",
    "load_sb3_model",
    "make_catch_vec_env",
    "make_sb3_model",
    "policy_name",
    "sb3_kwargs",
]
