"""Validation and test games apart, and the kept best model (``best.keras``, ``best.json``).

Training-time evaluations are rigged here (their win rates scripted), so which
evaluation is the best is known; everything else is a real run of the Keras DQN
on the state game.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from catchrl.api import load_agent
from catchrl.cli import main
from catchrl.config import MAX_NUM_ENVS, SEED_MAX, load_config
from catchrl.evaluation import (
    MAX_EVAL_GAMES,
    TEST_SEED,
    VALIDATION_SEED,
    EvalResult,
    evaluate,
)
from catchrl.learners import open_run
from catchrl.rundir import RunDir
from catchrl.runloop import RunLoop, TrainResult

QUICK = [
    "agent.observe=300",
    "agent.replay_capacity=5000",
    "run.eval_games=50",
    "run.eval_every=16",
    "run.target_win_rate=0",
]


def test_validation_test_and_training_seeds_never_overlap():
    # Game j of an evaluation plays from seed + j; training game i of env k from run.seed + k.
    train = range(0, SEED_MAX + MAX_NUM_ENVS + 1)
    validation = range(VALIDATION_SEED, VALIDATION_SEED + MAX_EVAL_GAMES)
    test = range(TEST_SEED, TEST_SEED + MAX_EVAL_GAMES)
    assert train.stop <= validation.start
    assert validation.stop <= test.start
    with pytest.raises(ValueError, match="games must be in"):
        evaluate(lambda obs, s: np.ones(len(obs), int), games=MAX_EVAL_GAMES, obs_type="state")


def test_validation_and_test_games_differ():
    a = evaluate(lambda obs, s: np.ones(len(obs), int), 200, VALIDATION_SEED, obs_type="state")
    b = evaluate(lambda obs, s: np.ones(len(obs), int), 200, TEST_SEED, obs_type="state")
    c = evaluate(lambda obs, s: np.ones(len(obs), int), 200, obs_type="state")
    assert c == b  # evaluate() defaults to the test games
    assert a != b  # a policy that stays put wins on different balls


def _rig(monkeypatch, scores: list[float]) -> list[int]:
    """Validation evaluations return ``scores`` in turn; test ones are real. Records seeds."""
    seeds: list[int] = []
    real = RunLoop.evaluate
    it = iter(scores)

    def rigged(self: RunLoop, games: int, seed: int = VALIDATION_SEED) -> EvalResult:
        seeds.append(seed)
        if seed != VALIDATION_SEED:
            return real(self, games, seed)
        wins = round(next(it) * games)
        return EvalResult(games=games, wins=wins, mean_length=9.0, mean_reward=0.0)

    monkeypatch.setattr(RunLoop, "evaluate", rigged)
    return seeds


def _open(run_dir: Path, games: int, monkeypatch, scores: list[float], snaps: list) -> RunLoop:
    cfg = load_config("fast-state", None, [*QUICK, f"run.total_steps={games * 33}"])
    loop: RunLoop

    def snapshot(record: dict) -> None:
        snaps.append((record["steps"], loop.learner.agent.model.get_weights()))

    _rig(monkeypatch, scores)
    loop = open_run(cfg, run_dir, progress=False, on_evaluation=snapshot)
    return loop


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def rigged_run(tmp_path_factory) -> tuple[Path, TrainResult, list]:
    """A run of six rigged validation evaluations, the weights at each; the run is not changed."""
    scores = [0.4, 0.9, 0.7, 0.9, 0.5, 0.8]  # the best is a tie: the later one (4th) is kept
    snaps: list = []
    run = tmp_path_factory.mktemp("best") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        result = _open(run, 16 * 6, monkeypatch, scores, snaps).run()
    return run, result, snaps


def test_best_keras_is_the_best_validation_model(rigged_run):
    run, result, snaps = rigged_run
    assert len(result.evaluations) == 6
    best = json.loads((run / "best.json").read_text())
    assert best["steps"] == snaps[3][0] == result.best["steps"]
    assert best["win_rate"] == pytest.approx(0.9)
    assert best["split"] == "validation" and best["seed"] == VALIDATION_SEED
    kept = keras.saving.load_model(run / "best.keras", compile=False).get_weights()
    final = keras.saving.load_model(run / "model.keras", compile=False).get_weights()
    assert _same(kept, snaps[3][1])
    assert not _same(kept, snaps[1][1]) and not _same(kept, final)
    assert [e["best"] for e in result.evaluations] == [True, True, False, True, False, False]
    # The final evaluation plays the kept model on the test games.
    final_eval = json.loads((run / "eval.json").read_text())
    assert final_eval["model"] == "best.keras" and final_eval["seed"] == TEST_SEED
    assert result.eval_model == "best.keras"


def test_eval_loads_the_kept_model_and_says_so(rigged_run, capsys):
    run = rigged_run[0]
    assert main(["eval", str(run), "--games", "20", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["seed"] == TEST_SEED
    assert record["model"] == "best.keras"
    assert main(["eval", str(run), "--games", "20"]) == 0
    assert "best.keras, the best validation model (90.00% at step" in capsys.readouterr().out
    assert main(["eval", str(run), "--games", "20", "--model", "final"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run: loaded model.keras, the final model\n")


def test_resume_keeps_the_best_model_and_its_score(rigged_run, tmp_path, monkeypatch):
    run, _, snaps = tmp_path / "run", *rigged_run[1:]
    shutil.copytree(rigged_run[0], run)
    best_bytes = (run / "best.keras").read_bytes()
    # A later, better best.keras from a future the checkpoint never saw (killed before the
    # next checkpoint): resuming puts the checkpoint's own best model and score back.
    (run / "best.keras").write_bytes(b"junk")
    (run / "best.json").write_text(json.dumps({"win_rate": 1.0, "steps": 10**6}))
    _rig(monkeypatch, [0.85, 0.2])  # worse than the kept 0.9: best.keras stays
    resumed = open_run(
        None, run, resume=True, progress=False, resume_overrides=[f"run.total_steps={16 * 8 * 33}"]
    )
    result = resumed.run()
    assert len(result.evaluations) == 8
    assert (run / "best.keras").read_bytes() == best_bytes
    best = json.loads((run / "best.json").read_text())
    assert best["win_rate"] == pytest.approx(0.9) and best["steps"] == snaps[3][0]
    assert result.best == best
    _rig(monkeypatch, [1.0])  # now a better one replaces it
    resumed = open_run(
        None, run, resume=True, progress=False, resume_overrides=[f"run.total_steps={16 * 9 * 33}"]
    )
    assert resumed.run().best["win_rate"] == 1.0
    assert (run / "best.keras").read_bytes() != best_bytes


def test_fast_state_learns_and_keeps_its_best_model(tmp_path):
    """The ``fast-state`` preset, as shipped, within a small budget: its kept model on test games.

    A budget in env steps (not seconds): the run stops once a validation
    evaluation reaches 99 %, and the model it keeps must hold up on 2,000 test
    games it never saw.
    """
    cfg = load_config("fast-state", None, ["run.total_steps=10000"])
    result = open_run(cfg, tmp_path / "run", progress=False).run()
    assert result.best is not None and result.best["win_rate"] >= 0.99, result.evaluations[-3:]
    assert result.steps <= 10_000
    kept = load_agent(tmp_path / "run")
    test = evaluate(kept.policy, games=2000, seed=TEST_SEED, **kept.env_kwargs)
    assert test.win_rate >= 0.95, test.summary()


def _spin(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def test_evaluations_and_checkpoints_change_neither_the_training_nor_its_clock(
    tmp_path, monkeypatch
):
    """How many validation games a run plays must not change what it learns, and neither
    evaluations nor checkpoints count as training time (what the races compare).

    Two runs evaluate after the same games, 20 or 60 games each (the greedy policy once drew
    from the agent's exploration generator). In the second, each checkpoint and validation
    evaluation burns 0.5 CPU s: the run's training clocks must move by much less across either.
    """
    burn = 0.5
    real_ckpt, real_eval = RunDir.save_checkpoint, RunLoop.evaluate

    def slow_ckpt(self: RunDir, *args: object, **kwargs: object) -> Path:
        _spin(burn)
        return real_ckpt(self, *args, **kwargs)

    def slow_eval(self: RunLoop, games: int, seed: int = VALIDATION_SEED) -> EvalResult:
        _spin(burn)
        return real_eval(self, games, seed)

    moved: dict[str, list[tuple[float, float]]] = {"checkpoint": [], "evaluation": []}

    def clocks(loop: RunLoop) -> tuple[float, float]:
        loop._tick()
        return loop.train_cpu, loop.elapsed

    def measured(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: RunLoop) -> Any:
            cpu0, wall0 = clocks(self)
            out = method(self)
            cpu1, wall1 = clocks(self)
            moved[name].append((cpu1 - cpu0, wall1 - wall0))
            return out

        return wrapper

    rows = {}
    for games in (20, 60):
        if games == 60:
            monkeypatch.setattr(RunDir, "save_checkpoint", slow_ckpt)
            monkeypatch.setattr(RunLoop, "evaluate", slow_eval)
            save, evaluate_now = RunLoop.save_checkpoint, RunLoop._evaluate_now
            monkeypatch.setattr(RunLoop, "save_checkpoint", measured("checkpoint", save))
            monkeypatch.setattr(RunLoop, "_evaluate_now", measured("evaluation", evaluate_now))
        overrides = [*QUICK, "run.total_steps=1584", f"run.eval_games={games}"]
        cfg = load_config("fast-state", None, overrides)
        result = open_run(cfg, tmp_path / str(games), progress=False).run()
        assert len(result.evaluations) >= 2
        rows[games] = RunDir(tmp_path / str(games)).read_metrics()
    for key in ("loss", "wins", "reward"):
        np.testing.assert_array_equal(rows[20][key], rows[60][key], err_msg=key)
    for name, deltas in moved.items():
        assert len(deltas) >= 2, name
        for cpu, wall in deltas:
            assert cpu < burn / 2 and wall < burn / 2, (name, deltas)
