"""``catchrl bench modules``: the supervised modules in the DQN, raced on one game.

Each contender is a config on the ``fast`` preset; the race itself is
:mod:`catchrl.benchmarks.agents`'.
"""

from __future__ import annotations

import json

__all__ = ["MODULE_CONTENDERS", "NEEDS_PERCEPTION", "module_overrides"]

MODULE_CONTENDERS = (
    "catchrl-dqn",
    "dqn-perceived",
    "dqn-encoder-frozen",
    "dqn-encoder",
    "dqn-aux",
)
"""The supervised modules' comparison (``catchrl bench modules``): the pixel DQN (``fast``
preset), the same game played from the perceived state (``fast-state``'s MLP agent on a
perception model's output), played from the perception model's frozen encoder features
(the same agent on them), the pixel DQN started from that encoder (fine-tuned), and the
pixel DQN with the auxiliary landing-x head."""

NEEDS_PERCEPTION = ("dqn-perceived", "dqn-encoder-frozen", "dqn-encoder")
"""The contenders built on a perception model (``--perception``)."""


def module_overrides(contender: str, perception: str = "", aux_weight: float = 10.0) -> list[str]:
    """The config overrides (on the ``fast`` preset) of one of :data:`MODULE_CONTENDERS`."""
    from catchrl.config import PRESETS

    if contender == "catchrl-dqn":
        return []
    if contender == "dqn-aux":
        return [f"agent.aux_landing={aux_weight}"]
    if not perception:
        raise ValueError(
            f"{contender} needs a perception model (catchrl supervised train perception)"
        )
    if contender == "dqn-encoder":
        return [f"agent.encoder={json.dumps(perception)}", "agent.encoder_trainable=true"]
    # fast-state's agent, and its games a round (its replay ratio was measured with them)
    state = PRESETS["fast-state"]
    state_agent = [f"agent.{k}={json.dumps(v)}" for k, v in state["agent"].items()]
    state_agent.append(f"env.num_envs={state['env']['num_envs']}")
    if contender == "dqn-perceived":
        return [f"agent.perception={json.dumps(perception)}", *state_agent]
    if contender == "dqn-encoder-frozen":
        return [
            f"agent.encoder={json.dumps(perception)}",
            "agent.encoder_trainable=false",
            *state_agent,
        ]
    raise ValueError(f"unknown contender {contender!r}; choose one of {MODULE_CONTENDERS}")
