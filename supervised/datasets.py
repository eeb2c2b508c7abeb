"""Labelled data from the game: frames with their true state, trajectories, expert actions.

A dataset is G whole games of T steps played in lockstep on a
:class:`~catchrl.envs.CatchVectorEnv` (game ``g`` seeded with ``seed + g``;
each game draws its own probability ``p`` of a random action, else the
oracle's, uniform in ``random_prob``), saved as a compressed ``.npz``:

- ``states``: int16 ``[G, T + 1, 4]``, the true ``(ball_x, ball_y, ball_vx,
  paddle_x)`` in world pixels behind every observation (index 0 = after reset);
- ``actions``: int8 ``[G, T]``; ``oracle_actions``: int8 ``[G, T + 1]``;
  ``rewards``: float32 ``[G, T]``;
- ``frames`` (kinds ``frames`` and ``expert``): uint8 ``[G, T + 1, S, S]``, the
  newest grey frame of every observation (:func:`frame_stacks` rebuilds the stacks);
- ``config``: the JSON of the generating :class:`DatasetConfig`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catchrl.agents.npz import load_npz, read_headers
from catchrl.envs import CatchParams, CatchVectorEnv
from catchrl.envs.observations import state_features
from catchrl.envs.sizing import check_fits

FORMAT_VERSION = 1
KINDS = ("frames", "trajectories", "expert")
# Per-game probability of a random action, drawn uniformly from this range.
DEFAULT_RANDOM_PROB = {"frames": (0.0, 1.0), "trajectories": (0.0, 1.0), "expert": (0.0, 0.3)}


class DatasetError(ValueError):
    """A dataset file that cannot be used: unreadable, inconsistent, or another version or kind."""


@dataclass(frozen=True)
class DatasetConfig:
    """How a dataset was generated (stored in the file).

    ``kind``: ``"frames"`` (frames + state labels), ``"trajectories"`` (no frames) or
    ``"expert"`` (frames played mostly by the oracle); ``seed``: game ``g`` resets with
    ``seed + g``, the action mix draws from ``default_rng(seed)``; ``frame_size`` and
    ``frame_stack``: the book's 80 and 4; ``num_envs``: speed only.
    """

    kind: str = "frames"
    games: int = 100
    seed: int = 0
    params: dict[str, Any] = field(default_factory=lambda: dataclasses.asdict(CatchParams()))
    frame_size: int = 80
    frame_stack: int = 4
    random_prob: tuple[float, float] = (0.0, 1.0)
    num_envs: int = 64
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown dataset kind {self.kind!r}; choose one of {KINDS}")
        for name in ("games", "frame_size", "frame_stack", "num_envs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        lo, hi = self.random_prob
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"random_prob must be 0 <= low <= high <= 1, got {self.random_prob}")
        CatchParams(**self.params)  # validates

    def to_json(self) -> str:
        """Return the config as JSON."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DatasetConfig:
        """Inverse of :meth:`to_json` (no version check; see :func:`load_dataset`)."""
        d = json.loads(text)
        d["random_prob"] = tuple(d["random_prob"])
        return cls(**d)


@dataclass
class GameDataset:
    """G games of T steps: the arrays of the module docstring and their config."""

    config: DatasetConfig
    states: np.ndarray
    actions: np.ndarray
    oracle_actions: np.ndarray
    rewards: np.ndarray
    frames: np.ndarray | None = None

    @property
    def params(self) -> CatchParams:
        """The game's parameters."""
        return CatchParams(**self.config.params)

    @property
    def num_games(self) -> int:
        """G."""
        return int(self.states.shape[0])

    @property
    def steps(self) -> int:
        """T, steps per game."""
        return int(self.actions.shape[1])


def _expected(cfg: DatasetConfig) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The arrays a dataset of ``cfg`` holds: name -> (shape, dtype)."""
    g, t, s = cfg.games, CatchParams(**cfg.params).max_episode_steps, cfg.frame_size
    want = {
        "states": ((g, t + 1, 4), np.dtype(np.int16)),
        "actions": ((g, t), np.dtype(np.int8)),
        "oracle_actions": ((g, t + 1), np.dtype(np.int8)),
        "rewards": ((g, t), np.dtype(np.float32)),
    }
    if cfg.kind != "trajectories":
        want["frames"] = ((g, t + 1, s, s), np.dtype(np.uint8))
    return want


def _nbytes(cfg: DatasetConfig) -> int:
    """Bytes of the arrays a dataset of ``cfg`` holds."""
    return sum(math.prod(shape) * dtype.itemsize for shape, dtype in _expected(cfg).values())


def make_dataset(
    kind: str = "frames",
    games: int = 100,
    seed: int = 0,
    params: CatchParams | None = None,
    random_prob: tuple[float, float] | None = None,
    num_envs: int = 64,
) -> GameDataset:
    """Play ``games`` seeded games and record them with their labels.

    Arguments as :class:`DatasetConfig`'s; ``random_prob``: the kind's
    :data:`DEFAULT_RANDOM_PROB` by default.
    """
    params = params or CatchParams()
    prob = tuple(random_prob or DEFAULT_RANDOM_PROB.get(kind, (0.0, 1.0)))
    game = dataclasses.asdict(params)
    cfg = DatasetConfig(kind, games, seed, game, random_prob=prob, num_envs=num_envs)
    check_fits(f"a dataset of {games:,} games", _nbytes(cfg), "--games")
    steps = params.max_episode_steps
    n = min(num_envs, games)
    obs_type = "state" if cfg.kind == "trajectories" else "pixels"
    env = CatchVectorEnv(n, obs_type, cfg.frame_size, cfg.frame_stack, params=params)
    from catchrl.agents.scripted import OraclePolicy

    oracle = OraclePolicy(params)
    rng = np.random.default_rng(seed)
    # Drawn up front per game and step, so the data does not depend on num_envs.
    p_random = rng.uniform(*cfg.random_prob, size=games)
    explore = rng.random((games, steps)) < p_random[:, None]
    random_actions = rng.integers(0, 3, size=(games, steps))
    ds = GameDataset(cfg, **{k: np.zeros(s, dtype) for k, (s, dtype) in _expected(cfg).items()})

    def record(rows: slice, m: int, t: int, obs: np.ndarray) -> np.ndarray:
        b = env.batch
        ds.states[rows, t] = np.stack([b.ball_x, b.ball_y, b.ball_vx, b.paddle_x], -1)[:m]
        best = oracle.act_state(b)
        ds.oracle_actions[rows, t] = best[:m]
        if ds.frames is not None:
            ds.frames[rows, t] = obs[:m, :, :, -1]
        return best

    for g0 in range(0, games, n):
        m = min(n, games - g0)
        rows = slice(g0, g0 + m)
        obs, _ = env.reset(seed=seed + g0)
        for t in range(steps):
            best = record(rows, m, t, obs)
            a = best.copy()
            a[:m] = np.where(explore[rows, t], random_actions[rows, t], best[:m])
            obs, r, _, _, _ = env.step(a)
            ds.actions[rows, t] = a[:m]
            ds.rewards[rows, t] = r[:m]
        record(rows, m, steps, obs)
    env.close()
    return ds


def save_dataset(ds: GameDataset, path: str | os.PathLike[str]) -> None:
    """Write ``ds`` as a compressed ``.npz`` (atomically: temp file, then rename)."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"dataset files end in .npz, got {path!r}")
    arrays = {name: getattr(ds, name) for name in _expected(ds.config)}
    arrays["config"] = np.array(ds.config.to_json())
    tmp = path[:-4] + ".tmp.npz"
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:  # a full disk or an --out that is a folder: leave nothing behind
        if os.path.isfile(tmp):
            os.remove(tmp)
        raise


MAX_CONFIG_CHARS = 1 << 16
"""Longest ``config`` entry read (a JSON of a few hundred characters in practice)."""


def _read_config(path: str, declared: dict[str, Any]) -> DatasetConfig:
    """The generating config stored in the file, checked before anything else is read."""
    if "config" not in declared:
        raise DatasetError(f"{path}: not a catchrl dataset (no 'config' entry)")
    shape, dtype, _ = declared["config"]
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_CONFIG_CHARS:
        raise DatasetError(f"{path}: 'config' is not a short string ({dtype} {shape})")
    try:
        with np.load(path, allow_pickle=False) as f:
            text = str(f["config"])
        version = json.loads(text).get("format_version")
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, AttributeError) as e:
        raise DatasetError(f"{path}: 'config' is not a readable JSON object ({e})") from None
    if version != FORMAT_VERSION:
        raise DatasetError(
            f"{path}: dataset format version {version}, this catchrl reads "
            f"version {FORMAT_VERSION}; regenerate it with `catchrl data make`"
        )
    try:
        return DatasetConfig.from_json(text)
    except (TypeError, ValueError, KeyError) as e:
        raise DatasetError(f"{path}: bad dataset config: {e}") from e


def load_dataset(
    path: str | os.PathLike[str], kind: str | tuple[str, ...] | None = None
) -> GameDataset:
    """Read a file written by :func:`save_dataset` (of an accepted ``kind``; None: any).

    Headers are checked against the stored config and the memory available before any array
    is read (no pickle), labels against what a game produces: DatasetError names the file
    and what is wrong; FileNotFoundError.
    """
    path = os.fspath(path)
    try:
        declared = read_headers(path)
    except ValueError as e:
        raise DatasetError(str(e)) from None
    cfg = _read_config(path, declared)
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and cfg.kind not in kinds:
        raise DatasetError(f"{path}: a {cfg.kind!r} dataset, expected {' or '.join(kinds)!r}")
    want = _expected(cfg)  # members, shapes and dtypes against the config, before any read
    extra = sorted(set(declared) - set(want) - {"config"})
    missing = sorted(set(want) - set(declared))
    if extra or missing:
        raise DatasetError(
            f"{path}: members differ from a {cfg.kind!r} dataset "
            f"(missing {missing or 'none'}, unexpected {extra or 'none'})"
        )
    for name, (shape, dtype) in want.items():
        if declared[name][:2] != (shape, dtype):
            raise DatasetError(
                f"{path}: {name} is {declared[name][1]} {declared[name][0]}, but its config "
                f"(games={cfg.games}, frame_size={cfg.frame_size}) declares {dtype} {shape}"
            )
    try:  # the stored bytes and the memory available checked first; no pickle
        arrays = load_npz(path, limit=_nbytes(cfg) + declared["config"][2])
    except ValueError as e:
        raise DatasetError(str(e)) from None
    del arrays["config"]
    for name in ("actions", "oracle_actions"):  # labels a game can produce
        if not np.isin(arrays[name], (0, 1, 2)).all():
            raise DatasetError(f"{path}: {name} must be 0, 1 or 2")
    bad = arrays["rewards"][~np.isin(arrays["rewards"], (-1.0, 0.0, 1.0))]  # NaN included
    if bad.size:
        raise DatasetError(f"{path}: rewards must be -1, 0 or +1 (found {bad[0]})")
    return GameDataset(cfg, **arrays)


def frame_stacks(
    frames: np.ndarray, games: np.ndarray, steps: np.ndarray, stack: int = 4
) -> np.ndarray:
    """Rebuild the env's observations at ``(games[i], steps[i])``: uint8 ``[N, S, S, stack]``."""
    t = steps[:, None] + np.arange(-stack + 1, 1)[None, :]  # [N, stack], oldest first
    np.maximum(t, 0, out=t)
    out = frames[games[:, None], t]  # [N, stack, S, S]
    return np.ascontiguousarray(out.transpose(0, 2, 3, 1))


def perception_targets(params: CatchParams, states: np.ndarray) -> np.ndarray:
    """The ``state`` observation (the env's ``state_features``) of true states ``[..., 4]``.

    Ball x / width, ball y / height, paddle x / width, and with drift ball x-speed / drift.
    """
    return state_features(params, *np.moveaxis(states, -1, 0))  # ball x, y, vx, paddle x
