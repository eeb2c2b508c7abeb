"""``catchrl bench modules``: the pixel DQN (``fast``) with each supervised module, raced."""

from __future__ import annotations

import json

__all__ = ["MODULE_CONTENDERS", "PERCEPTION_MODULES", "module_overrides"]

MODULE_CONTENDERS = ("catchrl-dqn", "dqn-perceived", "dqn-encoder-frozen", "dqn-encoder", "dqn-aux")
PERCEPTION_MODULES = {
    "dqn-perceived": "perception",
    "dqn-encoder-frozen": "encoder",
    "dqn-encoder": "tuned-encoder",
}
"""The contenders built on a perception model (``--perception``): their ``agent.module``."""


def module_overrides(contender: str, perception: str = "") -> list[str]:
    """A contender's ``fast`` overrides; on a frozen perception model, ``fast-state``'s agent."""
    from catchrl.config import PRESETS

    if contender == "catchrl-dqn":
        return []
    if contender == "dqn-aux":
        return ['agent.module="landing-head"']
    overrides = [f"agent.module={json.dumps(f'{PERCEPTION_MODULES[contender]}:{perception}')}"]
    if contender == "dqn-encoder":  # fine-tuned inside the pixel DQN
        return overrides
    state = PRESETS["fast-state"]
    overrides += [f"agent.{key}={json.dumps(value)}" for key, value in state["agent"].items()]
    return overrides
