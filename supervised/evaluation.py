"""Measure a trained supervised model on a held-out dataset, in the units that matter."""

from __future__ import annotations

import os

import keras
import numpy as np

from catchrl.supervised.datasets import GameDataset, load_dataset, perception_targets
from catchrl.supervised.perception import perceive, pixel_units
from catchrl.supervised.sequence import sequence_arrays, straight_down
from catchrl.supervised.train import DATA_KINDS, all_stacks, perceived_states


def evaluate_model(
    task: str,
    model: keras.Model | str,
    data: str | GameDataset,
    perception: keras.Model | str | None = None,
) -> dict[str, float]:
    """Measure ``model`` (or its ``.keras`` path) for ``task`` on a held-out dataset (or path).

    perception: per column ``mae_px_*`` (frame px; ``ball_vx`` in frame px / step),
    ``within_1px_*``, ``mean_baseline_mae_px_*`` (always the mean); with drift also
    ``within_1px_ball_vx_after_first_frame`` and ``exact_speed_ball_vx_after_first_frame``.
    sequence (states read through ``perception`` if given): ``landing_mae_px``,
    ``straight_down_mae_px`` (full windows only), ``catch_accuracy``, ``catch_base_rate``.
    imitation: ``action_accuracy`` (agreement with the oracle). All with ``samples``.
    """
    model = keras.models.load_model(model) if isinstance(model, (str, os.PathLike)) else model
    ds = data if isinstance(data, GameDataset) else load_dataset(data, kind=DATA_KINDS[task])
    params, size = ds.params, ds.config.frame_size
    if task == "perception":
        x, g, t = all_stacks(ds)
        true = perception_targets(params, ds.states[g, t])
        pred = perceive(model, x)
        names = ["ball_x", "ball_y", "paddle_x", "ball_vx"][: true.shape[1]]
        unit = pixel_units(params, size)
        err = np.abs(pred - true) * unit
        base = np.abs(true - true.mean(0)) * unit
        out: dict[str, float] = {"samples": float(len(x))}
        for i, name in enumerate(names):
            out[f"mae_px_{name}"] = float(err[:, i].mean())
            out[f"within_1px_{name}"] = float((err[:, i] < 1.0).mean())
            out[f"mean_baseline_mae_px_{name}"] = float(base[:, i].mean())
        if "ball_vx" in names:
            # A game's first observation is four copies of one frame: no speed to see.
            moving = t > 0
            out["within_1px_ball_vx_after_first_frame"] = float((err[moving, 3] < 1.0).mean())
            # 1 frame px / step is drift world px / step, the whole speed range: also
            # the share read to the world pixel (the speed is a whole number of them).
            speed = np.rint(pred[:, 3] * params.drift) == np.rint(true[:, 3] * params.drift)
            out["exact_speed_ball_vx_after_first_frame"] = float(speed[moving].mean())
        return out
    if task == "imitation":
        x, g, t = all_stacks(ds, ds.steps)
        pred = np.argmax(model.predict(x, batch_size=4096, verbose=0), axis=-1)
        accuracy = float((pred == ds.oracle_actions[g, t]).mean())
        return {"samples": float(len(x)), "action_accuracy": accuracy}
    window = int(model.input_shape[1])
    perceived = None if perception is None else perceived_states(ds, perception)
    xs, landing, caught = sequence_arrays(ds, window, perceived)
    xs, landing, caught = (a[:, window - 1 :] for a in (xs, landing, caught))
    xs = xs.reshape(-1, window, xs.shape[-1])
    landing, caught = landing.reshape(-1), caught.reshape(-1)
    pred = model.predict(xs, batch_size=4096, verbose=0)
    return {  # landing is x / width: x / width * size frame px
        "samples": float(len(xs)),
        "landing_mae_px": float(np.abs(pred["landing_x"][:, 0] - landing).mean() * size),
        "straight_down_mae_px": float(np.abs(straight_down(xs) - landing).mean() * size),
        "catch_accuracy": float(((pred["catch"][:, 0] > 0.5) == (caught > 0.5)).mean()),
        "catch_base_rate": float(caught.mean()),
    }
