"""A study's summary from its trials' run directories: ``summary.md``, ``.csv`` and ``.png``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from catchrl.config import TrainConfig
from catchrl.errors import CatchrlError
from catchrl.stats import format_table, read_run, write_csv
from catchrl.stats import summarize as summarize_seeds

__all__ = ["StudyError", "load_study", "setting_label", "summarize", "trials"]


class StudyError(CatchrlError):
    """A study's search space, folder or state is not usable; the message says why."""


STUDY_KEYS = ("space", "search", "seeds", "search_seed", "samples", "trials", "asha", "algo")
STUDY_KEYS += ("preset", "max_concurrent", "max_failures", "cpus_per_trial", "gpus_per_trial")
"""What a study's driver and summary read from ``study.json`` (``catchrl sweep`` writes it)."""


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


def setting_label(values: Mapping[str, Any]) -> str:
    """``agent.lr=0.001 agent.batch_size=64`` (``base`` when nothing is swept)."""
    shown = {k: v for k, v in values.items() if "." in k and k != "run.seed"}
    parts = [
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(shown.items())
    ]
    return " ".join(parts) or "base"


def trials(study: Path) -> list[dict[str, Any]]:
    """The study's finished trials (their runs wrote ``eval.json``), by name."""
    done = sorted(p.parent for p in (study / "trials").glob("*/eval.json"))
    return [read_run(d) for d in done]


def summarize(study: Path) -> list[dict[str, Any]]:
    """Per setting, over its seeds (best test IQM first); writes the summary's three files."""
    from catchrl.evaluation import TEST_SEED
    from catchrl.plots import PlotError, plot_seeds

    doc, base = load_study(study)
    target = base.run.target_win_rate or 0.99
    groups: dict[str, list[dict[str, Any]]] = {}
    repeats = 0  # TPE may propose a setting twice: the same config and seed is the same run
    for run in trials(study):
        values = {key: _field(run["config"], key) for key in doc["space"]}
        group = groups.setdefault(setting_label(values), [])
        if any(r["seed"] == run["seed"] for r in group):
            repeats += 1
            continue
        group.append(run)
    for runs in groups.values():
        runs.sort(key=lambda r: r["seed"])
    rows = summarize_seeds(groups, target)
    rows.sort(key=lambda r: -r["iqm"])
    runs = [run for row in rows for run in row["runs"]]
    models = ", ".join(sorted({run["model"] for run in runs}))
    games = runs[0]["test_games"] if runs else 0
    grid_only = all(kind == "grid_search" for kind, _ in doc["space"].values())
    search = "grid" if doc["search"] == "random" and grid_only else doc["search"]
    lines = [
        f"# Study {study.name}: {len(runs) + repeats}/{doc['trials']} trials, search "
        f"{search}, base preset {doc['preset']} ({doc['algo']})",
        "",
        f"Test: each trial's kept model ({models}) on {games} test games (seed {TEST_SEED}).",
        f"Seeds: summary.csv. TensorBoard: `tensorboard --logdir {study / 'trials'}`",
    ]
    if repeats:
        lines.append(f"{repeats} trials repeated a setting and seed already run: counted once.")
    lines += ["", format_table(rows, target, "setting")]
    (study / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_csv(study / "summary.csv", rows, target)
    try:
        plot_seeds(rows, "steps", study / "summary.png")
    except PlotError:  # matplotlib (the plot extra) not installed: the table is enough
        pass
    return rows


def _field(cfg: TrainConfig, key: str) -> Any:
    table, name = key.split(".", 1)
    part = getattr(cfg, table)
    return part[name] if isinstance(part, dict) else getattr(part, name)
