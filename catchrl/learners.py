"""Which learner trains a config (the Keras DQN, SB3, RLlib); ``open_run(cfg, "runs/x").run()``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.agents import rllib_algos, sb3
from catchrl.agents.rllib_env import drain, start_games
from catchrl.agents.rllib_policy import greedy_actions, save_rllib_module
from catchrl.config import ConfigError, TrainConfig, apply_overrides, config_from_dict, load_config
from catchrl.errors import CheckpointError, RunDirError, did_you_mean
from catchrl.monitor import tensorboard_without_tensorflow
from catchrl.rundir import Arrays, RunDir
from catchrl.runloop import LOOP_TAGS, Learner, RunLoop
from catchrl.training import DQNLearner

# SB3 imports torch.utils.tensorboard, which must not import TensorFlow (scripts, sweep workers).
tensorboard_without_tensorflow()


class SB3Learner(Learner):
    """An SB3 algorithm in its own ``learn()``, stopped at a rollout's start; pickled."""

    model_name = "model.zip"
    framework_bytes = 340 << 20  # PyTorch + SB3: peak RSS 331 MiB, fast-state, buffer 1,000
    memory_setting = "sb3.buffer_size"

    def __init__(self, cfg: TrainConfig, trust_pickle: bool = False) -> None:
        super().__init__(cfg, trust_pickle)
        from catchrl.agents.sb3_env import make_catch_vec_env  # SB3 after the memory check

        self.has_epsilon = cfg.algo in sb3.OFF_POLICY
        sb3.set_torch_threads()
        self.env = make_catch_vec_env(cfg.env.num_envs, seed=cfg.run.seed, **cfg.env.game_kwargs())
        self.model = sb3.make_sb3_model(cfg.algo, self.env, cfg.sb3, seed=cfg.run.seed)
        self.last_loss: float | None = None
        self.pending_logs: dict[str, float] = {}  # recorded by SB3 before the checkpoint

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """The games' buffers and SB3's replay buffer."""
        space = cfg.env.observation_space()
        stored = 1 if cfg.sb3.get("optimize_memory_usage") else 2  # obs (and next_obs)
        per_item = int(np.prod(space.shape)) * space.dtype.itemsize * stored
        return cfg.env.games_bytes() + int(cfg.sb3.get("buffer_size") or 0) * per_item

    def run(self, loop: RunLoop) -> None:
        """SB3's ``learn()`` for what is left of the step budget, reporting to ``loop``."""

        def write(step: int, scalars: dict[str, float]) -> None:  # SB3's own, not the loop's
            self.last_loss = scalars.get("train/loss", self.last_loss)
            loop.writer.scalars(
                step, {k: v for k, v in scalars.items() if not k.startswith(LOOP_TAGS)}
            )

        def on_step(model: Any, step: dict[str, Any]) -> None:  # SB3's locals: its env's arrays
            epsilon = float(getattr(model, "exploration_rate", 0.0))
            rate = float(model.lr_schedule(model._current_progress_remaining))
            loop.record_step(step["rewards"], step["dones"], epsilon, self.last_loss, rate)

        self.model.set_logger(sb3.sb3_logger(write))
        for key, value in self.pending_logs.items():  # SB3 dumps them at its next dump
            self.model.logger.record(key, value)
        remaining = loop.cfg.run.total_steps - loop.steps
        if remaining <= 0 or loop.at_safe_point():
            return
        callback = sb3.sb3_callback(loop.at_safe_point, on_step)
        fresh = self.model.num_timesteps == 0  # a restored model counts on
        self.model.learn(remaining, callback=callback, reset_num_timesteps=fresh)

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The model's deterministic action for each observation (the evaluation policy)."""
        actions, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64)

    def get_state(self) -> tuple[Arrays, dict[str, Any]]:
        """SB3's zip and replay buffer, the game's state and the RNGs SB3 draws from."""
        env = self.env.venv_native.get_state()
        arrays, meta = sb3.sb3_state(self.model, self.cfg.algo)
        arrays["env"] = env["arrays"]
        # on-policy SB3 dumps before train(): the last train()'s values are not written yet
        logged = self.model.logger.name_to_value.items()  # the logger run() set
        numbers = (int, float, np.number)
        pending = {k: float(v) for k, v in logged if isinstance(v, numbers) and type(v) is not bool}
        meta |= {"env": env["meta"], "rng": sb3.rng_states(), "last_loss": self.last_loss}
        return arrays, meta | {"pending_logs": pending}

    def set_state(self, arrays: Arrays, meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state`; refused (before unpickling) unless ``trust_pickle``."""
        if not self.trust_pickle:
            raise CheckpointError(
                f"resuming this {self.cfg.algo} run unpickles the checkpoint's SB3 files, "
                "which can run code; pass --sb3 if you trust this run directory"
            )
        device = self.cfg.sb3.get("device", "cpu")
        self.model = sb3.load_sb3_state(arrays, meta, self.cfg.algo, self.env, device)
        self.model._last_obs = self.env.venv_native.set_state(
            {"arrays": arrays["env"], "meta": meta["env"]}
        )
        sb3.set_rng_states(meta["rng"])
        self.last_loss = meta["last_loss"]
        self.pending_logs = meta["pending_logs"]

    def save_model(self, path: Path) -> None:
        """Write the SB3 ``.zip`` (load it with ``catchrl eval/watch --sb3``)."""
        self.model.save(path)


class RLlibLearner(Learner):
    """An RLlib algorithm in ``Algorithm.train()`` (whole games); msgpack checkpoints."""

    model_name = "model-rllib.npz"
    memory_setting = "rllib.replay_buffer_config's capacity"

    def __init__(self, cfg: TrainConfig, trust_pickle: bool = False) -> None:
        super().__init__(cfg, trust_pickle)
        env = cfg.env
        self.options = cfg.rllib  # with the defaults merged (catchrl.make_config)
        self.has_epsilon = cfg.algo in rllib_algos.OFF_POLICY
        sb3.set_torch_threads()
        self.runners = int(self.options.get("num_env_runners", 0))  # 0: sample in this process
        rllib_algos.ensure_ray(num_cpus=max(1, self.runners) + 1)
        setup = (env.game_kwargs(), env.num_envs, cfg.run.seed, env.steps_per_game())
        self.algo_rl = rllib_algos.make_algo_config(cfg.algo, self.options, *setup).build_algo()

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """The games' buffers and DQN's replay (float32)."""
        capacity = cfg.rllib.get("replay_buffer_config", {}).get("capacity", 0)
        shape = cfg.env.observation_space().shape
        return cfg.env.games_bytes() + int(capacity) * int(np.prod(shape)) * 4

    def run(self, loop: RunLoop) -> None:
        """``Algorithm.train()`` until the loop says stop, reporting every step to ``loop``."""
        boundary = True
        while not loop.at_safe_point():
            if boundary:  # every game ended: the next ones are seeded by the games played
                seed = self.cfg.run.seed + loop.games
                start_games(self.algo_rl, seed, self.cfg.env.num_envs, self.runners)
            loss = rllib_algos.result_loss(self.algo_rl.train())
            rewards, ended, boundary = drain(self.algo_rl, self.runners)
            for step_rewards, step_ended in zip(rewards, ended, strict=True):
                eps = rllib_algos.epsilon_at(self.options, loop.steps) if self.has_epsilon else 0.0
                loop.record_step(step_rewards, step_ended, eps, loss)

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The module's greedy action for each observation (the evaluation policy)."""
        return greedy_actions(self.algo_rl.get_module(), obs)

    def get_state(self) -> tuple[Arrays, dict[str, Any]]:
        """RLlib's state (and DQN's replay) as msgpack bytes, and the driver's RNGs."""
        packed = np.frombuffer(rllib_algos.get_algo_state(self.algo_rl), dtype=np.uint8)
        return {"rllib": {"state": packed}}, {"rng": sb3.rng_states()}

    def set_state(self, arrays: Arrays, meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (``ValueError`` if it does not fit this algorithm)."""
        rllib_algos.set_algo_state(self.algo_rl, arrays["rllib"]["state"].tobytes())
        sb3.set_rng_states(meta["rng"])

    def save_model(self, path: Path) -> None:
        """Write the playing module (load it with ``catchrl eval/watch``)."""
        save_rllib_module(path, self.algo_rl.get_module(), self.cfg.algo, self.options)

    def close(self) -> None:
        """Stop the algorithm (its EnvRunners and learners)."""
        self.algo_rl.stop()


LEARNERS: dict[str, type[Learner]] = {
    "dqn": DQNLearner,
    **dict.fromkeys(sb3.ALGOS, SB3Learner),
    **dict.fromkeys(rllib_algos.ALGOS, RLlibLearner),
}
"""Every ``algo`` -> its learner (each imports its framework when it starts: SB3, Ray)."""


def learner_class(algo: str) -> type[Learner]:
    """The learner class for ``algo``; ConfigError unless it is one of :data:`LEARNERS`."""
    if algo not in LEARNERS:
        choose = f"choose {', '.join(LEARNERS)}{did_you_mean(algo, LEARNERS)}"
        raise ConfigError(f"unknown algo {algo!r}; {choose}")
    return LEARNERS[algo]


def open_run(
    cfg: TrainConfig | None,
    run_dir: str | Path,
    resume: bool = False,
    resume_overrides: Sequence[str] = (),
    trust_pickle: bool = False,
    keep_checkpoints: int = 1,
    **options: Any,
) -> RunLoop:
    """Lock ``run_dir`` and open a run of ``cfg`` (None on ``resume``); ``options``: RunLoop's."""
    from catchrl.envs.sizing import check_fits

    rd = RunDir(run_dir, keep=keep_checkpoints)
    rd.acquire_lock()
    try:
        cfg, checkpoint, saved = open_config(rd, cfg, resume, resume_overrides)
        learner_cls = learner_class(cfg.algo)
        stored = learner_cls.estimate_bytes(cfg)
        replay = stored > cfg.env.games_bytes()  # off-policy: a replay memory to shrink
        lower = f"{learner_cls.memory_setting} or env.num_envs" if replay else "env.num_envs"
        what = f"this configuration (env.num_envs={cfg.env.num_envs}, env.frame_size="
        what += f"{cfg.env.frame_size}, algo={cfg.algo})"
        try:  # before allocating
            check_fits(what, stored + learner_cls.framework_bytes, lower)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        loop = RunLoop(rd, cfg, learner_cls(cfg, trust_pickle), **options)
        if saved is not None:
            loop.restore(checkpoint, *saved)
        return loop
    except BaseException:
        rd.release_lock()
        raise


RESUMABLE = ("run.total_steps=", "run.eval_every=", "run.eval_games=", "run.target_win_rate=")
"""The settings a resumed run may change (its budget and bookkeeping); the rest is fixed."""


def open_config(
    rd: RunDir, cfg: TrainConfig | None, resume: bool, overrides: Sequence[str]
) -> tuple[TrainConfig, Path | None, tuple[dict[str, Any], dict[str, Any]] | None]:
    """The config to train, the latest checkpoint and its ``(arrays, state)`` (None: fresh)."""
    if not resume:  # a fresh run of cfg
        rd.check_fresh()
        return cfg, None, None
    for text in overrides:
        if not text.startswith(RESUMABLE):
            raise RunDirError(
                f"--resume keeps the run's config; only {', '.join(k[:-1] for k in RESUMABLE)} "
                f"may change, not {text.split('=')[0]!r}"
            )
    run_cfg = load_config(path=rd.config_path) if rd.config_path.is_file() else None
    checkpoint = rd.latest_checkpoint()
    if checkpoint is None:
        if run_cfg is None:
            raise CheckpointError(
                f"--resume: no checkpoint and no config.toml in {str(rd.path)!r}: "
                "it holds no catchrl run"
            )
        # Stopped before its first checkpoint (kill -9): start it again from its config.
        return apply_overrides(run_cfg, list(overrides)), None, None
    arrays, state = RunDir.load_checkpoint(checkpoint)
    try:
        ckpt_cfg = config_from_dict(state["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {checkpoint}: bad config ({e})") from e
    if run_cfg is not None:  # refuse a checkpoint of another algorithm, game or agent
        ours, theirs = dataclasses.asdict(run_cfg), dataclasses.asdict(ckpt_cfg)
        differ = [("algo", theirs["algo"], ours["algo"])]
        for table in ("env", "agent", "sb3", "rllib"):
            a, b = ours[table], theirs[table]
            differ += [(f"{table}.{k}", b.get(k), a.get(k)) for k in sorted(set(a) | set(b))]
        for key, there, here in differ:
            if there != here:
                raise CheckpointError(
                    f"checkpoint {checkpoint} was made for another setup: {key} is {there!r} "
                    f"there but {here!r} in {rd.config_path}"
                )
    return apply_overrides(ckpt_cfg, list(overrides)), checkpoint, (arrays, state)
