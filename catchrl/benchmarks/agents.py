"""The agent race: catchrl's Keras DQN against SB3's DQN and PPO on the same game.

Every run trains in a fresh subprocess (``python -m catchrl.benchmarks.agents
--worker SPEC``), so backends stay apart (TensorFlow for catchrl, torch for
SB3, whose processes never import TensorFlow) and each process's peak resident
memory (``getrusage`` ``ru_maxrss``) is that run's own. Runs go one after the
other, never in parallel, on the same machine.

Each run trains with its settings (catchrl: the ``fast`` / ``fast-state``
presets; SB3: catchrl's documented defaults, :data:`catchrl.agents.sb3.DEFAULTS`)
and every ``eval_every`` games plays ``eval_games`` greedy games through the
common harness (:func:`catchrl.evaluation.evaluate`, the same seeded balls for
every agent) on the *validation* games, as any run does; the race then
plays the same model on as many *test* games (:data:`~catchrl.evaluation.TEST_SEED`,
never used for any decision of the run), and those are the figures reported:
steps and seconds to 95 % / 99 % are those of the first evaluation whose test
win rate reaches it. A run stops once its test win rate reaches the target
(99 %: the measurement is complete) or the step budget runs out. The run's
kept model (``best.*``, picked on validation) is scored on the test games at
the end (``kept_win_rate``). Times are training wall-clock seconds: the time spent
in those evaluations is measured and left out, since both sides pay it
differently (catchrl's compiled greedy function, SB3's ``predict``). Process
start and imports are left out too (reported apart as ``setup_s``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AGENTS",
    "RaceSpec",
    "format_race_table",
    "race_config",
    "run_one",
    "run_race",
    "summarize",
]

AGENTS = ("catchrl-dqn", "sb3-dqn", "sb3-ppo")
"""Contenders: catchrl's DQN and the SB3 baselines (any ``--algo sb3-*`` works too, and
``rllib-*`` where Ray's RLlib is installed: docs/rllib.md)."""
THRESHOLDS = (0.95, 0.99)
PRESET = {"pixels": "fast", "state": "fast-state", "grid": "fast-state"}
"""catchrl preset per observation type (their ``[env]`` tables are used for SB3 too)."""


@dataclass
class RaceSpec:
    """One training run of the race."""

    agent: str
    obs_type: str
    seed: int
    steps: int
    eval_every: int
    eval_games: int
    target: float
    run_dir: str
    overrides: list[str] = field(default_factory=list)
    """Extra ``--set`` overrides (the game's variant, a module contender's settings)."""


def race_config(spec: RaceSpec) -> Any:
    """The ``TrainConfig`` a race run starts from: its preset, budget, seed and overrides.

    Raises:
        ConfigError: an override the config refuses.

    """
    from catchrl.config import load_config

    overrides = [
        f"run.seed={spec.seed}",
        f"run.total_steps={spec.steps}",
        "run.total_games=0",
        f"run.eval_every={spec.eval_every}",
        f"run.eval_games={spec.eval_games}",
        "run.target_win_rate=0",  # the race's own stop, on the test games (run_one)
        "run.checkpoint_every=0",
    ]
    if spec.obs_type == "grid":  # bsuite's 9-step game: returns of at most one game
        overrides += ['env.obs_type="grid"', "agent.n_step=8"]
    return load_config(PRESET[spec.obs_type], None, [*overrides, *spec.overrides])


def run_one(spec: RaceSpec) -> dict[str, Any]:
    """Train one contender in this process and measure it (the worker's job)."""
    t0 = time.perf_counter()
    cfg = race_config(spec)
    if spec.agent.startswith("sb3-"):
        from catchrl.agents.sb3 import sb3_kwargs

        cfg.algo = spec.agent
        cfg.sb3 = sb3_kwargs(spec.agent, cfg.env.obs_type, {}, cfg.env.num_envs)
    elif spec.agent.startswith("rllib-"):
        from catchrl.agents.rllib_algos import rllib_options

        cfg.algo = spec.agent
        cfg.rllib = rllib_options(spec.agent, cfg.env.obs_type, {}, cfg.env.num_envs)
    from catchrl.evaluation import TEST_SEED
    from catchrl.learners import open_run

    trainer: Any = None
    test_rates: list[float] = []

    def test_games(record: dict[str, Any]) -> bool:
        """Score the model just validated on the test games; stop once the target is met."""
        rate = trainer.evaluate(spec.eval_games, seed=TEST_SEED).win_rate
        test_rates.append(rate)
        return rate >= spec.target

    trainer = open_run(cfg, spec.run_dir, progress=False, on_evaluation=test_games)
    setup_s = time.perf_counter() - t0
    result = trainer.run()
    # The run loop leaves evaluation (and checkpoint) time out of wall_time and records
    # the training CPU seconds (all threads, less sensitive to load) at each evaluation.
    evals = [
        {
            "steps": e["steps"],
            "games": e["games"],
            "validation_win_rate": e["win_rate"],
            "win_rate": test,
            "train_s": e["wall_time"],
            "train_cpu_s": e["train_cpu_s"],
        }
        for e, test in zip(result.evaluations, test_rates, strict=True)
    ]
    train_s = result.wall_time
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        **asdict(spec),
        "evals": evals,
        "final_steps": result.steps,
        "train_s": train_s,
        "threads": _threads(spec.agent),
        "steps_per_s": result.steps / max(train_s, 1e-9),
        "setup_s": setup_s,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "final_win_rate": evals[-1]["win_rate"] if evals else float("nan"),
        "kept_model": result.eval_model,
        "kept_win_rate": result.final_eval.win_rate if result.final_eval else float("nan"),
    }


def _threads(agent: str) -> int:
    """Intra-op threads the run's framework used (torch for SB3/RLlib, TensorFlow for catchrl)."""
    if not agent.startswith(("sb3-", "rllib-")):
        import tensorflow as tf

        return tf.config.threading.get_intra_op_parallelism_threads() or (os.cpu_count() or 1)
    import torch

    return torch.get_num_threads()


def _worker(spec_json: str, out: str) -> int:
    spec = RaceSpec(**json.loads(spec_json))
    if spec.agent.startswith(("sb3-", "rllib-")):
        # SB3 and RLlib need no TensorFlow; block the import torch.utils.tensorboard would make
        # (~600 MB and seconds), so SB3's memory is its own.
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    Path(out).write_text(json.dumps(run_one(spec)))
    return 0


def run_race(
    agents: Sequence[str] = AGENTS,
    obs_types: Sequence[str] = ("pixels", "state"),
    seeds: Sequence[int] = (0, 1),
    steps: dict[str, int] | None = None,
    eval_every: int = 64,
    eval_games: int = 1000,
    target: float = 0.99,
    out_dir: str | Path = "runs/race",
    log: Any = None,
    overrides: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """Train every (agent, obs type, seed) in its own subprocess, one at a time.

    Args:
        agents: Contenders (``catchrl-dqn`` and/or ``sb3-*`` algorithms).
        obs_types: Observation types.
        seeds: Seeds per contender.
        steps: Step budget per observation type (default pixels 50k, state 30k).
        eval_every: Games between evaluations (same for everyone).
        eval_games: Games per evaluation.
        target: Stop a run once an evaluation reaches this win rate.
        out_dir: Where the run directories and ``results.json`` go.
        log: Stream for one line per finished run (default stderr).
        overrides: Extra config overrides per agent name (see :class:`RaceSpec`);
            agents not named ``sb3-*`` train with catchrl's trainer.

    Returns:
        One result dict per run (see :func:`run_one`), also in ``out_dir/results.json``.

    """
    steps = {"pixels": 50_000, "state": 30_000, "grid": 30_000, **(steps or {})}
    log = log or sys.stderr
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
    for obs in obs_types:
        for seed in seeds:
            for agent in agents:
                name = f"{agent}-{obs}-s{seed}"
                run_dir = out / name
                if run_dir.exists():
                    import shutil

                    shutil.rmtree(run_dir)
                spec = RaceSpec(
                    agent,
                    obs,
                    seed,
                    steps[obs],
                    eval_every,
                    eval_games,
                    target,
                    str(run_dir),
                    list((overrides or {}).get(agent, [])),
                )
                result_file = out / f"{name}.json"
                cmd = [
                    sys.executable,
                    "-m",
                    "catchrl.benchmarks.agents",
                    "--worker",
                    json.dumps(asdict(spec)),
                    "--worker-out",
                    str(result_file),
                ]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                    log.write(f"{name}: FAILED ({proc.returncode}): {' | '.join(tail)}\n")
                    continue
                r = json.loads(result_file.read_text())
                results.append(r)
                log.write(
                    f"{name}: {r['final_steps']} steps, {r['train_s']:.0f} s, "
                    f"final {100 * r['final_win_rate']:.1f}%, "
                    f"{r['peak_rss_mib']:.0f} MiB\n"
                )
                log.flush()
                (out / "results.json").write_text(json.dumps(results, indent=1))
    return results


def _first_reach(r: dict[str, Any], thr: float) -> tuple[float, float, float] | None:
    for e in r["evals"]:
        if e["win_rate"] >= thr:
            return e["steps"], e["train_s"], e["train_cpu_s"]
    return None


def _median(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    return float("nan") if n == 0 else (v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2)


def summarize(
    results: Sequence[dict[str, Any]], baseline: str = "catchrl-dqn"
) -> list[dict[str, Any]]:
    """One row per (agent, obs type): medians over seeds and ratios to ``baseline``.

    A threshold's steps/seconds are the median over all the seeds, a seed that
    never reached it counted as past its budget (infinite): so the median is
    ``inf`` ("not reached") when half the seeds or more never got there, and a
    seed that fails cannot flatter its contender by dropping out. ``reached``
    says how many seeds did; ratios are contender / baseline (so a ratio of 5
    means the contender needed 5x the baseline's time).
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["agent"], r["obs_type"]), []).append(r)
    rows = []
    for (agent, obs), runs in groups.items():
        row: dict[str, Any] = {
            "agent": agent,
            "obs_type": obs,
            "seeds": len(runs),
            "budget": runs[0]["steps"],
        }
        for thr in THRESHOLDS:
            never = (math.inf, math.inf, math.inf)  # past the budget
            hits = [_first_reach(r, thr) or never for r in runs]
            key = f"{round(100 * thr)}"
            row[f"reached_{key}"] = sum(h is not never for h in hits)
            row[f"steps_{key}"] = _median([h[0] for h in hits])
            row[f"seconds_{key}"] = _median([h[1] for h in hits])
            row[f"cpu_{key}"] = _median([h[2] for h in hits])
        row["final_win_rate"] = _median([r["final_win_rate"] for r in runs])
        row["steps_per_s"] = _median([r["steps_per_s"] for r in runs])
        row["cpu_per_1k"] = _median(
            [
                1000 * r["evals"][-1]["train_cpu_s"] / r["evals"][-1]["steps"]
                for r in runs
                if r["evals"]
            ]
        )
        row["peak_rss_mib"] = _median([r["peak_rss_mib"] for r in runs])
        rows.append(row)
    for row in rows:
        base = next(
            (b for b in rows if b["agent"] == baseline and b["obs_type"] == row["obs_type"]), None
        )
        for key in (
            "seconds_95",
            "seconds_99",
            "cpu_99",
            "steps_99",
            "steps_per_s",
            "peak_rss_mib",
        ):
            ok = base is not None and 0 < base[key] < math.inf
            row[f"x_{key}"] = row[key] / base[key] if ok else float("nan")
    return rows


def _fmt(value: float, reached: int | None = None, seeds: int = 0, digits: int = 0) -> str:
    if reached == 0 or math.isnan(value) or (math.isinf(value) and reached is None):
        return "not reached"
    if math.isinf(value):  # the median seed never got there
        return f"not reached ({reached}/{seeds})"
    text = f"{value:,.{digits}f}"
    return text if reached is None or reached == seeds else f"{text} ({reached}/{seeds})"


def _ratio(value: float) -> str:
    if math.isinf(value):
        return "not reached"
    return "–" if math.isnan(value) else f"{value:.2f}x"


def format_race_table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary rows as a Markdown table (medians over seeds; (k/n): seeds that reached)."""
    head = (
        "| obs | agent | steps to 95 % | s to 95 % | steps to 99 % | s to 99 % "
        "| s to 99 % vs catchrl | CPU s to 99 % | CPU s vs catchrl "
        "| final win rate | steps/s | CPU s / 1k steps | peak MiB | MiB vs catchrl |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        n = r["seeds"]
        lines.append(
            f"| {r['obs_type']} | {r['agent']} "
            f"| {_fmt(r['steps_95'], r['reached_95'], n)} "
            f"| {_fmt(r['seconds_95'], r['reached_95'], n, 1)} "
            f"| {_fmt(r['steps_99'], r['reached_99'], n)} "
            f"| {_fmt(r['seconds_99'], r['reached_99'], n, 1)} "
            f"| {_ratio(r['x_seconds_99'])} "
            f"| {_fmt(r['cpu_99'], r['reached_99'], n, 1)} | {_ratio(r['x_cpu_99'])} "
            f"| {100 * r['final_win_rate']:.1f} % | {r['steps_per_s']:,.0f} "
            f"| {r['cpu_per_1k']:.2f} "
            f"| {r['peak_rss_mib']:,.0f} | {_ratio(r['x_peak_rss_mib'])} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m catchrl.benchmarks.agents``: the race's worker (``catchrl bench agents``)."""
    p = argparse.ArgumentParser(prog="python -m catchrl.benchmarks.agents")
    p.add_argument("--worker", required=True, help="a RaceSpec as JSON")
    p.add_argument("--worker-out", required=True, help="where to write the result JSON")
    args = p.parse_args(argv)
    return _worker(args.worker, args.worker_out)


if __name__ == "__main__":
    sys.exit(main())
