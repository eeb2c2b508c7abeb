"""Studies on Ray Tune's own API: a base config x a search space x seeds (docs/sweeps.md).

Each trial is an ordinary run in ``STUDY/trials/NAME``, resumed when Tune restarts it.
"""

from __future__ import annotations

import functools
import json
import os
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from catchrl.config import TrainConfig, to_toml
from catchrl.errors import CatchrlError
from catchrl.stats import setting_label

__all__ = ["StudyError", "check_trust", "create_study", "load_study", "run_study"]

BOUNDED = ("uniform", "loguniform", "randint")
"""Tune's search-space functions of two bounds (``randint``: the upper one excluded)."""
KINDS = ("grid_search", "choice", *BOUNDED)
"""Tune's search-space functions a swept key may use."""
METRIC = "val_win_rate"
"""What Tune (TPE, ASHA) optimises: the last validation evaluation; tests never decide."""
TRIAL_INDEX = "__trial_index__"  # Tune's Repeater: the seed's index within a setting
STUDY_KEYS = ("space", "search", "seeds", "search_seed", "samples", "trials", "asha")
STUDY_KEYS += ("max_concurrent", "max_failures", "cpus_per_trial", "gpus_per_trial")
"""What ``study.json`` holds (``catchrl sweep`` writes it)."""


class StudyError(CatchrlError):
    """A study's search space, folder or state is not usable; the message says why."""


def create_study(study: Path, base: TrainConfig, doc: dict[str, Any]) -> Path:
    """Write ``base.toml`` and ``study.json`` (space, seeds, search...) into a new folder."""
    if study.exists() and (not study.is_dir() or any(study.iterdir())):
        what = "a study: resume it with --resume" if (study / "study.json").is_file() else "files"
        raise StudyError(f"{str(study)!r} already holds {what} (choose a new folder)")
    (study / "trials").mkdir(parents=True, exist_ok=True)
    (study / "base.toml").write_text(to_toml(base), encoding="utf-8")
    (study / "study.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return study


def load_study(study: Path) -> tuple[dict[str, Any], TrainConfig]:
    """A study's ``study.json`` and base config."""
    from catchrl.api import make_config

    if not (study / "study.json").is_file():
        raise StudyError(f"{str(study)!r} is not a catchrl study (no study.json)")
    try:
        doc = json.loads((study / "study.json").read_text(encoding="utf-8"))
        base = make_config("fast", study / "base.toml")
    except ValueError as e:
        raise StudyError(f"{study}/study.json or base.toml is corrupt ({e})") from None
    missing = sorted(set(STUDY_KEYS) - set(doc)) if isinstance(doc, dict) else ["settings"]
    if missing:
        raise StudyError(f"{study}/study.json is corrupt (no {', '.join(missing)})")
    return doc, base


def check_trust(algo: str, trust_pickle: bool) -> None:
    """An SB3 study's trials resume from pickles (which can run code): only with ``--sb3``."""
    if algo.startswith("sb3") and not trust_pickle:
        raise StudyError(
            f"{algo} trials resume from pickled SB3 checkpoints (Tune's retries, --resume), "
            "which can run code: pass --sb3 to trust the study's own files"
        )


def tune_calls(space: Mapping[str, tuple[str, list]], search: str) -> dict[str, tuple[str, list]]:
    """Each key's Tune function and arguments; grids become choices for TPE, which has no grid."""
    calls = {}
    for key, (kind, args) in space.items():
        calls[key] = ("choice" if kind == "grid_search" and search == "tpe" else kind), args
    return calls


def tune_space(space: Mapping[str, tuple[str, list]], search: str) -> dict[str, Any]:
    """The space in Tune's own functions (:func:`tune_calls`)."""
    from ray import tune

    out = {}
    for key, (kind, args) in tune_calls(space, search).items():
        fn = getattr(tune, kind)
        out[key] = fn(args) if kind in KINDS[:2] else fn(*args)
    return out


# -- one trial (in a Ray worker) ----------------------------------------------------------


def _trial(config: dict[str, Any], study: str, trust_pickle: bool = False) -> None:
    """Tune's trainable: one run of the study, reported at each evaluation, resumed if begun."""
    import ray
    from ray import tune

    from catchrl.api import make_config
    from catchrl.learners import open_run
    from catchrl.rundir import RunDir

    _, base = load_study(Path(study))
    run_dir = Path(study) / "trials" / tune.get_context().get_trial_name()
    if (run_dir / "eval.json").is_file():  # finished before Tune heard of it
        tune.report(_final(run_dir))
        return
    resume = RunDir(run_dir).is_run()
    cfg = None
    if not resume:  # the base config with the setting's values and seed, read as --set reads them
        sets = [f"run.seed={_seed(config, base.run.seed)}"]
        for key, value in config.items():
            if "." in key and key != "run.seed":
                value = value.item() if hasattr(value, "item") else value  # numpy's, from Tune
                sets.append(f"{key}={json.dumps(value)}")
        cfg = make_config("fast", Path(study) / "base.toml", sets)
    node, start = ray.get_runtime_context().get_node_id(), {}

    def on_evaluation(record: dict[str, Any]) -> None:  # node and resumed_at: for the record
        report = {METRIC: record["win_rate"], "steps": record["steps"]}
        tune.report(report | {"node": node, "resumed_at": start["steps"]})

    loop = open_run(
        cfg,
        run_dir,
        resume=resume,
        progress=False,
        trust_pickle=trust_pickle,
        on_evaluation=on_evaluation,
    )
    start["steps"] = loop.steps if resume else -1
    if loop.run().interrupted:
        raise StudyError(f"trial {run_dir.name} was stopped by a signal; it resumes from its run")
    tune.report(_final(run_dir))


def _final(run_dir: Path) -> dict[str, Any]:
    """A finished trial's last report: its test, the kept model's step and the steps trained."""
    from catchrl.rundir import RunDir, read_json
    from catchrl.stats import read_run

    run = read_run(run_dir)
    trained = read_json(RunDir(run_dir).latest_checkpoint() / "state.json")["steps"]
    best = run_dir / "best.json"
    return {
        METRIC: run["val_win_rate"],
        "steps": trained,
        "kept_step": read_json(best)["steps"] if best.is_file() else trained,
        "done": True,
        "test_win_rate": run["test_win_rate"],
        "model": run["model"],
    }


# -- the driver ---------------------------------------------------------------------------


def _progress_callback(total: int, base_seed: int) -> Any:
    """Our progress instead of Tune's tables: a line per finished, retried or failed trial."""
    from ray import tune

    class Progress(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            r = trial.last_result
            done = 1 + sum(t.status == "TERMINATED" for t in trials if t is not trial)
            score = f"stopped early (ASHA) at step {r.get('steps', 0)}"
            if r.get("done"):
                kept = f"{r['model']} from step {r['kept_step']} of {r['steps']}"
                score = f"test {100 * r['test_win_rate']:.1f} % ({kept})"
            label = f"{setting_label(trial.config)} seed {_seed(trial.config, base_seed)}"
            print(f"[{done}/{total}] {label}: {score}", flush=True)

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(f"{trial}: its worker died; Tune restarts it, from its run", flush=True)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(f"{trial} failed (see {trial.local_path}/error.txt)", flush=True)

    return Progress()


def _seed(config: Mapping[str, Any], base_seed: int) -> int:
    """``run.seed`` of a trial: the grid's, or the base seed + Tune's Repeater index."""
    return int(config.get("run.seed", base_seed + config.get(TRIAL_INDEX, 0)))


def _trial_name(trial: Any, base_seed: int = 0) -> str:
    """``t007-seed1`` (Tune's trial counter; TPE's trials: their id) and the seed."""
    count = trial.trial_id.split("_")[-1]
    name = f"t{int(count):03d}" if count.isdigit() else trial.trial_id
    return f"{name}-seed{_seed(trial.config, base_seed)}"


def _tuner(study: Path, doc: dict[str, Any], base: TrainConfig, trainable: Any) -> Any:
    """A new study's ``Tuner``: its space, search, seeds, scheduler and our progress lines."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator, Repeater

    space = tune_space(doc["space"], doc["search"])
    seeds = doc["seeds"]
    if doc["search"] == "tpe":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        search = Repeater(OptunaSearch(seed=doc["search_seed"]), repeat=seeds)
    else:
        space["run.seed"] = tune.grid_search([base.run.seed + i for i in range(seeds)])
        search = BasicVariantGenerator(constant_grid_search=True, random_state=doc["search_seed"])
    scheduler = None
    if doc["asha"]:
        from ray.tune.schedulers import ASHAScheduler

        budget = base.run.total_steps
        scheduler = ASHAScheduler(time_attr="steps", max_t=budget, grace_period=budget // 9 or 1)
    name = functools.partial(_trial_name, base_seed=base.run.seed)
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=search,
            scheduler=scheduler,
            num_samples=doc["samples"] * (seeds if doc["search"] == "tpe" else 1),
            max_concurrent_trials=doc["max_concurrent"] or None,
            trial_name_creator=name,
            trial_dirname_creator=name,
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(study),
            verbose=0,
            log_to_file=False,  # Tune's Tee, kept by absl's log handler, errs at the worker's exit
            callbacks=[_progress_callback(doc["trials"], base.run.seed)],
            failure_config=tune.FailureConfig(max_failures=doc["max_failures"]),
        ),
    )


@contextmanager
def _driver_signals() -> Iterator[list[int]]:
    """Ctrl-C, SIGTERM, SIGHUP: Tune's own stop (SIGUSR1: save, then stop); a second: at once."""
    received: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune's handler (tune.run installs it)

    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # SIGINT is ours, as SIGTERM and SIGHUP
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # nohup's ignored SIGHUP stays so
    old = {s: signal.signal(s, stop) for s in stops if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield received
    except KeyboardInterrupt:
        pass  # the second signal: Tune's last save skipped, the runs keep their checkpoints
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _connect(address: str | None, num_cpus: int | None) -> bool:
    """Join the cluster at ``address``, or start a local Ray of our own; whether we started it."""
    import ray

    if ray.is_initialized():
        return False
    # "local": never a cluster found on this machine
    local = {} if address else {"num_cpus": num_cpus, "object_store_memory": 200 * 2**20}
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    try:
        ray.init(address=address or "local", **local, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise StudyError(f"--address {address}: cannot join the Ray cluster ({e})") from e
    return True


def run_study(
    study: Path,
    resume: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    trust_pickle: bool = False,
) -> tuple[int, int]:
    """Run (or resume: ``Tuner.restore``) the study; its exit code and finished trials.

    Exit code: 0 when every trial finished, 1 when some failed, 128 + the signal when stopped.
    """
    import logging

    import ray
    from ray import tune

    from catchrl.rundir import RunDir

    study = study.resolve()
    doc, base = load_study(study)
    check_trust(base.algo, trust_pickle)  # before anything is unpickled
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # Tune's old reporter: verbose=0 prints nothing
    with RunDir(study).lock():  # one driver per study
        started = _connect(address, num_cpus)
        try:
            trainable = tune.with_resources(
                tune.with_parameters(_trial, study=str(study), trust_pickle=trust_pickle),
                {"cpu": doc["cpus_per_trial"], "gpu": doc["gpus_per_trial"]},
            )
            path = str(study / "tune")
            if resume and tune.Tuner.can_restore(path):
                tuner = tune.Tuner.restore(path, trainable, resume_errored=True)
            else:
                tuner = _tuner(study, doc, base, trainable)
            with _driver_signals() as received:  # after ray.init, which sets its own
                errors = tuner.fit().num_errors
        finally:
            if started:
                ray.shutdown()
    done = sum(1 for _ in (study / "trials").glob("*/eval.json"))
    if received:
        return 128 + received[0], done
    return (1 if errors else 0), done
