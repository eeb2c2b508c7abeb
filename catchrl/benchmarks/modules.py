"""``catchrl bench modules``: the supervised modules in the DQN, raced on one game.

Each contender is the pixel DQN (``fast``) with one ``agent.module``; the two that play
from a perception model's output use ``fast-state``'s MLP agent and games a round.
"""

from __future__ import annotations

import json

__all__ = ["MODULE_CONTENDERS", "NEEDS_PERCEPTION", "module_overrides"]

MODULE_CONTENDERS = ("catchrl-dqn", "dqn-perceived", "dqn-encoder-frozen", "dqn-encoder", "dqn-aux")
"""The pixel DQN, then with: the perceived state, the frozen encoder, the fine-tuned encoder,
the auxiliary landing-x head (``catchrl bench modules --help``)."""
PERCEPTION_MODULES = {
    "dqn-perceived": "perception",
    "dqn-encoder-frozen": "encoder",
    "dqn-encoder": "tuned-encoder",
}
"""The contenders built on a perception model (``--perception``): their ``agent.module``."""
NEEDS_PERCEPTION = tuple(PERCEPTION_MODULES)


def module_overrides(contender: str, perception: str = "") -> list[str]:
    """The config overrides (on the ``fast`` preset) of one of :data:`MODULE_CONTENDERS`."""
    from catchrl.config import PRESETS

    if contender == "catchrl-dqn":
        return []
    if contender == "dqn-aux":
        return ['agent.module="landing-head"']
    if contender not in PERCEPTION_MODULES:
        raise ValueError(f"unknown contender {contender!r}; choose one of {MODULE_CONTENDERS}")
    if not perception:
        raise ValueError(f"{contender} needs a perception model (catchrl supervised train)")
    module = f"{PERCEPTION_MODULES[contender]}:{perception}"
    overrides = [f"agent.module={json.dumps(module)}"]
    if contender == "dqn-encoder":  # fine-tuned inside the pixel DQN
        return overrides
    state = PRESETS["fast-state"]
    overrides += [f"agent.{key}={json.dumps(value)}" for key, value in state["agent"].items()]
    return [*overrides, f"env.num_envs={state['env']['num_envs']}"]
