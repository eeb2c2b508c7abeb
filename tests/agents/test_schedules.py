"""ε schedules against tables of (input, expected), as Dopamine tests them."""

import pytest

from catchrl.agents.schedules import (
    EpsilonSchedule,
    book_epsilon,
    linear_epsilon,
)


@pytest.mark.parametrize(
    "step, start, end, duration, expected",
    [
        (0, 1.0, 0.1, 100, 1.0),
        (50, 1.0, 0.1, 100, 0.55),
        (99, 1.0, 0.1, 100, 0.109),
        (100, 1.0, 0.1, 100, 0.1),
        (10_000, 1.0, 0.1, 100, 0.1),
        (-5, 1.0, 0.1, 100, 1.0),
        (25, 0.2, 0.6, 100, 0.3),  # increasing works too
        (7, 1.0, 0.05, 0, 0.05),  # no duration: the end at once
    ],
)
def test_linear_epsilon(step, start, end, duration, expected):
    assert linear_epsilon(step, start, end, duration) == pytest.approx(expected)


@pytest.mark.parametrize(
    "game, expected",
    [
        (0, 1.0),
        (99, 1.0),  # the 100 observe games are random
        (100, 0.1 - 0.0999 * 100 / 2100),  # 0.09524: the decay counted from game 0
        (1050, 0.1 - 0.0999 * 0.5),
        (2099, 0.1 - 0.0999 * 2099 / 2100),
        (2100, 1e-4),
        (5000, 1e-4),  # never below the end
    ],
)
def test_book_epsilon(game, expected):
    assert book_epsilon(
        game, observe_games=100, start=0.1, end=1e-4, total_games=2100
    ) == pytest.approx(expected)


@pytest.mark.parametrize(
    "schedule, step, game, expected",
    [
        (EpsilonSchedule("linear", 0.1, 100, observe=50), 0, 0, 1.0),
        (EpsilonSchedule("linear", 0.1, 100, observe=50), 49, 3, 1.0),
        (EpsilonSchedule("linear", 0.1, 100, observe=50), 50, 3, 1.0),  # decay starts here
        (EpsilonSchedule("linear", 0.1, 100, observe=50), 100, 3, 0.55),
        (EpsilonSchedule("linear", 0.1, 100, observe=50), 10**6, 9, 0.1),
        (EpsilonSchedule("book", 1e-4, 2100, observe=100), 10**6, 99, 1.0),  # games count
        (EpsilonSchedule("book", 1e-4, 2100, observe=100), 0, 100, 0.1 - 0.0999 / 21),
    ],
)
def test_epsilon_schedule(schedule, step, game, expected):
    assert schedule(step, game) == pytest.approx(expected)
