"""The one place that loads an agent: a run directory, a model file, ``oracle`` or ``random``.

Every loaded policy has the evaluation harness's signature
``policy(obs[N, ...], states) -> actions[N]`` and, where it has them,
``q_values(obs[N, ...]) -> [N, A]`` for ``catchrl watch``. A run directory loads
its kept model (``best.*``) unless ``which="final"``. SB3 files (``.zip``) are
pickles: loading one runs code from it, so catchrl loads one only from a path
the user names, and only with ``allow_sb3``. Keras and RLlib files hold no code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MODEL_CHOICES", "SCRIPTED", "LoadedPolicy", "PolicyLoadError", "load_policy"]

SCRIPTED = ("oracle", "random")
MODEL_CHOICES = ("best", "final")
"""Which model of a run directory to load."""


class PolicyLoadError(ValueError):
    """The named agent cannot be loaded; the message says why."""


@dataclass
class LoadedPolicy:
    """A policy ready for the evaluation harness, with the game it expects.

    Attributes:
        name: Display name.
        policy: ``policy(obs [N, ...], states) -> actions [N]`` (int).
        env_kwargs: The game it plays (``CatchEnv`` keyword arguments).
        q_values: ``q_values(obs [N, ...]) -> [N, A]`` float32, or ``None``.
        source: The file it was loaded from, in words (which model of a run), or "".

    """

    name: str
    policy: Callable[[np.ndarray, Any], np.ndarray]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    q_values: Callable[[np.ndarray], np.ndarray] | None = None
    source: str = ""


def load_policy(
    spec: str,
    overrides: dict[str, Any] | None = None,
    allow_sb3: bool = False,
    which: str = "best",
    trust_hint: str = "--sb3",
) -> LoadedPolicy:
    """Load ``oracle``/``random``, a run directory, or a ``.keras``/SB3 ``.zip``/RLlib ``.npz``.

    Args:
        spec: What the user named.
        overrides: Game options (``obs_type``, ``drift``...) replacing the run's own.
        allow_sb3: Whether an SB3 pickle may be loaded from this named path.
        trust_hint: How the refusal names the trust option (``--sb3``; the API's
            ``trust_sb3=True``).
        which: For a run directory: ``best`` (the kept model, when the run has one;
            else the final one) or ``final``. :attr:`LoadedPolicy.source` says which.

    Raises:
        PolicyLoadError: It cannot be loaded, or does not play this game.

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
    env_kwargs = {"obs_type": "pixels", **(cfg.env.game_kwargs() if cfg else {}), **overrides}
    name = path.name if path.is_dir() else f"{path.parent.name}/{path.name}"
    loaders = {".keras": _keras, ".zip": _sb3, ".npz": _rllib}
    if model.suffix not in loaders:
        raise PolicyLoadError(f"{model}: unknown model file type (expected .keras, .zip or .npz)")
    if model.suffix == ".zip" and not allow_sb3:
        raise PolicyLoadError(
            f"{model} is an SB3 file: loading it unpickles code; pass {trust_hint} if you trust it"
        )
    policy, q_values, shape = loaders[model.suffix](model, cfg.algo if cfg else None)
    _check_shape(model, shape, env_kwargs)
    return LoadedPolicy(name, policy, env_kwargs, q_values, source=describe_model(model))


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


def _model_name(algo: str) -> str:
    """The final model's file in a run directory of ``algo`` (the learners' ``model_name``)."""
    if algo.startswith("sb3"):
        return "model.zip"
    return "model-rllib.npz" if algo.startswith("rllib-") else "model.keras"


def _run_model(run_dir: Path, final_name: str, which: str) -> Path:
    """The model file of a run directory: ``best`` + the final model's suffix, or the final one."""
    if which not in MODEL_CHOICES:
        raise PolicyLoadError(f"model must be one of {MODEL_CHOICES}, not {which!r}")
    final = run_dir / final_name
    best = run_dir / ("best" + final.suffix)
    if which == "best" and best.is_file():
        return best
    if final.is_file():
        return final
    only = f"only {best.name}: " if which == "final" and best.is_file() else ""
    raise PolicyLoadError(
        f"{run_dir} has no {final.name} yet ({only}training not finished? "
        f"`catchrl train --run-dir {run_dir} --resume` finishes it)"
    )


def describe_model(path: Path) -> str:
    """Which model of a run a file is, in words: ``best.keras (validation 99.8% at step 9,504)``."""
    if path.stem == "best" and (path.parent / "best.json").is_file():
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


def _check_shape(model: Path, shape: tuple[int, ...], env_kwargs: dict[str, Any]) -> None:
    """Refuse a model whose observations are not the game's (SB3 may store them channels-first)."""
    from catchrl.envs import CatchEnv

    expected = tuple(CatchEnv(**env_kwargs).observation_space.shape)
    if shape not in (expected, (expected[-1], *expected[:-1])):
        raise PolicyLoadError(
            f"{model}: the model takes observations of shape {shape}, but the game gives "
            f"{expected} (obs_type {env_kwargs.get('obs_type', 'pixels')!r})"
        )


Loaded = tuple[Callable[..., np.ndarray], Callable[[np.ndarray], np.ndarray] | None, tuple]


def _first_line(e: BaseException) -> str:
    text = str(e).splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else repr(e)}"


def _keras(model_path: Path, algo: str | None) -> Loaded:
    """A saved Keras Q-network, greedy on its Q-values."""
    from catchrl.agents.networks import compile_forward, load_q_network

    try:
        model = load_q_network(str(model_path))
    except Exception as e:  # Keras raises many kinds for a file that is not a model
        raise PolicyLoadError(f"{model_path}: not a loadable Keras model ({_first_line(e)})") from e
    forward = compile_forward(model)

    def q_values(obs: np.ndarray) -> np.ndarray:
        return np.asarray(forward(np.asarray(obs)), dtype=np.float32)

    def policy(obs: np.ndarray, states: Any = None) -> np.ndarray:
        return np.argmax(q_values(obs), axis=1)

    return policy, q_values, tuple(model.input_shape[1:])


def _sb3(model_path: Path, algo: str | None) -> Loaded:
    """A saved SB3 model, greedy (``deterministic=True``); DQN and QR-DQN give Q-values."""
    from catchrl.agents.sb3 import (
        OFF_POLICY,
        SB3ConfigError,
        SB3NotInstalled,
        detect_algo,
        load_sb3_model,
    )
    from catchrl.frameworks import tensorboard_without_tensorflow

    tensorboard_without_tensorflow()  # SB3 imports torch.utils.tensorboard: not TensorFlow
    algo = algo or detect_algo(model_path)
    if algo is None:
        raise PolicyLoadError(
            f"{model_path}: not a Stable-Baselines3 model file (no readable 'data' metadata)"
        )
    try:
        model = load_sb3_model(model_path, algo)
    except (SB3NotInstalled, SB3ConfigError) as e:
        raise PolicyLoadError(str(e)) from e
    except Exception as e:  # torch/pickle raise many kinds for a bad file
        raise PolicyLoadError(f"{model_path}: cannot be loaded as {algo} ({_first_line(e)})") from e

    def policy(obs: np.ndarray, states: Any = None) -> np.ndarray:
        actions, _ = model.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64).reshape(len(obs))

    def q_values(obs: np.ndarray) -> np.ndarray:
        import torch

        tensor, _ = model.policy.obs_to_tensor(obs)
        with torch.no_grad():
            if algo == "sb3-qrdqn":
                q = model.policy.quantile_net(tensor).mean(dim=1)  # [N, Q, A] -> [N, A]
            else:
                q = model.policy.q_net(tensor)  # [N, A]
        return q.cpu().numpy()

    shape = tuple(model.observation_space.shape)
    return policy, (q_values if algo in OFF_POLICY else None), shape


def _rllib(model_path: Path, algo: str | None) -> Loaded:
    """A saved RLlib module (``model-rllib.npz``): no pickle, rebuilt from RLlib's spec."""
    from catchrl.agents.rllib_algos import OFF_POLICY
    from catchrl.agents.rllib_policy import RLlibModule

    try:
        model = RLlibModule(model_path)
    except (ValueError, ImportError) as e:
        raise PolicyLoadError(str(e)) from e
    q_values = model.q_values if model.algo in OFF_POLICY else None
    return model.actions, q_values, model.obs_shape
