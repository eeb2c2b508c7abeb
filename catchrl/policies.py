"""Turn what the user names — a run directory, a model file, ``oracle`` — into a policy.

Every loaded policy has the evaluation harness's signature
``policy(obs[N, ...], states) -> actions[N]`` and, where it has them, a
``q_values(obs[N, ...]) -> [N, A]`` function for ``catchrl watch``.

SB3 files (``.zip``) are pickles: loading one runs code from it. catchrl loads
one only from a path the user names (a ``model.zip`` or the run directory of
an SB3 run), never by searching for files.

:class:`LoadedPolicy` and :class:`PolicyLoadError` are defined in the agents
layer (:mod:`catchrl.agents.policy`, whose loaders return them) and re-exported
here for the application.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from catchrl.agents.policy import LoadedPolicy, PolicyLoadError, load_keras_policy

__all__ = ["MODEL_CHOICES", "LoadedPolicy", "PolicyLoadError", "describe_model", "load_policy"]

SCRIPTED = ("oracle", "random")
MODEL_CHOICES = ("best", "final")
"""Which model of a run directory to load."""


def _scripted(name: str, overrides: dict[str, Any]) -> LoadedPolicy:
    from catchrl.agents.scripted import OraclePolicy, RandomPolicy
    from catchrl.envs import CatchEnv

    env_kwargs = {"obs_type": "state", **overrides}
    params = CatchEnv(**env_kwargs).params
    policy = OraclePolicy(params) if name == "oracle" else RandomPolicy(seed=0)
    return LoadedPolicy(name, policy, env_kwargs)


def _run_config(run_dir: Path) -> Any:
    from catchrl.config import ConfigError, load_run_config

    try:
        return load_run_config(run_dir / "config.toml")
    except ConfigError as e:
        raise PolicyLoadError(f"{run_dir}: bad config.toml ({e})") from e


def _run_model(run_dir: Path, final_name: str, which: str) -> Path:
    """The model file of a run directory: ``best`` (the kept one, if any) or ``final``.

    The kept model is ``best`` + the final model's suffix (``best.keras``, ``best.zip``,
    ``best.npz``), as the run loop writes it.
    """
    if which not in MODEL_CHOICES:
        raise PolicyLoadError(f"model must be one of {MODEL_CHOICES}, not {which!r}")
    final = run_dir / final_name
    best = run_dir / ("best" + final.suffix)
    if which == "best" and best.is_file():
        return best
    if final.is_file():
        return final
    if which == "final" and best.is_file():
        raise PolicyLoadError(
            f"{run_dir} has no {final.name} yet (only {best.name}: training not finished? "
            f"`catchrl train --run-dir {run_dir} --resume` finishes it)"
        )
    raise PolicyLoadError(
        f"{run_dir} has no {final.name} yet (training not finished? "
        f"`catchrl train --run-dir {run_dir} --resume` finishes it)"
    )


def describe_model(path: Path) -> str:
    """Which model of a run a file is, in words: ``best.keras (validation 99.8% at step 9,504)``."""
    if path.stem == "best" and (path.parent / "best.json").is_file():
        import json

        try:
            best = json.loads((path.parent / "best.json").read_text())
            return (
                f"{path.name}, the best validation model "
                f"({100 * best['win_rate']:.2f}% at step {best['steps']:,})"
            )
        except (OSError, ValueError, KeyError, TypeError):
            return f"{path.name}, the best validation model"
    if path.stem.startswith("model") and (path.parent / "config.toml").is_file():
        return f"{path.name}, the final model"
    return path.name


def _model_name(algo: str) -> str:
    """The final model's file in a run directory of ``algo`` (the learners' ``model_name``)."""
    if algo.startswith("sb3"):
        return "model.zip"
    return "model-rllib.npz" if algo.startswith("rllib-") else "model.keras"


def load_policy(
    spec: str,
    overrides: dict[str, Any] | None = None,
    allow_sb3: bool = True,
    which: str = "best",
) -> LoadedPolicy:
    """Load ``oracle``/``random``, a run directory, or a ``.keras``/SB3 ``.zip``/RLlib ``.npz``.

    Args:
        spec: What the user named.
        overrides: Game options (``obs_type``, ``drift``...) replacing the run's own.
        allow_sb3: Whether an SB3 pickle may be loaded from this named path.
        which: For a run directory: ``best`` (the kept model, ``best.keras``/
            ``best.zip``, when the run has one; else the final one) or ``final``
            (``model.keras``/``model.zip``). :attr:`LoadedPolicy.source` says which.

    """
    overrides = dict(overrides or {})
    if spec in SCRIPTED:
        return _scripted(spec, overrides)
    path = Path(spec)
    if not path.exists():
        raise PolicyLoadError(f"{spec!r} is neither a file, a run directory, nor one of {SCRIPTED}")
    cfg = None
    if path.is_dir():
        if not (path / "config.toml").is_file():
            raise PolicyLoadError(f"{path} is not a run directory (no config.toml)")
        cfg = _run_config(path)
        model = _run_model(path, _model_name(cfg.algo), which)
    else:
        model = path
        if (path.parent / "config.toml").is_file():
            cfg = _run_config(path.parent)
    env_kwargs = {**(cfg.env.game_kwargs() if cfg else {}), **overrides}
    env_kwargs.setdefault("obs_type", "pixels")
    name = path.name if path.is_dir() else f"{path.parent.name}/{path.name}"
    if model.suffix == ".keras":
        loaded = load_keras_policy(model, env_kwargs, name)
    elif model.suffix == ".zip":
        if not allow_sb3:
            raise PolicyLoadError(
                f"{model} is an SB3 file: loading it unpickles code; pass --sb3 if you trust it"
            )
        from catchrl.agents.sb3_policy import load_sb3_policy
        from catchrl.frameworks import tensorboard_without_tensorflow

        tensorboard_without_tensorflow()  # SB3 imports torch.utils.tensorboard: not TensorFlow

        loaded = load_sb3_policy(model, env_kwargs, name, algo=cfg.algo if cfg else None)
    elif model.suffix == ".npz":
        from catchrl.agents.rllib_policy import load_rllib_policy

        loaded = load_rllib_policy(model, env_kwargs, name)
    else:
        loaded = None
    if loaded is not None:
        return dataclasses.replace(loaded, source=describe_model(model))
    raise PolicyLoadError(f"{model}: unknown model file type (expected .keras, .zip or .npz)")
