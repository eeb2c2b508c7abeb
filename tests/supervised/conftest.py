"""Small datasets shared by the supervised tests (module-sized, generated once)."""

import keras
import pytest

from catchrl.envs import CatchParams
from catchrl.supervised.datasets import make_dataset


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends in float32 (a GPU test switches to mixed precision)."""
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def frames_ds():
    return make_dataset("frames", games=12, seed=3, num_envs=5)


@pytest.fixture(scope="session")
def drift_frames_ds():
    return make_dataset(
        "frames", games=6, seed=11, params=CatchParams(drift=5, balls_per_game=2), num_envs=4
    )


@pytest.fixture(scope="session")
def traj_drift_ds():
    return make_dataset("trajectories", games=1200, seed=0, params=CatchParams(drift=5))


@pytest.fixture(scope="session")
def traj_drift_test_ds():
    return make_dataset("trajectories", games=300, seed=1_000_000, params=CatchParams(drift=5))
