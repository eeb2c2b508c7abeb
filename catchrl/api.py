"""catchrl's Python API: the ``catchrl`` commands as functions; the one place that loads agents."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from catchrl import evaluation
from catchrl.agents.policy import Agent, model_agent, scripted_agent
from catchrl.agents.rllib_algos import rllib_options
from catchrl.agents.sb3 import sb3_kwargs
from catchrl.config import NATURE_CNN_MIN_SIZE, ConfigError, TrainConfig, load_config
from catchrl.errors import CatchrlError
from catchrl.evaluation import EvalResult
from catchrl.learners import learner_class, open_run
from catchrl.monitor import configure_frameworks
from catchrl.runloop import Learner, TrainResult
from catchrl.video import GamesPlayed, check_video_path, encode_video, play_agent

SCRIPTED = ("oracle", "random")


class AgentLoadError(CatchrlError, ValueError):
    """The agent cannot be loaded; the message says why."""


def load_agent(
    source: str | Path | Agent, trust_sb3: bool = False, model: str = "best", **game: Any
) -> Agent:
    """Load ``oracle``/``random``, a run directory, or a ``.keras``/SB3 ``.zip``/RLlib ``.npz``.

    ``model``: a run's ``best`` (if kept) or ``final``; ``game``: CatchEnv options replacing the
    run's. An SB3 ``.zip`` is a pickle (it runs code): refused unless ``trust_sb3``.
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


def make_config(
    preset: str | TrainConfig = "fast",
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    algo: str | None = None,
    defaults: bool = True,
) -> TrainConfig:
    """A preset (``fast``, ``fast-state``, ``book``) or a config, a TOML file, overrides, ``algo``.

    ``defaults``: merge the SB3/RLlib defaults into ``cfg.sb3``/``cfg.rllib`` (False: checked only).
    """
    cfg = load_config(preset, path, list(overrides), algo)
    learner_class(cfg.algo)
    env = cfg.env
    if cfg.algo.startswith("rllib-"):
        merged = rllib_options(cfg.algo, env.obs_type, cfg.rllib, env.num_envs)
        cfg.rllib = merged if defaults else cfg.rllib
    elif cfg.algo.startswith("sb3-"):
        merged = sb3_kwargs(cfg.algo, env.obs_type, cfg.sb3, env.num_envs)
        extractor = merged.get("policy_kwargs", {}).get("features_extractor_class")
        nature_cnn = merged["policy"] == "CnnPolicy" and extractor != "tiny"
        if nature_cnn and env.frame_size < NATURE_CNN_MIN_SIZE:
            raise ConfigError(
                f"env.frame_size = {env.frame_size}: SB3's NatureCNN needs >= "
                f"{NATURE_CNN_MIN_SIZE} px; leave env.frame_size out (80 px) or set "
                'sb3.policy_kwargs = {features_extractor_class = "tiny", net_arch = []}'
            )
        cfg.sb3 = merged if defaults else cfg.sb3
    return cfg


def train(
    config: TrainConfig | str | Path,
    run_dir: str | Path,
    *,
    overrides: Sequence[str] = (),
    algo: str | None = None,
    resume: bool = False,
    progress: bool | None = None,
    callbacks: Sequence[Callable[[dict[str, Any]], bool | None]] = (),
    trust_sb3: bool = False,
    verbose: bool = False,
) -> TrainResult:
    """Train into ``run_dir`` as ``catchrl train`` does (``config``: a TrainConfig, preset or TOML).

    ``progress``: as :class:`RunLoop`'s; ``callbacks`` get each validation record (True: stop).
    """
    configure_frameworks(verbose)
    cfg = None  # on resume: the checkpoint's
    if not resume:
        path = config if str(config).endswith(".toml") else None
        preset = config if isinstance(config, TrainConfig) else str(config)
        cfg = make_config("fast" if path else preset, path, overrides, algo)

    hook = (lambda r: any([bool(c(r)) for c in callbacks])) if callbacks else None  # all called
    run = (cfg, run_dir, resume, list(overrides) if resume else (), trust_sb3)
    return open_run(*run, progress=progress, on_evaluation=hook).run()


def evaluate(
    agent: Agent | str | Path, games: int = 1000, seed: int | None = None, trust_sb3: bool = False
) -> EvalResult:
    """Greedy win rate on ``games`` games from ``seed`` (default: the test games), as eval."""
    agent = load_agent(agent, trust_sb3)
    seed = evaluation.TEST_SEED if seed is None else seed
    return evaluation.evaluate(agent.policy, games=games, seed=seed, **agent.env_kwargs)


def record(
    agent: Agent | str | Path,
    path: str | Path,
    games: int = 3,
    seed: int = 0,
    fps: int = 30,
    trust_sb3: bool = False,
) -> GamesPlayed:
    """Write ``games`` games (game ``g`` seeded ``seed + g``) to a GIF or an MP4, a frame a step."""
    path = Path(path)
    check_video_path(path, "path")
    played = play_agent(load_agent(agent, trust_sb3), games, seed, record=True)
    path.write_bytes(encode_video(played.frames, fps, path.suffix.lower()))
    return played


def show(
    agent: Agent | str | Path, games: int = 3, seed: int = 0, fps: int = 30, trust_sb3: bool = False
) -> Any:
    """The games as an animated GIF that Jupyter shows inline (``IPython.display.Image``)."""
    try:
        from IPython.display import Image
    except ImportError as e:
        raise CatchrlError(
            "show() needs IPython (pip install 'catchrl[notebook]'); "
            "in a script use catchrl.record(agent, 'games.gif')"
        ) from e
    played = play_agent(load_agent(agent, trust_sb3), games, seed, record=True)
    return Image(data=encode_video(played.frames, fps), format="gif")


def watch(
    agent: Agent | str | Path, games: int = 3, seed: int = 0, fps: int = 30, trust_sb3: bool = False
) -> GamesPlayed:
    """Play ``games`` games in a pygame window (ESC or closing it stops), as ``catchrl watch``."""
    return play_agent(load_agent(agent, trust_sb3), games, seed, fps)
