"""Pooled frames: the sums kept in replay give exactly what the network computes from the frames."""

import keras
import numpy as np
import pytest

from catchrl.agents.augment import random_shift
from catchrl.agents.networks import block_mean_body, build_q_network
from catchrl.agents.pooled import PooledFrames
from catchrl.envs import CatchVectorEnv


def game_frames(n_steps=40, num_envs=8, seed=0):
    """Real pixel observations ``[n_steps * num_envs, 80, 80, 4]`` of random play."""
    env = CatchVectorEnv(num_envs, obs_type="pixels", autoreset_mode="same_step")
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_steps):
        out.append(obs.copy())
        obs, *_ = env.step(rng.integers(0, 3, num_envs))
    env.close()
    return np.concatenate(out)


def block_means(frames, block):
    """The network's own first layers: a cast, then Keras' average pool."""
    return np.asarray(keras.layers.AveragePooling2D(block)(frames.astype(np.float32)))


@pytest.mark.parametrize(("block", "max_shift", "size"), [(4, 4, 80), (4, 0, 80), (2, 3, 37)])
def test_shifted_sums_equal_the_layer_on_shifted_frames(block, max_shift, size):
    """Shift then pool (DrQ's augmentation, then the network's pool) == sum once, slice."""
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (64, size, size, 4)).astype(np.uint8)
    frames[:8] = 255  # the largest sums
    pool = PooledFrames(block, max_shift, (size, size))
    stored = pool.store(frames)
    assert stored.dtype == np.uint16 and stored.shape == (64, *pool.stored_shape(4))
    # The same draws: shifted() takes one call of B integers, as random_shift does.
    expected = block_means(random_shift(frames, max_shift, np.random.default_rng(7)), block)
    got = pool.shifted(stored, np.random.default_rng(7))
    assert got.dtype == np.float32 and got.shape == (64, *pool.pooled_shape(4))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(pool.unshifted(stored), block_means(frames, block))


def test_tiny_network_body_gives_the_models_q_values():
    """The body on the stored sums and the saved model on the frames agree bit for bit."""
    model = build_q_network("tiny", (80, 80, 4), seed=0)
    block, body = block_mean_body(model)
    frames = game_frames(n_steps=5)
    pool = PooledFrames(block, 4, (80, 80))
    np.testing.assert_array_equal(
        np.asarray(body(pool.unshifted(pool.store(frames)))), np.asarray(model(frames))
    )
    assert [id(w) for w in body.weights] == [id(w) for w in model.weights]
    for kind in ("small", "book"):
        assert block_mean_body(build_q_network(kind, (80, 80, 4), seed=0)) is None


def test_sums_fit_uint16_and_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="max_shift must be in"):
        PooledFrames(4, 80, (80, 80))
    with pytest.raises(ValueError, match="block must be a power of two"):
        PooledFrames(0, 4, (80, 80))
    with pytest.raises(ValueError, match="block must be a power of two"):
        PooledFrames(3, 4, (80, 80))
    with pytest.raises(ValueError, match="too large for uint16"):
        PooledFrames(32, 4, (80, 80))
    pool = PooledFrames(4, 4, (80, 80))
    with pytest.raises(ValueError, match="expected uint8 frames"):
        pool.store(np.zeros((1, 80, 80, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected \[N, 80, 80, C\]"):
        pool.store(np.zeros((1, 40, 80, 4), np.uint8))
