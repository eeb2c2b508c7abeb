"""How catchrl's modules import each other and what importing them loads.

The import graph is read from the source with ``ast`` (nothing is imported). Every
import counts: top-level ones, lazy ones inside functions, ``if TYPE_CHECKING``
blocks, relative imports and ``importlib.import_module("literal")``. Two rules:

1. no cycle among catchrl's modules;
2. imports only go down the layers, with no exception::

       catchrl.envs.* < catchrl.agents.* < catchrl.supervised.*
       < the application (catchrl, catchrl.config, .rundir, .runloop, ...)
       < the application's top (catchrl.cli, catchrl.commands.*, catchrl.__main__)

The package's module-level ``__getattr__`` hands out the Python API
(``catchrl.train``...) from ``catchrl.api`` on first use; that edge
(:data:`FRONT_DOOR`) runs once ``catchrl`` is fully imported, so it cannot close a
cycle at import time. What importing loads is checked once, here, in a fresh
interpreter: the game and the scripted policies load numpy and gymnasium, no
deep-learning framework, no window and no Ray.
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = {  # folder in the repository -> the package it installs as
    "catchrl": "catchrl",
    "envs": "catchrl.envs",
    "agents": "catchrl.agents",
    "supervised": "catchrl.supervised",
}
TOP = ("catchrl.cli", "catchrl.commands", "catchrl.__main__")
FRONT_DOOR = {("catchrl", "catchrl.api")}  # lazy re-export by the package's __getattr__
LAYERS = ("catchrl.envs", "catchrl.agents", "catchrl.supervised", "app", "app top")

Graph = Mapping[str, Mapping[str, int]]  # module -> {imported module: line of the first import}


# -- reading the source ---------------------------------------------------------


def source_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the distribution, by its installed name."""
    modules = {}
    for folder, package in SOURCE_DIRS.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def _resolve(name: str, known: set[str]) -> str:
    """The most specific known module that ``name`` (a dotted import target) refers to."""
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def module_imports(source: str, module: str, is_package: bool, known: set[str]) -> dict[str, int]:
    """The catchrl modules one module's source imports, with the line of each first import.

    Args:
        source: The module's Python source.
        module: Its dotted name (``catchrl.envs.core``).
        is_package: Whether it is a package's ``__init__`` (relative imports start there).
        known: All module names; ``from pkg import name`` counts ``pkg.name`` if it is one.

    """
    package = module if is_package else module.rpartition(".")[0]
    targets: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.append((full if full in known else base, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            targets.append((node.args[0].value, node.lineno))
    found: dict[str, int] = {}
    for name, line in sorted(targets, key=lambda t: t[1]):
        if name == "catchrl" or name.startswith("catchrl."):
            target = _resolve(name, known)
            if target != module:
                found.setdefault(target, line)
    return found


def import_graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    """Module -> the catchrl modules it imports (line of the first import)."""
    modules = source_modules(root)
    known = set(modules)
    return {
        name: module_imports(path.read_text(), name, path.name == "__init__.py", known)
        for name, path in modules.items()
    }


# -- the rules ------------------------------------------------------------------


def layer(module: str) -> int:
    """Index of a module's layer in :data:`LAYERS` (0 is the bottom)."""

    def within(prefixes: tuple[str, ...]) -> bool:
        return any(module == p or module.startswith(p + ".") for p in prefixes)

    for index, package in enumerate(LAYERS[:3]):
        if within((package,)):
            return index
    return 4 if within(TOP) else 3


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` for each strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # recursion depth is bounded by the number of modules
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, {}):
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(_cycle_in(graph, set(group)) for group in groups)


def _cycle_in(graph: Graph, group: set[str]) -> list[str]:
    """A shortest cycle through the group's first module, inside the group (breadth first)."""
    start = min(group)
    paths: dict[str, list[str]] = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph.get(node, {})):
                if nxt == start:
                    return [*paths[node], start]
                if nxt in group and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"no cycle in strongly connected group {sorted(group)}")


def upward_imports(graph: Graph) -> Iterator[tuple[str, str, int]]:
    """Each import ``(module, imported, line)`` from a lower layer into a higher one."""
    for module, imported in sorted(graph.items()):
        for target, line in sorted(imported.items()):
            if layer(target) > layer(module):
                yield module, target, line


def describe_cycle(graph: Graph, modules: Mapping[str, Path], cycle: list[str]) -> str:
    """``a -> b -> a`` with where each import is written."""
    steps = [
        f"{a} -> {b} ({_where(modules, a)}:{graph[a][b]})" for a, b in itertools.pairwise(cycle)
    ]
    return " -> ".join(cycle) + "\n      " + "\n      ".join(steps)


def _where(modules: Mapping[str, Path], module: str) -> str:
    path = modules.get(module)
    return str(path.relative_to(ROOT)) if path is not None else module


# -- the real tree --------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    return import_graph()


def test_every_package_is_read(graph):
    for module in (
        "catchrl",
        "catchrl.cli",
        "catchrl.commands.evaluate",
        "catchrl.envs",
        "catchrl.envs.core",
        "catchrl.agents.dqn",
        "catchrl.supervised.perception",
    ):
        assert module in graph
    assert graph["catchrl.envs"], "catchrl.envs/__init__ imports its modules"
    assert "catchrl.envs.core" in graph["catchrl.envs.catch_env"]


def test_no_import_cycles(graph):
    modules = source_modules()
    # The front door runs on first attribute access, once ``catchrl`` is fully imported:
    # it cannot close a cycle at import time (the layers test exempts it the same way).
    graph = {
        m: {t: n for t, n in ts.items() if (m, t) not in FRONT_DOOR} for m, ts in graph.items()
    }
    cycles = find_cycles(graph)
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(
        "  " + describe_cycle(graph, modules, c) for c in cycles
    )


def test_imports_only_go_down_the_layers(graph):
    modules = source_modules()
    bad = [
        f"  {m} ({LAYERS[layer(m)]}) imports {t} ({LAYERS[layer(t)]}) "
        f"at {_where(modules, m)}:{line}"
        for m, t, line in upward_imports(graph)
        if (m, t) not in FRONT_DOOR
    ]
    assert not bad, f"{len(bad)} upward import(s):\n" + "\n".join(bad)


# -- the checks themselves, on planted graphs and sources ------------------------


def test_layers_of_known_modules():
    assert [
        layer(m)
        for m in (
            "catchrl",
            "catchrl.errors",
            "catchrl.rundir",
            "catchrl.envs",
            "catchrl.envs.core",
            "catchrl.agents.dqn",
            "catchrl.supervised.perception",
            "catchrl.config",
            "catchrl.benchmarks.env",
            "catchrl.cli",
            "catchrl.commands",
            "catchrl.commands.train",
            "catchrl.__main__",
        )
    ] == [3, 3, 3, 0, 0, 1, 2, 3, 3, 4, 4, 4, 4]


def test_a_planted_cycle_is_found_and_reported():
    planted = {
        "catchrl.envs.a": {"catchrl.envs.b": 3},
        "catchrl.envs.b": {"catchrl.envs.c": 4},
        "catchrl.envs.c": {"catchrl.envs.a": 5, "catchrl.envs.d": 6},
        "catchrl.envs.d": {},
        "catchrl.config": {"catchrl.config": 7},  # a module importing itself
    }
    cycles = find_cycles(planted)
    assert cycles == [
        ["catchrl.config", "catchrl.config"],
        ["catchrl.envs.a", "catchrl.envs.b", "catchrl.envs.c", "catchrl.envs.a"],
    ]
    text = describe_cycle(planted, {}, cycles[1])
    assert text.startswith("catchrl.envs.a -> catchrl.envs.b -> catchrl.envs.c -> catchrl.envs.a")
    assert "catchrl.envs.c -> catchrl.envs.a (catchrl.envs.c:5)" in text
    assert find_cycles({"catchrl.envs.a": {"catchrl.envs.b": 1}, "catchrl.envs.b": {}}) == []


def test_planted_upward_imports_are_found():
    planted = {
        "catchrl.envs.core": {"catchrl.agents.dqn": 10, "catchrl.errors": 11},
        "catchrl.agents.networks": {"catchrl.supervised.perception": 12, "catchrl.envs": 13},
        "catchrl.training": {"catchrl.cli": 14, "catchrl.config": 15},
        "catchrl.rundir": {"catchrl.config": 16},
        "catchrl.commands.train": {"catchrl.cli": 17, "catchrl.training": 18},
    }
    assert list(upward_imports(planted)) == [
        ("catchrl.agents.networks", "catchrl.supervised.perception", 12),
        ("catchrl.envs.core", "catchrl.agents.dqn", 10),
        ("catchrl.envs.core", "catchrl.errors", 11),
        ("catchrl.training", "catchrl.cli", 14),
    ]


def test_every_kind_of_import_is_collected():
    source = """
from __future__ import annotations
import os
from typing import TYPE_CHECKING
import catchrl.envs.core
from . import replay
from .schedules import EpsilonSchedule
from .. import errors
from ..envs import CatchEnv, window
if TYPE_CHECKING:
    from catchrl.supervised.perception import Thing

def lazy():
    import catchrl.training as t
    from catchrl.commands import train

class C:
    def m(self):
        return importlib.import_module("catchrl.cli")
"""
    known = {
        "catchrl",
        "catchrl.errors",
        "catchrl.envs",
        "catchrl.envs.core",
        "catchrl.envs.window",
        "catchrl.agents",
        "catchrl.agents.dqn",
        "catchrl.agents.replay",
        "catchrl.agents.schedules",
        "catchrl.supervised.perception",
        "catchrl.training",
        "catchrl.commands",
        "catchrl.commands.train",
        "catchrl.cli",
    }
    found = module_imports(source, "catchrl.agents.dqn", False, known)
    assert found == {
        "catchrl.envs.core": 5,
        "catchrl.agents.replay": 6,
        "catchrl.agents.schedules": 7,
        "catchrl.errors": 8,
        "catchrl.envs": 9,
        "catchrl.envs.window": 9,
        "catchrl.supervised.perception": 11,
        "catchrl.training": 14,
        "catchrl.commands.train": 15,
        "catchrl.cli": 19,
    }
    # In a package's __init__, "." is the package itself.
    init = module_imports("from .dqn import DQNAgent\n", "catchrl.agents", True, known)
    assert init == {"catchrl.agents.dqn": 1}


def test_source_files_map_to_installed_names(tmp_path):
    for path in ("envs/__init__.py", "envs/core.py", "catchrl/commands/train.py", "agents/x.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    for folder in SOURCE_DIRS:
        (tmp_path / folder).mkdir(exist_ok=True)
    assert {name: str(p.relative_to(tmp_path)) for name, p in source_modules(tmp_path).items()} == {
        "catchrl.envs": "envs/__init__.py",
        "catchrl.envs.core": "envs/core.py",
        "catchrl.commands.train": "catchrl/commands/train.py",
        "catchrl.agents.x": "agents/x.py",
    }


# -- what importing loads ----------------------------------------------------------

HEAVY = ("tensorflow", "torch", "keras", "jax", "stable_baselines3", "ray", "matplotlib")


def test_imports_stay_light():
    """Importing catchrl registers the game's ids; the game, the scripted policies and the CLI's
    config, sweep space and headless play load no framework, window or Ray."""
    probe = (
        "import sys, gymnasium, catchrl\n"
        "assert all(i in gymnasium.registry for i in catchrl.ENV_IDS.values())\n"
        "print(' '.join(sorted(sys.modules)))\n"
        "import catchrl.envs, catchrl.agents.scripted\n"
        "from catchrl.envs import CatchEnv\n"
        "assert type(gymnasium.make('catchrl/CatchState-v0').unwrapped) is CatchEnv\n"
        "env = CatchEnv(render_mode='rgb_array'); env.reset(seed=0); env.step(1)\n"
        "assert env.render().shape == (400, 400, 3); env.close()\n"
        "print(' '.join(sorted(sys.modules)))\n"
        "assert callable(catchrl.train) and 'show' in dir(catchrl)\n"
        "import catchrl.stats, catchrl.sweep\n"
        "from catchrl.cli import main\n"
        "assert main(['train', '--preset', 'fast-state', '--print-config']) == 0\n"
        "grid = ['--grid', 'agent.lr=1e-3,3e-4', '--print-space']\n"
        "assert main(['sweep', '--preset', 'fast-state', *grid]) == 0\n"
        "assert main(['play', '--policy', 'oracle', '--headless', '--balls', '3']) == 0\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    env = {"PATH": "/usr/bin:/bin", "DISPLAY": "", "SDL_VIDEODRIVER": "", "HOME": "/tmp"}
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    bare, game, app = set(lines[0].split()), set(lines[1].split()), set(lines[-1].split())
    assert "catchrl.envs.catch_env" in game and "catchrl.commands.train" in app  # it ran
    assert "catchrl.commands.sweep" in app and "Score: 3/3" in lines  # so did these
    for modules in (bare, game, app):
        loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
        assert not loaded, loaded
        assert "pygame" not in modules  # headless play too
    assert "catchrl.api" not in game
    assert not {"scipy", "catchrl.agents"} & bare
