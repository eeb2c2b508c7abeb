"""catchrl's Python API, for scripts and notebooks: train, load, act, evaluate, watch.

Every name here is also reachable as ``catchrl.<name>`` (loaded on first use, so
``import catchrl`` stays light: no TensorFlow, no torch)::

    import catchrl

    result = catchrl.train("fast-state", "runs/state", overrides=["run.total_steps=20000"])
    agent = catchrl.load_agent("runs/state")        # a run directory, .keras, .zip, "oracle"
    print(catchrl.evaluate(agent, games=1000).summary())
    catchrl.show(agent, games=3)                     # in Jupyter: the games, inline
    catchrl.record(agent, "games.mp4")               # in a script: a GIF or an MP4
    catchrl.watch(agent)                             # in a pygame window

The same machinery as the ``catchrl`` command: :func:`train` is ``catchrl train``
(the run loop, its run directory, checkpoints and ``--resume``), :func:`evaluate`
is ``catchrl eval`` (the same seeded test games), :func:`record` is
``catchrl watch --video``. Like the command, these functions keep TensorFlow's
C++ logs quiet unless ``verbose=True`` (see :mod:`catchrl.frameworks`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catchrl.errors import CatchrlError

if TYPE_CHECKING:
    from catchrl.config import TrainConfig
    from catchrl.evaluation import EvalResult
    from catchrl.policies import LoadedPolicy
    from catchrl.runloop import TrainResult
    from catchrl.video import GamesPlayed

__all__ = [
    "Agent",
    "AgentLoadError",
    "evaluate",
    "load_agent",
    "make_config",
    "record",
    "show",
    "train",
    "watch",
]


def make_config(
    preset: str = "fast",
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    algo: str | None = None,
) -> TrainConfig:
    """A training config: a preset, then a TOML file, then ``TABLE.KEY=VALUE`` overrides.

    Args:
        preset: ``fast`` (pixels), ``fast-state`` or ``book`` (see ``catchrl.config.PRESETS``).
        path: A TOML file with ``[env]``, ``[agent]``, ``[run]`` (and ``[sb3]``) tables.
        overrides: Settings as on the command line (``"agent.lr=5e-4"``).
        algo: ``dqn`` (catchrl's Keras DQN), an SB3 agent (``sb3-dqn``, ``sb3-ppo``,
            ``sb3-a2c``, ``sb3-qrdqn``) or an RLlib one (``rllib-ppo``, ``rllib-dqn``,
            ``rllib-appo``); None keeps the config's.

    Raises:
        ConfigError: An unknown preset, key or algo, or a value out of range.

    """
    from catchrl.config import load_config

    return _for_algo(load_config(preset, path, list(overrides)), algo)


def _for_algo(cfg: TrainConfig, algo: str | None) -> TrainConfig:
    """``cfg`` trained by ``algo`` (None: its own), with an SB3 agent's defaults merged."""
    from catchrl.config import ConfigError

    if algo is not None:
        cfg.algo = algo
    if cfg.algo == "dqn":
        return cfg
    if cfg.algo.startswith("rllib-"):
        try:
            from catchrl.agents.rllib_algos import ALGOS as RLLIB_ALGOS
            from catchrl.agents.rllib_algos import rllib_options
        except ImportError as e:
            raise ConfigError(
                f"algo {cfg.algo!r} needs RLlib: pip install 'catchrl[rllib]' (docs/rllib.md)"
            ) from e
        if cfg.algo not in RLLIB_ALGOS:
            raise ConfigError(f"unknown algo {cfg.algo!r}; choose {', '.join(RLLIB_ALGOS)}")
        cfg.rllib = rllib_options(cfg.algo, cfg.env.obs_type, cfg.rllib, cfg.env.num_envs)
        return cfg
    try:
        from catchrl.agents.sb3 import ALGOS, sb3_kwargs
    except ImportError as e:
        raise ConfigError(
            f"algo {cfg.algo!r} needs Stable-Baselines3: pip install 'catchrl[sb3]'"
        ) from e
    if cfg.algo not in ALGOS:
        raise ConfigError(
            f"unknown algo {cfg.algo!r}; choose dqn (catchrl's Keras DQN) or {', '.join(ALGOS)}"
        )
    cfg.sb3 = sb3_kwargs(cfg.algo, cfg.env.obs_type, cfg.sb3, cfg.env.num_envs)
    return cfg


def train(
    config: TrainConfig | str | Path,
    run_dir: str | Path,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    algo: str | None = None,
    resume: bool = False,
    progress: bool | None = None,
    trust_sb3: bool = False,
    verbose: bool = False,
) -> TrainResult:
    """Train an agent into ``run_dir``, as ``catchrl train`` does; returns how the run went.

    Args:
        config: A :class:`~catchrl.config.TrainConfig`, a preset name, or a TOML file.
        run_dir: The run directory (created; refused if it already holds a run or
            other files: continue a run with ``resume=True``).
        overrides: ``TABLE.KEY=VALUE`` settings applied to ``config`` (on ``resume``:
            only ``run.*`` keys).
        algo: ``dqn`` or an SB3 agent (``sb3-ppo``...); None keeps the config's.
        resume: Continue the stopped run in ``run_dir`` exactly (``config`` is ignored).
        progress: A progress bar (True), plain lines every 10 s (False), or a bar only
            on a terminal (None; a notebook gets plain lines).
        trust_sb3: On ``resume`` of an SB3 run, allow its checkpoint to be unpickled.
        verbose: Show TensorFlow's INFO/WARNING logs.

    Returns:
        The :class:`~catchrl.runloop.TrainResult`: games, steps, wall time, the
        evaluations made while training and ``final_eval`` (greedy, on test seeds).

    Raises:
        ConfigError: A bad config; CatchrlError: the run directory is unusable.

    """
    from catchrl.config import TrainConfig
    from catchrl.frameworks import configure_frameworks
    from catchrl.learners import open_run

    configure_frameworks(verbose)
    cfg = None
    if resume:
        pass  # the checkpoint's config; ``overrides`` go to the run loop
    elif isinstance(config, TrainConfig):
        from catchrl.config import apply_overrides

        cfg = _for_algo(apply_overrides(copy.deepcopy(config), list(overrides)), algo)
    elif str(config).endswith(".toml"):
        cfg = make_config(path=config, overrides=overrides, algo=algo)
    else:
        cfg = make_config(str(config), overrides=overrides, algo=algo)
    loop = open_run(
        cfg,
        run_dir,
        resume=resume,
        progress=progress,
        resume_overrides=list(overrides) if resume else (),
        trust_pickle=trust_sb3,
    )
    return loop.run()


@dataclass
class Agent:
    """A saved agent (or a scripted policy) ready to act, with the game it plays.

    Made by :func:`load_agent`. ``agent.act(obs)`` is its greedy action for one
    observation of :meth:`make_env`'s game; ``agent.q_values(obs)`` its Q-values
    where it has them (Keras DQN, SB3 DQN/QR-DQN).

    Attributes:
        loaded: The policy as the evaluation harness takes it.

    """

    loaded: LoadedPolicy

    @property
    def name(self) -> str:
        """Display name (the run directory's or the file's)."""
        return self.loaded.name

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """The game it plays, as ``CatchEnv`` keyword arguments (obs type and variants)."""
        return dict(self.loaded.env_kwargs)

    def make_env(self, render_mode: str | None = None) -> Any:
        """A :class:`~catchrl.envs.CatchEnv` of the agent's game."""
        from catchrl.envs import CatchEnv

        return CatchEnv(**self.loaded.env_kwargs, render_mode=render_mode)

    def act(self, obs: np.ndarray, state: Any = None) -> int:
        """The agent's action for one observation: 0 left, 1 stay, 2 right.

        Args:
            obs: One observation of the agent's game.
            state: The game's true state (``env.unwrapped.state``); only the scripted
                ``oracle`` reads it.

        Raises:
            CatchrlError: The policy needs ``state`` and none was given.

        """
        from catchrl.envs import BatchState

        states = None
        if state is not None:
            states = BatchState.zeros(1)
            states.set(0, state)
        try:
            actions = self.loaded.policy(np.asarray(obs)[None], states)
        except (AttributeError, TypeError, ValueError) as e:
            if state is None:
                raise CatchrlError(
                    f"{self.name} reads the game's state: agent.act(obs, env.unwrapped.state)"
                ) from e
            raise
        return int(np.asarray(actions).reshape(-1)[0])

    def q_values(self, obs: np.ndarray) -> np.ndarray | None:
        """Q-values ``[3]`` (left, stay, right) for one observation, or None if it has none."""
        if self.loaded.q_values is None:
            return None
        return np.asarray(self.loaded.q_values(np.asarray(obs)[None])[0])

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, obs_type={self.loaded.env_kwargs.get('obs_type')!r})"


def load_agent(source: str | Path, trust_sb3: bool = False, **game: Any) -> Agent:
    """Load a run directory, a ``.keras`` Q-network, an SB3 ``.zip``, or ``oracle``/``random``.

    Args:
        source: What to load.
        trust_sb3: Whether an SB3 ``.zip`` may be loaded: it is a pickle, which runs code
            from the file (load only files you trust); ``False`` refuses it, as the CLI
            does without ``--sb3``.
        **game: Game options replacing the run's own: ``obs_type``, ``drift``,
            ``balls_per_game``, ``walls``, ``spawn``.

    Raises:
        CatchrlError: It cannot be loaded, or the game options are not valid for it.

    """
    from catchrl.frameworks import configure_frameworks
    from catchrl.policies import load_policy

    configure_frameworks()
    try:
        loaded = load_policy(str(source), game, allow_sb3=trust_sb3, trust_hint="trust_sb3=True")
        return Agent(loaded)
    except ValueError as e:  # PolicyLoadError, or the game refusing the options
        raise AgentLoadError(str(e).strip().splitlines()[0] if str(e).strip() else repr(e)) from e


class AgentLoadError(CatchrlError):
    """The agent cannot be loaded; the message says why."""


def _agent(agent: Agent | str | Path, trust_sb3: bool) -> Agent:
    return agent if isinstance(agent, Agent) else load_agent(agent, trust_sb3=trust_sb3)


def evaluate(
    agent: Agent | str | Path, games: int = 1000, seed: int | None = None, trust_sb3: bool = False
) -> EvalResult:
    """Greedy win rate of ``agent`` on ``games`` seeded games, as ``catchrl eval``.

    Args:
        agent: An :class:`Agent` or what :func:`load_agent` takes.
        games: Games to play.
        seed: Seed of game 0 (default: the test seeds, ``catchrl.evaluation.TEST_SEED``).
        trust_sb3: As :func:`load_agent`'s, when ``agent`` is a path.

    Returns:
        The :class:`~catchrl.evaluation.EvalResult` (win rate, 95 % interval, ``.summary()``).

    """
    from catchrl.evaluation import EVAL_SEED
    from catchrl.evaluation import evaluate as run_evaluation

    a = _agent(agent, trust_sb3)
    if games <= 0:
        raise CatchrlError(f"games must be > 0, got {games}")
    seed = EVAL_SEED if seed is None else seed
    return run_evaluation(a.loaded.policy, games=games, seed=seed, **a.loaded.env_kwargs)


def record(
    agent: Agent | str | Path,
    path: str | Path,
    games: int = 3,
    seed: int = 0,
    fps: int = 30,
    trust_sb3: bool = False,
) -> GamesPlayed:
    """Write ``games`` games (game ``g`` seeded ``seed + g``) to a GIF or MP4, one frame a step.

    ``trust_sb3``: as :func:`load_agent`'s, when ``agent`` is a path.

    Returns:
        The score and the frames (:class:`~catchrl.video.GamesPlayed`).

    """
    from catchrl.video import check_video_path, write_video

    path = Path(path)
    check_video_path(path, "path")
    played = _play_headless(_agent(agent, trust_sb3), games, seed)
    write_video(path, played.frames, fps)
    return played


def show(
    agent: Agent | str | Path, games: int = 3, seed: int = 0, fps: int = 30, trust_sb3: bool = False
) -> Any:
    """The games as an animated GIF that Jupyter shows inline (the last value of a cell).

    Args:
        agent: An :class:`Agent` or what :func:`load_agent` takes.
        games: Games to play (game ``g`` seeded ``seed + g``).
        seed: Seed of the first game.
        fps: Frames (steps) per second of the animation.
        trust_sb3: As :func:`load_agent`'s, when ``agent`` is a path.

    Returns:
        An ``IPython.display.Image`` (GIF); ``.data`` holds the GIF's bytes.

    Raises:
        CatchrlError: IPython is not installed (in a script, use :func:`record`).

    """
    try:
        from IPython.display import Image
    except ImportError as e:
        raise CatchrlError(
            "show() displays in Jupyter and needs IPython; in a script use "
            "catchrl.record(agent, 'games.gif')"
        ) from e
    from catchrl.video import encode_gif

    played = _play_headless(_agent(agent, trust_sb3), games, seed)
    return Image(data=encode_gif(played.frames, fps), format="gif")


def watch(
    agent: Agent | str | Path, games: int = 3, seed: int = 0, fps: int = 30, trust_sb3: bool = False
) -> GamesPlayed:
    """Play ``games`` games in a pygame window (ESC or closing it stops), as ``catchrl watch``.

    ``trust_sb3``: as :func:`load_agent`'s, when ``agent`` is a path.

    Raises:
        CatchrlError: There is no display to open the window on.

    """
    from catchrl.envs.window import CatchWindow
    from catchrl.video import play_games

    a = _agent(agent, trust_sb3)
    env = a.make_env()
    try:
        window = CatchWindow(
            env.params, fps=fps, scale=env._screen_scale(), title=f"catchrl — {a.name}"
        )
    except RuntimeError as e:
        raise CatchrlError(str(e)) from e
    finally:
        env.close()
    try:
        return play_games(a.loaded, window, games, seed)
    finally:
        window.close()


def _play_headless(agent: Agent, games: int, seed: int) -> GamesPlayed:
    from catchrl.video import headless_window, play_games

    if games <= 0:
        raise CatchrlError(f"games must be > 0, got {games}")
    with headless_window(agent.loaded, title=f"catchrl — {agent.name}") as window:
        return play_games(agent.loaded, window, games, seed, record=True)
