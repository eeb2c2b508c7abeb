"""SB3 adapter: VecEnv parity with the native env, defaults, policies, tiny extractor, loading."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN
from stable_baselines3.common.vec_env import VecTransposeImage

from catchrl.agents import sb3
from catchrl.agents.networks import build_q_network
from catchrl.agents.sb3_env import make_catch_vec_env
from catchrl.envs import ENV_IDS, CatchVectorEnv


def _play(venv, steps: int, seed: int):
    venv.seed(seed)
    obs = venv.reset()
    rng = np.random.default_rng(seed)
    out = [obs.copy()]
    for _ in range(steps):
        actions = rng.integers(0, 3, size=venv.num_envs)
        obs, rewards, dones, infos = venv.step(actions)
        out.append(
            (
                obs.copy(),
                rewards.copy(),
                dones.copy(),
                [i.get("terminal_observation") for i in infos],
                [i.get("episode", {}).get("r") for i in infos],
                [i.get("episode", {}).get("l") for i in infos],
                [i.get("TimeLimit.truncated") for i in infos],
                [i.get("is_success") if d else None for i, d in zip(infos, dones, strict=True)],
            )
        )
    return out


@pytest.mark.parametrize("obs_type", ["pixels", "state", "grid"])
def test_vecenv_equals_dummyvecenv_and_native_step_for_step(obs_type: str) -> None:
    n, steps, seed = 4, 80, 123  # 80 steps: two 33-step games and a bit (grid: 9 steps)
    ours = _play(make_catch_vec_env(n, obs_type), steps, seed)
    dummy = _play(make_vec_env(ENV_IDS[obs_type], n_envs=n), steps, seed)
    np.testing.assert_array_equal(ours[0], dummy[0])
    ended = 0
    for a, b in zip(ours[1:], dummy[1:], strict=True):
        np.testing.assert_array_equal(a[0], b[0])  # obs (next game's first after a done)
        np.testing.assert_array_equal(a[1], b[1])  # rewards
        assert a[1].dtype == np.float32
        np.testing.assert_array_equal(a[2], b[2])  # dones
        for term_a, term_b in zip(a[3], b[3], strict=True):
            assert (term_a is None) == (term_b is None)
            if term_a is not None:
                np.testing.assert_array_equal(term_a, term_b)
                ended += 1
        assert a[4] == b[4] and a[5] == b[5]  # Monitor's episode return and length
        assert a[6] == b[6]
        assert a[7] == b[7]  # is_success at each game's end (SB3's success rate)
        assert all((s is None) == (t is None) for s, t in zip(a[7], a[3], strict=True))
    game_length = CatchVectorEnv(1, obs_type=obs_type).params.max_episode_steps
    assert ended == n * (steps // game_length)  # every game ended, and on time

    # and the native same-step env's own final_obs / obs
    native = CatchVectorEnv(n, obs_type=obs_type, autoreset_mode="same_step")
    obs, _ = native.reset(seed=seed)
    np.testing.assert_array_equal(obs, ours[0])
    rng = np.random.default_rng(seed)
    for a in ours[1:]:
        obs, reward, term, _, info = native.step(rng.integers(0, 3, size=n))
        np.testing.assert_array_equal(obs, a[0])
        np.testing.assert_array_equal(reward, a[1])
        np.testing.assert_array_equal(term, a[2])
        for i in np.flatnonzero(term):
            np.testing.assert_array_equal(info["final_obs"][i], a[3][i])


def test_vecenv_terminal_observation_is_last_frame_stack() -> None:
    venv = make_catch_vec_env(2, "pixels", seed=0)
    obs = venv.reset()
    prev = obs
    for _ in range(33):
        obs, _, dones, infos = venv.step(np.ones(2, dtype=np.int64))
        if dones.any():
            break
        prev = obs
    assert dones.all()
    term = infos[0]["terminal_observation"]
    np.testing.assert_array_equal(term[..., :3], prev[0][..., 1:])  # the stack shifted once
    assert (obs[0] == obs[0][..., :1]).all()  # a new game: its first frame repeated 4 times


def test_defaults_merge_and_unknown_options() -> None:
    kw = sb3.sb3_kwargs(
        "sb3-dqn",
        "state",
        {"learning_rate": 5e-4, "policy_kwargs": {"net_arch": [32]}},
        num_envs=16,
    )
    assert kw["policy"] == "MlpPolicy" and kw["learning_rate"] == 5e-4
    assert kw["policy_kwargs"] == {"net_arch": [32]}
    assert kw["target_update_interval"] == 250 * 16 // 4  # 250 gradient steps, 4 per vec step
    assert sb3.sb3_kwargs("sb3-ppo", "pixels")["policy"] == "CnnPolicy"
    with pytest.raises(sb3.SB3ConfigError, match=r"sb3.no_such_option is not an option of DQN"):
        sb3.sb3_kwargs("sb3-dqn", "state", {"no_such_option": 1})
    with pytest.raises(sb3.SB3ConfigError, match="did you mean 'learning_rate'"):
        sb3.sb3_kwargs("sb3-ppo", "state", {"learnig_rate": 1})  # a typo, not a substring
    with pytest.raises(sb3.SB3ConfigError, match="run.seed"):
        sb3.sb3_kwargs("sb3-a2c", "state", {"seed": 3})
    with pytest.raises(sb3.SB3ConfigError, match="unknown algorithm"):
        sb3.sb3_kwargs("sb3-sac", "state")
    with pytest.raises(sb3.SB3ConfigError, match="rejected"):
        sb3.make_sb3_model(
            "sb3-dqn",
            make_catch_vec_env(2, "state"),
            sb3.sb3_kwargs("sb3-dqn", "state", {"train_freq": "often"}),
            seed=0,
        )


def test_every_default_is_a_constructor_option() -> None:
    for algo, tables in sb3.DEFAULTS.items():
        valid = set(sb3.constructor_options(algo))
        for table in tables.values():
            assert set(table) <= valid, (algo, set(table) - valid)


@pytest.mark.parametrize("algo", ["sb3-dqn", "sb3-ppo"])
def test_pixels_reach_sb3_as_an_image(algo: str) -> None:
    env = make_catch_vec_env(2, "pixels", seed=0)
    kw = sb3.sb3_kwargs(algo, "pixels", {"buffer_size": 200} if algo == "sb3-dqn" else {})
    model = sb3.make_sb3_model(algo, env, kw, seed=0)
    extractor = (
        model.q_net.features_extractor if algo == "sb3-dqn" else model.policy.features_extractor
    )
    assert isinstance(extractor, NatureCNN)
    assert isinstance(model.get_env(), VecTransposeImage)
    assert model.observation_space.shape == (4, 80, 80)
    state = sb3.make_sb3_model(
        algo,
        make_catch_vec_env(2, "state"),
        sb3.sb3_kwargs(algo, "state"),
        seed=0,
    )
    extractor = (
        state.q_net.features_extractor if algo == "sb3-dqn" else state.policy.features_extractor
    )
    assert isinstance(extractor, FlattenExtractor)


def test_tiny_extractor_is_the_keras_tiny_network(tmp_path) -> None:
    env = make_catch_vec_env(2, "pixels", seed=0)
    tiny = {"features_extractor_class": "tiny", "net_arch": []}
    kw = sb3.sb3_kwargs("sb3-dqn", "pixels", {"buffer_size": 100, "policy_kwargs": tiny})
    model = sb3.make_sb3_model("sb3-dqn", env, kw, seed=0)
    keras_tiny = build_q_network("tiny", (80, 80, 4), seed=0)  # the network it copies
    torch_sizes = sorted(p.numel() for p in model.q_net.parameters())
    assert torch_sizes == sorted(int(np.prod(w.shape)) for w in keras_tiny.weights)
    model.save(tmp_path / "tiny.zip")
    loaded = sb3.algorithm_class("sb3-dqn").load(tmp_path / "tiny.zip")
    obs = env.reset()
    np.testing.assert_array_equal(loaded.predict(obs)[0], model.predict(obs)[0])


def test_make_vec_env_on_registered_ids_trains() -> None:
    venv = make_vec_env("catchrl/CatchState-v0", n_envs=2, seed=0)
    model = PPO("MlpPolicy", venv, n_steps=33, batch_size=33, n_epochs=1, seed=0)
    model.learn(132)
    assert model.num_timesteps == 132


def test_load_agent_q_values_and_detection(tmp_path) -> None:
    env = make_catch_vec_env(4, "state", seed=0)
    model = sb3.make_sb3_model("sb3-dqn", env, sb3.sb3_kwargs("sb3-dqn", "state"), seed=0)
    path = tmp_path / "m.zip"
    model.save(path)
    assert sb3.detect_algo(path) == "sb3-dqn"
    from catchrl.api import AgentLoadError, load_agent

    loaded = load_agent(path, trust_sb3=True, obs_type="state")
    obs = CatchVectorEnv(5, obs_type="state").reset(seed=0)[0]
    q = loaded.q_values(obs)
    assert q.shape == (5, 3)
    np.testing.assert_array_equal(loaded.policy(obs, None), q.argmax(axis=1))
    ppo = sb3.make_sb3_model("sb3-ppo", env, sb3.sb3_kwargs("sb3-ppo", "state"), seed=0)
    ppo.save(tmp_path / "p.zip")
    assert sb3.detect_algo(tmp_path / "p.zip") == "sb3-ppo"
    ppo_loaded = load_agent(tmp_path / "p.zip", trust_sb3=True, obs_type="state")
    assert ppo_loaded.q_values is None
    with pytest.raises(AgentLoadError, match="shape"):
        load_agent(path, trust_sb3=True, obs_type="pixels")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(AgentLoadError, match="not a Stable-Baselines3 model"):
        load_agent(tmp_path / "bad.zip", trust_sb3=True, obs_type="state")
