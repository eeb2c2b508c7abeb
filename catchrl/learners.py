"""Which learner trains a config, and a run opened with it: the entry point to training.

``algo = "dqn"`` is catchrl's Keras DQN (:mod:`catchrl.training`); ``sb3-*``
are Stable-Baselines3's algorithms (:mod:`catchrl.sb3_train`). A new learner
family adds one entry to :data:`LEARNERS`; the run loop is not copied.

Example::

    from catchrl.config import load_config
    from catchrl.learners import open_run

    result = open_run(load_config("fast-state"), "runs/state").run()
    print(result.final_eval.summary())
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from catchrl.config import ConfigError, TrainConfig
from catchrl.learner import Learner
from catchrl.runloop import RunLoop

__all__ = ["LEARNERS", "learner_class", "open_run"]

# algo prefix -> "module:Class" (imported only when used: SB3 and torch are optional).
LEARNERS = {
    "dqn": "catchrl.training:DQNLearner",
    "sb3-": "catchrl.sb3_train:SB3Learner",
    "rllib-": "catchrl.rllib_train:RLlibLearner",
}


def learner_class(algo: str) -> type[Learner]:
    """The learner class for ``algo`` (``dqn`` or ``sb3-…``).

    Raises:
        ConfigError: No learner for ``algo``, or its framework is not installed.

    """
    for prefix, target in LEARNERS.items():
        if algo == prefix or (prefix.endswith("-") and algo.startswith(prefix)):
            module_name, _, cls = target.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as e:
                raise ConfigError(
                    f"algo {algo!r} needs {e.name}, which is not installed: "
                    "pip install 'catchrl[all]'"
                ) from e
            return getattr(module, cls)
    raise ConfigError(
        f"unknown algo {algo!r}; choose dqn, sb3-dqn, sb3-ppo, sb3-a2c, sb3-qrdqn, "
        "rllib-ppo, rllib-dqn or rllib-appo"
    )


def open_run(
    cfg: TrainConfig | None,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool | None = None,
    resume_overrides: Sequence[str] = (),
    trust_pickle: bool = False,
    on_evaluation: Callable[[dict[str, Any]], bool | None] | None = None,
    keep_checkpoints: int = 1,
) -> RunLoop:
    """Open (and lock) a run directory for training ``cfg`` with its learner.

    Args:
        cfg: The run's config (None on resume: the checkpoint's is used).
        run_dir: The run directory.
        resume: Continue the run in ``run_dir`` exactly.
        progress: Progress bar (True), plain lines (False), or bar on a TTY (None).
        resume_overrides: ``run.KEY=VALUE`` changes allowed on resume.
        trust_pickle: Let an SB3 run's checkpoint be unpickled on resume.
        on_evaluation: Called with each training-time evaluation's record (a true
            return stops the run there).
        keep_checkpoints: Complete checkpoints kept (1: the latest).

    Returns:
        The :class:`~catchrl.runloop.RunLoop`; call ``.run()`` to train.

    """
    from catchrl.frameworks import tensorboard_without_tensorflow

    tensorboard_without_tensorflow()  # SB3 imports torch.utils.tensorboard: not TensorFlow
    return RunLoop(
        cfg,
        run_dir,
        lambda c: learner_class(c.algo),
        resume,
        progress,
        resume_overrides,
        trust_pickle=trust_pickle,
        on_evaluation=on_evaluation,
        keep_checkpoints=keep_checkpoints,
    )
