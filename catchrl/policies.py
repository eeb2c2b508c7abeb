"""The one place that loads an agent: a run directory, a model file, ``oracle`` or ``random``.

SB3 files (``.zip``) are pickles (they run code): only with ``trust_sb3``; Keras/RLlib's are not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from catchrl.agents.policy import Agent, model_agent, scripted_agent
from catchrl.config import ConfigError, TrainConfig, load_config
from catchrl.errors import CatchrlError
from catchrl.learners import learner_class
from catchrl.monitor import tensorboard_without_tensorflow
from catchrl.runloop import Learner

SCRIPTED = ("oracle", "random")


class AgentLoadError(CatchrlError, ValueError):
    """The agent cannot be loaded; the message says why."""


def load_agent(
    source: str | Path | Agent, trust_sb3: bool = False, model: str = "best", **game: Any
) -> Agent:
    """Load ``oracle``/``random``, a run directory, or a ``.keras``/SB3 ``.zip``/RLlib ``.npz``.

    ``model``: a run directory's ``best`` (its kept model, if there is one) or ``final``;
    ``game``: options replacing the run's own (``obs_type``, ``drift``, ``balls_per_game``,
    ``walls``, ``spawn``).
    """
    if isinstance(source, Agent):
        return source
    if str(source) in SCRIPTED:
        try:
            return scripted_agent(str(source), {"obs_type": "state", **game})
        except ValueError as e:  # the game refuses the options
            raise AgentLoadError(str(e)) from e
    path = Path(source)
    if not path.exists():
        raise AgentLoadError(
            f"{str(source)!r} is neither a file, a run directory, nor one of {SCRIPTED}"
        )
    is_run = path.is_dir()
    run_dir = path if is_run else path.parent
    cfg = _run_config(run_dir) if is_run or (run_dir / "config.toml").is_file() else None
    file = _run_model(run_dir, learner_class(cfg.algo), model) if is_run else path
    env_kwargs = {"obs_type": "pixels", **(cfg.env.game_kwargs() if cfg else {}), **game}
    if file.suffix == ".zip":
        tensorboard_without_tensorflow()  # SB3 imports torch.utils.tensorboard, not TensorFlow
    name = path.name if is_run else f"{run_dir.name}/{path.name}"
    try:
        algo = cfg.algo if cfg else None
        return model_agent(file, name, env_kwargs, algo, describe_model(file), trust_sb3)
    except (ValueError, ImportError) as e:
        raise AgentLoadError(str(e)) from e


def _run_config(run_dir: Path) -> TrainConfig:
    if not (run_dir / "config.toml").is_file():
        raise AgentLoadError(f"{run_dir} is not a run directory (no config.toml)")
    try:
        cfg = load_config(path=run_dir / "config.toml")
        learner_class(cfg.algo)
    except ConfigError as e:
        raise AgentLoadError(f"{run_dir}: bad config.toml ({e})") from e
    return cfg


def _run_model(run_dir: Path, learner: type[Learner], which: str) -> Path:
    """A run's kept model (``best.*``, unless ``which="final"``) or its final one."""
    final, best = run_dir / learner.model_name, run_dir / learner.best_name()
    if which == "best" and best.is_file():
        return best
    if final.is_file():
        return final
    only = f"only {best.name}: " if best.is_file() else ""
    raise AgentLoadError(
        f"{run_dir} has no {final.name} yet ({only}training not finished? "
        f"`catchrl train --run-dir {run_dir} --resume` finishes it)"
    )


def describe_model(path: Path) -> str:
    """Which model of a run a file is: ``best.keras, the best validation model (99.80% at ...)``."""
    if path.stem == "best" and (path.parent / "best.json").is_file():
        try:
            best = json.loads((path.parent / "best.json").read_text())
            score = f" ({100 * best['win_rate']:.2f}% at step {best['steps']:,})"
        except (OSError, ValueError, KeyError, TypeError):
            score = ""
        return f"{path.name}, the best validation model{score}"
    if path.stem.startswith("model") and (path.parent / "config.toml").is_file():
        return f"{path.name}, the final model"
    return path.name
