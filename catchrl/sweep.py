"""Studies on Ray Tune's own API: a base config x a search space x seeds (docs/sweeps.md).

A study's folder: ``study.toml`` (with its ``[sweep]``), ``trials/NAME`` runs, Tune's ``tune/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from catchrl import fields
from catchrl.api import make_config
from catchrl.config import SEED_MAX, TrainConfig, to_toml
from catchrl.errors import CatchrlError
from catchrl.learners import open_run
from catchrl.rundir import RunDir, read_json
from catchrl.runloop import stop_signals_to
from catchrl.stats import read_run, setting_label

BOUNDED = ("uniform", "loguniform", "randint")  # Tune's functions of LOW, HIGH (randint: < HIGH)
KINDS = ("grid_search", "choice", *BOUNDED)  # Tune's functions a swept key may use
METRIC = "val_win_rate"  # what TPE and ASHA optimise: the last validation (the test never decides)


class StudyError(CatchrlError):
    """A study's search space, folder or state is not usable; the message says why."""


@dataclasses.dataclass
class Sweep:
    """The options of a ``[sweep]`` table (the command line's win); its space: grid, random."""

    seeds: Annotated[int, fields.POSITIVE] = 1
    samples: Annotated[int, fields.COUNT] = 0  # 0: one draw (random), the grid's size (tpe)
    search: Literal["random", "tpe"] = "random"
    search_seed: Annotated[int, fields.Range(0, SEED_MAX)] = 0
    asha: bool = False
    cpus_per_trial: Annotated[float, fields.NON_NEGATIVE] = 1.0
    gpus_per_trial: Annotated[float, fields.NON_NEGATIVE] = 0.0
    max_failures: Annotated[int, fields.Range(-1, fields.INT_MAX, why="-1: retry forever")] = 3
    max_concurrent: Annotated[int, fields.COUNT] = 0  # 0: as many as fit


def read_sweep(table: Any, source: str, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A ``[sweep]`` table's plan: options, space, trials; ``given``: the command line's (wins)."""
    if not isinstance(table, dict):
        raise StudyError(f"{source}: [sweep] must be a table, got {table!r}")
    hints = fields.field_hints(Sweep)
    unknown = sorted(set(table) - set(hints) - {"grid", "random"})
    if unknown:
        raise StudyError(f"{source}: unknown key sweep.{unknown[0]}")
    plan = dataclasses.asdict(Sweep())
    for key, hint in hints.items():
        if (given or {}).get(key) is not None:
            plan[key] = given[key]
        elif key in table:
            plan[key] = fields.coerce(f"{source}: sweep.{key}", table[key], hint)
    space = plan["space"] = {}
    for part in ("grid", "random"):
        if not isinstance(table.get(part, {}), dict):
            raise StudyError(f"{source}: sweep.{part} must be a table, got {table[part]!r}")
        for key, spec in [*table.get(part, {}).items(), *((given or {}).get(part) or [])]:
            if key in space:
                raise StudyError(f"{key} is swept twice")
            space[key] = _entry(part, key, spec, source)
    search = plan["search"]
    if search == "tpe" and plan["asha"]:
        raise StudyError("--asha goes with --search random (TPE's Repeater needs every seed's end)")
    grid = math.prod(len(values) for kind, values in space.values() if kind == "grid_search")
    if search == "tpe":  # TPE has no grid: its values become choices
        space |= {k: ("choice", v) for k, (kind, v) in space.items() if kind == "grid_search"}
    plan["samples"] = plan["samples"] or (1 if search == "random" else grid)
    drawn = any(kind != "grid_search" for kind, _ in space.values())
    if search == "random" and plan["samples"] > 1 and not drawn:
        raise StudyError("--samples > 1 repeats identical settings: give --random parameters")
    plan["trials"] = plan["samples"] * plan["seeds"] * (grid if search == "random" else 1)
    return plan


def _entry(part: str, key: str, spec: Any, source: str) -> tuple[str, list]:
    """A swept key's Tune function and its arguments, from ``sweep.grid`` or ``sweep.random``."""
    kind, values = ("grid_search" if part == "grid" else "choice"), spec
    if part == "random" and isinstance(spec, dict) and len(spec) == 1:
        [(kind, values)] = spec.items()
        values = values if isinstance(values, list) else [values]
    elif not isinstance(spec, list):
        raise StudyError(f"{source}: sweep.{part}.{key} must be a list, got {spec!r}")
    if key == "run.seed":
        raise StudyError("run.seed is set by --seeds (seeds run.seed, run.seed + 1, ...)")
    if kind not in KINDS:
        raise StudyError(f"{key}: unknown distribution {kind!r}; choose {KINDS[1:]}")
    if not values:
        raise StudyError(f"{key}: no values")
    number = int if kind == "randint" else (int, float)
    low = 0 if kind == "loguniform" else -math.inf
    ok = len(values) == 2 and all(isinstance(a, number) and not isinstance(a, bool) for a in values)
    if kind in BOUNDED and not (ok and low < values[0] < values[1]):
        what = "integers" if kind == "randint" else "numbers"
        bound = "LOW" if low else "0 < LOW"
        raise StudyError(f"{key}: {kind} needs two {what} {bound} < HIGH, got {values}")
    return kind, values


def create_study(
    study: Path, base: TrainConfig, plan: dict[str, Any], leave_out: Collection[str] = ()
) -> Path:
    """A new study's folder: ``study.toml`` holds ``base`` (less ``leave_out``) and ``plan``."""
    if study.exists() and (not study.is_dir() or any(study.iterdir())):
        what = "a study: resume it with --resume" if (study / "study.toml").is_file() else "files"
        raise StudyError(f"{str(study)!r} already holds {what} (choose a new folder)")
    lines = [to_toml(base, leave_out), "[sweep]"]
    lines += [f"{key} = {fields.toml_value(plan[key])}" for key in fields.field_hints(Sweep)]
    for part in ("grid", "random"):
        lines.append(f"\n[sweep.{part}]")
        for key, (kind, values) in plan["space"].items():
            if (kind == "grid_search") == (part == "grid"):
                spec = values if kind in KINDS[:2] else {kind: values}
                lines.append(f"{json.dumps(key)} = {fields.toml_value(spec)}")
    (study / "trials").mkdir(parents=True, exist_ok=True)
    (study / "study.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return study


def load_study(study: Path) -> tuple[dict[str, Any], TrainConfig]:
    """A study's plan (:func:`read_sweep`) and base config, from its ``study.toml``."""
    path = study / "study.toml"
    if not path.is_file():
        raise StudyError(f"{str(study)!r} is not a catchrl study (no study.toml)")
    return read_sweep(fields.read_toml(path).get("sweep"), str(path)), make_config("fast", path)


def check_trust(algo: str, trust_pickle: bool) -> None:
    """An SB3 study's trials resume from pickles (which can run code): only with ``--sb3``."""
    if algo.startswith("sb3") and not trust_pickle:
        raise StudyError(
            f"{algo} trials resume from pickled SB3 checkpoints (Tune's retries, --resume), "
            "which can run code: pass --sb3 to trust the study's own files"
        )


def tune_space(space: Mapping[str, tuple[str, list]]) -> dict[str, Any]:
    """The space in Tune's own functions (``grid_search`` and ``choice`` take a list)."""
    from ray import tune

    return {k: getattr(tune, f)(*([v] if f in KINDS[:2] else v)) for k, (f, v) in space.items()}


def _seed(config: Mapping[str, Any], base_seed: int) -> int:
    """A trial's ``run.seed``: the grid's (random search), or the base's + the Repeater's index."""
    return int(config.get("run.seed", base_seed + config.get("__trial_index__", 0)))


def _trial(config: dict[str, Any], study: str, trust_pickle: bool = False) -> None:
    """Tune's trainable: one run of the study, reported at each evaluation, resumed if begun."""
    import ray
    from ray import tune

    run_dir = Path(study) / "trials" / tune.get_context().get_trial_name()
    if not (run_dir / "eval.json").is_file():  # else: finished before Tune heard of it
        resume, cfg = RunDir(run_dir).is_run(), None
        if not resume:  # the base config with the setting's values, read as --set reads them
            sets = [f"{k}={json.dumps(v, default=int)}" for k, v in config.items() if "." in k]
            cfg = make_config("fast", Path(study) / "study.toml", sets)  # default: numpy ints
            cfg.run.seed = _seed(config, cfg.run.seed)
        loop = open_run(cfg, run_dir, resume=resume, progress=False, trust_pickle=trust_pickle)
        node = ray.get_runtime_context().get_node_id()
        where = {"node": node, "resumed_at": loop.steps if resume else -1}  # for the record
        loop.on_evaluation = lambda e: tune.report(
            {METRIC: e["win_rate"], "steps": e["steps"], **where}
        )
        if loop.run().interrupted:  # not finished: Tune must not mark it so
            raise StudyError(f"trial {run_dir.name} was stopped by a signal; it resumes")
    run, best = read_run(run_dir), run_dir / "best.json"
    trained = read_json(RunDir(run_dir).latest_checkpoint() / "state.json")["steps"]
    kept = read_json(best)["steps"] if best.is_file() else trained  # for the progress line:
    end = {"test_win_rate": run["test_win_rate"], "model": run["model"], "kept": kept}
    tune.report({METRIC: run["val_win_rate"], "steps": run["steps"], "trained": trained, **end})


def _tuner(study: Path, plan: dict[str, Any], base: TrainConfig, resume: bool, trust: bool) -> Any:
    """The study's ``Tuner``: restored on ``resume``, else new (space, search, seeds, ASHA)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator, Repeater

    trainable = tune.with_resources(
        tune.with_parameters(_trial, study=str(study), trust_pickle=trust),
        {"cpu": plan["cpus_per_trial"], "gpu": plan["gpus_per_trial"]},
    )
    if resume and tune.Tuner.can_restore(study / "tune"):
        return tune.Tuner.restore(str(study / "tune"), trainable, resume_errored=True)
    space, seeds, seed = tune_space(plan["space"]), plan["seeds"], base.run.seed
    if plan["search"] == "tpe":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        search = Repeater(OptunaSearch(seed=plan["search_seed"]), repeat=seeds)
    else:
        space["run.seed"] = tune.grid_search([seed + i for i in range(seeds)])
        search = BasicVariantGenerator(constant_grid_search=True, random_state=plan["search_seed"])
    steps = base.run.total_steps
    asha = ASHAScheduler(time_attr="steps", max_t=steps, grace_period=steps // 9 or 1)

    def name(trial: Any) -> str:  # t007-seed1: Tune's trial counter (TPE's: its id), the seed
        count = trial.trial_id.split("_")[-1]
        number = f"t{int(count):03d}" if count.isdigit() else trial.trial_id
        return f"{number}-seed{_seed(trial.config, seed)}"

    class Progress(tune.Callback):  # ours instead of Tune's tables: a line per finished trial
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            r = trial.last_result
            score = f"stopped early (ASHA) at step {r.get('steps', 0)}"
            if r.get("model"):
                score = f"test {100 * r['test_win_rate']:.1f} % ({r['model']} from step "
                score += f"{r['kept']} of {r['trained']})"
            done = 1 + sum(t.status == "TERMINATED" for t in trials if t is not trial)
            label = f"{setting_label(trial.config)} seed {_seed(trial.config, seed)}"
            print(f"[{done}/{plan['trials']}] {label}: {score}", flush=True)

    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=search,
            scheduler=asha if plan["asha"] else None,
            num_samples=plan["samples"] * (seeds if plan["search"] == "tpe" else 1),
            max_concurrent_trials=plan["max_concurrent"] or None,
            trial_name_creator=name,
            trial_dirname_creator=name,
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(study),
            verbose=0,
            log_to_file=False,  # Tune's Tee, kept by absl's log handler, errs at the worker's exit
            callbacks=[Progress()],
            failure_config=tune.FailureConfig(max_failures=plan["max_failures"]),
        ),
    )


def run_study(
    study: Path,
    resume: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    trust_pickle: bool = False,
) -> tuple[int, int]:
    """Run (or resume) the study; exit code (1: some failed; 128 + a signal) and trials done."""
    import ray

    received: list[int] = []

    def stop(signum: int, frame: Any) -> None:  # Tune's own stop (SIGUSR1): save, then end
        if received:  # a second signal: at once (the runs keep their checkpoints)
            raise KeyboardInterrupt
        received.append(signum)
        os.kill(os.getpid(), signal.SIGUSR1)

    study = study.resolve()
    plan, base = load_study(study)
    check_trust(base.algo, trust_pickle)  # before anything is unpickled
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # Tune's old reporter: verbose=0 prints nothing
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C is ours, as SIGTERM and SIGHUP
    local = {} if address else {"num_cpus": num_cpus, "object_store_memory": 200 * 2**20}
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    with RunDir(study).lock():  # one driver per study
        session: Any = contextlib.nullcontext()  # a Ray the caller started: used, left running
        if not ray.is_initialized():
            try:  # ray.init's context shuts its Ray down
                session = ray.init(address=address or "local", **local, **quiet)
            except (ConnectionError, ValueError, RuntimeError) as e:
                what = f"--address {address}: cannot join the Ray cluster"
                raise StudyError(f"{what if address else 'a local Ray did not start'} ({e})") from e
        errors = 0
        with session, contextlib.suppress(KeyboardInterrupt), stop_signals_to(stop):
            errors = _tuner(study, plan, base, resume, trust_pickle).fit().num_errors
    done = len(list((study / "trials").glob("*/eval.json")))
    return (128 + received[0] if received else int(errors > 0)), done
