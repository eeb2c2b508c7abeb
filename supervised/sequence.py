"""Sequence models: where the ball will land, and whether this policy catches it.

A recurrent model reads the last ``k`` states (true or perceived; ``k = 8``) as positions
``(ball x / width, ball y / height, paddle x / width)`` and forecasts ``landing_x`` (the
ball's left edge on its deciding step, / width) and ``catch`` (whether the policy that made
the data catches it). Windows at a game's start repeat its first state, as the env's frame
stack does. :class:`ForecastWrapper` adds the forecast to a ``state`` env's observation.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import keras
import numpy as np
from gymnasium import spaces
from keras import layers, ops

from catchrl.agents.networks import compile_predict
from catchrl.supervised.datasets import GameDataset, perception_targets

SEQUENCE_ARCHS = ("lstm", "gru", "bidirectional")
DEFAULT_WINDOW = 8
POSITIONS = 3  # ball x, ball y, paddle x


@keras.saving.register_keras_serializable(package="catchrl")
class FrameDeltas(keras.layers.Layer):
    """Append ``scale`` x step-to-step differences (0 at the first): ``[B, k, F] -> [B, k, 2F]``.

    Speeds are tiny in position units (5 px / 400 = 0.0125); ``scale`` 40 makes a 10 px step 1.
    """

    def __init__(self, scale: float = 40.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs: Any) -> Any:
        """Return ``concat(inputs, scale * (inputs[t] - inputs[t-1]))`` along features."""
        prev = ops.concatenate([inputs[:, :1], inputs[:, :-1]], axis=1)
        return ops.concatenate([inputs, (inputs - prev) * self.scale], axis=-1)

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments."""
        return {**super().get_config(), "scale": self.scale}


def build_sequence_model(
    arch: str = "lstm", window: int = DEFAULT_WINDOW, features: int = POSITIONS, units: int = 64
) -> keras.Model:
    """An uncompiled ``"forecast_<arch>"``: ``[B, window, features]`` -> ``landing_x``, ``catch``.

    Both outputs float32 ``[B, 1]`` (``catch`` a probability); ValueError: unknown ``arch``.
    """
    if arch not in SEQUENCE_ARCHS:
        raise ValueError(f"unknown sequence architecture {arch!r}; choose one of {SEQUENCE_ARCHS}")
    states = keras.Input(shape=(window, features), name="states")
    x = FrameDeltas(name="deltas")(states)
    if arch == "lstm":
        x = layers.LSTM(units, name="lstm")(x)
    elif arch == "gru":
        x = layers.GRU(units, name="gru")(x)
    else:
        x = layers.Bidirectional(layers.LSTM(units // 2), name="bilstm")(x)
    x = layers.Dense(64, activation="relu", name="hidden")(x)
    landing = layers.Dense(1, dtype="float32", name="landing_x")(x)
    catch = layers.Dense(1, activation="sigmoid", dtype="float32", name="catch")(x)
    return keras.Model(states, {"landing_x": landing, "catch": catch}, name=f"forecast_{arch}")


def landing_targets(ds: GameDataset) -> tuple[np.ndarray, np.ndarray]:
    """Where the ball in flight at each observation lands, and whether it is caught.

    ``(landing_x, caught)``: int16 ``[G, T + 1]`` (world px) and bool ``[G, T + 1]``; an
    observation on a deciding step refers to the ball just decided.
    """
    games, steps = ds.rewards.shape
    # step t (obs t -> t + 1) decided a ball; a game's last step always does
    decisions = np.where(ds.rewards != 0, np.arange(steps), steps - 1)  # [G, T]
    next_decision = np.minimum.accumulate(decisions[:, ::-1], axis=1)[:, ::-1]  # first >= t
    # obs t shows the ball decided at step t - 1, if one was, else the next one to be
    decision = next_decision[:, np.maximum(np.arange(steps + 1) - 1, 0)]  # [G, T + 1]
    rows = np.arange(games)[:, None]
    return ds.states[rows, decision + 1, 0], ds.rewards[rows, decision] > 0


def windows(seq: np.ndarray, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """The last ``window`` states at every step (a game's first repeated): ``[G, T, k, F]``."""
    t = np.arange(seq.shape[1])[:, None] + np.arange(-window + 1, 1)[None, :]  # [T, window]
    return seq[:, np.maximum(t, 0)]


def sequence_arrays(
    ds: GameDataset, window: int = DEFAULT_WINDOW, perceived: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x [G, T + 1, window, 3], landing x / width [G, T + 1], caught 0/1 [G, T + 1])``, float32.

    ``perceived``: ``state`` observations ``[G, T + 1, 3 or 4]`` read instead of the true states.
    """
    params = ds.params
    states = perception_targets(params, ds.states) if perceived is None else perceived
    pos = np.asarray(states, dtype=np.float32)[..., :POSITIONS]  # without the x-speed
    landing, caught = landing_targets(ds)
    landing = (landing / params.width).astype(np.float32)
    return windows(pos, window), landing, caught.astype(np.float32)


def straight_down(x: np.ndarray) -> np.ndarray:
    """The trivial forecast: the ball lands where it is now (last state's ball x)."""
    return x[..., -1, 0]


class ForecastWrapper(gym.ObservationWrapper):
    """Append a sequence model's forecast ``[landing_x, p_catch]`` to a ``state`` observation.

    ``model``: from :func:`build_sequence_model` or a ``.keras`` path. ValueError: not a
    state env, or a model that does not read ``[k, 3]`` windows.
    """

    def __init__(self, env: gym.Env, model: keras.Model | str) -> None:
        model = keras.models.load_model(model) if isinstance(model, str) else model
        space, in_shape = env.observation_space, tuple(model.input_shape[1:])
        if len(space.shape or ()) != 1 or space.shape[0] < POSITIONS:
            raise ValueError(
                f"ForecastWrapper needs a state observation (>= 3 numbers), got {space}"
            )
        if len(in_shape) != 2 or in_shape[1] != POSITIONS:
            raise ValueError(
                f"ForecastWrapper needs a model reading [k, {POSITIONS}] windows, got {in_shape}"
            )
        # the last k observations, the first one repeated after a reset
        super().__init__(gym.wrappers.FrameStackObservation(env, in_shape[0], padding_type="reset"))
        self.model, self._predict = model, compile_predict(model)
        low, high = np.append(space.low, [0, 0]), np.append(space.high, [1, 1])
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """The newest observation and ``[landing_x, p_catch]`` (``observation``: ``[k, F]``)."""
        out = self._predict(np.asarray(observation, dtype=np.float32)[None, :, :POSITIONS])
        forecast = np.clip([out["landing_x"][0, 0], out["catch"][0, 0]], 0.0, 1.0)
        return np.concatenate([observation[-1], forecast]).astype(np.float32)
