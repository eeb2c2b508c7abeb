"""Perception: a CNN that reads the game state from the stacked grey frames.

Each architecture (:data:`ARCHITECTURES`) is an ``"encoder"`` (a nested model: uint8
frames -> features) and a head (features -> the env's ``state`` observation). So
:class:`PerceptionVectorWrapper` turns ``pixels`` games into ``state`` ones, and the encoder can
start a DQN's Q-network. Outputs are float32 under mixed precision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import keras
import numpy as np
from keras import layers, ops

from catchrl.agents.layers import ClipToBox, SpatialSoftArgmax
from catchrl.agents.networks import compile_predict
from catchrl.envs.core import CatchParams
from catchrl.envs.observations import observation_space, state_features

ARCHITECTURES = ("book", "lenet", "small")


def build_encoder(
    arch: str = "small", input_shape: tuple[int, int, int] = (80, 80, 4)
) -> keras.Model:
    """The conv stack of ``arch``: a model ``"encoder"``, uint8 ``[B, H, W, C]`` -> ``[B, F]``.

    - ``"book"``: the book DQN's convs (32 8x8/4, 64 4x4/2, 64 3x3/1, ``same``), Flatten;
    - ``"lenet"``: 6 5x5 conv, 2x2 max-pool, 16 5x5 conv, 2x2 max-pool, Flatten (LeCun 1998);
    - ``"small"``: 2x2 average pool (sub-pixel positions survive in the grey levels),
      16 4x4/2 conv, 16 3x3 conv, 16 1x1 keypoint maps -> their soft-argmax
      coordinates and maxima (48 features).

    ValueError: unknown architecture.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHITECTURES}")
    frames = keras.Input(shape=input_shape, name="frames")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(frames)
    if arch == "book":
        x = layers.Conv2D(32, 8, strides=4, padding="same", activation="relu", name="conv1")(x)
        x = layers.Conv2D(64, 4, strides=2, padding="same", activation="relu", name="conv2")(x)
        x = layers.Conv2D(64, 3, strides=1, padding="same", activation="relu", name="conv3")(x)
        features = layers.Flatten(name="flatten")(x)
    elif arch == "lenet":
        x = layers.Conv2D(6, 5, padding="same", activation="relu", name="conv1")(x)
        x = layers.MaxPooling2D(2, name="pool1")(x)
        x = layers.Conv2D(16, 5, padding="same", activation="relu", name="conv2")(x)
        x = layers.MaxPooling2D(2, name="pool2")(x)
        features = layers.Flatten(name="flatten")(x)
    else:
        x = layers.AveragePooling2D(2, name="pool")(x)
        x = layers.Conv2D(16, 4, strides=2, padding="same", activation="relu", name="conv1")(x)
        x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
        x = layers.Conv2D(16, 1, name="keypoints")(x)
        points = SpatialSoftArgmax(initial_temperature=10.0, name="soft_argmax")(x)
        present = layers.GlobalMaxPooling2D(name="present")(x)
        features = layers.Concatenate(name="features")([points, present])
    return keras.Model(frames, features, name="encoder")


# Hidden Dense units of the head on each encoder (book: 512; LeNet-5: 120, 84).
HEAD_UNITS = {"book": (512,), "lenet": (120, 84), "small": (128,)}


def build_frames_model(
    arch: str, input_shape: tuple[int, int, int], outputs: int, output_name: str, name: str
) -> keras.Model:
    """Frames -> :func:`build_encoder` -> the arch's Dense head -> ``outputs`` float32 values."""
    encoder = build_encoder(arch, input_shape)
    frames = keras.Input(shape=input_shape, name="frames")
    x = encoder(frames)
    for i, units in enumerate(HEAD_UNITS[arch]):
        x = layers.Dense(units, activation="relu", name=f"dense{i + 1}")(x)
    out = layers.Dense(outputs, dtype="float32", name=output_name)(x)
    return keras.Model(frames, out, name=name)


def build_perception_model(
    arch: str = "small",
    params: CatchParams | None = None,
    input_shape: tuple[int, int, int] = (80, 80, 4),
) -> keras.Model:
    """An uncompiled model ``"perception_<arch>"``: frames -> the ``state`` observation.

    ``params`` (default the book's game) decides 3 outputs, or 4 with drift.
    """
    size = 4 if (params or CatchParams()).drift else 3
    return build_frames_model(arch, input_shape, size, "state", f"perception_{arch}")


def pixel_units(params: CatchParams, frame_size: int = 80) -> np.ndarray:
    """Frame pixels per unit of each ``state`` column: float32 ``[3 or 4]``.

    Positions were divided by the world's width / height, so one unit is
    ``frame_size`` frame px; the x-speed was divided by ``drift``, so one unit
    is ``drift * frame_size / width`` frame px per step.
    """
    speed = [params.drift * frame_size / params.width] if params.drift else []
    return np.asarray([frame_size] * 3 + speed, dtype=np.float32)


@keras.saving.register_keras_serializable(package="catchrl")
class PixelMSE(keras.losses.Loss):
    """The squared error in frame pixels: ``mean_j ((pred_j - true_j) * units_j) ** 2``.

    ``units``: :func:`pixel_units`; a plain MSE lets the x-speed, which one observation
    cannot show, dominate.
    """

    def __init__(self, units: list[float], **kwargs: Any) -> None:
        kwargs.setdefault("name", "pixel_mse")
        super().__init__(**kwargs)
        self.units = [float(u) for u in units]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Per-sample mean over the columns of the squared error in pixels."""
        units = ops.convert_to_tensor(self.units, "float32")
        diff = (ops.cast(y_pred, "float32") - ops.cast(y_true, "float32")) * units
        return ops.mean(ops.square(diff), axis=-1)

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments."""
        return {**super().get_config(), "units": self.units}


def get_encoder(model: keras.Model) -> keras.Model:
    """The nested ``"encoder"`` of a perception (or imitation) model (ValueError: none)."""
    try:
        return model.get_layer("encoder")
    except ValueError:
        raise ValueError(
            f"model {model.name!r} has no nested 'encoder'; build it with "
            "build_perception_model or build_imitation_model"
        ) from None


def build_q_network_from_encoder(encoder: keras.Model, head: keras.Model) -> keras.Model:
    """A Q-network ``frames -> a copy of encoder -> head`` (the perception model stays as is).

    Both learn. Keras raises ValueError when ``head`` does not read the encoder's features.
    """
    copy = keras.models.clone_model(encoder)
    copy.set_weights(encoder.get_weights())
    frames = keras.Input(shape=encoder.input_shape[1:], name="frames")
    return keras.Model(frames, head(copy(frames)), name="q_network")


def build_perceived_q_network(
    perception: keras.Model, q_network: keras.Model, space: gym.spaces.Box
) -> keras.Model:
    """``frames -> perception -> clip into space -> q_network`` as one model (layers shared).

    What a DQN on perceived states (or a frozen encoder's features) plays with, saved as
    one ``.keras`` file; ``space``'s finite bounds clip, as :class:`FrameModelVectorWrapper`
    did.
    """
    spec = perception.inputs[0]
    frames = keras.Input(shape=spec.shape[1:], dtype=spec.dtype, name="frames")
    state = perception(frames)
    if np.isfinite(space.low).any() or np.isfinite(space.high).any():
        state = ClipToBox(space.low.tolist(), space.high.tolist(), name="clip_state")(state)
    return keras.Model(frames, q_network(state), name="perceived_q_network")


def _check_frames(name: str, model: keras.Model, shape: tuple[int, ...] | None) -> None:
    """Refuse a model that reads other frames than the game's observations."""
    if tuple(model.input_shape[1:]) != tuple(shape or ()):
        raise ValueError(
            f"{name} reads frames of shape {tuple(model.input_shape[1:])}, the game gives "
            f"{tuple(shape or ())} (env.frame_size, frame stack)"
        )


class FrameModelVectorWrapper(gym.vector.VectorWrapper):
    """Replace a pixel vector env's frames by a frozen model's outputs ``[N, F]``, one call a step.

    The outputs are the game's state (:class:`PerceptionVectorWrapper`) or a frozen
    encoder's features (``space`` None: unbounded); ``infos["final_obs"]`` is mapped too.
    (Not gymnasium's ``VectorObservationWrapper``: it refuses ``same_step`` autoreset.)
    """

    def __init__(
        self, env: gym.vector.VectorEnv, model: keras.Model, space: gym.spaces.Box | None = None
    ) -> None:
        super().__init__(env)
        _check_frames(model.name, model, env.single_observation_space.shape)
        if space is None:  # a frozen encoder's features: unbounded
            space = gym.spaces.Box(-np.inf, np.inf, model.output_shape[1:], np.float32)
        self.model = model
        self._predict = compile_predict(model)
        self.single_observation_space = space
        self.observation_space = gym.vector.utils.batch_space(space, env.num_envs)

    def perceive(self, obs: np.ndarray) -> np.ndarray:
        """The model's outputs ``[B, F]`` float32 for pixel observations ``[B, H, W, C]``."""
        space = self.single_observation_space
        return np.clip(self._predict(np.asarray(obs)), space.low, space.high).astype(np.float32)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the env; return the model's outputs ``[N, F]``."""
        obs, infos = self.env.reset(**kwargs)
        return self.perceive(obs), infos

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step the env; return the model's outputs (and those of ``final_obs``)."""
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        if "final_obs" in infos:
            final = infos["final_obs"].copy()
            done = np.flatnonzero(infos["_final_obs"])
            for i, output in zip(done, self.perceive(np.stack(final[done])), strict=True):
                final[i] = output
            infos = {**infos, "final_obs": final}
        return self.perceive(obs), rewards, terminated, truncated, infos


class PerceptionVectorWrapper(FrameModelVectorWrapper):
    """A ``pixels`` vector env as a ``state`` one (the same game's space) through a model.

    ``model``: a perception model or its ``.keras`` path; its outputs ``[N, 3 or 4]`` are
    clipped into the space. ValueError: it reads other frames or outputs another state size.
    """

    def __init__(self, env: gym.vector.VectorEnv, model: keras.Model | str) -> None:
        model = keras.models.load_model(model) if isinstance(model, str) else model
        params, zero = env.unwrapped.params, np.zeros(1, dtype=np.int64)  # type: ignore[attr-defined]
        sample = state_features(params, zero, zero, zero, zero)  # the game's state: 3 or 4
        if int(model.output_shape[-1]) != sample.shape[-1]:
            raise ValueError(
                f"perception model outputs {model.output_shape[-1]} values, but this game's state "
                f"has {sample.shape[-1]} (drift={params.drift}); train one for this game"
            )
        super().__init__(env, model, observation_space("state", sample[0]))


def perceive(model: keras.Model, frames: np.ndarray) -> np.ndarray:
    """Run a perception model over many frame stacks, 1,024 a call: float32 ``[N, state]``."""
    predict = compile_predict(model)
    out = [predict(frames[i : i + 1024]) for i in range(0, len(frames), 1024)]
    return np.concatenate(out).astype(np.float32)


def frozen_module_env(
    kind: str, path: str, env: gym.vector.VectorEnv
) -> tuple[keras.Model, FrameModelVectorWrapper | None]:
    """The module at ``path`` for ``kind``, and ``env`` behind it where it is frozen.

    ``perception`` and ``encoder`` wrap ``env`` (the agent sees the perceived states or the
    features); ``tuned-encoder`` is the encoder alone (``path``: a ``.keras`` file or its run
    directory). ValueError: no such file, not a usable model, or frames of another shape.
    """
    model_path = Path(path) / "model.keras" if Path(path).is_dir() else Path(path)  # a run's
    if not model_path.is_file():
        raise ValueError(f"{str(model_path)!r} does not exist")
    try:
        module = keras.saving.load_model(model_path, compile=False)
        module = module if kind == "perception" else get_encoder(module)
    except Exception as e:  # Keras raises many kinds for a bad file
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise ValueError(f"{model_path} is not a usable model ({type(e).__name__}: {first})") from e
    _check_frames(str(model_path), module, env.single_observation_space.shape)
    if kind == "encoder":
        return module, FrameModelVectorWrapper(env, module)
    if kind != "perception":
        return module, None
    try:
        return module, PerceptionVectorWrapper(env, module)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
