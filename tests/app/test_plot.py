"""``catchrl plot``: the loss axis keeps zeros and negative losses, ε only where the algorithm
has one, evaluations and the kept model's test marked, DQN and SB3 runs in one figure.

The run directories are written in the run loop's formats with known values, so the figure
can be checked against them; ``test_train_cli.py`` and ``test_sb3_cli.py`` plot real runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from catchrl.cli import main
from catchrl.plots import loss_scale, plot_runs, read_curves

pytest.importorskip("matplotlib")

GAMES = 300


def _write_run(root: Path, name: str, algo: str, loss: np.ndarray, epsilon: float) -> Path:
    from catchrl.config import load_config, to_toml
    from catchrl.rundir import METRIC_COLUMNS, metrics_row

    run = root / name
    run.mkdir()
    cfg = load_config("fast-state")
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
    final = {"games": 1000, "win_rate": 0.93, "ci95_low": 0.91, "ci95_high": 0.945, "model": "best"}
    (run / "eval.json").write_text(json.dumps(final))
    return run


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    g = np.arange(GAMES)
    dqn_loss = np.where(g < 20, 0.0, 0.5 * np.exp(-g / 30))  # 0 observing, then 0.5 -> 1e-5
    ppo_loss = np.where(g < 20, 0.0, -0.02 + 0.001 * np.sin(g))  # PPO's loss is negative
    return {
        "dqn": _write_run(tmp_path, "keras", "dqn", dqn_loss, 0.5),
        "sb3-ppo": _write_run(tmp_path, "ppo", "sb3-ppo", ppo_loss, 0.0),
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
    got, linthresh = loss_scale(losses)
    assert got == scale
    if scale == "symlog":
        nonzero = np.abs(np.concatenate(losses))
        assert 0 < linthresh <= nonzero[nonzero > 0].max() / 100


def test_dqn_and_sb3_side_by_side(runs: dict[str, Path]) -> None:
    fig = plot_runs([read_curves(runs["dqn"]), read_curves(runs["sb3-ppo"])], window=50)
    ax_win, ax_time, ax_loss, ax_eps = fig.axes
    labels = ax_win.get_legend().get_texts()
    assert {"keras (dqn)", "ppo (sb3-ppo)"} <= {t.get_text() for t in labels}
    # Loss: symlog, so the DQN's zeros and late 1e-5 and PPO's negative values are all drawn.
    assert ax_loss.get_yscale() == "symlog"
    drawn = {line.get_label(): line.get_ydata() for line in ax_loss.get_lines()}
    assert (np.asarray(drawn["ppo (sb3-ppo)"]) < 0).sum() == GAMES - 20
    assert np.asarray(drawn["keras (dqn)"])[:20].tolist() == [0.0] * 20
    # ε: a curve for the DQN only; PPO is named as having none.
    curves = [line for line in ax_eps.get_lines() if len(line.get_xdata())]
    assert [line.get_label() for line in curves] == ["keras (dqn)"]
    assert np.all(np.asarray(curves[0].get_ydata()) == 0.5)
    eps_legend = [t.get_text() for t in ax_eps.get_legend().get_texts()]
    assert "ppo (sb3-ppo): no ε (stochastic policy)" in eps_legend
    # Evaluations: three dots per run at their games; the test a star at the last game.
    for ax, last_x in ((ax_win, GAMES), (ax_time, GAMES / 10)):
        dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
        stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
        assert [list(d.get_xdata()) for d in dots] == [
            [100, 200, 300] if ax is ax_win else [10, 20, 30]
        ] * 2
        assert len(stars) == 2
        for star in stars:
            assert list(star.get_xdata()) == [last_x] and list(star.get_ydata()) == [93.0]
        assert "93%" in [t.get_text() for t in ax.texts]


def test_linear_loss_axis_when_losses_are_alike(runs: dict[str, Path]) -> None:
    fig = plot_runs([read_curves(runs["sb3-ppo"])])
    ax_loss, ax_eps = fig.axes[2], fig.axes[3]
    assert ax_loss.get_yscale() == "linear"
    assert not [line for line in ax_eps.get_lines() if len(line.get_xdata())]
    assert not ax_eps.axison  # no empty ε axis: a note says why
    assert "No ε" in ax_eps.texts[0].get_text() and "ppo (sb3-ppo)" in ax_eps.texts[0].get_text()


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
