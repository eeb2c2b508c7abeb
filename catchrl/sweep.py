"""Studies on Ray Tune: a base config × a search space × seeds, each trial an ordinary run.

A study is planned here without Ray (:func:`plan_study`: the settings of a grid
and of seeded random draws, each played with N seeds), written into its folder
(:func:`create_study`) and run on Ray Tune (:func:`run_study`). Each trial is an
ordinary catchrl run (:func:`catchrl.learners.open_run`, the one run loop:
Keras DQN or SB3) whose run directory lives in the study's folder. At each
evaluation the trial writes the run's own checkpoint and reports it to Tune
with the validation win rate, steps and seconds, so a trial that is retried
(its worker or node died) or resumed (``catchrl sweep --resume``) continues
its run exactly from there. When the trials are done, :func:`summarize`
evaluates nothing new: each trial evaluated its final model on the test
games (:data:`catchrl.evaluation.TEST_SEED`) when it finished.

Layout::

    STUDY/
      study.json            the plan: search space, settings, trials, Ray options
      base.toml             the base config every trial starts from
      trials/NAME/          each trial's run directory (catchrl train/eval/plot read it)
      results/NAME.json     a finished trial's figures; present = finished, never rerun
      attempts/NAME.jsonl   one line per start of a trial (host, pid, resumed from)
      tune/                 Ray Tune's experiment state and its copies of the checkpoints
      summary.md  summary.json  summary.png    the table and plot, per setting

Ray is imported only inside :func:`run_study` and the trial function, so
``import catchrl`` and ``catchrl train`` never load it.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import socket
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.config import (
    ConfigError,
    TrainConfig,
    load_config,
    load_run_config,
    parse_override,
    read_toml,
    to_toml,
)
from catchrl.errors import CatchrlError, RunDirLocked
from catchrl.rundir import RunDir, write_atomic

__all__ = [
    "DISTRIBUTIONS",
    "Distribution",
    "SearchSpace",
    "Setting",
    "StudyError",
    "StudyOutcome",
    "StudyPlan",
    "Trial",
    "create_study",
    "plan_study",
    "run_study",
    "summarize",
    "trial_config",
]

STUDY_FILE = "study.json"
BASE_FILE = "base.toml"
FORMAT = 1
DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")
"""How a random parameter is drawn: from a list, uniform or log-uniform in
``[low, high]``, an integer in ``[low, high]``."""
MAX_TRIALS = 100_000
"""Most trials in one study (Tune's driver keeps every trial in memory)."""


class StudyError(CatchrlError):
    """A study's search space, folder or state is not usable; the message says why."""


# -- the search space --------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """One random parameter: a list to choose from, or a range to draw in.

    Attributes:
        kind: One of :data:`DISTRIBUTIONS`.
        values: The choices (``choice``) or ``[low, high]``.

    """

    kind: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if self.kind not in DISTRIBUTIONS:
            raise StudyError(f"unknown distribution {self.kind!r}; choose {DISTRIBUTIONS}")
        if not self.values:
            raise StudyError(f"a {self.kind} parameter needs values")
        if self.kind == "choice":
            return
        if len(self.values) != 2 or not all(_is_number(v) for v in self.values):
            raise StudyError(f"{self.kind} needs two numbers LOW:HIGH, got {list(self.values)}")
        low, high = self.values
        if not low <= high:
            raise StudyError(f"{self.kind}: LOW must be <= HIGH, got {low}:{high}")
        if self.kind == "loguniform" and low <= 0:
            raise StudyError(f"loguniform needs LOW > 0, got {low}")
        if self.kind == "randint" and not all(isinstance(v, int) for v in self.values):
            raise StudyError(f"randint needs integers, got {low}:{high}")

    def draw(self, rng: np.random.Generator) -> Any:
        """One value, drawn from ``rng``."""
        if self.kind == "choice":
            return self.values[int(rng.integers(len(self.values)))]
        low, high = self.values
        if self.kind == "randint":
            return int(rng.integers(low, high + 1))
        if self.kind == "uniform":
            return float(rng.uniform(low, high))
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class SearchSpace:
    """What a study varies: grid parameters (every combination) and random ones.

    Each of the ``samples`` draws of the random parameters is combined with
    every grid point; a setting is one such combination. Keys are config
    fields, ``table.key`` (``agent.lr``, ``env.num_envs``, ``sb3.learning_rate``).

    Attributes:
        grid: ``key -> values``, all combinations.
        random: ``key -> Distribution``, drawn ``samples`` times.
        samples: Draws of the random parameters (1 without any).

    """

    grid: dict[str, list[Any]] = field(default_factory=dict)
    random: dict[str, Distribution] = field(default_factory=dict)
    samples: int = 1

    def keys(self) -> list[str]:
        """Every swept key, grid first."""
        return [*self.grid, *self.random]


def parse_values(text: str) -> list[Any]:
    """Comma-separated values read as TOML (``1e-3``, ``true``, ``"x"``; bare words: strings)."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise StudyError(f"empty value in {text!r}")
        values.append(parse_override(f"x.x={part}")[2])
    return values


def parse_assignment(text: str, option: str) -> tuple[str, str]:
    """``table.key=VALUES`` from the command line -> ``(key, VALUES)``."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or "." not in name or not values.strip():
        raise StudyError(f"{option} {text!r}: expected table.key=VALUES, e.g. agent.lr=1e-3,3e-4")
    return name, values.strip()


def parse_distribution(text: str) -> Distribution:
    """``32,64`` (a choice), ``uniform:0.9:0.99``, ``loguniform:1e-4:1e-2``, ``randint:1:4``."""
    head, sep, rest = text.partition(":")
    if sep and head.strip() in DISTRIBUTIONS[1:]:
        bounds = [parse_override(f"x.x={v.strip()}")[2] for v in rest.split(":")]
        return Distribution(head.strip(), tuple(bounds))
    return Distribution("choice", tuple(parse_values(text)))


def space_from_args(grid: Sequence[str], random: Sequence[str], samples: int | None) -> SearchSpace:
    """The search space of ``--grid`` / ``--random`` / ``--samples`` options."""
    space = SearchSpace()
    for text in grid:
        key, values = parse_assignment(text, "--grid")
        _add(space.grid, key, parse_values(values))
    for text in random:
        key, values = parse_assignment(text, "--random")
        _add(space.random, key, parse_distribution(values))
    if samples is not None:
        space.samples = samples
    return space


def space_from_table(table: Mapping[str, Any], source: str) -> tuple[SearchSpace, dict[str, Any]]:
    """The ``[sweep]`` table of a TOML file: its search space and its other keys.

    Example::

        [sweep]
        seeds = 3
        samples = 4
        grid = { "agent.lr" = [1e-3, 3e-4] }
        random = { "agent.batch_size" = [32, 64], "agent.gamma" = { uniform = [0.9, 0.99] } }

    Returns:
        The space, and the options the table sets (``seeds``, ``samples``, ``asha``...).

    """
    known = {"grid", "random", "samples", "seeds", "asha", "cpus_per_trial", "gpus_per_trial"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise StudyError(f"{source}: unknown key sweep.{unknown[0]}; keys are {sorted(known)}")
    space = SearchSpace()
    for key, values in _table(table.get("grid", {}), f"{source}: sweep.grid").items():
        if not isinstance(values, list):
            raise StudyError(f"{source}: sweep.grid.{key} must be a list, got {values!r}")
        _add(space.grid, key, values)
    for key, spec in _table(table.get("random", {}), f"{source}: sweep.random").items():
        if isinstance(spec, list):
            dist = Distribution("choice", tuple(spec))
        elif isinstance(spec, dict) and len(spec) == 1:
            ((kind, bounds),) = spec.items()
            dist = Distribution(kind, tuple(bounds) if isinstance(bounds, list) else (bounds,))
        else:
            raise StudyError(
                f"{source}: sweep.random.{key} must be a list or a table like "
                f"{{ loguniform = [1e-4, 1e-2] }}, got {spec!r}"
            )
        _add(space.random, key, dist)
    options = {
        k: table[k]
        for k in ("samples", "seeds", "asha", "cpus_per_trial", "gpus_per_trial")
        if k in table
    }
    return space, options


def _table(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StudyError(f"{name} must be a table, got {value!r}")
    return value


def _add(target: dict[str, Any], key: str, values: Any) -> None:
    if key in target:
        raise StudyError(f"{key} is swept twice")
    target[key] = values


# -- the plan: settings and trials ---------------------------------------------------


def _toml_literal(key: str, value: Any) -> str:
    """A swept value as the TOML of a ``--set`` override."""
    if isinstance(value, bool) or _is_number(value) or isinstance(value, str):
        if isinstance(value, float) and not math.isfinite(value):
            raise StudyError(f"{key}: {value} is not a finite number")
        return json.dumps(value)  # JSON's scalars are TOML's
    raise StudyError(f"{key}: swept values must be numbers, strings or booleans, got {value!r}")


def toml_value(value: Any) -> str:
    """Any value a TOML file can hold (tables inline), written back as TOML."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return ("-" if value < 0 else "") + ("nan" if math.isnan(value) else "inf")
    if isinstance(value, (bool, int, float, str)):
        return json.dumps(value)
    return json.dumps(str(value))  # dates and times: as text (no config field takes them)


def split_sweep_table(path: str | Path) -> tuple[str, dict[str, Any]]:
    """A TOML config file without its ``[sweep]`` table (as TOML text), and that table.

    Raises:
        ConfigError: The file is missing, not UTF-8 or not TOML (as ``--config`` says it).

    """
    path = Path(path)
    data = read_toml(path)
    sweep = data.pop("sweep", {})
    if not isinstance(sweep, dict):
        raise StudyError(f"{path}: [sweep] must be a table, got {sweep!r}")
    top = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [
        f"[{k}]\n" + "".join(f"{json.dumps(kk)} = {toml_value(vv)}\n" for kk, vv in v.items())
        for k, v in data.items()
        if isinstance(v, dict)
    ]
    return "\n".join(top) + "\n\n" + "\n".join(tables), sweep


@dataclass(frozen=True)
class Setting:
    """One point of the search space (all its seeds share it).

    Attributes:
        index: Its number in the study.
        values: ``key -> value`` of every swept key.

    """

    index: int
    values: dict[str, Any]

    @property
    def overrides(self) -> list[str]:
        """The setting as ``--set`` overrides."""
        return [f"{k}={_toml_literal(k, v)}" for k, v in self.values.items()]

    @property
    def label(self) -> str:
        """``agent.lr=0.001 agent.batch_size=64`` (``base`` when nothing is swept)."""
        return " ".join(f"{k}={_short(v)}" for k, v in self.values.items()) or "base"


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class Trial:
    """One run of a study: a setting played with one seed.

    Attributes:
        name: Its folder name (``s003-seed1``).
        setting: The setting's index.
        seed: ``run.seed`` of the run.
        overrides: Applied to the base config, the setting's then the seed's.

    """

    name: str
    setting: int
    seed: int
    overrides: tuple[str, ...]


@dataclass
class StudyPlan:
    """Everything a study will run, decided before anything runs."""

    space: SearchSpace
    settings: list[Setting]
    trials: list[Trial]
    seeds: list[int]
    search_seed: int


def plan_study(
    base: TrainConfig, space: SearchSpace, seeds: int, search_seed: int = 0
) -> StudyPlan:
    """Expand a search space into settings and trials (grid × samples × seeds).

    The random draws come from ``numpy.random.default_rng(search_seed)`` in a
    fixed order, so a plan is the same every time it is made. Seeds are
    ``base.run.seed + i``. Every trial's config is built and validated here.

    Raises:
        StudyError: Bad counts, ``run.seed`` swept (use ``seeds``), or too many trials.
        ConfigError: A swept key or value the config refuses (named).

    """
    if seeds < 1:
        raise StudyError(f"--seeds must be >= 1, got {seeds}")
    if space.samples < 1:
        raise StudyError(f"--samples must be >= 1, got {space.samples}")
    if space.samples > 1 and not space.random:
        raise StudyError("--samples > 1 repeats identical settings: give --random parameters")
    if "run.seed" in space.keys():
        raise StudyError("run.seed is set by --seeds (seeds run.seed, run.seed + 1, ...)")
    for key, values in space.grid.items():
        if not values:
            raise StudyError(f"--grid {key}: no values")
    count = math.prod(len(v) for v in space.grid.values()) * space.samples
    if count * seeds > MAX_TRIALS:
        raise StudyError(f"{count * seeds} trials; a study holds at most {MAX_TRIALS}")
    rng = np.random.default_rng(search_seed)
    settings = []
    for _ in range(space.samples):
        drawn = {k: d.draw(rng) for k, d in space.random.items()}
        for point in itertools.product(*space.grid.values()):
            values = dict(zip(space.grid, point, strict=True)) | drawn
            settings.append(Setting(len(settings), values))
    seed_list = [base.run.seed + i for i in range(seeds)]
    trials = []
    for s in settings:
        for seed in seed_list:
            overrides = (*s.overrides, f"run.seed={seed}")
            trials.append(Trial(f"s{s.index:03d}-seed{seed}", s.index, seed, overrides))
    base_toml = to_toml(base)
    checked = set()
    for t in trials:  # refuse a bad value before anything is written
        if t.setting not in checked:
            _config_from(base_toml, t.overrides)
            checked.add(t.setting)
    return StudyPlan(space, settings, trials, seed_list, search_seed)


def _config_from(base_toml: str, overrides: Sequence[str]) -> TrainConfig:
    """The base config (TOML text) with ``overrides``, checked as a trial would be."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="catchrl-sweep-") as tmp:
        path = Path(tmp) / BASE_FILE
        path.write_text(base_toml, encoding="utf-8")
        try:
            return _with_overrides(path, overrides)
        except ValueError as e:  # ConfigError, and SB3's refusals of its settings
            raise ConfigError(str(e).replace(str(path), "the base config")) from None


def _with_overrides(base_path: Path, overrides: Sequence[str]) -> TrainConfig:
    cfg = load_config(path=base_path, overrides=list(overrides))
    if cfg.algo != "dqn":  # SB3's settings completed and checked, as catchrl train does
        from catchrl.agents.sb3 import sb3_kwargs

        cfg.sb3 = sb3_kwargs(cfg.algo, cfg.env.obs_type, cfg.sb3, cfg.env.num_envs)
    return cfg


def trial_config(study_dir: str | Path, trial: Trial) -> TrainConfig:
    """A trial's config: the study's ``base.toml`` with the trial's overrides."""
    return _with_overrides(Path(study_dir) / BASE_FILE, trial.overrides)


# -- the study's folder ------------------------------------------------------------------


@dataclass
class RayOptions:
    """How the trials run on Ray.

    Attributes:
        cpus_per_trial: CPUs Ray reserves for each trial.
        gpus_per_trial: GPUs (or a fraction of one) for each trial.
        max_failures: Retries of a trial whose worker dies (from its last checkpoint).
        asha: Stop weak trials early with ASHA (on the validation win rate by steps).
        max_concurrent: Trials running at once (0: as many as the resources allow).

    """

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 3
    asha: bool = False
    max_concurrent: int = 0


def create_study(
    study_dir: str | Path, base: TrainConfig, plan: StudyPlan, options: RayOptions
) -> Path:
    """Write a new study's ``study.json`` and ``base.toml`` into an empty or new folder.

    Raises:
        StudyError: The folder holds something already (``--resume`` a study).

    """
    study = Path(study_dir)
    if study.exists() and (not study.is_dir() or any(study.iterdir())):
        what = (
            "a study: resume it with --resume"
            if (study / STUDY_FILE).is_file()
            else ("files" if study.is_dir() else "a file")
        )
        raise StudyError(f"{str(study)!r} already holds {what} (choose a new folder)")
    for sub in ("trials", "results", "attempts"):
        (study / sub).mkdir(parents=True, exist_ok=True)
    write_atomic(study / BASE_FILE, to_toml(base).encode())
    doc = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "algo": base.algo,
        "target_win_rate": base.run.target_win_rate,
        "space": {
            "grid": plan.space.grid,
            "random": {k: asdict(d) for k, d in plan.space.random.items()},
            "samples": plan.space.samples,
        },
        "search_seed": plan.search_seed,
        "seeds": plan.seeds,
        "settings": [
            {"index": s.index, "values": s.values, "label": s.label} for s in plan.settings
        ],
        "trials": [asdict(t) for t in plan.trials],
        "ray": asdict(options),
    }
    write_atomic(study / STUDY_FILE, (json.dumps(doc, indent=1) + "\n").encode())
    return study


def load_study(study_dir: str | Path) -> dict[str, Any]:
    """A study's ``study.json``.

    Raises:
        StudyError: The folder is not a catchrl study, or its file is corrupt.

    """
    path = Path(study_dir) / STUDY_FILE
    if not path.is_file():
        raise StudyError(f"{str(study_dir)!r} is not a catchrl study (no {STUDY_FILE})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["trials"] = [Trial(**{**t, "overrides": tuple(t["overrides"])}) for t in doc["trials"]]
    except (ValueError, KeyError, TypeError) as e:
        raise StudyError(f"{path} is corrupt ({type(e).__name__}: {e})") from None
    if doc.get("format") != FORMAT:
        raise StudyError(f"{path}: study format {doc.get('format')!r}, expected {FORMAT}")
    return doc


def _results_path(study: Path, name: str) -> Path:
    return study / "results" / f"{name}.json"


def read_results(study_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The finished trials' figures, by trial name."""
    out = {}
    for path in sorted((Path(study_dir) / "results").glob("*.json")):
        out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return out


# -- one trial (runs in a Ray worker) ---------------------------------------------------


TUNE_METRIC = "val_win_rate"


def _metrics(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a trial reports to Tune from one evaluation record (``evals.json``'s)."""
    return {
        TUNE_METRIC: record["win_rate"],
        "steps": record["steps"],
        "games": record["games"],
        "seconds": record["wall_time"],
        "cpu_seconds": record["train_cpu_s"],
    }


def _log_attempt(study: Path, name: str, **info: Any) -> None:
    line = {"time": time.time(), "host": socket.gethostname(), "pid": os.getpid(), **info}
    with open(study / "attempts" / f"{name}.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def _node_id() -> str | None:
    """The Ray node this process runs on (None outside a Ray worker)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def attempts(study_dir: str | Path, name: str) -> list[dict[str, Any]]:
    """The starts of one trial (``attempts/NAME.jsonl``), oldest first.

    Each: ``time``, ``host``, ``pid``, ``node`` (the Ray node id), ``resumed`` and
    ``checkpoint`` (the run checkpoint it went on from, or None).
    """
    path = Path(study_dir) / "attempts" / f"{name}.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _open_waiting(open_once: Any, wait_s: float = 60.0) -> Any:
    """Open the run, waiting while a dying worker of this trial still holds its lock."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return open_once()
        except RunDirLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def run_trial(config: dict[str, Any], study_dir: str) -> None:
    """The Tune trainable: train one trial's run, resuming it if it has started.

    Reports at each evaluation; writes ``results/NAME.json`` (with the final
    model's test-game win rate) when the run ends. A trial whose results file
    exists is finished and is not trained again.
    """
    from ray import tune

    from catchrl.learners import open_run

    cpu0 = time.process_time()
    study = Path(study_dir)
    trial = Trial(**{**config["trial"], "overrides": tuple(config["trial"]["overrides"])})
    done = _results_path(study, trial.name)
    if done.is_file():  # finished before the driver could record it
        result = json.loads(done.read_text(encoding="utf-8"))
        tune.report(result["tune"])
        return
    run_dir = study / "trials" / trial.name
    resume = RunDir(run_dir).is_run()
    latest = RunDir(run_dir).latest_checkpoint() if resume else None
    _log_attempt(
        study,
        trial.name,
        resumed=resume,
        checkpoint=latest.name if latest else None,
        node=_node_id(),
    )
    cfg = None if resume else trial_config(study, trial)
    loop: Any = None

    def on_evaluation(record: dict[str, Any]) -> None:
        target = loop.cfg.run.target_win_rate
        if target > 0 and record["win_rate"] >= target:
            # The loop checkpoints this stop itself, with the run's budget closed.
            tune.report(_metrics(record))
            return
        path = loop.save_checkpoint()  # an evaluation is a safe point
        tune.report(_metrics(record), checkpoint=tune.Checkpoint.from_directory(str(path)))

    loop = _open_waiting(
        lambda: open_run(
            cfg,
            run_dir,
            resume=resume,
            progress=False,
            trust_pickle=True,
            on_evaluation=on_evaluation,
        )
    )
    result = loop.run()
    if result.interrupted:
        raise StudyError(f"trial {trial.name} was stopped by a signal; it resumes from its run")
    figures = _finish_trial(study, trial, run_dir, result, time.process_time() - cpu0)
    tune.report(figures["tune"])


def _finish_trial(
    study: Path, trial: Trial, run_dir: Path, result: Any, process_cpu: float
) -> dict[str, Any]:
    """Evaluate the final model on the test games; write ``results/NAME.json``.

    ``process_cpu`` is the CPU time of this attempt of the trial (imports, training,
    evaluations), for the study's cost; a resumed trial's earlier attempts are not in it.
    """
    from catchrl.evaluation import TEST_SEED, evaluate
    from catchrl.policies import load_policy

    cfg = load_run_config(run_dir / "config.toml")
    games = cfg.run.eval_games or 1000
    loaded = load_policy(str(run_dir), allow_sb3=True)  # our own run's model
    test = evaluate(loaded.policy, games=games, seed=TEST_SEED, **loaded.env_kwargs)
    evals = result.evaluations
    last = evals[-1] if evals else None
    target = cfg.run.target_win_rate
    stopped_at_target = bool(
        last and target > 0 and last["win_rate"] >= target and last["steps"] == result.steps
    )
    figures = {
        "name": trial.name,
        "setting": trial.setting,
        "seed": trial.seed,
        "steps": result.steps,
        "games": result.games,
        "seconds": result.wall_time,
        "cpu_seconds": last["train_cpu_s"] if last else None,
        "attempt_cpu_seconds": process_cpu,
        "target_win_rate": target,
        "stopped_at_target": stopped_at_target,
        "val_win_rate": last["win_rate"] if last else None,
        "test_seed": TEST_SEED,
        "test": test.to_dict(),
        "evaluations": [
            {k: e[k] for k in ("steps", "games", "wall_time", "train_cpu_s", "win_rate")}
            for e in evals
        ],
    }
    figures["reached_target"] = stopped_at_target and test.win_rate >= target
    tune_metrics = {
        TUNE_METRIC: last["win_rate"] if last else 0.0,
        "steps": result.steps,
        "games": result.games,
        "seconds": result.wall_time,
        "test_win_rate": test.win_rate,
    }
    figures["tune"] = tune_metrics
    write_atomic(_results_path(study, trial.name), (json.dumps(figures, indent=1) + "\n").encode())
    return figures


# -- running a study on Ray Tune ----------------------------------------------------------


@dataclass
class StudyOutcome:
    """How a study's run ended."""

    finished: int
    total: int
    failed: list[str]
    interrupted: bool
    signum: int | None = None
    stopped_early: list[str] = field(default_factory=list)
    """Trials the early-stopping scheduler (ASHA) ended."""

    @property
    def exit_code(self) -> int:
        """0 when every trial ran out; 128 + the signal when stopped; 1 when trials failed."""
        if self.interrupted:
            return 128 + (self.signum or signal.SIGINT)
        return 1 if self.failed else 0


@contextmanager
def _driver_signals() -> Iterator[list[int]]:
    """SIGTERM and SIGHUP stop the study as Ctrl-C does (Tune saves its state, then stops)."""
    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        received.append(signum)
        os.kill(os.getpid(), signal.SIGINT)

    try:
        old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP)}
    except ValueError:  # not the main thread
        yield received
        return
    try:
        yield received
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _connect(address: str | None, num_cpus: float | None) -> bool:
    """Start an embedded local Ray, or join the cluster at ``address``; whether we started it."""
    import ray

    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise StudyError(f"--address {address}: cannot join the Ray cluster ({e})") from e
    else:
        ray.init(  # "local": a new Ray of our own, never a cluster found on this machine
            address="local",
            num_cpus=int(num_cpus) if num_cpus else None,
            object_store_memory=200 * 2**20,
            **quiet,
        )
    return True


def run_study(
    study_dir: str | Path,
    resume: bool = False,
    address: str | None = None,
    num_cpus: float | None = None,
    verbose: int = 1,
) -> StudyOutcome:
    """Run (or resume) the study in ``study_dir`` on Ray Tune until its trials end.

    Args:
        study_dir: A folder made by :func:`create_study`.
        resume: Continue it (Tune's saved state; finished trials are not rerun).
        address: ``auto`` or ``HOST:PORT`` of a Ray cluster; None starts a local Ray.
        num_cpus: CPUs of the embedded local Ray (None: all of this machine's).
        verbose: Tune's console output (0 quiet ... 2 every result).

    Returns:
        The :class:`StudyOutcome`; the trials' figures are in ``results/``.

    """
    study = Path(study_dir).resolve()
    doc = load_study(study)
    opts = RayOptions(**doc["ray"])
    from ray import tune

    started = _connect(address, num_cpus)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, study_dir=str(study)),
            {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial},
        )
        tune_dir = study / "tune"
        with _driver_signals() as received:
            if resume and tune.Tuner.can_restore(str(tune_dir)):
                tuner = tune.Tuner.restore(str(tune_dir), trainable, resume_errored=True)
            else:
                tuner = _new_tuner(trainable, study, doc, opts)
            tuner.fit()
    finally:
        if started:
            import ray

            ray.shutdown()
    status = _trial_status(tune_dir)
    results = read_results(study)
    names = [t.name for t in doc["trials"]]
    failed = [n for n in names if n not in results and status.get(n) == "ERROR"]
    # TERMINATED without results: stopped early by ASHA; anything else did not get to run out
    missing = [
        n for n in names if n not in results and status.get(n) not in ("ERROR", "TERMINATED")
    ]
    stopped_early = [n for n in names if n not in results and status.get(n) == "TERMINATED"]
    return StudyOutcome(
        sum(n in results for n in names),
        len(names),
        failed,
        bool(missing),
        received[0] if received else None,
        stopped_early,
    )


def _trial_status(tune_dir: Path) -> dict[str, str]:
    """Tune's status of each trial (``TERMINATED``, ``ERROR``, ``PENDING``...), by name."""
    from ray.tune import ExperimentAnalysis

    try:
        analysis = ExperimentAnalysis(str(tune_dir))
    except (ValueError, FileNotFoundError, OSError):  # stopped before Tune saved any state
        return {}
    return {t.config["trial"]["name"]: t.status for t in analysis.trials}


def _new_tuner(trainable: Any, study: Path, doc: dict[str, Any], opts: RayOptions) -> Any:
    from ray import tune

    scheduler = None
    if opts.asha:
        from ray.tune.schedulers import ASHAScheduler

        budget = max(trial_config(study, t).run.total_steps for t in doc["trials"][:1]) or 10**9
        scheduler = ASHAScheduler(
            time_attr="steps", max_t=budget, grace_period=max(1, budget // 9), reduction_factor=3
        )
    return tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([asdict(t) for t in doc["trials"]])},
        tune_config=tune.TuneConfig(
            metric=TUNE_METRIC,
            mode="max",
            scheduler=scheduler,
            max_concurrent_trials=opts.max_concurrent or None,
            trial_dirname_creator=lambda t: t.config["trial"]["name"],
            trial_name_creator=lambda t: t.config["trial"]["name"],
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(study),
            failure_config=tune.FailureConfig(max_failures=opts.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=1,
        ),
    )


# -- the summary ------------------------------------------------------------------------


def _spread(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(study_dir: str | Path) -> dict[str, Any]:
    """The study's table per setting; writes ``summary.json``, ``summary.md``, ``summary.png``.

    Per setting, over its seeds: how many reached the target on the test games
    (stopped at the validation target and the final model wins at least as
    often on the test games), the median and range of the env steps, training
    seconds and CPU seconds they took to it, and the final test win rate.
    """
    study = Path(study_dir)
    doc = load_study(study)
    results = read_results(study)
    rows = []
    for s in doc["settings"]:
        trials = [t for t in doc["trials"] if t.setting == s["index"]]
        done = [results[t.name] for t in trials if t.name in results]
        reached = [r for r in done if r.get("reached_target")]
        rows.append(
            {
                "setting": s["index"],
                "label": s["label"],
                "values": s["values"],
                "seeds": len(trials),
                "finished": len(done),
                "reached": len(reached),
                "steps_to_target": _spread([r["steps"] for r in reached]),
                "seconds_to_target": _spread([r["seconds"] for r in reached]),
                "cpu_seconds_to_target": _spread(
                    [r["cpu_seconds"] for r in reached if r["cpu_seconds"] is not None]
                ),
                "test_win_rate": _spread([r["test"]["win_rate"] for r in done]),
                "test_games": done[0]["test"]["games"] if done else None,
            }
        )
    summary = {"target_win_rate": doc["target_win_rate"], "rows": rows}
    write_atomic(study / "summary.json", (json.dumps(summary, indent=1) + "\n").encode())
    write_atomic(study / "summary.md", format_table(summary).encode())
    try:
        plot_study(study, doc, results)
    except ImportError:
        pass  # matplotlib (the plot extra) not installed: the table is enough
    return summary


def _cell(spread: dict[str, float] | None, fmt: str, scale: float = 1.0) -> str:
    if spread is None:
        return "—"
    m, lo, hi = (spread[k] * scale for k in ("median", "min", "max"))
    return f"{m:{fmt}} [{lo:{fmt}}–{hi:{fmt}}]"


def format_table(summary: Mapping[str, Any]) -> str:
    """The summary as a Markdown table (median [min–max] over seeds)."""
    target = summary["target_win_rate"]
    lines = [
        f"target: {100 * target:.0f} % on the test games; median [min–max] over seeds",
        "",
        "| setting | reached | steps to target | seconds to target | CPU s to target "
        "| test win rate % |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        lines.append(
            f"| {r['label']} | {r['reached']}/{r['seeds']} "
            f"| {_cell(r['steps_to_target'], '.0f')} | {_cell(r['seconds_to_target'], '.1f')} "
            f"| {_cell(r['cpu_seconds_to_target'], '.1f')} "
            f"| {_cell(r['test_win_rate'], '.1f', 100)} |"
        )
    return "\n".join(lines) + "\n"


def plot_study(study: Path, doc: dict[str, Any], results: dict[str, dict[str, Any]]) -> Path:
    """``summary.png``: validation curves per setting, and the test win rate of each trial."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curves, final) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.get_cmap("tab10")
    labels = []
    for i, s in enumerate(doc["settings"]):
        color = colors(i % 10)
        trials = [t for t in doc["trials"] if t.setting == s["index"]]
        tests = []
        for j, t in enumerate(trials):
            r = results.get(t.name)
            if r is None:
                continue
            ev = r["evaluations"]
            curves.plot(
                [e["steps"] for e in ev],
                [100 * e["win_rate"] for e in ev],
                color=color,
                alpha=0.8,
                lw=1,
                label=s["label"] if j == 0 else None,
            )
            tests.append(100 * r["test"]["win_rate"])
        final.scatter([i] * len(tests), tests, color=color)
        if tests:
            final.hlines(statistics.median(tests), i - 0.3, i + 0.3, color=color)
        labels.append(s["label"])
    target = 100 * doc["target_win_rate"]
    for ax in (curves, final):
        if target:
            ax.axhline(target, color="grey", ls="--", lw=0.8)
        ax.set_ylabel("win rate %")
    curves.set_xlabel("env steps")
    curves.set_title("validation win rate during training (each seed)")
    curves.legend(fontsize=7)
    final.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=7)
    final.set_title("final model on the test games (each seed; bar: median)")
    fig.tight_layout()
    out = study / "summary.png"
    tmp = out.with_name("summary.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out
