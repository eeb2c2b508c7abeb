"""Stable-Baselines3 algorithms on Catch: names, defaults, checked options, make, save and load.

Also the torch learners' (SB3's and RLlib's) global RNG states and thread count. SB3 is imported
when used; the game as an SB3 ``VecEnv`` is :mod:`catchrl.agents.sb3_env`.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
import io
import json
import os
import pickle
import random
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tomllib


class SB3NotInstalled(ImportError):
    """Stable-Baselines3 (or sb3-contrib, for QR-DQN) is missing; the message says what to do."""


class SB3ConfigError(ValueError):
    """An ``[sb3]`` option or an algorithm name is invalid; the message says which."""


ALGOS: dict[str, tuple[str, str]] = {
    "sb3-dqn": ("stable_baselines3", "DQN"),
    "sb3-ppo": ("stable_baselines3", "PPO"),
    "sb3-a2c": ("stable_baselines3", "A2C"),
    "sb3-qrdqn": ("sb3_contrib", "QRDQN"),
}
"""``--algo`` name -> (module, SB3 class)."""

OFF_POLICY = frozenset({"sb3-dqn", "sb3-qrdqn"})
"""Algorithms with a replay buffer (saved in checkpoints) and ε-greedy exploration."""

_TOML = Path(__file__).with_name("sb3_defaults.toml").read_text(encoding="utf-8")
DEFAULTS: dict[str, dict[str, dict[str, Any]]] = tomllib.loads(_TOML)
"""Each algorithm's defaults by observation kind ("pixels" or "vector"), with their sources."""

TARGET_PERIOD = 250
"""Gradient steps between target-network copies for DQN / QR-DQN (RL Zoo Atari: 1000 / 4)."""

# Constructor arguments catchrl sets itself; the message says where they come from.
_RESERVED = {
    "env": "the env comes from the [env] table",
    "seed": "use run.seed (or --seed)",
    "tensorboard_log": "TensorBoard events go to RUN/tb",
    "_init_setup_model": "internal to SB3",
}


def import_algo(
    algos: dict[str, tuple[str, str]], algo: str, unknown: type, missing: type, extra: str
) -> type:
    """The class ``algos[algo]`` names (``unknown`` if none, ``missing`` if it does not import)."""
    if algo not in algos:
        raise unknown(f"unknown algorithm {algo!r}; choose one of {', '.join(algos)}")
    module, name = algos[algo]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise missing(
            f"{algo} needs {module.split('.')[0].replace('_', '-')}, which cannot be imported "
            f"({type(e).__name__}: {e}); pip install 'catchrl[{extra}]'"
        ) from e


def check_options(table: str, keys: Any, valid: Any, owner: str, error: type) -> None:
    """Raise ``error`` naming the first of ``keys`` not in ``valid`` (and the closest one)."""
    names = sorted(valid)
    for key in sorted(set(keys) - set(names)):
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        valid_options = f"valid options: {', '.join(names)}"
        raise error(f"{table}.{key} is not an option of {owner}{hint}; {valid_options}")


def algorithm_class(algo: str) -> type:
    """The SB3 class of ``algo``; SB3ConfigError if unknown, SB3NotInstalled if missing."""
    return import_algo(ALGOS, algo, SB3ConfigError, SB3NotInstalled, "sb3")


def constructor_options(algo: str) -> list[str]:
    """The keyword arguments the algorithm's constructor accepts (minus reserved ones)."""
    params = inspect.signature(algorithm_class(algo).__init__).parameters.values()
    skip = ("self", *_RESERVED)
    return [p.name for p in params if p.name not in skip and p.kind != p.VAR_KEYWORD]


def sb3_kwargs(
    algo: str, obs_type: str, user: dict[str, Any] | None = None, num_envs: int = 8
) -> dict[str, Any]:
    """The defaults for ``algo`` on ``obs_type`` (pixels: ``CnnPolicy``), updated with ``user``.

    ``user``: the ``[sb3]`` table, each key checked against the constructor (SB3ConfigError);
    its ``*_kwargs`` tables merged key by key. ``num_envs`` turns :data:`TARGET_PERIOD`
    (gradient steps) into SB3's ``target_update_interval`` (transitions), unless given.
    """
    user = dict(user or {})
    for key in filter(_RESERVED.__contains__, user):
        raise SB3ConfigError(f"sb3.{key} cannot be set: {_RESERVED[key]}")
    check_options("sb3", user, constructor_options(algo), ALGOS[algo][1], SB3ConfigError)
    kind = "pixels" if obs_type == "pixels" else "vector"
    policy = "CnnPolicy" if kind == "pixels" else "MlpPolicy"  # NatureCNN on uint8 images
    merged: dict[str, Any] = {"policy": policy, **DEFAULTS[algo][kind]}
    if algo in OFF_POLICY and "target_update_interval" not in user:
        freq = merged.get("train_freq", 4)  # SB3's defaults where the table sets none
        per_grad_step = num_envs * freq / max(1, merged.get("gradient_steps", 1))
        merged["target_update_interval"] = max(1, round(TARGET_PERIOD * per_grad_step))
    for key, value in user.items():
        nested = key.endswith("_kwargs") and isinstance(value, dict)
        merged[key] = {**merged.get(key, {}), **value} if nested else value
    return merged


def make_sb3_model(algo: str, env: Any, kwargs: dict[str, Any], seed: int) -> Any:
    """Build the SB3 model from :func:`sb3_kwargs`'s output (on ``sb3.device``, else the CPU)."""
    cls = algorithm_class(algo)
    kw = copy.deepcopy(kwargs)  # SB3 (QR-DQN) adds classes to policy_kwargs in place
    kw.setdefault("device", "cpu")
    if isinstance(kw.get("train_freq"), list):  # TOML has no tuples: [4, "step"]
        kw["train_freq"] = tuple(kw["train_freq"])
    policy_kwargs = kw.get("policy_kwargs", {})
    if policy_kwargs.get("features_extractor_class") == "tiny":
        policy_kwargs["features_extractor_class"] = tiny_extractor()
    try:
        return cls(kw.pop("policy"), env, seed=seed, verbose=0, **kw)
    except (TypeError, ValueError, AssertionError, KeyError, NotImplementedError) as e:
        raise SB3ConfigError(
            f"{ALGOS[algo][1]} rejected the [sb3] settings "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e!r})"
        ) from e


def tiny_extractor() -> type:
    """The Keras ``tiny`` network (:mod:`catchrl.agents.networks`) as SB3's features extractor.

    Chosen with ``sb3.policy_kwargs = {features_extractor_class = "tiny", net_arch = []}``.
    """
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn

    class TinyExtractor(BaseFeaturesExtractor):
        def __init__(self, observation_space: Any) -> None:
            super().__init__(observation_space, features_dim=64)
            channels = observation_space.shape[0]
            self.net = nn.Sequential(
                nn.AvgPool2d(4),  # [B, C, 20, 20]
                nn.Conv2d(channels, 16, 4, stride=4),  # [B, 16, 5, 5]
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(16 * 5 * 5, 64),
                nn.ReLU(),
            )

        def forward(self, observations: Any) -> Any:
            return self.net(observations)

    return TinyExtractor


def detect_algo(model_path: str | Path) -> str | None:
    """The ``--algo`` of a saved SB3 ``.zip`` from its JSON metadata (None: it does not say)."""
    try:
        with zipfile.ZipFile(model_path) as z:
            data = json.loads(z.read("data").decode())
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError):
        return None
    module = str(data.get("policy_class", {}).get("__module__", ""))
    if module.startswith("stable_baselines3.common.policies"):  # PPO's and A2C's
        return "sb3-ppo" if "n_epochs" in data else "sb3-a2c"
    prefixes = {"stable_baselines3.dqn": "sb3-dqn", "sb3_contrib.qrdqn": "sb3-qrdqn"}
    return next((a for m, a in prefixes.items() if module.startswith(m)), None)


class _NoCloseBytesIO(io.BytesIO):
    """SB3's savers close the file they are given; keep the bytes readable."""

    def close(self) -> None:
        pass


def saved_bytes(save: Any) -> np.ndarray:
    """What an SB3 saver (``model.save``, ``save_replay_buffer``) writes to a file, as uint8."""
    buf = _NoCloseBytesIO()
    save(buf)
    return np.frombuffer(buf.getvalue(), np.uint8)


class SB3Policy:
    """A saved SB3 model (``algo``: read from the file if None), greedy (``deterministic=True``).

    Raises ``ValueError`` for a file SB3 cannot load, :class:`SB3NotInstalled` without SB3.
    """

    def __init__(self, path: str | Path, algo: str | None = None) -> None:
        self.algo = algo or detect_algo(path)
        if self.algo is None:
            raise ValueError(f"{path}: not a Stable-Baselines3 model file (no readable 'data')")
        cls = algorithm_class(self.algo)
        try:
            self.model = cls.load(path, device="cpu")  # unpickles
        except Exception as e:  # torch and pickle raise many kinds for a bad file
            why = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}"
            raise ValueError(f"{path}: cannot be loaded as {self.algo} ({why})") from e
        self.obs_shape = tuple(self.model.observation_space.shape)

    def actions(self, obs: Any, states: Any = None) -> Any:
        """The greedy action of each observation ``[N]``."""
        return self.model.predict(obs, deterministic=True)[0]

    def q_values(self, obs: Any) -> Any:
        """DQN's and QR-DQN's Q-values ``[N, A]``."""
        import torch

        tensor, _ = self.model.policy.obs_to_tensor(obs)
        with torch.no_grad():
            if self.algo == "sb3-qrdqn":
                return self.model.policy.quantile_net(tensor).mean(dim=1).cpu().numpy()
            return self.model.policy.q_net(tensor).cpu().numpy()


def sb3_logger(write: Callable[[int, dict[str, float]], None]) -> Any:
    """SB3's logger, its scalars to ``write(step, scalars)`` (nothing on stdout)."""
    from stable_baselines3.common.logger import KVWriter, Logger

    class Writer(KVWriter):
        def write(self, key_values: dict[str, Any], key_excluded: Any, step: int = 0) -> None:
            nums = {k: v for k, v in key_values.items() if isinstance(v, (int, float, np.number))}
            write(step, {k: float(v) for k, v in nums.items() if not isinstance(v, bool)})

    return Logger(folder=None, output_formats=[Writer()])


def sb3_callback(at_rollout_start: Callable[[], bool], on_step: Callable[[Any, Any], None]) -> Any:
    """An SB3 callback: ``on_step(model, locals)`` after each vector step.

    ``at_rollout_start()`` True stops ``learn()`` there, where SB3's state is whole.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class StepCallback(BaseCallback):
        halt = False

        def _on_rollout_start(self) -> None:
            self.halt = at_rollout_start()

        def _on_step(self) -> bool:
            if not self.halt:  # a halt: the checkpoint is from before this step
                on_step(self.model, self.locals)
            return not self.halt

    return StepCallback()


def sb3_state(model: Any, algo: str) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """What ``learn()`` continues from: its zip (and replay) as bytes, RNG and episode starts."""
    arrays = {"sb3_model": {"zip": saved_bytes(model.save)}}
    if algo in OFF_POLICY:
        arrays["sb3_replay"] = {"pkl": saved_bytes(model.save_replay_buffer)}
    meta = {
        "action_space": model.action_space.np_random.bit_generator.state,
        "last_episode_starts": np.asarray(model._last_episode_starts).tolist(),
    }
    return arrays, meta


def load_sb3_state(
    arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any], algo: str, env: Any, device: str
) -> Any:
    """The model of :func:`sb3_state` on ``env`` (unpickles: trusted files only); ValueError."""
    try:
        zip_file = io.BytesIO(arrays["sb3_model"]["zip"].tobytes())
        model = algorithm_class(algo).load(zip_file, env=env, device=device)
        if "sb3_replay" in arrays:
            model.load_replay_buffer(io.BytesIO(arrays["sb3_replay"]["pkl"].tobytes()))
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
        raise ValueError(f"the SB3 files do not load: {type(e).__name__}: {e}") from e
    model._last_episode_starts = np.asarray(meta["last_episode_starts"], dtype=bool)
    model.action_space.np_random.bit_generator.state = meta["action_space"]
    return model


def set_torch_threads() -> None:
    """One torch thread (``CATCHRL_TORCH_THREADS`` for more): measured in docs/sb3.md."""
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("CATCHRL_TORCH_THREADS") or 1)))


def rng_states() -> dict[str, Any]:
    """The global RNGs SB3 and RLlib draw from (numpy's, torch's, Python's), as JSON."""
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    version, words, gauss_next = random.getstate()
    return {
        "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state().tolist(),
        "python": [version, list(words), gauss_next],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore :func:`rng_states`."""
    import torch

    kind, keys, *rest = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))  # noqa: NPY002
    torch.set_rng_state(torch.tensor(states["torch"], dtype=torch.uint8))
    version, words, gauss_next = states["python"]
    random.setstate((version, tuple(words), gauss_next))
