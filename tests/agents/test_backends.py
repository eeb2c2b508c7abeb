"""The DQN on Keras' three backends: same targets and same training as on TensorFlow.

Each backend runs in a subprocess (Keras picks its backend once, at import).
The script sets every weight from numpy, so all backends start from the same
network; it reports the first step's TD errors, the losses of 40 Adam steps on
a fixed batch and the final weights, and checks act / state / save on the way.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import json, os, sys, tempfile
import numpy as np
import keras
from catchrl.agents.dqn import DQNAgent, DQNConfig
from catchrl.agents.networks import build_q_network

assert keras.backend.backend() == os.environ["KERAS_BACKEND"]
rng = np.random.default_rng(0)
model = build_q_network("mlp", (3,), hidden_units=(16,))
model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
agent = DQNAgent(model, DQNConfig(lr=3e-2, double=True, target_period=10, jit_compile=False),
                 seed=0)
B = 32
batch = {"obs": rng.random((B, 3)).astype(np.float32), "actions": rng.integers(0, 3, B),
         "rewards": rng.choice([-1.0, 0.0, 1.0], B).astype(np.float32),
         "next_obs": rng.random((B, 3)).astype(np.float32),
         "discounts": rng.choice([0.0, 0.5], B).astype(np.float32),
         "weights": rng.random(B).astype(np.float32)}
q0 = agent.q_values(batch["obs"])
actions = agent.act(batch["obs"], 0.0)
assert actions.dtype == np.int64 and (actions == q0.argmax(axis=1)).all()
first = agent.train_step(batch)
losses = [first["loss"]] + [agent.train_step(batch)["loss"] for _ in range(39)]
arrays, meta = agent.get_state_arrays(), json.loads(json.dumps(agent.get_state_meta()))
clone = DQNAgent(build_q_network("mlp", (3,), hidden_units=(16,)), agent.config, seed=5)
clone.set_state_arrays(arrays, meta)
back = clone.get_state_arrays()
assert back.keys() == arrays.keys() and all(np.array_equal(back[k], arrays[k]) for k in arrays)
assert clone.get_state_meta() == agent.get_state_meta()
path = os.path.join(tempfile.mkdtemp(), "q.keras")
agent.save_model(path)
loaded = DQNAgent.load_model(path)
np.testing.assert_allclose(loaded.q_values(batch["obs"]), agent.q_values(batch["obs"]),
                           rtol=1e-6)
print("RESULT " + json.dumps({
    "q0": q0.tolist(), "td0": first["td_errors"].tolist(), "losses": losses,
    "weights": [w.tolist() for w in agent.model.get_weights()]}))
"""


def run_backend(name: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": name, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"{name} backend failed:\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.fixture(scope="module")
def tensorflow_result() -> dict:
    return run_backend("tensorflow")


def test_tensorflow_learns_the_fixed_batch(tensorflow_result):
    losses = tensorflow_result["losses"]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_backend_matches_tensorflow(name, tensorflow_result):
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (pip install {name}) to test its Keras backend")
    result = run_backend(name)
    np.testing.assert_allclose(result["q0"], tensorflow_result["q0"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["td0"], tensorflow_result["td0"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["losses"], tensorflow_result["losses"], rtol=1e-3, atol=1e-5)
    assert result["losses"][-1] < 0.5 * result["losses"][0]
    for w, w_tf in zip(result["weights"], tensorflow_result["weights"], strict=True):
        np.testing.assert_allclose(w, w_tf, rtol=1e-3, atol=1e-4)
