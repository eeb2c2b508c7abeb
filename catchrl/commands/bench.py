"""``catchrl bench``: env throughput, the agents' race, the modules' race, supervised training.

A race trains each (contender, seed) as a ``catchrl train`` run, one at a time, stops it
at --target (validation) or its budget, and scores its kept model on the test games.
It prints the seed statistics (catchrl/stats.py) and writes OUT/race.md, OUT/race.csv
(one line per seed) and OUT/race.png. A run's cost alone: `/usr/bin/time catchrl train`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from catchrl.benchmarks.supervised import CASES, DEFAULT_CASES
from catchrl.cli import UserError
from catchrl.commands.options import check_each, check_game_options, check_range, check_seed
from catchrl.config import MAX_NUM_ENVS, ConfigError, EnvConfig, choices
from catchrl.learners import LEARNERS

OBS_TYPES = choices(EnvConfig, "obs_type")
OTHER_ALGOS = [algo for algo in LEARNERS if algo != "dqn"]
"""The learners that race under their own name (catchrl's DQN races as catchrl-dqn)."""

EPILOG = """examples:
  catchrl bench env --seconds 1 --batch-sizes 1 256    # env steps/s (Markdown table)
  catchrl bench agents --obs pixels --seeds 100 101 --pixel-steps 30000
  catchrl bench agents --agents catchrl-dqn sb3-dqn --obs state --set sb3-dqn:env.num_envs=16
  catchrl bench modules --perception runs/perc-d5 --drift 5 --out runs/modules
  catchrl bench supervised --games 300 --epochs 8      # samples/s, time to the accuracy goals

bench modules races the pixel DQN (catchrl-dqn) against dqn-perceived (fast-state's MLP
DQN on the state a perception model reads from the frames), dqn-encoder-frozen (the
same DQN on that model's frozen encoder), dqn-encoder (the pixel DQN from that encoder,
fine-tuned) and dqn-aux (the pixel DQN with the auxiliary landing-x head).
"""
SEEDS = list(range(100, 110))
"""Ten seeds no tuning used: tuning uses seeds 0-9, reports 100-109."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl bench env|agents|modules|supervised``."""
    text = {"epilog": EPILOG, "formatter_class": argparse.RawDescriptionHelpFormatter}
    p = sub.add_parser("bench", help="env speed, races against SB3", description=__doc__, **text)
    which = p.add_subparsers(dest="bench", metavar="WHAT")
    e = which.add_parser("env", help="env steps per second (single, vector, gymnax, the book's)")
    e.add_argument("--seconds", type=float, default=2.0, help="timed seconds per case")
    e.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 256, 1024])
    e.add_argument("--json", action="store_true", help="print the rows as JSON")
    e.set_defaults(func=run_env)
    a = which.add_parser("agents", help="race catchrl's DQN against SB3's DQN and PPO", **text)
    a.add_argument(
        "--agents",
        nargs="+",
        default=["catchrl-dqn", "sb3-dqn", "sb3-dqn-like", "sb3-ppo"],
        help="catchrl-dqn, sb3-dqn-like (catchrl's network and replay ratio) or an --algo of "
        "catchrl train but dqn: " + ", ".join(OTHER_ALGOS),
    )
    a.add_argument("--obs", nargs="+", default=["pixels", "state"], choices=OBS_TYPES)
    a.add_argument("--pixel-steps", type=int, default=50_000, help="step budget on pixels")
    a.add_argument("--state-steps", type=int, default=50_000, help="step budget on state, grid")
    a.add_argument(
        "--set",
        dest="agent_sets",
        action="append",
        default=[],
        metavar="AGENT:KEY=VALUE",
        help="a setting of one contender (repeatable), e.g. sb3-dqn:env.num_envs=16",
    )
    _race_options(a, eval_every=64, out="runs/race")
    a.set_defaults(func=run_agents)
    m = which.add_parser("modules", help="the pixel DQN vs the DQN with supervised modules", **text)
    m.add_argument("--contenders", nargs="+", help="default: all five (below)")
    m.add_argument("--perception", default="", help="a perception model or its run directory")
    m.add_argument("--drift", type=int, default=0, help="the game's drift (0: the book's game)")
    m.add_argument("--steps", type=int, default=80_000, help="step budget per run")
    _race_options(m, eval_every=96, out="runs/modules")
    m.set_defaults(func=run_modules)
    s = which.add_parser("supervised", help="supervised training speed, time to the goals")
    s.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_CASES),
        metavar="CASE",
        help=f"{', '.join(CASES)} (default: {' '.join(DEFAULT_CASES)})",
    )
    s.add_argument("--games", type=int, default=300, help="training games per case")
    s.add_argument("--epochs", type=int, default=8)
    s.add_argument("--test-games", type=int, default=30, help="held-out games for the goals")
    s.add_argument("--batch-size", type=int, default=0, help="0: the trainer's automatic batch")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", type=Path, help="also write the rows here")
    s.set_defaults(func=run_supervised)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _race_options(parser: argparse.ArgumentParser, eval_every: int, out: str) -> None:
    """The seeds, evaluation, target and output options of both races."""
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS, help="default 100-109")
    parser.add_argument(
        "--eval-every", type=int, default=eval_every, help="games between evaluations"
    )
    parser.add_argument("--eval-games", type=int, default=1000, help="games per evaluation")
    parser.add_argument("--target", type=float, default=0.99, help="stop at this validation rate")
    parser.add_argument("--out", type=Path, default=Path(out), help="the runs and race.md/csv/png")


def _race_settings(args: argparse.Namespace) -> list[str]:
    """The options of :func:`_race_options`, checked, as every run's overrides."""
    for seed in args.seeds:
        check_seed("--seeds", seed)
    check_range("--eval-every", args.eval_every, 0, above=True)
    check_range("--eval-games", args.eval_games, 0, above=True)
    check_range("--target", args.target, 0.0, 1.0, note="0: never stop early")
    return [
        f"run.eval_every={args.eval_every}",
        f"run.eval_games={args.eval_games}",
        f"run.target_win_rate={args.target}",
    ]


def run_env(args: argparse.Namespace) -> int:
    """Print the env throughput table (:mod:`catchrl.benchmarks.env`)."""
    from catchrl.benchmarks.env import format_table, gymnax_missing, run_env_benchmark

    check_range("--seconds", args.seconds, 0.0, above=True)
    check_each("--batch-sizes", args.batch_sizes, 1, MAX_NUM_ENVS)
    rows = run_env_benchmark(seconds_per_case=args.seconds, batch_sizes=tuple(args.batch_sizes))
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    if gymnax_missing():
        print(gymnax_missing(), file=sys.stderr)
    return 0


def run_supervised(args: argparse.Namespace) -> int:
    """Measure the supervised cases (:mod:`catchrl.benchmarks.supervised`); print the tables."""
    from catchrl.benchmarks.supervised import bench_case, format_table

    unknown = [name for name in args.models if name not in CASES]
    if unknown:
        raise UserError(f"--models: unknown model {unknown[0]!r}; choose from {', '.join(CASES)}")
    check_range("--games", args.games, 10)
    check_range("--epochs", args.epochs, 1)
    check_range("--test-games", args.test_games, 1)
    check_range("--batch-size", args.batch_size, 0)
    check_seed("--seed", args.seed)
    rows = []
    for name in args.models:
        sizes = (args.games, args.epochs, args.test_games, args.batch_size, args.seed)
        rows.append(bench_case(name, *sizes))
        print(f"{name}: done", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    print(format_table(rows))
    return 0


def run_agents(args: argparse.Namespace) -> int:
    """Race the agents; print and save the statistics."""
    from catchrl.benchmarks import agents

    known = list(dict.fromkeys([*agents.AGENTS, *OTHER_ALGOS]))
    unknown = [name for name in args.agents if name not in known]
    if unknown:
        raise UserError(f"--agents: unknown agent {unknown[0]!r}; choose from {', '.join(known)}")
    check_range("--pixel-steps", args.pixel_steps, 0, above=True)
    check_range("--state-steps", args.state_steps, 0, above=True)
    race = _race_settings(args)
    overrides: dict[str, list[str]] = {}
    for item in args.agent_sets:
        agent, _, setting = item.partition(":")
        if "=" not in setting:
            raise UserError(f"--set {item!r}: expected AGENT:KEY=VALUE")
        if agent not in args.agents:
            raise UserError(f"--set {item!r}: {agent!r} is not in --agents")
        overrides.setdefault(agent, []).append(setting)
    for agent, settings in overrides.items():
        _check_settings(agent, args.obs, settings)
    steps = {obs: args.pixel_steps if obs == "pixels" else args.state_steps for obs in args.obs}
    groups = agents.run_race(args.agents, steps, args.seeds, args.out, race, overrides=overrides)
    return _report(groups, args)


def run_modules(args: argparse.Namespace) -> int:
    """Race the pixel DQN against the DQN with each supervised module; print and save."""
    from catchrl.benchmarks import agents
    from catchrl.benchmarks.modules import MODULE_CONTENDERS, NEEDS_PERCEPTION, module_overrides

    contenders = args.contenders or list(MODULE_CONTENDERS)
    unknown = [c for c in contenders if c not in MODULE_CONTENDERS]
    if unknown:
        raise UserError(
            f"unknown contender {unknown[0]!r}; choose from {', '.join(MODULE_CONTENDERS)}"
        )
    check_range("--steps", args.steps, 0, above=True)
    check_game_options(args)  # --drift, on the pixel game
    race = _race_settings(args)
    needs = [c for c in contenders if c in NEEDS_PERCEPTION]
    if needs and not args.perception:
        raise UserError(f"{needs[0]} needs --perception (catchrl supervised train perception)")
    if args.perception and not Path(args.perception).exists():
        raise UserError(f"--perception: {args.perception!r} does not exist")
    overrides = {
        c: [f"env.drift={args.drift}", *module_overrides(c, args.perception)] for c in contenders
    }
    steps = {"pixels": args.steps}
    groups = agents.run_race(contenders, steps, args.seeds, args.out, race, overrides=overrides)
    return _report(groups, args)


def _check_settings(agent: str, obs_types: list[str], settings: list[str]) -> None:
    """Refuse a contender's ``--set`` that its config refuses, before any run starts."""
    from catchrl.api import make_config
    from catchrl.benchmarks.agents import PRESET, race_settings

    for obs in obs_types:
        algo, sets = race_settings(agent, obs, overrides=settings)
        try:
            make_config(PRESET[obs], None, sets, algo)
        except (ConfigError, ValueError) as e:
            raise UserError(f"--set for {agent} on {obs}: {e}") from None


def _report(groups: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> int:
    """Print the statistics per contender; write race.md, race.csv and race.png."""
    from catchrl.plots import PlotError, plot_seeds
    from catchrl.stats import format_table, summarize, write_csv

    if not groups:
        raise UserError("every run failed; see the messages above")
    rows = summarize(groups, args.target)
    table = format_table(rows, args.target, "contender")
    note = f"Each run's settings: {args.out}/<contender>-<obs>-s<seed>/config.toml"
    (args.out / "race.md").write_text(f"{table}\n\n{note}\n", encoding="utf-8")
    write_csv(args.out / "race.csv", rows, args.target, extra=["peak_rss_mib"])
    print(table)
    try:
        print(f"plot: {plot_seeds(rows, 'wall_time', args.out / 'race.png')}")
    except PlotError as e:
        print(f"plot skipped: {e}")
    return 0
