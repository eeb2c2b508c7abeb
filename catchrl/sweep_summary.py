"""A study's summary: the seeds of each setting aggregated (IQM, 95 % bootstrap CI).

Reads only the trials' run directories (``config.toml``, ``evals.json``, ``eval.json``);
writes ``summary.md`` and ``summary.png``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from catchrl.config import TrainConfig
from catchrl.errors import CatchrlError

__all__ = [
    "StudyError",
    "iqm_ci",
    "load_study",
    "read_trial",
    "setting_label",
    "summarize",
    "trials",
]


class StudyError(CatchrlError):
    """A study's search space, folder or state is not usable; the message says why."""


def load_study(study: Path) -> tuple[dict[str, Any], TrainConfig]:
    """A study's ``study.json`` and base config."""
    from catchrl.api import make_config

    if not (study / "study.json").is_file():
        raise StudyError(f"{str(study)!r} is not a catchrl study (no study.json)")
    try:
        doc = json.loads((study / "study.json").read_text(encoding="utf-8"))
        return doc, make_config("fast", study / "base.toml")
    except ValueError as e:
        raise StudyError(f"{study}/study.json or base.toml is corrupt ({e})") from None


def setting_label(values: Mapping[str, Any]) -> str:
    """``agent.lr=0.001 agent.batch_size=64`` (``base`` when nothing is swept)."""
    shown = {k: v for k, v in values.items() if "." in k and k != "run.seed"}
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in sorted(shown.items())) or "base"  # fmt: skip


def read_trial(run_dir: Path) -> dict[str, Any]:
    """One trial's run: its config, seed, steps, last validation and test (``eval.json``)."""
    from catchrl.config import load_run_config
    from catchrl.rundir import RunDir

    evals = (
        json.loads((run_dir / "evals.json").read_text())
        if (run_dir / "evals.json").is_file()
        else []
    )
    test = (
        json.loads((run_dir / "eval.json").read_text())
        if (run_dir / "eval.json").is_file()
        else None
    )
    metrics = RunDir(run_dir).read_metrics()
    cfg = load_run_config(run_dir / "config.toml")
    return {
        "name": run_dir.name,
        "config": cfg,
        "seed": cfg.run.seed,
        "steps": int(metrics["steps"][-1]) if len(metrics["steps"]) else 0,
        "evaluations": evals,
        "val_win_rate": evals[-1]["win_rate"] if evals else 0.0,
        "test_win_rate": test["win_rate"] if test else None,
        "test_games": test["games"] if test else None,
        "model": test["model"] if test else None,
    }


def trials(study: Path) -> list[dict[str, Any]]:
    """The study's finished trials (their runs wrote ``eval.json``), by name."""
    done = sorted(p.parent for p in (study / "trials").glob("*/eval.json"))
    return [read_trial(d) for d in done]


def iqm_ci(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Interquartile mean and its 95 % bootstrap interval (scipy; None with one seed)."""
    import numpy as np
    from scipy import stats

    x = np.asarray(values, dtype=float)
    iqm = float(stats.trim_mean(x, 0.25))
    if len(x) < 2 or np.ptp(x) == 0:
        return iqm, (iqm if len(x) > 1 else None), (iqm if len(x) > 1 else None)
    ci = stats.bootstrap(
        (x,), lambda a, axis: stats.trim_mean(a, 0.25, axis=axis), n_resamples=10_000,
        confidence_level=0.95, method="percentile", random_state=0,
    ).confidence_interval  # fmt: skip
    return iqm, float(ci.low), float(ci.high)


def summarize(study: Path) -> list[dict[str, Any]]:
    """Per setting, over its seeds: the test win rate's IQM [95 % CI]; summary.md and .png."""
    from catchrl.evaluation import TEST_SEED

    doc, _ = load_study(study)
    groups: dict[str, list[dict[str, Any]]] = {}
    repeats = 0  # TPE may propose a setting twice: the same config and seed is the same run
    for run in trials(study):
        values = {k: _field(run["config"], k) for k in doc["space"]}
        group = groups.setdefault(setting_label(values), [])
        if any(r["seed"] == run["seed"] for r in group):
            repeats += 1
            continue
        group.append(run)
    rows = []
    for label, runs in groups.items():
        runs.sort(key=lambda r: r["seed"])
        iqm, low, high = iqm_ci([r["test_win_rate"] for r in runs])
        steps = iqm_ci([r["steps"] for r in runs])[0]
        models = sorted({r["model"] for r in runs})
        rows.append({"label": label, "runs": runs, "iqm": iqm, "low": low, "high": high,
                     "steps": steps, "models": models})  # fmt: skip
    rows.sort(key=lambda r: -r["iqm"])
    games = rows[0]["runs"][0]["test_games"] if rows else 0
    lines = [
        f"# Study {study.name}: {repeats + sum(len(r['runs']) for r in rows)}/{doc['trials']} "
        "trials, "
        f"search {doc['search']}, base preset {doc['preset']} ({doc['algo']})",
        "",
        f"Score: each trial's kept model (best.* = its best validation evaluation) on "
        f"{games} test games (seed {TEST_SEED}); per setting the IQM over seeds with a "
        "95 % bootstrap CI (scipy.stats.bootstrap, percentile, 10,000 resamples).",
        f"TensorBoard: `tensorboard --logdir {study / 'trials'}`",
        f"{repeats} trials repeated a setting and seed already run: counted once." * bool(repeats),
        "",
        "| setting | seeds | test win rate % IQM [95 % CI] | each seed | steps IQM | model |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = f"[{100 * r['low']:.1f}, {100 * r['high']:.1f}]" if r["low"] is not None else "[—]"
        each = " ".join(f"{100 * x['test_win_rate']:.1f}" for x in r["runs"])
        lines.append(f"| {r['label']} | {len(r['runs'])} | {100 * r['iqm']:.1f} {ci} | {each} "
                     f"| {r['steps']:.0f} | {', '.join(r['models'])} |")  # fmt: skip
    (study / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with _quiet_missing():
        _plot(study, rows)
    return rows


def _field(cfg: TrainConfig, key: str) -> Any:
    table, name = key.split(".", 1)
    part = getattr(cfg, table)
    return part[name] if isinstance(part, dict) else getattr(part, name)


@contextmanager
def _quiet_missing() -> Iterator[None]:
    try:
        yield
    except ImportError:  # matplotlib (the plot extra) not installed: the table is enough
        pass


def _plot(study: Path, rows: list[dict[str, Any]]) -> None:
    """``summary.png``: validation curves (each seed), and the test win rate per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curves, final) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, r in enumerate(rows):
        color = plt.get_cmap("tab10")(i % 10)
        for j, run in enumerate(r["runs"]):
            ev = run["evaluations"]
            curves.plot([e["steps"] for e in ev], [100 * e["win_rate"] for e in ev], color=color,
                        lw=1, alpha=0.8, label=r["label"] if j == 0 else None)  # fmt: skip
            final.scatter(i, 100 * run["test_win_rate"], color=color, s=18)
        if r["low"] is not None:
            err = [[100 * (r["iqm"] - r["low"])], [100 * (r["high"] - r["iqm"])]]
            final.errorbar(i + 0.15, 100 * r["iqm"], yerr=err, fmt="_", color=color, capsize=4)
        final.hlines(100 * r["iqm"], i - 0.25, i + 0.25, color=color)
    curves.set(xlabel="env steps", ylabel="win rate %", title="validation win rate (each seed)")
    curves.legend(fontsize=7)
    final.set_xticks(range(len(rows)), [r["label"] for r in rows], rotation=15, ha="right",
                     fontsize=7)  # fmt: skip
    models = " / ".join(sorted({m for r in rows for m in r["models"]}))
    final.set(
        ylabel="win rate %: seeds, IQM, 95 % CI", title=f"kept model ({models}) on the test games"
    )
    fig.tight_layout()
    fig.savefig(study / "summary.png", dpi=100)
    plt.close(fig)
