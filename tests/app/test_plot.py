"""``catchrl plot``: labels name algorithm and observation type, one loss axis per kind of loss
(keeping zeros and negative losses), ε only where the algorithm has one, evaluations and the kept
model's test (as measured, one decimal) marked, DQN and SB3 runs in one figure.

The run directories are written in the run loop's formats with known values, so the figure
can be checked against them; ``test_train_cli.py`` and ``test_sb3_cli.py`` plot real runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from catchrl.cli import main
from catchrl.commands.plot import read_curves
from catchrl.plots import plot_runs, symlog_threshold

pytest.importorskip("matplotlib")

GAMES = 300


def _write_run(
    root: Path, name: str, algo: str, loss: np.ndarray, epsilon: float, obs_type: str = "state"
) -> Path:
    from catchrl.config import load_config, to_toml
    from catchrl.rundir import METRIC_COLUMNS, metrics_row

    run = root / name
    run.mkdir()
    cfg = load_config("fast" if obs_type == "pixels" else "fast-state")
    cfg.algo = algo
    (run / "config.toml").write_text(to_toml(cfg))
    rng = np.random.default_rng(0)
    rows, wins = ["\t".join(METRIC_COLUMNS) + "\n"], 0
    for g in range(1, GAMES + 1):
        reward = 1.0 if rng.random() < g / GAMES else -1.0
        wins += reward > 0
        rows.append(metrics_row(g, loss[g - 1], wins, epsilon, 33 * g, 500.0, 0.5, g / 10, reward))
    (run / "metrics.tsv").write_text("".join(rows))
    evals = [
        {"games": g, "wall_time": g / 10, "win_rate": g / GAMES, "ci95_low": 0.0, "ci95_high": 1.0}
        for g in (100, 200, 300)
    ]
    (run / "evals.json").write_text(json.dumps(evals))
    final = {
        "games": 1000,
        "win_rate": 0.988,
        "ci95_low": 0.98,
        "ci95_high": 0.993,
        "model": "best",
    }
    (run / "eval.json").write_text(json.dumps(final))
    return run


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    g = np.arange(GAMES)
    dqn_loss = np.where(g < 20, 0.0, 0.5 * np.exp(-g / 30))  # 0 observing, then 0.5 -> 1e-5
    ppo_loss = np.where(g < 20, 0.0, -0.02 + 0.001 * np.sin(g))  # PPO's loss is negative
    return {
        "dqn": _write_run(tmp_path, "keras", "dqn", dqn_loss, 0.5, "pixels"),
        "sb3-ppo": _write_run(tmp_path, "ppo", "sb3-ppo", ppo_loss, 0.0),
        "sb3-qrdqn": _write_run(tmp_path, "qr", "sb3-qrdqn", 2 * dqn_loss, 0.3),
    }


@pytest.mark.parametrize(
    ("losses", "scale"),
    [
        ([np.array([0.0, 0.05, 0.02, 0.01])], "linear"),
        ([np.zeros(5)], "linear"),
        ([np.array([0.0, -0.02, -0.01, 0.01])], "linear"),  # PPO: negative, same decade
        ([np.array([0.0, 0.5, 0.01, 1e-4, 1e-5])], "symlog"),
        ([np.full(50, 1e-4), np.array([-3.0, 2.0, -1.0])], "symlog"),  # two runs
    ],
)
def test_loss_axis_is_linear_or_symlog(losses: list[np.ndarray], scale: str) -> None:
    linthresh = symlog_threshold(losses)
    assert (linthresh is None) == (scale == "linear")
    if scale == "symlog":
        nonzero = np.abs(np.concatenate(losses))
        assert 0 < linthresh <= nonzero[nonzero > 0].max() / 100


def test_dqn_and_sb3_side_by_side(runs: dict[str, Path]) -> None:
    fig = plot_runs([read_curves(runs[a]) for a in ("dqn", "sb3-ppo", "sb3-qrdqn")], window=50)
    ax_win, ax_time, ax_td, ax_pg, ax_eps = fig.axes
    labels = {t.get_text() for t in ax_win.get_legend().get_texts()}
    assert {"keras (dqn, pixels)", "ppo (sb3-ppo, state)", "qr (sb3-qrdqn, state)"} <= labels
    # Loss: the TD losses on one axis, PPO's total loss on another.
    assert "TD loss" in ax_td.get_title() and "PPO" in ax_pg.get_title()
    td = {line.get_label(): line.get_ydata() for line in ax_td.get_lines()}
    pg = {line.get_label(): line.get_ydata() for line in ax_pg.get_lines()}
    assert {"keras (dqn, pixels)", "qr (sb3-qrdqn, state)"} <= set(td)
    assert "ppo (sb3-ppo, state)" in pg and not {
        "keras (dqn, pixels)",
        "qr (sb3-qrdqn, state)",
    } & set(pg)
    # The DQN's zeros and late 1e-5 drawn (symlog); PPO's negative loss on a linear axis of its own.
    assert ax_td.get_yscale() == "symlog" and ax_pg.get_yscale() == "linear"
    assert np.asarray(td["keras (dqn, pixels)"])[:20].tolist() == [0.0] * 20
    assert (np.asarray(pg["ppo (sb3-ppo, state)"]) < 0).sum() == GAMES - 20
    # ε: a curve for the DQNs only; PPO is named as having none.
    curves = [line for line in ax_eps.get_lines() if len(line.get_xdata())]
    assert [line.get_label() for line in curves] == ["keras (dqn, pixels)", "qr (sb3-qrdqn, state)"]
    assert np.all(np.asarray(curves[0].get_ydata()) == 0.5)
    eps_legend = [t.get_text() for t in ax_eps.get_legend().get_texts()]
    assert "ppo (sb3-ppo, state): no ε (stochastic policy)" in eps_legend
    # Evaluations: three dots per run at their games; the test a star at the last game, its
    # win rate printed as measured.
    for ax, last_x in ((ax_win, GAMES), (ax_time, GAMES / 10)):
        dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
        stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
        assert [list(d.get_xdata()) for d in dots] == [
            [100, 200, 300] if ax is ax_win else [10, 20, 30]
        ] * 3
        assert len(stars) == 3
        for star in stars:
            assert list(star.get_xdata()) == [last_x] and list(star.get_ydata()) == [98.8]
        assert [t.get_text() for t in ax.texts] == ["98.8 %"] * 3


def test_one_loss_axis_when_losses_are_alike(runs: dict[str, Path]) -> None:
    fig = plot_runs([read_curves(runs["dqn"]), read_curves(runs["sb3-qrdqn"])])
    assert len(fig.axes) == 4
    assert len([line for line in fig.axes[2].get_lines() if line.get_label()[0] != "_"]) == 2


def test_linear_loss_axis_when_losses_are_alike(runs: dict[str, Path]) -> None:
    fig = plot_runs([read_curves(runs["sb3-ppo"])])
    ax_loss, ax_eps = fig.axes[2], fig.axes[3]
    assert ax_loss.get_yscale() == "linear"
    assert not [line for line in ax_eps.get_lines() if len(line.get_xdata())]
    assert not ax_eps.axison  # no empty ε axis: a note says why
    note = ax_eps.texts[0].get_text()
    assert "No ε" in note and "ppo (sb3-ppo, state)" in note


def test_plot_command_writes_the_png(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "both.png"
    assert main(["plot", str(runs["dqn"]), str(runs["sb3-ppo"]), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(out) as image:
        assert image.size == (1320, 880)  # 12 x 8 in at 110 dpi
    assert main(["plot", str(runs["dqn"]), "--out", str(tmp_path / "none" / "x.png")]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plot", str(empty)]) == 2
    assert "cannot read the run" in capsys.readouterr().err
