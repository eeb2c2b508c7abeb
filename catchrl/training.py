"""``catchrl train`` for the Keras DQN: the loop from config to checkpoints and model.

Data flow: config -> native vector env (N games, same-step autoreset) -> the
agent acts on the batch -> transitions into replay -> compiled train step on
sampled batches -> one metrics row per game -> periodic checkpoints and
evaluations -> ``model.keras``.

Every game lasts exactly ``balls_per_game * 33`` steps and all N games start
together, so they also end together: after such a step every game is fresh.
Checkpoints are taken only there, which makes ``--resume`` exact (the env's
state is its generators and the new games' positions). Ctrl-C finishes the
games in flight (at most one game's steps), writes a checkpoint and exits.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.agents.scripted import landing_x
from catchrl.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    to_toml,
)
from catchrl.evaluation import EvalResult, evaluate
from catchrl.monitor import Progress, ScalarWriter
from catchrl.rundir import CheckpointError, RunDir, balls_caught, metrics_row

__all__ = ["RESUMABLE", "TrainResult", "Trainer", "use_backend"]

# The settings a resumed run may change (its budget and bookkeeping); the rest is fixed.
RESUMABLE = (
    "run.total_steps=",
    "run.total_games=",
    "run.time_limit_s=",
    "run.eval_every=",
    "run.eval_games=",
    "run.checkpoint_every=",
    "run.target_win_rate=",
)


def use_backend(name: str) -> None:
    """Select the Keras backend; must run before keras is first imported."""
    import sys

    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise RuntimeError(
                f"keras is already imported with the {keras.backend.backend()!r} "
                f"backend; start a new process to use {name!r}"
            )
        return
    os.environ["KERAS_BACKEND"] = name


@dataclass
class TrainResult:
    """What a finished (or interrupted) run did."""

    games: int
    steps: int
    wins: int
    wall_time: float
    interrupted: bool = False
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    final_eval: EvalResult | None = None


def _load_supervised_model(key: str, path: str, pick: Any = None) -> tuple[Any, Path]:
    """Load the ``.keras`` model (or a run directory's) that ``agent.<key>`` names.

    ``pick`` takes a part of it (e.g. the encoder); a missing file or a model
    that cannot be loaded or picked from is a :class:`ConfigError`.
    """
    import keras

    import catchrl.supervised.layers  # noqa: F401  (registers the models' custom layers)

    model_path = Path(path) / "model.keras" if Path(path).is_dir() else Path(path)
    if not model_path.is_file():
        raise ConfigError(f"agent.{key}: {str(model_path)!r} does not exist")
    try:
        model = keras.saving.load_model(model_path, compile=False)
        return (pick(model) if pick else model), model_path
    except Exception as e:  # Keras raises many kinds for a bad file
        raise ConfigError(
            f"agent.{key}: {model_path} is not a usable model "
            f"({type(e).__name__}: {str(e).splitlines()[0][:160]})"
        ) from e


def _q_network_from_encoder(path: str, obs_shape: tuple[int, ...], trainable: bool) -> Any:
    """A Q-network whose conv layers start from a pretrained perception/imitation encoder."""
    from catchrl.supervised.perception import build_q_network_from_encoder, get_encoder

    encoder, model_path = _load_supervised_model("encoder", path, get_encoder)
    if tuple(encoder.input_shape[1:]) != tuple(obs_shape):
        raise ConfigError(
            f"agent.encoder: {model_path} reads frames of shape "
            f"{tuple(encoder.input_shape[1:])}, the game gives {tuple(obs_shape)}"
        )
    return build_q_network_from_encoder(encoder, 3, trainable=trainable, hidden=128)


def _load_perception(path: str, env: Any) -> Any:
    """The perception model of ``agent.perception``, checked against the game's frames."""
    from catchrl.supervised.perception import PerceptionVectorWrapper

    model, model_path = _load_supervised_model("perception", path)
    try:
        return PerceptionVectorWrapper(env, model)
    except ValueError as e:
        raise ConfigError(f"agent.perception: {model_path}: {e}") from e


class Trainer:
    """One DQN training run in a run directory.

    Args:
        cfg: The run's config (None on resume: the checkpoint's config is used).
        run_dir: The run directory.
        resume: Continue from the latest checkpoint in ``run_dir``.
        progress: Progress bar (True), plain lines (False), or bar on a TTY (None).

    """

    def __init__(
        self,
        cfg: TrainConfig | None,
        run_dir: str | Path,
        resume: bool = False,
        progress: bool | None = None,
        resume_overrides: Sequence[str] = (),
    ) -> None:
        self.rd = RunDir(run_dir)
        self.resume = resume
        self.checkpoint = None
        if resume:
            self.checkpoint = self.rd.latest_checkpoint()
            if self.checkpoint is None:
                raise CheckpointError(f"--resume: no checkpoint in {str(self.rd.path)!r}")
            arrays, state = RunDir.load_checkpoint(self.checkpoint)
            try:
                cfg = config_from_dict(state["config"])
            except ConfigError as e:
                raise CheckpointError(f"checkpoint {self.checkpoint}: bad config ({e})") from e
            self._check_matches_run(cfg)
            for text in resume_overrides:
                if not text.startswith(RESUMABLE):
                    raise ConfigError(
                        f"--resume keeps the run's config; only {RESUMABLE} "
                        f"may change, not {text.split('=')[0]!r}"
                    )
            cfg = apply_overrides(cfg, list(resume_overrides))
            self._ckpt = (arrays, state)
        elif self.rd.latest_checkpoint() is not None or self.rd.metrics_path.exists():
            raise CheckpointError(
                f"run directory {str(self.rd.path)!r} already holds a run; "
                "pass --resume to continue it or choose another --run-dir"
            )
        if cfg is None:
            raise ValueError("Trainer needs a config unless it resumes")
        self.cfg = cfg
        self.progress_mode = progress
        self._stop_requested = False
        use_backend(cfg.run.backend)
        self._build()

    def _check_matches_run(self, ckpt_cfg: TrainConfig) -> None:
        """Refuse a checkpoint made for another game or agent than this run's config.toml."""
        if not self.rd.config_path.is_file():
            return
        try:
            run_cfg = load_config(path=self.rd.config_path)
        except ConfigError as e:
            raise CheckpointError(f"{self.rd.config_path}: {e}") from e
        for table in ("env", "agent"):
            ours, theirs = config_to_dict(run_cfg)[table], config_to_dict(ckpt_cfg)[table]
            diff = [k for k in ours if ours[k] != theirs[k]]
            if diff:
                k = diff[0]
                raise CheckpointError(
                    f"checkpoint {self.checkpoint} was made for another setup: {table}.{k} is "
                    f"{theirs[k]!r} there but {ours[k]!r} in {self.rd.config_path}"
                )

    # -- setup -----------------------------------------------------------------

    def _build(self) -> None:
        import keras

        from catchrl.agents.dqn import DQNAgent, DQNConfig
        from catchrl.agents.networks import build_q_network
        from catchrl.agents.replay import ReplayMemory
        from catchrl.agents.schedules import EpsilonSchedule
        from catchrl.envs import CatchVectorEnv

        c, a = self.cfg, self.cfg.agent
        seed = c.run.seed
        keras.utils.set_random_seed(seed)
        # base_env: the game (its state is what checkpoints hold); env: what the agent sees.
        self.base_env = self.env = CatchVectorEnv(
            c.env.num_envs, autoreset_mode="same_step", **c.env.game_kwargs()
        )
        self.perception = None
        if a.perception:
            self.env = self.perception = _load_perception(a.perception, self.base_env)
        obs_space = self.env.single_observation_space
        if a.encoder:
            model = _q_network_from_encoder(a.encoder, obs_space.shape, a.encoder_trainable)
        else:
            extra = {"hidden_units": (a.hidden, a.hidden)} if a.network == "mlp" else {}
            model = build_q_network(
                a.network,
                obs_space.shape,
                3,
                dueling=a.dueling,
                landing_head=a.aux_landing > 0,
                seed=seed,
                **extra,
            )
        self.agent = DQNAgent(
            model,
            DQNConfig(
                gamma=a.gamma,
                lr=a.lr,
                loss=a.loss,
                double=a.double,
                target_update=a.target_update,
                target_period=a.target_period,
                tau=a.tau,
                grad_clip_norm=a.grad_clip_norm or None,
                n_step=a.n_step,
                aux_weight=a.aux_landing,
            ),
            seed=seed,
        )
        frames = c.env.obs_type == "pixels" and self.perception is None
        self.memory = ReplayMemory(
            a.replay_capacity,
            c.env.num_envs,
            obs_space.shape,
            obs_space.dtype,
            frame_stack=c.env.frame_stack if frames else 1,
            n_step=a.n_step,
            gamma=a.gamma,
            prioritized=a.prioritized,
            seed=seed + 1,
            aux_dim=1 if a.aux_landing > 0 else 0,
        )
        self.schedule = EpsilonSchedule(
            a.epsilon, a.epsilon_start, a.epsilon_end, a.epsilon_duration, a.observe
        )
        self.obs, _ = self.env.reset(seed=seed)
        self.steps = self.games = self.wins = self.grad_steps = 0
        self.elapsed = 0.0
        self.recent: deque[float] = deque(maxlen=100)
        self.evaluations: list[dict[str, Any]] = []
        self.metrics_offset: int | None = None
        self._learning_started = False
        if self.resume:
            self._restore(*self._ckpt)
            del self._ckpt

    # -- checkpoints -------------------------------------------------------------

    def _save(self) -> Path:
        self.metrics_file.flush()
        env_state = self.base_env.get_state()
        arrays = {
            "agent": self.agent.get_state_arrays(),
            "replay": self.memory.state_dict(),
            "env": env_state["arrays"],
        }
        state = {
            "config": config_to_dict(self.cfg),
            "steps": self.steps,
            "games": self.games,
            "wins": self.wins,
            "grad_steps": self.grad_steps,
            "elapsed": self.elapsed,
            "recent": list(self.recent),
            "evaluations": self.evaluations,
            "metrics_bytes": self.rd.metrics_path.stat().st_size,
            "agent": self.agent.get_state_meta(),
            "env": env_state["meta"],
        }
        return self.rd.save_checkpoint(f"ckpt-{self.games:08d}", arrays, state)

    def _restore(self, arrays: dict[str, dict[str, np.ndarray]], state: dict[str, Any]) -> None:
        try:
            self.agent.set_state_arrays(arrays["agent"], state["agent"])
            self.memory.load_state_dict(arrays["replay"])
            self.obs = self.base_env.set_state({"arrays": arrays["env"], "meta": state["env"]})
            if self.perception is not None:
                self.obs = self.perception.perceive(self.obs)
        except (KeyError, ValueError) as e:
            raise CheckpointError(
                f"checkpoint {self.checkpoint} does not fit this run ({type(e).__name__}: {e})"
            ) from e
        self.steps, self.games, self.wins = state["steps"], state["games"], state["wins"]
        self.grad_steps, self.elapsed = state["grad_steps"], state["elapsed"]
        self.recent.extend(state["recent"])
        self.evaluations = state["evaluations"]
        self.metrics_offset = state["metrics_bytes"]

    # -- the loop ----------------------------------------------------------------

    def _learning(self) -> bool:
        if self._learning_started:  # stays true: spare the memory scan on every step
            return True
        a = self.cfg.agent
        started = self.games >= a.observe if a.epsilon == "book" else self.steps >= a.observe
        self._learning_started = started and self.memory.num_sampleable >= a.batch_size
        return self._learning_started

    def _done(self) -> bool:
        r = self.cfg.run
        return (
            (r.total_steps > 0 and self.steps >= r.total_steps)
            or (r.total_games > 0 and self.games >= r.total_games)
            or (r.time_limit_s > 0 and self.elapsed >= r.time_limit_s)
        )

    def _evaluate(self, games: int) -> EvalResult:
        return evaluate(self.greedy_policy, games=games, **self.cfg.env.game_kwargs())

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The agent's greedy action for each observation (the evaluation policy)."""
        if self.perception is not None:
            obs = self.perception.perceive(obs)
        return self.agent.act(obs, 0.0)

    def _landing_labels(self) -> np.ndarray:
        """Where each game's ball will land, / width: ``[N, 1]`` (the auxiliary labels)."""
        p, b = self.base_env.params, self.base_env.batch
        return (landing_x(p, b.ball_x, b.ball_y, b.ball_vx) / p.width)[:, None]

    def save_model(self, path: str | Path) -> None:
        """Write the playing model in Keras format (frames in when the game is pixels).

        With ``agent.perception`` it is the perception model and the state
        Q-network chained, so it reads frames like any pixel Q-network.
        """
        if self.perception is None:
            self.agent.save_model(str(path))
            return
        from catchrl.supervised.perception import build_perceived_q_network

        build_perceived_q_network(
            self.perception.model, self.agent.model, self.perception.single_observation_space
        ).save(path)

    def run(self) -> TrainResult:
        """Train until the config's budget or target is reached; returns what happened."""
        c = self.cfg
        if not self.resume:
            self.rd.write_config(to_toml(c))
        self.metrics_file = self.rd.open_metrics(truncate_at=self.metrics_offset)
        self.writer = ScalarWriter(self.rd.tb_path)
        per_game = self.base_env.params.max_episode_steps
        total = c.run.total_steps or c.run.total_games * per_game
        bar = Progress(total, unit="step", enabled=self.progress_mode, initial=self.steps)
        old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            self._loop(bar)
        finally:
            signal.signal(signal.SIGINT, old_handler)
            bar.close()
        interrupted = self._stop_requested
        final_eval = None
        if not interrupted:
            # Write beside, then rename: a crash never leaves a half-written model.
            tmp = self.rd.path / f".model-tmp{os.getpid()}.keras"
            self.save_model(tmp)
            os.replace(tmp, self.rd.model_path)
            if c.run.eval_games:
                final_eval = self._evaluate(c.run.eval_games)
                self.rd.write_json("eval.json", final_eval.to_dict())
        self.metrics_file.close()
        self.writer.close()
        self.env.close()
        return TrainResult(
            self.games,
            self.steps,
            self.wins,
            self.elapsed,
            interrupted,
            self.evaluations,
            final_eval,
        )

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._stop_requested:  # second Ctrl-C: leave now, the last checkpoint stays
            raise KeyboardInterrupt
        self._stop_requested = True

    def _loop(self, bar: Progress) -> None:
        c, a = self.cfg, self.cfg.agent
        n = c.env.num_envs
        loss_sum, loss_count = 0.0, 0
        vec_steps = self.steps // n
        t_start = time.perf_counter() - self.elapsed
        self._paused = 0.0
        steps_at_t, t_rate = self.steps, time.perf_counter()
        rate = 0.0
        game_reward = np.zeros(n, dtype=np.float64)
        if self._done():
            return
        while True:  # budgets are checked where every game has just ended (_at_boundary)
            eps = self.schedule(self.steps, self.games)
            actions = self.agent.act(self.obs, eps)
            aux = self._landing_labels() if self.memory.aux_dim else None
            next_obs, reward, terminated, truncated, _ = self.env.step(actions)
            self.memory.add(self.obs, actions, reward, terminated, truncated, aux=aux)
            self.obs = next_obs
            self.steps += n
            vec_steps += 1
            game_reward += reward
            if vec_steps % a.train_every == 0 and self._learning():
                for _ in range(a.gradient_steps):
                    batch = self.memory.sample(a.batch_size)
                    out = self.agent.train_step(batch)
                    if a.prioritized:
                        self.memory.update_priorities(batch["indices"], out["td_errors"])
                    loss_sum += out["loss"]
                    loss_count += 1
                    self.grad_steps += 1
            ended = terminated | truncated
            if not ended.any():
                continue
            self.elapsed = time.perf_counter() - t_start - self._paused
            now = time.perf_counter()
            if now - t_rate > 1.0:
                rate = (self.steps - steps_at_t) / (now - t_rate)
                steps_at_t, t_rate = self.steps, now
            loss = loss_sum / loss_count if loss_count else 0.0
            for i in np.flatnonzero(ended):
                self.games += 1
                self.wins += balls_caught(game_reward[i], c.env.balls_per_game)
                self.recent.append(float(game_reward[i] > 0))
                self.metrics_file.write(
                    metrics_row(
                        self.games,
                        loss,
                        self.wins,
                        eps,
                        self.steps,
                        rate,
                        float(np.mean(self.recent)),
                        self.elapsed,
                        game_reward[i],
                    )
                )
            game_reward[ended] = 0.0
            loss_sum, loss_count = 0.0, 0
            win_rate = float(np.mean(self.recent))
            self.writer.scalars(
                self.steps,
                {
                    "rollout/win_rate_100": win_rate,
                    "train/loss": loss,
                    "train/epsilon": eps,
                    "time/steps_per_s": rate,
                    "time/games": self.games,
                },
            )
            bar.update(
                min(self.steps, bar.total),
                games=self.games,
                win=f"{100 * win_rate:.0f}%",
                eps=f"{eps:.3f}",
                sps=f"{rate:.0f}",
            )
            if not ended.all():
                continue  # (cannot happen: all games have the same length)
            self._at_boundary(bar, n)
            if self._stop_requested:
                bar.write(f"interrupted: checkpoint written at game {self.games}")
                return
            if self._done():
                return

    def _at_boundary(self, bar: Progress, n: int) -> None:
        """Checkpoint / evaluate / stop checks; only where every game has just started."""
        r = self.cfg.run
        crossed = lambda every: every and self.games // every != (self.games - n) // every  # noqa: E731
        stop = False
        if r.eval_games and crossed(r.eval_every):
            t0 = time.perf_counter()
            result = self._evaluate(r.eval_games)
            self._paused += time.perf_counter() - t0  # evaluation is not training time
            record = result.to_dict()
            record["eval_games"] = record.pop("games")
            self.evaluations.append(
                {"games": self.games, "steps": self.steps, "wall_time": self.elapsed, **record}
            )
            self.writer.scalars(self.steps, {"eval/win_rate": result.win_rate})
            self.rd.write_json("evals.json", self.evaluations)
            bar.write(f"game {self.games} step {self.steps}: eval {result.summary()}")
            stop = r.target_win_rate > 0 and result.win_rate >= r.target_win_rate
        if crossed(r.checkpoint_every) or self._stop_requested or stop or self._done():
            t0 = time.perf_counter()
            self._save()
            self._paused += time.perf_counter() - t0
        if stop:
            r.total_steps = min(r.total_steps or self.steps, self.steps)
            r.total_games = self.games
