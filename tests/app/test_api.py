"""The Python API (``catchrl.train``, ``load_agent``, ``evaluate``, ``show``, ``record``):
agents that act, and the notebook in docs/ run end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import catchrl
from catchrl.agents.policy import load_model
from catchrl.cli import main
from catchrl.envs.window import HUD_HEIGHT
from catchrl.errors import CatchrlError

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_lists_the_api_and_refuses_typos() -> None:
    assert callable(catchrl.train) and "show" in dir(catchrl)  # light: tests/test_imports.py
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        catchrl.trian  # noqa: B018


def test_a_scripted_agent_acts_and_evaluates_as_the_cli(capsys: pytest.CaptureFixture) -> None:
    oracle = catchrl.load_agent("oracle", balls_per_game=3)
    env = oracle.make_env()
    obs, _ = env.reset(seed=4)
    terminated = False
    while not terminated:
        obs, _, terminated, _, info = env.step(oracle.act(obs, env.unwrapped.state))
    assert info["caught"] == 3  # the oracle catches every ball
    with pytest.raises(ValueError, match=r"env\.unwrapped\.state"):
        oracle.act(obs)
    assert oracle.q_values is None and repr(oracle) == "Agent('oracle', obs_type='state')"
    result = catchrl.evaluate("random", games=300, seed=7)
    assert main(["eval", "random", "--games", "300", "--seed", "7", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert (result.wins, result.games) == (cli["wins"], cli["games"]) and 0 < cli["wins"] < 150
    with pytest.raises(catchrl.AgentLoadError, match="neither a file"):
        catchrl.load_agent("runs/does-not-exist")


def test_show_and_record_hold_one_frame_per_step(tmp_path: Path) -> None:
    iio = pytest.importorskip("imageio.v3")
    pytest.importorskip("IPython")
    image = catchrl.show("oracle", games=1, fps=20)
    assert image.data[:6] == b"GIF89a" and image.format == "gif"
    frames = iio.imread(image.data, index=None, extension=".gif")
    # 33 steps, then the closing screen (a GIF stores its repeats once);
    # the window: the 400 x 400 field and the HUD band under it
    assert frames.shape == (33 + 1, 400 + HUD_HEIGHT, 400, 3)
    played = catchrl.record("oracle", tmp_path / "o.gif", games=1, fps=20)
    assert (played.caught, played.balls, played.steps) == (1, 1, 33)
    assert len(played.frames) == 78 and "frames" not in repr(played)  # 33 steps + 45 end frames
    np.testing.assert_array_equal(iio.imread(tmp_path / "o.gif", index=None), frames)
    with pytest.raises(CatchrlError, match=r"\.gif or \.mp4"):
        catchrl.record("oracle", tmp_path / "o.avi")


def test_sb3_run_trained_and_loaded_through_the_api(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    run, seen = tmp_path / "sb3", []
    result = catchrl.train(
        "fast-state",
        run,
        algo="sb3-dqn",
        overrides=["run.total_steps=1000", "run.eval_games=20", "run.eval_every=10"],
        progress=False,
        callbacks=[seen.append],
    )
    assert result.steps >= 1000 and (run / "model.zip").is_file()
    assert seen and seen == result.evaluations  # the hook saw every validation evaluation
    agent = catchrl.load_agent(run, trust_sb3=True)
    obs, _ = agent.make_env().reset(seed=0)
    q = agent.q_values(obs)
    assert q.shape == (3,) and agent.act(obs) == int(np.argmax(q))  # greedy on its Q-values
    assert catchrl.evaluate(agent, games=20).games == 20
    _acts_on_batches_as_sb3_expects(agent)


def test_a_keras_run_acts_on_batches_as_sb3_expects(quick_run: Path) -> None:
    pytest.importorskip("stable_baselines3")
    _acts_on_batches_as_sb3_expects(catchrl.load_agent(quick_run))


def test_a_bare_keras_file_plays_the_frame_size_it_was_trained_on(tmp_path: Path) -> None:
    from catchrl.agents.networks import build_q_network

    for size in (20, 80):
        file = tmp_path / f"q{size}.keras"
        build_q_network("tiny", (size, size, 4), 3, seed=0).save(file)
        agent = catchrl.load_agent(file)
        assert agent.make_env().observation_space.shape == (size, size, 4)
        assert catchrl.evaluate(agent, games=2).games == 2


def _acts_on_batches_as_sb3_expects(agent: catchrl.Agent) -> None:
    """``act``/``q_values`` on one observation or a batch; SB3's ``evaluate_policy`` runs it."""
    from stable_baselines3.common.evaluation import evaluate_policy

    env = agent.make_env()
    batch = np.stack([env.reset(seed=s)[0] for s in range(5)])  # [5, ...]
    actions, state = agent.predict(batch)
    assert state is None and actions.shape == (5,) and agent.q_values(batch).shape == (5, 3)
    np.testing.assert_array_equal(actions, [agent.act(obs) for obs in batch])
    with pytest.raises(ValueError, match=r"takes observations of shape"):
        agent.act(batch[:, :1])
    mean, _ = evaluate_policy(agent, env, n_eval_episodes=3)
    assert -1.0 <= mean <= 1.0


def test_quickstart_notebook_runs(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    iio = pytest.importorskip("imageio.v3")
    import base64

    nb = nbformat.read(ROOT / "docs" / "quickstart.ipynb", as_version=4)
    (train,) = [cell for cell in nb.cells if "run.total_steps=6000" in cell.source]
    train.source = train.source.replace("=6000", "=1000")  # every cell as written, a smaller run
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on any failing cell
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert not re.search(r"Warning|absl|XLA|tensorflow", stderr), stderr  # no log or warning
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    trained = re.search(r"(\d+) games, (\d+) env steps", text)
    assert trained and int(trained[2]) >= 1000, text[:2000]
    assert "greedy evaluation: win rate" in text
    assert "oracle: win rate 100.00% (500/500)" in text
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "model.keras").is_file() and (run / "metrics.tsv").is_file()
    (shown,) = [o["data"]["image/gif"] for o in nb.cells[-1].outputs if "data" in o]
    frames = iio.imread(base64.b64decode(shown), index=None, extension=".gif")
    assert frames.shape == (66 + 1, 400 + HUD_HEIGHT, 400, 3)  # the steps, then the closing screen


def _planted_sb3_zip(path: Path, marker: Path) -> Path:
    """An SB3-looking .zip whose ``data`` holds a pickle that creates ``marker`` when loaded."""
    import base64
    import json
    import os
    import pickle
    import zipfile

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    blob = base64.b64encode(pickle.dumps(Payload())).decode()
    data = {  # the policy class's module says DQN, so catchrl hands the file to SB3
        "policy_class": {
            ":type:": "<class 'abc.ABCMeta'>",
            ":serialized:": blob,
            "__module__": "stable_baselines3.dqn.policies",
        }
    }
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data", json.dumps(data))
    return path


def test_the_api_never_unpickles_without_trust_sb3(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = _planted_sb3_zip(tmp_path / "evil.zip", marker)
    calls = [
        lambda: catchrl.load_agent(evil),
        lambda: catchrl.evaluate(evil, games=5),
        lambda: catchrl.record(evil, tmp_path / "g.gif", games=1),
        lambda: catchrl.show(evil, games=1),
        lambda: catchrl.watch(evil, games=1),
    ]
    for call in calls:
        with pytest.raises(catchrl.AgentLoadError, match=r"trust_sb3=True\) if you trust it"):
            call()
    with pytest.raises(ValueError, match="unpickles code"):  # the library's own check
        load_model(evil)
    assert not marker.exists()
    with pytest.raises(catchrl.AgentLoadError):  # trusted: SB3 unpickles it (the payload runs)
        catchrl.load_agent(evil, trust_sb3=True)
    assert marker.exists()


def test_a_run_directorys_model_files_are_its_learners_own(tmp_path):
    from catchrl.api import AgentLoadError, _run_model, load_agent
    from catchrl.learners import LEARNERS, learner_class

    for algo in LEARNERS:
        learner = learner_class(algo)
        run = tmp_path / algo
        run.mkdir()
        (run / learner.model_name).touch()
        assert _run_model(run, learner, "best") == run / learner.model_name  # no best kept
        (run / learner.best_name()).touch()
        assert _run_model(run, learner, "best").name == "best" + Path(learner.model_name).suffix
        assert _run_model(run, learner, "final").name == learner.model_name
    (tmp_path / "config.toml").write_text('algo = "sb3-ppp"\n')
    with pytest.raises(AgentLoadError, match="bad config.toml \\(unknown algo 'sb3-ppp'"):
        load_agent(tmp_path)
