"""Stable-Baselines3 algorithms as learners of the run loop (:mod:`catchrl.runloop`).

SB3 keeps its own ``learn()`` loop — the honest way to run SB3 — and reports
through the run loop: one :meth:`~catchrl.runloop.RunLoop.record_step` per
vector step (from an SB3 callback) and one
:meth:`~catchrl.runloop.RunLoop.at_safe_point` at the start of every rollout,
where SB3's state is complete (the previous rollout trained on, the replay
buffer holding every transition, no half-filled rollout buffer). So the run
directory, metrics, TensorBoard scalars, evaluations, checkpoints, stop rules
and signals are the DQN's; a stop lands within one rollout (``train_freq``
steps off-policy, ``n_steps`` on-policy).

A checkpoint holds the SB3 ``.zip`` (weights, optimiser, counters), the
pickled replay buffer (DQN, QR-DQN), the game's state and the global RNG
states SB3 draws from (numpy, torch, Python's ``random``, the action space's),
so ``--resume`` continues exactly. Both files are pickles that can run code
when loaded: resuming needs ``--sb3`` (``trust_pickle=True``).
"""

from __future__ import annotations

import io
import os
import pickle
import random
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from catchrl.config import TrainConfig
from catchrl.errors import CheckpointError
from catchrl.rundir import RunDir
from catchrl.runloop import Learner, RunLoop, StepReport

__all__ = ["SB3Learner", "set_torch_threads"]


def set_torch_threads(obs_type: str) -> int:
    """Torch's intra-op threads: ``CATCHRL_TORCH_THREADS`` if set, else 1.

    Measured on a 2-core machine shared with other jobs: SB3 DQN ran 13x
    faster on ``state`` (MLP) and 8x faster on ``pixels`` (NatureCNN) with one
    thread than with torch's default of one per core, whose threads spin-wait
    for each other when the cores are busy.
    """
    import torch

    threads = int(os.environ.get("CATCHRL_TORCH_THREADS", "0") or 0)
    torch.set_num_threads(threads if threads > 0 else 1)
    return torch.get_num_threads()


class _NoCloseBytesIO(io.BytesIO):
    """SB3's savers close the file they are given; keep the bytes readable."""

    def close(self) -> None:
        pass


class SB3Learner(Learner):
    """An SB3 algorithm (``cfg.algo``: sb3-dqn, sb3-ppo, sb3-a2c, sb3-qrdqn) on the native env.

    Args:
        cfg: The run's config with ``algo`` and the resolved ``[sb3]`` table.
        rd: The run directory.
        trust_pickle: Allow :meth:`set_state` to unpickle the checkpoint's SB3
            files (``catchrl train --resume --sb3``).

    """

    algo: ClassVar[str] = "sb3"
    model_name = "model.zip"

    def __init__(self, cfg: TrainConfig, rd: RunDir, trust_pickle: bool = False) -> None:
        super().__init__(cfg, rd, trust_pickle)
        from catchrl.agents.sb3 import OFF_POLICY, make_catch_vec_env, make_sb3_model

        self.has_epsilon = cfg.algo in OFF_POLICY
        set_torch_threads(cfg.env.obs_type)
        self.env = make_catch_vec_env(cfg.env.num_envs, seed=cfg.run.seed, **cfg.env.game_kwargs())
        self.model = make_sb3_model(cfg.algo, self.env, cfg.sb3, seed=cfg.run.seed, device="cpu")
        self.resumed = False
        self.last_loss: float | None = None

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """The vector env's and the evaluation env's buffers plus SB3's replay buffer."""
        from catchrl.envs import estimate_env_bytes

        kwargs = cfg.env.game_kwargs()
        env = estimate_env_bytes(cfg.env.num_envs, **kwargs) + estimate_env_bytes(250, **kwargs)
        space = cfg.env.observation_space()
        item = int(np.prod(space.shape)) * space.dtype.itemsize
        size = int(cfg.sb3.get("buffer_size", 0) or 0)
        stored = 1 if cfg.sb3.get("optimize_memory_usage") else 2  # obs (and next_obs)
        return env + size * item * stored

    # -- the run -----------------------------------------------------------------------

    def run(self, loop: RunLoop) -> None:
        """SB3's ``learn()`` for what is left of the budget, reporting to ``loop``."""
        self.model.set_logger(_logger(self, loop))
        remaining = loop.step_budget() - loop.steps
        if remaining <= 0 or loop.at_safe_point():
            return
        self.model.learn(
            remaining,
            callback=_callback(self, loop),
            reset_num_timesteps=not self.resumed,
            progress_bar=False,
        )

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The model's deterministic action for each observation (the evaluation policy)."""
        actions, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64)

    # -- state -------------------------------------------------------------------------

    def get_state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """The SB3 zip, replay buffer, game state and the RNG states SB3 draws from."""
        import torch

        from catchrl.agents.sb3 import OFF_POLICY

        buf = _NoCloseBytesIO()
        self.model.save(buf)
        env_state = self.env.venv_native.get_state()
        np_state = np.random.get_state()  # noqa: NPY002  (SB3 draws from the global RNG)
        arrays: dict[str, dict[str, np.ndarray]] = {
            "sb3_model": {"zip": np.frombuffer(buf.getvalue(), dtype=np.uint8)},
            "env": env_state["arrays"],
            "rng": {
                "numpy_keys": np_state[1],
                "torch": torch.get_rng_state().numpy(),
                "last_obs": np.asarray(self.model._last_obs),
            },
        }
        if self.cfg.algo in OFF_POLICY:
            replay = pickle.dumps(self.model.replay_buffer, protocol=pickle.HIGHEST_PROTOCOL)
            arrays["sb3_replay"] = {"pkl": np.frombuffer(replay, dtype=np.uint8)}
        meta = {
            "env": env_state["meta"],
            "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": _jsonable(random.getstate()),
            "action_space": self.model.action_space.np_random.bit_generator.state,
            "last_episode_starts": np.asarray(self.model._last_episode_starts).tolist(),
            "last_loss": self.last_loss,  # what the metrics rows show until SB3 logs again
        }
        return arrays, meta

    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state`; refuses (before unpickling) unless ``trust_pickle``."""
        import torch

        from catchrl.agents.sb3 import load_sb3_model

        if not self.trust_pickle:
            raise CheckpointError(
                f"resuming this {self.cfg.algo} run unpickles the checkpoint's SB3 files, "
                "which can run code; pass --sb3 if you trust this run directory"
            )
        try:
            zip_bytes = arrays["sb3_model"]["zip"].tobytes()
            self.model = load_sb3_model(io.BytesIO(zip_bytes), self.cfg.algo, env=self.env)
            if "sb3_replay" in arrays:
                self.model.replay_buffer = pickle.loads(arrays["sb3_replay"]["pkl"].tobytes())
                self.model.replay_buffer.device = self.model.device
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
            raise ValueError(f"the SB3 files do not load: {type(e).__name__}: {e}") from e
        obs = self.env.venv_native.set_state({"arrays": arrays["env"], "meta": meta["env"]})
        rng = arrays["rng"]
        if not np.array_equal(obs, rng["last_obs"]):
            raise ValueError("the game's state does not give the observations SB3 acted on")
        self.model._last_obs = obs
        self.last_loss = meta.get("last_loss")  # (absent in older checkpoints)
        self.model._last_episode_starts = np.asarray(meta["last_episode_starts"], dtype=bool)
        n = meta["numpy"]
        np.random.set_state((n[0], rng["numpy_keys"], n[1], n[2], n[3]))  # noqa: NPY002
        torch.set_rng_state(torch.from_numpy(rng["torch"].copy()))
        random.setstate(_tuples(meta["python"]))
        self.model.action_space.np_random.bit_generator.state = meta["action_space"]
        self.resumed = True

    def save_model(self, path: Path) -> None:
        """Write the SB3 ``.zip`` (load it with ``catchrl eval/watch --sb3``)."""
        buf = _NoCloseBytesIO()
        self.model.save(buf)
        with open(path, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        """Close the game."""
        self.env.close()


def _jsonable(x: Any) -> Any:
    return [_jsonable(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


def _logger(learner: SB3Learner, loop: RunLoop) -> Any:
    """SB3's logger writing its scalars into the run's TensorBoard events (no stdout)."""
    from stable_baselines3.common.logger import KVWriter, Logger

    class _ScalarFormat(KVWriter):
        def write(
            self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0
        ) -> None:
            values = {
                k: float(v)
                for k, v in key_values.items()
                if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            }
            if "train/loss" in values:
                learner.last_loss = values["train/loss"]
            loop.writer.scalars(step, values)

    return Logger(folder=None, output_formats=[_ScalarFormat()])


def _callback(learner: SB3Learner, loop: RunLoop) -> Any:
    """The SB3 callback that reports to the run loop (defined lazily: SB3 is optional)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _RunCallback(BaseCallback):
        """One ``record_step`` per vector step; a safe point at each rollout's start."""

        halt = False

        def _on_rollout_start(self) -> None:
            self.halt = loop.at_safe_point()

        def _on_step(self) -> bool:
            if self.halt:  # this step is dropped: the checkpoint is from before it
                return False
            eps = float(getattr(self.model, "exploration_rate", 0.0))
            rewards = np.asarray(self.locals["rewards"], dtype=np.float64)
            ended = np.asarray(self.locals["dones"], dtype=bool)
            loop.record_step(StepReport(rewards, ended, eps, learner.last_loss))
            return True

    return _RunCallback()
