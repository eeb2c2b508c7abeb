"""'catchrl bench': env throughput, the agents' race, the modules' race, supervised training.

A race trains each (contender, seed) as a 'catchrl train' run until --target (validation)
or its budget, tests its kept model, and writes OUT/race.md, race.csv (a line per seed), race.png.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from catchrl.api import make_config
from catchrl.benchmarks import agents, env, supervised
from catchrl.commands import options
from catchrl.commands.options import SEED, number
from catchrl.config import MAX_NUM_ENVS, EnvConfig, check_game, choices
from catchrl.errors import UserError
from catchrl.stats import summarize, write_summary

EPILOG = """examples:
  catchrl bench env --seconds 1 --batch-sizes 1 256    # env steps/s (Markdown table)
  catchrl bench agents --obs pixels --seeds 100 101 --pixel-steps 30000
  catchrl bench agents --agents catchrl-dqn sb3-dqn --obs state --set sb3-dqn:env.num_envs=16
  catchrl bench modules --perception runs/perc-d5 --drift 5 --out runs/modules
  catchrl bench supervised --games 300 --epochs 8      # samples/s, time to the accuracy goals
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl bench env|agents|modules|supervised``."""
    p = options.add_command(sub, "bench", "env speed, races against SB3", __doc__, EPILOG)
    which = p.add_subparsers(dest="bench", metavar="WHAT")
    help = "env steps per second (single, vector, and gymnax's where installed)"
    e = options.add_command(which, "env", help, func=run_env)
    seconds, sizes = number(0, kind=float, above=True), number(1, MAX_NUM_ENVS)
    e.add_argument("--seconds", type=seconds, default=2.0, help="timed seconds per case")
    e.add_argument("--batch-sizes", type=sizes, nargs="+", default=[1, 64, 256, 1024])
    e.add_argument("--json", action="store_true", help="print the rows as JSON")

    help, race = "race catchrl's DQN against SB3's DQN and PPO", [_race(64, "runs/race")]
    a = options.add_command(which, "agents", help, None, EPILOG, race, run_agents)
    every = list(dict.fromkeys([*agents.AGENTS, *agents.OTHER_ALGOS]))
    help = "catchrl-dqn, sb3-dqn-like (catchrl's network and replay ratio) or an --algo of "
    help += f"catchrl train but dqn: {', '.join(agents.OTHER_ALGOS)}"
    a.add_argument("--agents", **_some(every, agents.AGENTS, "AGENT"), help=help)
    a.add_argument("--obs", **_some(choices(EnvConfig, "obs_type"), ["pixels", "state"]))
    steps = number(0, above=True)
    a.add_argument("--pixel-steps", type=steps, default=50_000, help="step budget on pixels")
    a.add_argument("--state-steps", type=steps, default=50_000, help="step budget on state, grid")
    help = "a setting of one contender (repeatable), e.g. sb3-dqn:env.num_envs=16"
    sets = {"dest": "sets", "action": "append", "default": [], "metavar": "AGENT:KEY=VALUE"}
    a.add_argument("--set", **sets, help=help)

    help, race = "the pixel DQN vs the DQN with supervised modules", [_race(96, "runs/modules")]
    m = options.add_command(which, "modules", help, None, EPILOG, race, run_modules)
    help = "default: all: catchrl-dqn (pixels); dqn-perceived, dqn-encoder-frozen: fast-state's "
    help += "DQN on the state a perception model reads, on its frozen encoder; dqn-encoder: the "
    help += "pixel DQN from that encoder, fine-tuned; dqn-aux: with the landing-x head"
    contenders = _some(agents.MODULE_CONTENDERS, agents.MODULE_CONTENDERS, "CONTENDER")
    m.add_argument("--contenders", **contenders, help=help)
    m.add_argument("--perception", default="", help="a perception model or its run directory")
    m.add_argument("--drift", type=number(0), default=0, help="the game's drift (0: the book's)")
    m.add_argument("--steps", type=steps, default=80_000, help="step budget per run")

    help = "supervised training speed, time to the goals"
    s = options.add_command(which, "supervised", help, func=run_supervised)
    cases, default = supervised.CASES, supervised.DEFAULT_CASES
    help = f"{', '.join(cases)} (default: {' '.join(default)})"
    s.add_argument("--models", **_some(cases, default, "CASE"), help=help)
    s.add_argument("--games", type=number(10), default=300, help="training games per case")
    s.add_argument("--epochs", type=number(1), default=8)
    s.add_argument("--test-games", type=number(1), default=30, help="held-out games for the goals")
    s.add_argument("--batch-size", type=number(0), default=0, help="0: the trainer's automatic")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--json", type=Path, help="also write the rows here")


def _some(values: Sequence[str], default: Sequence[str], metavar: str | None = None) -> dict:
    """Options of ``nargs="+"``: some of ``values`` (``default`` unless given)."""
    return {"nargs": "+", "choices": values, "default": [*default], "metavar": metavar}


def _race(eval_every: int, out: str) -> argparse.ArgumentParser:
    """The seeds, evaluation, target and output options of both races."""
    p = argparse.ArgumentParser(add_help=False)
    seeds = list(range(100, 110))  # no tuning used them: tuning uses seeds 0-9
    p.add_argument("--seeds", type=SEED, nargs="+", default=seeds, help="default 100-109")
    count = number(0, above=True)
    p.add_argument("--eval-every", type=count, default=eval_every, help="games between evaluations")
    p.add_argument("--eval-games", type=count, default=1000, help="games per evaluation")
    rate = number(0, 1, kind=float, note="0: never stop early")
    p.add_argument("--target", type=rate, default=0.99, help="stop at this validation rate")
    p.add_argument("--out", type=Path, default=Path(out), help="the runs and race.md/csv/png")
    return p


def run_env(args: argparse.Namespace) -> int:
    """Print the env throughput table (:mod:`catchrl.benchmarks.env`)."""
    rows = env.run_env_benchmark(args.seconds, args.batch_sizes)
    print(json.dumps(rows, indent=1) if args.json else env.format_table(rows))
    if missing := env.gymnax_missing():
        print(missing, file=sys.stderr)
    return 0


def run_supervised(args: argparse.Namespace) -> int:
    """Measure the supervised cases (:mod:`catchrl.benchmarks.supervised`); print the tables."""
    rows = []
    for name in args.models:
        sizes = (args.games, args.epochs, args.test_games, args.batch_size, args.seed)
        rows.append(supervised.bench_case(name, *sizes))
        print(f"{name}: done", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    print(supervised.format_table(rows))
    return 0


def run_agents(args: argparse.Namespace) -> int:
    """Race the agents; print and save the statistics."""
    overrides: dict[str, list[str]] = {}
    for item in args.sets:
        agent, _, setting = item.partition(":")
        if "=" not in setting:
            raise UserError(f"--set {item!r}: expected AGENT:KEY=VALUE")
        if agent not in args.agents:
            raise UserError(f"--set {item!r}: {agent!r} is not in --agents")
        overrides.setdefault(agent, []).append(setting)
    # A setting its config refuses stops the race before any run starts.
    for (agent, settings), obs in itertools.product(overrides.items(), args.obs):
        algo, sets = agents.race_settings(agent, obs, overrides=settings)
        try:
            make_config(agents.PRESET[obs], None, sets, algo)
        except ValueError as e:  # ConfigError is one
            raise UserError(f"--set for {agent} on {obs}: {e}") from None
    steps = {obs: args.pixel_steps if obs == "pixels" else args.state_steps for obs in args.obs}
    return _run_race(args, args.agents, steps, overrides)


def run_modules(args: argparse.Namespace) -> int:
    """Race the pixel DQN against the DQN with each supervised module; print and save."""
    check_game("pixels", {"drift": args.drift}, "--drift")
    needs = [c for c in args.contenders if c in agents.PERCEPTION_MODULES]
    if needs and not args.perception:
        raise UserError(f"{needs[0]} needs --perception (catchrl supervised train perception)")
    if args.perception and not Path(args.perception).exists():
        raise UserError(f"--perception: {args.perception!r} does not exist")
    overrides = {
        c: [f"env.drift={args.drift}", *agents.module_overrides(c, args.perception)]
        for c in args.contenders
    }
    return _run_race(args, args.contenders, {"pixels": args.steps}, overrides)


def _run_race(
    args: argparse.Namespace,
    contenders: list[str],
    steps: dict[str, int],
    overrides: dict[str, list[str]],
) -> int:
    """Race the contenders; print the table and write race.md, race.csv and race.png."""
    race = [f"run.eval_every={args.eval_every}", f"run.eval_games={args.eval_games}"]
    race.append(f"run.target_win_rate={args.target}")
    groups = agents.run_race(contenders, steps, args.seeds, args.out, race, overrides)
    if not groups:
        raise UserError("every run failed; see the messages above")
    head = [f"Each run's settings: {args.out}/<contender>-<obs>-s<seed>/config.toml", ""]
    rows = summarize(groups, args.target)
    table = write_summary(
        args.out / "race", rows, args.target, "contender", head, "wall_time", ["peak_rss_mib"]
    )
    print(f"{table}\n\nrace.md, race.csv and race.png in {args.out}")
    return 0
