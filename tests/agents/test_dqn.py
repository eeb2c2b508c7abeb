"""DQNAgent: the update on a rigged network, target sync, the LR schedule, state, learning."""

import json

import keras
import numpy as np
import pytest

from catchrl.agents.dqn import LANDING_WEIGHT, DQNAgent, learning_rate
from catchrl.agents.networks import build_q_network, load_q_network
from catchrl.agents.replay import ReplayMemory
from catchrl.agents.schedules import EpsilonSchedule
from catchrl.config import AgentConfig
from catchrl.envs import CatchVectorEnv

PERMUTE = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], np.float32)  # Q_target(s) = s[[2, 0, 1]]


def rigged_model() -> keras.Model:
    """Q(s) = s @ W + b with W = I, b = 0: the observation *is* the Q-values."""
    model = keras.Sequential([keras.Input((3,), name="obs"), keras.layers.Dense(3)])
    model.set_weights([np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])
    return model


def rigged_agent(**config) -> DQNAgent:
    """A rigged agent with plain SGD at lr 0.1, no clipping; its target net permutes."""
    cfg = AgentConfig(**{"lr": 0.1, "grad_clip_norm": 0.0, "target_every": 1000, **config})
    agent = DQNAgent(rigged_model(), cfg, seed=0, optimizer=keras.optimizers.SGD(0.1))
    if agent.target_model is not None:
        agent.target_model.set_weights([PERMUTE, np.zeros(3, np.float32)])
    return agent


# Three samples: an n-step target (discount 0.5 = gamma**n), a 1-step one, a terminal one.
BATCH = {
    "obs": np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -0.5], [0.0, 0.0, 0.0]], np.float32),
    "actions": np.array([2, 0, 1]),
    "rewards": np.array([1.0, -1.0, 0.5], np.float32),
    "next_obs": np.array([[0.0, 1.5, 1.0], [3.0, 0.0, 2.0], [9.0, 9.0, 9.0]], np.float32),
    "discounts": np.array([0.5, 1.0, 0.0], np.float32),
    "weights": np.array([1.0, 2.0, 0.5], np.float32),
}


def expected_step(target: bool, loss: str, clip: float = 0.0, lr: float = 0.1):
    """TD errors, loss, gradient norm and the SGD-updated weights of the rigged model."""
    s, a, r = BATCH["obs"].astype(np.float64), BATCH["actions"], BATCH["rewards"]
    s2, d, w = BATCH["next_obs"].astype(np.float64), BATCH["discounts"], BATCH["weights"]
    if target:  # double DQN: the online net (Q = s') picks, the target (s' permuted) values
        next_value = (s2 @ PERMUTE)[np.arange(3), s2.argmax(axis=1)]
    else:  # the book: the online net's max
        next_value = s2.max(axis=1)
    td = r + d * next_value - s[np.arange(3), a]  # Q(s) = s
    if loss == "huber":
        per_sample = np.where(np.abs(td) <= 1, 0.5 * td**2, np.abs(td) - 0.5)
        dloss_dq = -np.clip(td, -1, 1)
    else:
        per_sample, dloss_dq = td**2, -2 * td
    g_q = np.zeros((3, 3))
    g_q[np.arange(3), a] = w * dloss_dq / 3  # d mean / d Q[i, a_i]
    g_kernel, g_bias = s.T @ g_q, g_q.sum(axis=0)
    norm = np.sqrt((g_kernel**2).sum() + (g_bias**2).sum())
    scale = min(1.0, clip / norm) if clip else 1.0
    kernel, bias = np.eye(3) - lr * scale * g_kernel, -lr * scale * g_bias
    return td, float(np.mean(w * per_sample)), norm, kernel, bias


@pytest.mark.parametrize(
    "config, target",
    [
        ({"loss": "mse", "target_every": 0}, False),  # the book: no target network
        ({"loss": "huber"}, True),  # errors beyond 1 are linear
        ({"loss": "mse"}, True),
        ({"loss": "huber", "grad_clip_norm": 0.05}, True),  # clipped to norm 0.05
    ],
)
def test_the_update_matches_a_hand_computation(config, target):
    agent = rigged_agent(**config)
    out = agent.train_step(BATCH)
    td, loss, norm, kernel, bias = expected_step(
        target, config["loss"], config.get("grad_clip_norm", 0.0)
    )
    np.testing.assert_allclose(out["td_errors"], td, rtol=1e-6)
    assert out["loss"] == pytest.approx(loss, rel=1e-6)
    assert out["grad_norm"] == pytest.approx(norm, rel=1e-6)
    new_kernel, new_bias = agent.model.get_weights()
    np.testing.assert_allclose(new_kernel, kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_bias, bias, rtol=1e-5, atol=1e-6)
    assert (agent.target_model is not None) == target


def test_n_step_targets_stop_at_a_terminal_and_never_cross_a_truncation():
    """The replay's n-step sums and discounts feed the update: r0 + g r1 + g^2 Q(s3), or
    the rewards up to the game's end and discount 0; a truncated game is never sampled."""
    m = ReplayMemory(100, 1, (3,), np.float32, n_step=3, gamma=0.5, seed=0)
    obs = np.eye(3, dtype=np.float32)
    rewards = [1.0, 2.0, 4.0, 8.0, 16.0]
    ends = [False, False, False, True, False]
    for t in range(5):
        m.add(obs[[t % 3]], np.array([t % 3]), np.array([rewards[t]]), [ends[t]], [False])
    m.add(obs[[0]], np.array([0]), np.array([0.0]), [False], [True])  # a truncated game
    batch = m.sample(2_000)
    t = batch["indices"]
    assert set(t.tolist()) == {0, 1, 2, 3}  # 4: its game is cut 2 steps later; 5: truncated
    want_r = {0: 1 + 0.5 * 2 + 0.25 * 4, 1: 2 + 0.5 * 4 + 0.25 * 8, 2: 4 + 0.5 * 8, 3: 8.0}
    want_d = {0: 0.125, 1: 0.0, 2: 0.0, 3: 0.0}
    np.testing.assert_allclose(batch["rewards"], [want_r[i] for i in t])
    np.testing.assert_allclose(batch["discounts"], [want_d[i] for i in t])
    np.testing.assert_array_equal(batch["next_obs"][t == 0], obs[[0]].repeat((t == 0).sum(), 0))


def test_auxiliary_landing_loss_is_added_with_its_weight():
    obs = keras.Input((3,), name="obs")
    q_layer, aux_layer = keras.layers.Dense(3, name="q"), keras.layers.Dense(1, name="landing_x")
    model = keras.Model(obs, [q_layer(obs), aux_layer(obs)])
    q_layer.set_weights([np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])  # Q(s) = s
    aux_layer.set_weights([np.array([[1.0], [0.0], [0.0]], np.float32), np.zeros(1, np.float32)])
    cfg = AgentConfig(lr=0.1, grad_clip_norm=0.0, loss="mse", target_every=0)
    agent = DQNAgent(model, cfg, seed=0, optimizer=keras.optimizers.SGD(0.1))
    labels = np.array([[0.5], [0.0], [1.0]], np.float32)
    with pytest.raises(ValueError, match="'aux' labels"):
        agent.train_step(BATCH)
    out = agent.train_step({**BATCH, "aux": labels})
    td, td_loss, _, kernel, bias = expected_step(False, "mse")
    aux_loss = np.mean((BATCH["obs"][:, 0] - labels[:, 0]) ** 2)  # landing_x(s) = s[0]
    assert out["loss"] == pytest.approx(td_loss + LANDING_WEIGHT * aux_loss, rel=1e-6)
    np.testing.assert_allclose(out["td_errors"], td, rtol=1e-6)
    new_kernel, new_bias = q_layer.get_weights()  # the Q head learns from the TD loss alone
    np.testing.assert_allclose(new_kernel, kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_bias, bias, rtol=1e-5, atol=1e-6)


# -- the target sync, the learning rate --------------------------------------------------


def test_a_hard_copy_every_target_every_steps():
    agent = rigged_agent(target_every=3, tau=1.0)
    initial = agent.target_model.get_weights()[0]
    for step in range(1, 8):
        agent.train_step(BATCH)
        target, online = agent.target_model.get_weights()[0], agent.model.get_weights()[0]
        if step < 3:
            np.testing.assert_array_equal(target, initial)
        if step in (3, 6):
            synced = online
            np.testing.assert_array_equal(target, online)
        if step in (4, 5, 7):
            np.testing.assert_array_equal(target, synced)
            assert not np.array_equal(target, online)
    assert agent.updates == 7


def test_polyak_every_target_every_steps():
    agent = rigged_agent(target_every=2, tau=0.25)
    agent.train_step(BATCH)
    np.testing.assert_array_equal(agent.target_model.get_weights()[0], PERMUTE)  # not yet
    agent.train_step(BATCH)
    online = agent.model.get_weights()[0]
    np.testing.assert_allclose(
        agent.target_model.get_weights()[0], 0.75 * PERMUTE + 0.25 * online, rtol=1e-6
    )


@pytest.mark.parametrize(
    "decay, progress, expected",
    [(False, 0.0, 1e-3), (False, 0.9, 1e-3), (True, 0.0, 1e-3), (True, 0.25, 7.5e-4),
     (True, 1.0, 0.0), (True, 2.0, 0.0)],
)  # fmt: skip
def test_learning_rate_schedule(decay, progress, expected):
    cfg = AgentConfig(lr=1e-3, lr_decay=decay)
    assert learning_rate(cfg, progress) == pytest.approx(expected)


def test_the_update_uses_the_scheduled_learning_rate():
    agent = DQNAgent(rigged_model(), AgentConfig(lr=0.1, lr_decay=True, grad_clip_norm=0.0))
    agent.train_step(BATCH, progress=0.75)
    assert float(agent.optimizer.learning_rate) == pytest.approx(0.025)


# -- acting --------------------------------------------------------------------------------


def test_greedy_actions_follow_q_values():
    agent = rigged_agent()
    obs = np.array([[1, 5, 2], [9, 0, 0], [0, 0, 0.5]], np.float32)
    np.testing.assert_array_equal(agent.act(obs, 0.0), [1, 0, 2])
    np.testing.assert_array_equal(agent.q_values(obs), obs)
    assert agent.act(obs, 0.0).dtype == np.int64


def test_epsilon_greedy_exploration_is_seeded_and_uniform():
    obs = np.tile(np.array([[0, 0, 1]], np.float32), (30_000, 1))
    a, b = rigged_agent(), rigged_agent()
    random_acts = a.act(obs, 1.0)
    np.testing.assert_array_equal(random_acts, b.act(obs, 1.0))
    np.testing.assert_allclose(np.bincount(random_acts) / len(obs), [1 / 3] * 3, atol=0.01)
    mixed = a.act(obs, 0.3)
    assert np.mean(mixed != 2) == pytest.approx(0.3 * 2 / 3, abs=0.01)


def test_act_rejects_an_unbatched_observation_and_the_agent_checks_num_actions():
    with pytest.raises(ValueError, match="batch"):
        rigged_agent().act(np.zeros(3, np.float32), 0.0)
    with pytest.raises(ValueError, match="num_actions"):
        DQNAgent(rigged_model(), AgentConfig(), num_actions=4)


# -- state, saving ------------------------------------------------------------------------


def random_batches(n, batch_size=16, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {
            "obs": rng.random((batch_size, 3)).astype(np.float32),
            "actions": rng.integers(0, 3, batch_size),
            "rewards": rng.choice([-1.0, 0.0, 1.0], batch_size).astype(np.float32),
            "next_obs": rng.random((batch_size, 3)).astype(np.float32),
            "discounts": np.full(batch_size, 0.99, np.float32),
            "weights": rng.random(batch_size).astype(np.float32),
        }


def make_agent(seed=0, **config):
    cfg = AgentConfig(**{"target_every": 4, "tau": 0.5, **config})
    return DQNAgent(build_q_network("mlp", (3,), seed=seed), cfg, seed=seed)


@pytest.mark.parametrize("config", [{}, {"target_every": 0, "loss": "mse", "lr_decay": True}])
def test_state_round_trip_resumes_exactly(tmp_path, config):
    batches = list(random_batches(20))
    obs = batches[0]["obs"]
    a = make_agent(**config)
    for i, batch in enumerate(batches[:10]):
        a.train_step(batch, i / 20)
    arrays, meta = a.get_state()  # saved as a run saves them: .npz and JSON
    np.savez(tmp_path / "agent.npz", **arrays)
    (tmp_path / "agent.json").write_text(json.dumps(meta))
    for i, batch in enumerate(batches[10:], 10):
        a.train_step(batch, i / 20)
    actions_a = a.act(obs, 0.5)

    b = make_agent(seed=99, **config)  # other weights and generator, all overwritten
    with np.load(tmp_path / "agent.npz") as data:
        b.set_state(dict(data), json.loads((tmp_path / "agent.json").read_text()))
    assert b.updates == 10
    for i, batch in enumerate(batches[10:], 10):
        b.train_step(batch, i / 20)
    np.testing.assert_array_equal(b.act(obs, 0.5), actions_a)
    (state_a, meta_a), (state_b, meta_b) = a.get_state(), b.get_state()
    assert state_a.keys() == state_b.keys() and meta_a == meta_b
    for key in state_a:
        np.testing.assert_array_equal(state_a[key], state_b[key], err_msg=key)


def test_set_state_rejects_another_network():
    other = DQNAgent(build_q_network("mlp", (5,), seed=0), AgentConfig())
    with pytest.raises(ValueError, match="online/000 is .* in the checkpoint.*another network"):
        make_agent().set_state(*other.get_state())


def test_the_saved_model_loads_in_plain_keras_and_acts_on_a_batch(tmp_path):
    model = build_q_network("tiny", (80, 80, 4), seed=0)  # Keras' own layers only
    agent = DQNAgent(model, AgentConfig())
    model.save(tmp_path / "q.keras")
    obs = np.random.default_rng(0).integers(0, 256, (5, 80, 80, 4), dtype=np.uint8)
    plain = keras.saving.load_model(tmp_path / "q.keras", compile=False)
    q = keras.ops.convert_to_numpy(plain(obs))
    assert q.shape == (5, 3)
    np.testing.assert_allclose(q, agent.q_values(obs), rtol=1e-5, atol=1e-6)
    loaded = DQNAgent(load_q_network(str(tmp_path / "q.keras")), AgentConfig())
    np.testing.assert_array_equal(loaded.greedy(obs), agent.greedy(obs))


# -- learning ------------------------------------------------------------------------------


def greedy_win_rate(agent: DQNAgent, games: int = 500, seed: int = 10_000) -> float:
    env = CatchVectorEnv(games, obs_type="state", autoreset_mode="next_step")
    obs, _ = env.reset(seed=seed)
    done, caught = np.zeros(games, bool), np.zeros(games, bool)
    while not done.all():
        obs, reward, terminated, _, _ = env.step(agent.act(obs, 0.0))
        caught |= ~done & (reward > 0)
        done |= terminated
    return float(caught.mean())


@pytest.mark.slow  # default suite: the same agent learns in test_best_model.py (fast-state run)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dqn_learns_catch_from_state(seed):
    """The MLP DQN (``fast-state``'s settings) wins >= 95 % of 500 greedy games within
    12,000 env steps (a budget in steps, not seconds)."""
    num_envs = 16
    env = CatchVectorEnv(num_envs, obs_type="state", autoreset_mode="same_step")
    obs, _ = env.reset(seed=seed)
    model = build_q_network("mlp", (3,), hidden_units=(128, 128), seed=seed)
    agent = DQNAgent(model, AgentConfig(lr=1e-3, target_every=1, tau=0.005), seed=seed)
    memory = ReplayMemory(50_000, num_envs, (3,), np.float32, n_step=16, seed=seed)
    schedule = EpsilonSchedule("linear", 0.05, duration=6_000, observe=1_000)
    steps = 0
    while steps < 12_000:
        actions = agent.act(obs, schedule(steps, 0))
        next_obs, rewards, terminated, truncated, _ = env.step(actions)
        memory.add(obs, actions, rewards, terminated, truncated)
        obs, steps = next_obs, steps + num_envs
        for _ in range(8 if steps >= 1_000 else 0):
            agent.train_step(memory.sample(128))
    win_rate = greedy_win_rate(agent)
    assert win_rate >= 0.95, f"greedy win rate {win_rate:.3f} after {steps} env steps"
