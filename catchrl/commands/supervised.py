"""'catchrl supervised': train and evaluate the perception, sequence and imitation models."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from catchrl.commands import options
from catchrl.commands.options import SEED, number
from catchrl.errors import UserError

EPILOG = """examples:
  catchrl data make --kind frames --games 1000 --out data/frames.npz
  catchrl supervised train perception --data data/frames.npz --run-dir runs/perc --epochs 20
  catchrl supervised eval perception --model runs/perc --data data/frames-test.npz
  catchrl eval runs/imit/model.keras --games 1000   # an imitation model plays as any agent

A run directory holds config.json, metrics.tsv, tb/, checkpoints/, best.keras, model.keras.
"""

TASKS = ("perception", "sequence", "imitation")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl supervised train|eval``."""
    help = "train/evaluate perception, sequence, imitation models"
    p = options.add_command(sub, "supervised", help, __doc__, EPILOG)
    actions = p.add_subparsers(dest="supervised_command", metavar="ACTION")
    help = "train a model into a run directory"
    t = options.add_command(actions, "train", help, parents=[options.run_dir(True)], func=run_train)
    t.add_argument("task", choices=TASKS)
    t.add_argument("--data", required=True, help="training .npz (catchrl data make)")
    help = "book, lenet, small (default); sequence: lstm, gru (default), bidirectional"
    t.add_argument("--arch", default="", help=help)
    t.add_argument("--epochs", type=number(1), default=10, help="most epochs (default 10)")
    t.add_argument("--batch-size", type=number(0), default=0, help="0 = automatic (default)")
    lr = number(0, kind=float, above=True)
    t.add_argument("--lr", type=lr, default=3e-3, dest="learning_rate", help="Adam's (3e-3)")
    t.add_argument("--patience", type=number(0), default=5, help="EarlyStopping patience (5)")
    fraction = number(0, 0.99, kind=float)
    t.add_argument("--val-fraction", type=fraction, default=0.1, help="games held out (0.1)")
    t.add_argument("--window", type=number(1), default=8, help="sequence: states per input (8)")
    t.add_argument("--perception", default="", help="sequence: on the states this model reads")
    t.add_argument("--jit", choices=("auto", "on", "off"), default="auto", help="XLA train step")
    t.add_argument("--seed", type=SEED, default=0, help="seed of the split, shuffle and weights")
    t.add_argument("--quiet", action="store_true", help="no per-epoch output")
    help = "measure a trained model on a held-out dataset"
    e = options.add_command(actions, "eval", help, func=run_eval)
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("task", choices=TASKS)
    e.add_argument("--model", required=True, help="run directory or .keras file")
    e.add_argument("--data", required=True, help="held-out .npz")
    e.add_argument("--perception", help="sequence: read states through this perception model")


def _model_path(spec: str | None) -> str | None:
    """A ``.keras`` file, or a run directory's ``model.keras``; ``None`` stays ``None``."""
    if not spec:
        return None
    path = Path(spec) / "model.keras" if Path(spec).is_dir() else Path(spec)
    if not path.exists():
        raise UserError(f"no model at {path}")
    return str(path)


def _data_path(spec: str) -> str:
    """``--data`` when it names a file."""
    if not Path(spec).is_file():
        raise UserError(f"--data: no dataset at {spec}")
    return spec


def run_train(args: argparse.Namespace) -> int:
    """Train one model."""
    from catchrl.supervised.train import SupervisedConfig
    from catchrl.supervised_train import train

    _data_path(args.data)
    try:
        same = {f.name for f in dataclasses.fields(SupervisedConfig)} & set(vars(args))
        cfg = SupervisedConfig(
            **{name: getattr(args, name) for name in same - {"perception"}},
            perception=_model_path(args.perception) or "",
            jit_compile={"auto": None, "on": True, "off": False}[args.jit],
        )
        out = train(cfg, args.run_dir, resume=args.resume, verbose=0 if args.quiet else 2)
    except ValueError as e:  # DatasetError, or a setting out of range
        raise UserError(str(e)) from None
    figures = ", ".join(f"{k} {v[-1]:.4g}" for k, v in sorted(out.history.items()))
    device = f"{', '.join(out.device['devices'])} [{out.device['policy']}]"
    print(f"{args.run_dir}: {cfg.task} ({cfg.arch}) on {device}: {figures}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate one model and print its figures."""
    from catchrl.supervised.evaluation import evaluate_model

    data, model = _data_path(args.data), _model_path(args.model)
    try:
        result = evaluate_model(args.task, model, data, _model_path(args.perception))
    except ValueError as e:
        raise UserError(str(e)) from None
    table = "\n".join(f"{key:32s} {value:.4g}" for key, value in result.items())
    print(json.dumps(result, indent=2, sort_keys=True) if args.json else table)
    return 0
