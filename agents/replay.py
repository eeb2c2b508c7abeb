"""``ReplayMemory``: a preallocated ring of per-game transition streams, n-step returns, PER.

One stream per game in a ``[N, C]`` ring (``C = capacity // N``), so an add is one write
of N rows; a slot holds an observation, the action taken, the reward, the end flags and
the step in its game (the next state is the next slot's). Pixels keep the newest frame
only and rebuild stacks within their game. Feed it from a
``CatchVectorEnv(autoreset_mode="same_step")`` from the reset on. A transition is
sampleable once its frame history is in the ring and its next ``n_step`` transitions (or
those to its game's end, not a truncation) are written; sampling redraws the others.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from catchrl.envs.sizing import check_fits

_PRIORITY_EPS = 1e-6  # keeps a zero TD error sampleable (Schaul et al., 2016)
_FIELDS = ("frames", "actions", "rewards", "terminated", "truncated", "aux", "step_in_game")


class ReplayMemory:
    """Ring buffer of ``num_envs`` per-game streams with n-step returns and optional PER.

    ``frame_stack`` frames on the last axis of ``obs_shape``; ``gamma`` 0.99 (the book's);
    ``alpha`` 0.6 and ``beta`` 0.4, annealed to 1 by :meth:`sample`'s ``progress`` (Schaul
    et al., 2016); ``aux_dim`` float labels kept with each observation (the landing x).
    ValueError: an argument out of range, or more than the memory available (checked first).
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: Any,
        frame_stack: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        prioritized: bool = False,
        alpha: float = 0.6,
        beta: float = 0.4,
        seed: int | None = None,
        aux_dim: int = 0,
    ) -> None:
        obs_shape = tuple(int(d) for d in obs_shape)
        self.num_envs, self.slots = int(num_envs), int(capacity) // max(int(num_envs), 1)
        for bad, why in (
            (min(num_envs, frame_stack, n_step) < 1 or aux_dim < 0, "num_envs, frame_stack "
             f"and n_step must be >= 1 and aux_dim >= 0, got {num_envs, frame_stack, n_step}"),
            (frame_stack > 1 and obs_shape[-1:] != (frame_stack,), f"frame_stack={frame_stack}"
             f" needs frames stacked on the last axis of obs_shape, got {obs_shape}"),
            (self.slots < n_step + frame_stack, f"capacity {capacity} leaves {self.slots} slots "
             f"per env; need at least n_step + frame_stack = {n_step + frame_stack}"),
        ):  # fmt: skip
            if bad:
                raise ValueError(f"ReplayMemory: {why}")
        self.capacity = self.num_envs * self.slots
        self.obs_shape, self.obs_dtype = obs_shape, np.dtype(obs_dtype)
        self.frame_stack, self.n_step, self.gamma = int(frame_stack), int(n_step), float(gamma)
        self.prioritized, self.alpha, self.beta = bool(prioritized), float(alpha), float(beta)
        self.aux_dim = int(aux_dim)
        args = (capacity, num_envs, obs_shape, obs_dtype, frame_stack)
        kwargs = {"prioritized": prioritized, "aux_dim": aux_dim}
        needed = self.estimate_bytes(*args, **kwargs)
        check_fits(f"ReplayMemory: replay_capacity {self.capacity:,}", needed, "replay_capacity")
        self._arrays = {name: np.zeros(*spec) for name, spec in _specs(*args, **kwargs).items()}
        self._env_step = np.zeros(self.num_envs, dtype=np.int32)  # the next add's step_in_game
        self._env_fresh = np.ones(self.num_envs, dtype=bool)  # the next add starts a game
        self._adds = 0  # adds so far: absolute time t
        self._powers = self.gamma ** np.arange(self.n_step, dtype=np.float64)
        self._max_priority = 1.0
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def estimate_bytes(*args: Any, **kwargs: Any) -> int:
        """The :attr:`nbytes` of a memory built with these arguments, allocating nothing."""
        bound = inspect.signature(ReplayMemory).bind(*args, **kwargs)
        bound.apply_defaults()
        specs = _specs(**bound.arguments)
        return sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in specs.values())

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        aux: np.ndarray | None = None,
    ) -> None:
        """Append one transition per game (each argument ``[N, ...]``).

        ``aux``: none when ``aux_dim`` is 0. A ``ValueError`` for wrong shapes, or (pixels)
        a game that does not start with its first frame repeated (``"next_step"`` autoreset).
        """
        obs, n = np.asarray(obs), self.num_envs
        if obs.shape != (n, *self.obs_shape):
            raise ValueError(
                f"ReplayMemory.add: obs must have shape {(n, *self.obs_shape)}, got {obs.shape}"
            )
        aux_shape = None if aux is None else np.shape(aux)
        if aux_shape != ((n, self.aux_dim) if self.aux_dim else None):
            raise ValueError(
                f"ReplayMemory.add: aux must have shape {(n, self.aux_dim)} "
                f"(none when aux_dim is 0), got {aux_shape}"
            )
        if self.frame_stack > 1:
            first = obs[self._env_fresh]
            if not np.all(first == first[..., -1:]):
                raise ValueError(
                    "ReplayMemory.add: a game must start with its first frame repeated in "
                    "every slot; feed the memory from a vector env with "
                    "autoreset_mode='same_step', from the reset on"
                )
            obs = obs[..., -1]
        a, slot = self._arrays, self._adds % self.slots
        ends = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        values = (obs, actions, rewards, terminated, truncated, 0.0 if aux is None else aux)
        for name, value in zip(_FIELDS[:6], values, strict=True):
            a[name][:, slot] = value
        a["step_in_game"][:, slot] = self._env_step
        self._env_step = np.where(ends, 0, self._env_step + 1).astype(np.int32)
        self._env_fresh = ends
        if self.prioritized:
            a["priority"][:, slot] = self._max_priority
        self._adds += 1

    def sample(self, batch_size: int, progress: float = 0.0) -> dict[str, np.ndarray]:
        """``batch_size`` sampleable transitions, drawn with replacement.

        A ``ValueError`` while there is none; ``progress`` (0 to 1, the run's) anneals PER's
        ``beta`` to 1. ``obs`` and ``next_obs`` (``obs`` where the game terminated) as the
        env gives them, ``actions [B]``, ``rewards [B]`` (n-step discounted sums within the
        game), ``discounts [B]`` (``gamma ** n_step``, 0 where the game terminated),
        ``indices [B]`` (for :meth:`update_priorities`), ``weights [B]`` (PER's importance
        weights, else 1) and ``aux``.
        """
        a = self._arrays
        env, t = self._draw(int(batch_size))
        slot = t % self.slots
        ahead = (t[:, None] + np.arange(self.n_step)) % self.slots  # [B, n]
        ended = (a["terminated"] | a["truncated"])[env[:, None], ahead]
        in_game = np.cumsum(ended, axis=1) - ended == 0  # the steps up to the game's end
        rewards = (a["rewards"][env[:, None], ahead] * in_game * self._powers).sum(axis=1)
        term = (a["terminated"][env[:, None], ahead] & in_game).any(axis=1)  # [B]
        weights = np.ones(len(t), dtype=np.float32)
        if self.prioritized:
            beta = self.beta + (1.0 - self.beta) * min(max(progress, 0.0), 1.0)
            w = (len(self) * a["priority"][env, slot] / a["priority"].sum()) ** (-beta)
            weights = (w / w.max()).astype(np.float32)
        batch = {
            "obs": self._stack(env, t),
            "actions": a["actions"][env, slot].astype(np.int64),
            "rewards": rewards.astype(np.float32),
            "next_obs": self._stack(env, np.where(term, t, t + self.n_step)),
            "discounts": np.where(term, 0.0, self.gamma**self.n_step).astype(np.float32),
            "indices": env * self.slots + slot,
            "weights": weights,
        }
        if self.aux_dim:
            batch["aux"] = a["aux"][env, slot]
        return batch

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set sampled ``indices`` [B] to priority ``(|td| + 1e-6) ** alpha`` (PER only)."""
        if not self.prioritized:
            return
        p = (np.abs(np.asarray(td_errors, dtype=np.float64)) + _PRIORITY_EPS) ** self.alpha
        self._arrays["priority"].reshape(-1)[np.asarray(indices)] = p
        self._max_priority = max(self._max_priority, float(p.max(initial=0.0)))

    def sampleable(self) -> np.ndarray:
        """Boolean ``[N, C]`` mask of the slots :meth:`sample` may return (a full scan)."""
        stored = min(self._adds, self.slots)
        mask = np.zeros((self.num_envs, self.slots), dtype=bool)
        env, slot = np.divmod(np.arange(self.num_envs * stored), max(stored, 1))
        mask[env, slot] = self._valid(env, self._absolute(slot))
        return mask

    @property
    def num_sampleable(self) -> int:
        """How many stored transitions :meth:`sample` may return (a full scan)."""
        return int(self.sampleable().sum())

    def __len__(self) -> int:
        """Transitions stored (not all sampleable)."""
        return self.num_envs * min(self._adds, self.slots)

    @property
    def nbytes(self) -> int:
        """Bytes held by the memory's arrays."""
        return sum(a.nbytes for a in self._arrays.values())

    def _absolute(self, slot: np.ndarray) -> np.ndarray:
        """Absolute time t held by each ring slot (the latest t < adds with t = slot mod C)."""
        last = self._adds - 1
        return last - (last - slot) % self.slots

    def _draw(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(env [B], t [B]) of sampleable transitions: draw, redraw the others a few times."""
        stored = min(self._adds, self.slots)
        env, t = np.zeros(batch_size, np.int64), np.zeros(batch_size, np.int64)
        todo = np.arange(batch_size)
        cumulative = np.cumsum(self._arrays["priority"]) if self.prioritized else None
        for _ in range(64 if stored else 0):
            if cumulative is None:
                e = self.rng.integers(0, self.num_envs, size=todo.size)
                s = self.rng.integers(0, stored, size=todo.size)
            else:
                u = self.rng.random(todo.size) * cumulative[-1]
                leaf = np.minimum(np.searchsorted(cumulative, u, side="right"), self.capacity - 1)
                e, s = np.divmod(leaf, self.slots)
            tt = self._absolute(s)
            ok = (s < stored) & self._valid(e, tt)
            env[todo[ok]], t[todo[ok]] = e[ok], tt[ok]
            todo = todo[~ok]
            if todo.size == 0:
                return env, t
        mask = self.sampleable()  # few sampleable transitions (at the start): from the mask
        if not mask.any():
            raise ValueError(
                "ReplayMemory.sample: no sampleable transition yet (each needs "
                f"its next {self.n_step} step(s) or its game's end in memory)"
            )
        e_all, s_all = np.nonzero(mask)
        p = self._arrays["priority"][e_all, s_all] if self.prioritized else np.ones(e_all.size)
        pick = self.rng.choice(e_all.size, size=todo.size, p=p / p.sum())
        env[todo], t[todo] = e_all[pick], self._absolute(s_all[pick])
        return env, t

    def _valid(self, env: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Which (env [B], t [B]) transitions :meth:`sample` may return."""
        a, oldest = self._arrays, self._adds - self.slots  # the smallest t still in memory
        k = a["step_in_game"][env, t % self.slots]
        history_ok = t - np.minimum(k, self.frame_stack - 1) >= max(oldest, 0)
        ahead = t[:, None] + np.arange(self.n_step)  # [B, n]
        written = ahead < self._adds
        term = a["terminated"][env[:, None], ahead % self.slots] & written
        ended = term | (a["truncated"][env[:, None], ahead % self.slots] & written)
        first_end = np.cumsum(ended, axis=1) - ended == 0  # no end before step j
        ends_terminated = (term & first_end).any(axis=1)
        next_ok = np.where(ended.any(axis=1), ends_terminated, t + self.n_step < self._adds)
        return history_ok & next_ok

    def _stack(self, env: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Observations [B, *obs_shape] of (env, t), stacks rebuilt within their game."""
        frames, slot = self._arrays["frames"], t % self.slots
        if self.frame_stack == 1:
            return frames[env, slot]
        k = self._arrays["step_in_game"][env, slot]
        back = np.minimum(np.arange(self.frame_stack - 1, -1, -1)[None, :], k[:, None])  # [B, F]
        slots = (t[:, None] - back) % self.slots  # [B, F]
        out = np.empty((len(t), *frames.shape[2:], self.frame_stack), frames.dtype)
        for i in range(self.frame_stack):  # one gather per channel: a contiguous result
            out[..., i] = frames[env, slots[:, i]]
        return out  # [B, H, W, F]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume exactly (``np.savez``-ready).

        Only the filled slots, and the frames as their non-zero values and where they are.
        """
        stored = min(self._adds, self.slots)
        d = {name: v[:, :stored] for name, v in self._arrays.items() if name != "frames"}
        flat = self._arrays["frames"][:, :stored].reshape(-1)
        at = np.flatnonzero(flat)
        d["frames_at"] = at.astype(np.uint32 if flat.size < 2**32 else np.int64)
        d["frames_value"] = flat[at]
        d.update(
            env_step=self._env_step,
            env_fresh=self._env_fresh,
            adds=np.array(self._adds, dtype=np.int64),
            max_priority=np.array(self._max_priority),
            config=np.array(json.dumps(self._config())),
            rng_state=np.array(json.dumps(self.rng.bit_generator.state)),
        )
        return {k: np.array(v, copy=True) for k, v in d.items()}

    def load_state_dict(self, d: Mapping[str, np.ndarray]) -> None:
        """Restore a :meth:`state_dict` (a ``ValueError`` if another memory's)."""
        config = json.loads(str(d["config"]))
        if config != self._config():
            raise ValueError(
                f"ReplayMemory.load_state_dict: state of a memory built with "
                f"{config}, this one has {self._config()}"
            )
        self._adds = int(d["adds"])
        stored = min(self._adds, self.slots)
        for name, array in self._arrays.items():
            array[...] = 0
            if name != "frames":
                array[:, :stored] = d[name]
        frames = np.zeros_like(self._arrays["frames"][:, :stored])
        frames.reshape(-1)[np.asarray(d["frames_at"], dtype=np.int64)] = d["frames_value"]
        self._arrays["frames"][:, :stored] = frames
        self._env_step = np.array(d["env_step"], dtype=np.int32)
        self._env_fresh = np.array(d["env_fresh"], dtype=bool)
        self._max_priority = float(d["max_priority"])
        self.rng.bit_generator.state = json.loads(str(d["rng_state"]))

    def _config(self) -> dict[str, Any]:
        names = ("capacity", "num_envs", "frame_stack", "n_step", "gamma", "prioritized")
        config = {name: getattr(self, name) for name in (*names, "alpha", "beta", "aux_dim")}
        return {**config, "obs_shape": list(self.obs_shape), "obs_dtype": self.obs_dtype.str}


def _specs(
    capacity: int, num_envs: int, obs_shape: tuple, obs_dtype: Any, frame_stack: int = 1, **kw: Any
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of each ``[N, C, ...]`` array of a memory, by name."""
    obs_shape = tuple(int(d) for d in obs_shape)
    frame = obs_shape[:-1] if frame_stack > 1 else obs_shape  # the newest frame only
    nc = (int(num_envs), int(capacity) // int(num_envs))
    dtypes = (obs_dtype, np.int32, np.float32, bool, bool, np.float32, np.int32)
    shapes = ((*nc, *frame), nc, nc, nc, nc, (*nc, int(kw.get("aux_dim", 0))), nc)
    specs = {n: (s, np.dtype(d)) for n, s, d in zip(_FIELDS, shapes, dtypes, strict=True)}
    return {**specs, "priority": (nc, np.dtype(np.float64))} if kw.get("prioritized") else specs
