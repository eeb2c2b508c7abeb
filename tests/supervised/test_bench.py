import pytest

from catchrl.benchmarks import supervised as B
from catchrl.cli import main


def test_bad_options_exit_2_before_any_work(capsys):
    assert main(["bench", "supervised", "--models", "perception-resnet"]) == 2
    assert "invalid choice: 'perception-resnet'" in capsys.readouterr().err
    assert main(["bench", "supervised", "--epochs", "0"]) == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err


def met(task, figures):
    return {goal: test(figures) for goal, test in B.GOALS[task].items()}


def test_goals_read_the_evaluation_figures():
    good = {"mae_px_ball_x": 0.1, "within_1px_ball_x": 0.995, "mae_px_ball_vx": 0.9}
    good |= {"within_1px_ball_vx": 0.5, "within_1px_ball_vx_after_first_frame": 0.995}
    assert met("perception", good) == {"MAE < 0.5 px": True, ">= 99 % within 1 px": True}
    bad = good | {"within_1px_ball_vx_after_first_frame": 0.98}
    assert met("perception", bad)[">= 99 % within 1 px"] is False
    assert met("sequence", {"landing_mae_px": 1.5}) == {
        "landing MAE < 2 px": True,
        "landing MAE <= 1 px": False,
    }


@pytest.mark.slow
def test_a_sequence_case_measures_the_trainer_and_the_goals():
    row = B.bench_case("sequence-gru-drift5", games=40, epochs=2, test_games=3)
    assert row["samples/s"] > 0 and row["epochs"] == 2
    assert set(row["goals"]) == set(B.GOALS["sequence"]) and row["final"]["landing_mae_px"] > 0
    table = B.format_table([row])
    assert "sequence-gru-drift5" in table and "landing MAE < 2 px" in table
