"""``catchrl bench``: env throughput, the agent race, the modules' race, supervised training.

Measurements that are a plain command line need no bench of their own: the DQN's time
to 99 % over seeds is ``catchrl sweep --preset fast --seeds 10`` (docs/sweeps.md); a run's
cost is ``/usr/bin/time catchrl train ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from catchrl.cli import UserError
from catchrl.commands.checks import check_each, check_game_options, check_range, check_seed
from catchrl.config import MAX_NUM_ENVS, ConfigError, EnvConfig, choices

EPILOG = """examples:
  catchrl bench env                                  # env steps/s table (Markdown)
  catchrl bench env --seconds 1 --batch-sizes 1 256
  catchrl bench agents                               # catchrl DQN vs SB3 DQN/PPO race
  catchrl bench agents --obs pixels --seeds 0 1 2 --pixel-steps 80000
  catchrl bench agents --agents catchrl-dqn sb3-dqn --obs state --out runs/race
  catchrl bench modules --perception runs/perc --out runs/modules       # book's game
  catchrl bench modules --perception runs/perc-drift5 --drift 5 --out runs/modules-drift
  catchrl bench supervised --games 300 --epochs 8      # trainer vs plain model.fit

The race trains each (agent, obs, seed) in a fresh subprocess, one at a time,
evaluates greedily on --eval-games seeded games every --eval-every games, and
stops a run at --target or at its step budget. It prints a Markdown table
(steps and training seconds to 95 % / 99 %, final win rate, steps/s, peak
memory, ratios to catchrl's DQN) and writes OUT/results.json, OUT/race.md
and OUT/race.png (win rate vs wall-clock time).

`bench modules` runs the same race between the pixel DQN (catchrl-dqn) and the
DQN helped by the supervised modules: dqn-perceived (an MLP DQN on the state a
perception model reads from the frames), dqn-encoder-frozen (the same MLP DQN on
that model's frozen encoder features), dqn-encoder (the pixel DQN starting from
that encoder, fine-tuned) and dqn-aux (the pixel DQN with the auxiliary
landing-x head).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl bench env`` and ``catchrl bench agents``."""
    p = sub.add_parser(
        "bench",
        help="benchmarks: env throughput, agent race vs SB3",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = p.add_subparsers(dest="bench", metavar="WHAT")
    e = which.add_parser(
        "env",
        help="env steps per second (single, vector, gymnax if installed, book reference)",
        description="Env steps per second of the single env and of the vector env at each\n"
        "--batch-sizes, per observation type, beside the book's way (a pygame surface,\n"
        "a screenshot and a resize per step) and gymnax's jitted rollout when gymnax is\n"
        "installed; printed as a Markdown table.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--seconds", type=float, default=2.0, help="timed seconds per case")
    e.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[1, 64, 256, 1024],
        help="games per vector env case",
    )
    e.add_argument("--json", action="store_true", help="print the rows as JSON")
    e.set_defaults(func=run_env)
    a = which.add_parser(
        "agents",
        help="race catchrl's DQN against SB3 DQN and PPO",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument(
        "--agents",
        nargs="+",
        default=["catchrl-dqn", "sb3-dqn", "sb3-ppo"],
        help="contenders: catchrl-dqn and/or sb3-dqn, sb3-ppo, sb3-a2c, sb3-qrdqn, "
        "rllib-ppo, rllib-dqn, rllib-appo (these need catchrl[rllib]: docs/rllib.md)",
    )
    a.add_argument(
        "--obs",
        nargs="+",
        default=["pixels", "state"],
        choices=choices(EnvConfig, "obs_type"),
        help="observation types",
    )
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds per contender")
    a.add_argument("--pixel-steps", type=int, default=50_000, help="step budget on pixels")
    a.add_argument(
        "--state-steps", type=int, default=50_000, help="step budget on state (and grid)"
    )
    a.add_argument(
        "--set",
        dest="agent_sets",
        action="append",
        default=[],
        metavar="AGENT:KEY=VALUE",
        help="a config override for one contender (repeatable), e.g. "
        "sb3-dqn:env.num_envs=16 (SB3 reads the game's [env] table from catchrl's preset)",
    )
    _race_options(a, eval_every=64, out="runs/race")
    a.set_defaults(func=run_agents)
    m = which.add_parser(
        "modules",
        help="pixel DQN vs DQN with the supervised modules",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument(
        "--contenders",
        nargs="+",
        default=None,
        help="catchrl-dqn, dqn-perceived, dqn-encoder-frozen, dqn-encoder, dqn-aux (default: all)",
    )
    m.add_argument(
        "--perception",
        default="",
        help="perception model or run directory (for dqn-perceived, dqn-encoder-frozen, "
        "dqn-encoder)",
    )
    m.add_argument("--drift", type=int, default=0, help="the game's drift (0: the book's game)")
    m.add_argument("--aux-weight", type=float, default=10.0, help="dqn-aux's agent.aux_landing")
    m.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds per contender")
    m.add_argument("--steps", type=int, default=80_000, help="step budget per run")
    _race_options(m, eval_every=96, out="runs/modules")
    m.set_defaults(func=run_modules)
    s = which.add_parser(
        "supervised",
        add_help=False,
        help="supervised training: samples/s vs plain model.fit, time to the accuracy goals "
        "(catchrl bench supervised --help)",
    )
    s.set_defaults(func=run_supervised, takes_extra=True)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _race_options(parser: argparse.ArgumentParser, eval_every: int, out: str) -> None:
    """The evaluation, stopping and output options every race takes."""
    parser.add_argument(
        "--eval-every", type=int, default=eval_every, help="games between evaluations"
    )
    parser.add_argument("--eval-games", type=int, default=1000, help="games per evaluation")
    parser.add_argument(
        "--target",
        type=float,
        default=0.99,
        help="stop a run once it reaches this greedy win rate (0: never)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(out),
        help="folder for the runs, results.json, race.md, race.png",
    )


def _check_race_options(args: argparse.Namespace) -> None:
    """The options of :func:`_race_options` and ``--seeds``, before any run starts."""
    for seed in args.seeds:
        check_seed("--seeds", seed)
    check_range("--eval-every", args.eval_every, 0, above=True)
    check_range("--eval-games", args.eval_games, 0, above=True)
    check_range("--target", args.target, 0.0, 1.0, note="0: never stop early")


def run_supervised(args: argparse.Namespace) -> int:
    """``catchrl bench supervised ...``: :mod:`catchrl.benchmarks.supervised`."""
    from catchrl.benchmarks.supervised import main as supervised_main

    return supervised_main(args.extra)


def run_env(args: argparse.Namespace) -> int:
    """Print the env throughput table."""
    try:
        from catchrl.benchmarks.env import format_table, gymnax_missing, run_env_benchmark
    except ModuleNotFoundError as e:
        raise UserError(f"the env benchmark is not available ({e})") from e
    check_range("--seconds", args.seconds, 0.0, above=True)
    check_each("--batch-sizes", args.batch_sizes, 1, MAX_NUM_ENVS)
    rows = run_env_benchmark(seconds_per_case=args.seconds, batch_sizes=tuple(args.batch_sizes))
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    if gymnax_missing():
        print(gymnax_missing(), file=sys.stderr)
    return 0


def run_agents(args: argparse.Namespace) -> int:
    """Run the race; print and save the table, the results and the plot."""
    from catchrl.agents.rllib_algos import ALGOS as RLLIB_ALGOS
    from catchrl.agents.sb3 import ALGOS
    from catchrl.benchmarks.agents import run_race

    known = [*ALGOS, *RLLIB_ALGOS]
    bad = [a for a in args.agents if a != "catchrl-dqn" and a not in known]
    if bad:
        raise UserError(f"unknown agent {bad[0]!r}; choose catchrl-dqn or {', '.join(known)}")
    check_range("--pixel-steps", args.pixel_steps, 0, above=True)
    check_range("--state-steps", args.state_steps, 0, above=True)
    _check_race_options(args)
    steps = {"pixels": args.pixel_steps, "state": args.state_steps, "grid": args.state_steps}
    overrides = _agent_overrides(args.agent_sets, args.agents, args.obs)
    results = run_race(
        args.agents,
        args.obs,
        args.seeds,
        steps,
        args.eval_every,
        args.eval_games,
        args.target,
        args.out,
        log=sys.stderr,
        overrides=overrides,
    )
    command = (
        f"catchrl bench agents --agents {' '.join(args.agents)} --obs {' '.join(args.obs)}"
        f" --seeds {' '.join(map(str, args.seeds))} --pixel-steps {args.pixel_steps}"
        f" --state-steps {args.state_steps} --eval-every {args.eval_every}"
        f" --eval-games {args.eval_games} --target {args.target} --out {args.out}"
        + "".join(f" --set {s}" for s in args.agent_sets)
    )
    return _report(results, command, args.out)


def _agent_overrides(
    sets: list[str], agents: list[str], obs_types: list[str]
) -> dict[str, list[str]]:
    """``AGENT:KEY=VALUE`` items as overrides per contender, each checked on its configs.

    Raises:
        UserError: not ``AGENT:KEY=VALUE``, an agent not in the race, or an override
            the contender's config refuses (its message).

    """
    from catchrl.benchmarks.agents import RaceSpec, race_config

    by_agent: dict[str, list[str]] = {}
    for item in sets:
        agent, sep, override = item.partition(":")
        if not sep or "=" not in override:
            raise UserError(f"--set {item!r}: expected AGENT:KEY=VALUE")
        if agent not in agents:
            raise UserError(f"--set {item!r}: {agent!r} is not in --agents")
        by_agent.setdefault(agent, []).append(override)
    for agent, overrides in by_agent.items():
        for obs in obs_types:
            try:
                spec = RaceSpec(
                    agent=agent,
                    obs_type=obs,
                    seed=0,
                    steps=1,
                    eval_every=1,
                    eval_games=1,
                    target=0.99,
                    run_dir="",
                    overrides=overrides,
                )
                race_config(spec)  # only to check the overrides
            except ConfigError as e:
                raise UserError(f"--set for {agent} on {obs}: {e}") from None
    return by_agent


def run_modules(args: argparse.Namespace) -> int:
    """Race the pixel DQN against the DQN with each supervised module; print and save."""
    from catchrl.benchmarks.agents import run_race
    from catchrl.benchmarks.modules import MODULE_CONTENDERS, NEEDS_PERCEPTION, module_overrides

    contenders = args.contenders or list(MODULE_CONTENDERS)
    bad = [c for c in contenders if c not in MODULE_CONTENDERS]
    if bad:
        raise UserError(f"unknown contender {bad[0]!r}; choose from {', '.join(MODULE_CONTENDERS)}")
    check_range("--steps", args.steps, 0, above=True)
    check_game_options(args)  # --drift, on the pixel game
    check_range("--aux-weight", args.aux_weight, 0.0)
    _check_race_options(args)
    needs = [c for c in contenders if c in NEEDS_PERCEPTION]
    if needs and not args.perception:
        raise UserError(
            f"{needs[0]} needs --perception (a model from `catchrl supervised "
            "train perception` on this game)"
        )
    if args.perception and not Path(args.perception).exists():
        raise UserError(f"--perception: {args.perception!r} does not exist")
    game = [f"env.drift={args.drift}"]
    overrides = {
        c: [*game, *module_overrides(c, args.perception, args.aux_weight)] for c in contenders
    }
    results = run_race(
        contenders,
        ["pixels"],
        args.seeds,
        {"pixels": args.steps},
        args.eval_every,
        args.eval_games,
        args.target,
        args.out,
        log=sys.stderr,
        overrides=overrides,
    )
    command = (
        f"catchrl bench modules --contenders {' '.join(contenders)}"
        f"{f' --perception {args.perception}' if args.perception else ''}"
        f" --drift {args.drift} --aux-weight {args.aux_weight}"
        f" --seeds {' '.join(map(str, args.seeds))} --steps {args.steps}"
        f" --eval-every {args.eval_every} --eval-games {args.eval_games}"
        f" --target {args.target} --out {args.out}"
    )
    return _report(results, command, args.out)


def _report(results: list, command: str, out: Path) -> int:
    """Print the race's table, write ``race.md`` and the plot."""
    from catchrl.benchmarks.agents import format_race_table, summarize
    from catchrl.plots import plot_race

    if not results:
        raise UserError("every run failed; see the messages above")
    table = format_race_table(summarize(results))
    (out / "race.md").write_text(f"`{command}`\n\n{table}\n")
    print(table)
    try:
        print(f"plot: {plot_race(results, out / 'race.png')}")
    except ImportError:
        print("plot skipped: pip install 'catchrl[plot]'")
    return 0
