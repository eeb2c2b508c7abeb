import dataclasses
import re

import pytest

from catchrl.config import (
    PRESETS,
    ConfigError,
    apply_overrides,
    config_from_dict,
    load_config,
    preset_config,
    to_toml,
)


def test_book_preset_is_the_books_run():
    c = preset_config("book")
    a = c.agent
    assert (a.network, a.lr, a.loss, a.target_every) == ("book", 1e-6, "mse", 0)
    assert (a.replay_capacity, a.observe, a.epsilon) == (50_000, 100, "book")
    assert (a.batch_size, a.epsilon_end, a.lr_decay) == (32, 1e-4, False)
    assert (c.env.rules, c.env.num_envs, c.run.total_steps) == ("book", 1, 5_100 * 33)
    assert c.env.game_kwargs()["walls"] == c.env.game_kwargs()["spawn"] == "book"
    # ε is lowered per game over the whole run, as the book's 2,100 games over its 2,100
    games = c.run.total_steps // c.env.steps_per_game()
    assert a.epsilon_duration == games


def test_the_fast_presets_average_their_target_and_the_book_has_none():
    for preset in ("fast", "fast-state"):
        agent = preset_config(preset).agent
        assert (agent.target_every, agent.tau) == (1, 0.005), preset
    assert preset_config("book").agent.target_every == 0


def test_frames_are_tinys_20_px_and_80_px_for_agents_that_read_the_books(tmp_path):
    assert load_config().env.frame_size == 20 and load_config("book").env.frame_size == 80
    sb3 = tmp_path / "sb3.toml"
    sb3.write_text('algo = "sb3-ppo"\n')
    assert load_config(path=sb3).env.frame_size == 80  # NatureCNN needs >= 36 px
    assert load_config(path=sb3, overrides=["env.frame_size=40"]).env.frame_size == 40
    assert load_config(overrides=["agent.module='encoder:m.keras'"]).env.frame_size == 80
    assert load_config(overrides=["agent.module='landing-head'"]).env.frame_size == 20


def test_an_explicit_frame_size_wins_or_is_refused_where_natures_cnn_cannot_take_it(tmp_path):
    from catchrl.api import make_config

    module = "agent.module='encoder:m.keras'"
    assert load_config(overrides=[module, "env.frame_size=20"]).env.frame_size == 20
    tiny = 'sb3.policy_kwargs={features_extractor_class="tiny", net_arch=[]}'
    assert make_config(algo="sb3-dqn", overrides=["env.frame_size=20", tiny]).env.frame_size == 20
    path = tmp_path / "sb3.toml"
    path.write_text('algo = "sb3-ppo"\n[env]\nframe_size = 40\n')
    assert make_config(path=path).env.frame_size == 40
    with pytest.raises(ConfigError, match=r"^env.frame_size = 20: SB3's NatureCNN needs >= 36 px"):
        make_config(algo="sb3-dqn", overrides=["env.frame_size=20"])


def test_the_algo_is_checked_once_and_its_frames_are_set_where_the_config_is_read():
    from catchrl.api import make_config
    from catchrl.learners import learner_class

    assert load_config(algo="rllib-ppo").env.frame_size == 80  # as for algo in the file
    assert make_config(algo="sb3-dqn").env.frame_size == 80
    for where in (lambda: learner_class("sb3-ppp"), lambda: make_config(algo="sb3-ppp")):
        with pytest.raises(ConfigError, match="unknown algo 'sb3-ppp'; .*did you mean 'sb3-ppo'"):
            where()


@pytest.mark.parametrize("preset", list(PRESETS))
def test_toml_round_trip(tmp_path, preset):
    cfg = apply_overrides(preset_config(preset), ["agent.lr=0.00025", "run.seed=7"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_config(path=path) == cfg
    assert config_from_dict(dataclasses.asdict(cfg)) == cfg


def test_layering_preset_file_then_set(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "fast-state"\n[agent]\nlr = 0.002\nbatch_size = 128\n')
    cfg = load_config("fast", path, ["agent.batch_size=16", "env.drift=3"])
    assert cfg.preset == "fast-state" and cfg.env.obs_type == "state"  # from the file's preset
    assert cfg.agent.lr == 0.002 and cfg.agent.batch_size == 16 and cfg.env.drift == 3


def test_sb3_table_is_kept(tmp_path):
    cfg = apply_overrides(
        preset_config(), ["sb3.learning_rate=3e-4", "sb3.policy_kwargs={net_arch = [64, 64]}"]
    )
    assert cfg.sb3 == {"learning_rate": 3e-4, "policy_kwargs": {"net_arch": [64, 64]}}
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_config(path=path).sb3 == cfg.sb3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("agent.lr=abc", "agent.lr: expected float, got str"),
        ("agent.batch_size=1.5", "agent.batch_size: expected int, got float"),
        ("agent.dueling=1", "agent.dueling: expected bool"),
        ("agent.no_such_key=1", "unknown key agent.no_such_key"),
        ("nope.lr=1", "unknown table [nope]"),
        ("env.obs_type=rgb", "env.obs_type: must be one of"),
        ("agent.tau=1.5", "agent.tau: must be in (0, 1]"),
        ("agent.batch_size=0", "agent.batch_size: must be in [1, 65536], got 0"),
        ("agent.lr", "expected table.key=value"),
        ("agent.network=mlp", "'mlp' needs env.obs_type"),
    ],
)
def test_bad_overrides_are_named(override, message):
    with pytest.raises(ConfigError) as e:
        apply_overrides(preset_config(), [override])
    assert message in str(e.value)


@pytest.mark.parametrize("kind", ["encoder", "tuned-encoder"])
def test_agent_network_is_unused_behind_an_encoder(kind):
    cfg = apply_overrides(preset_config(), [f"agent.module='{kind}:e.keras'", "agent.network=mlp"])
    assert cfg.agent.network == "mlp"  # either route builds the MLP head on the features


def test_bad_files_and_presets(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        preset_config("nope")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(path=tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[agent\nlr = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path=bad)
    wrong_type = tmp_path / "wrong.toml"
    wrong_type.write_text('[run]\nseed = "zero"\n')
    with pytest.raises(ConfigError, match="run.seed: expected int, got str 'zero'"):
        load_config(path=wrong_type)


def test_every_field_is_documented():
    import ast
    import inspect
    import itertools

    import catchrl.config as mod

    tree = ast.parse(inspect.getsource(mod))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    for cls in (mod.EnvConfig, mod.AgentConfig, mod.RunConfig, mod.TrainConfig):
        body = classes[cls.__name__].body
        documented = {
            stmt.target.id
            for stmt, after in itertools.pairwise(body)
            if isinstance(stmt, ast.AnnAssign)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        }
        for f in dataclasses.fields(cls):
            assert f.name in documented, f"{cls.__name__}.{f.name} has no docstring"


# -- choices come from the Literal annotations --------------------------------------


def test_choices_are_the_literal_annotations():
    import typing

    from catchrl.config import AgentConfig, EnvConfig, choices

    hints = typing.get_type_hints(EnvConfig)
    assert choices(EnvConfig, "obs_type") == typing.get_args(hints["obs_type"])
    assert choices(EnvConfig, "obs_type") == ("pixels", "state", "grid")
    assert choices(AgentConfig, "network") == ("book", "small", "tiny", "mlp")
    assert choices(AgentConfig, "module") == ()  # a free string
    with pytest.raises(ConfigError, match=r"agent.loss: must be one of \('huber', 'mse'\)"):
        apply_overrides(preset_config(), ["agent.loss=l1"])


def test_config_choices_are_the_librarys():
    """The config's Literals name exactly what the env and the agents accept."""

    from catchrl.agents.networks import NETWORK_KINDS
    from catchrl.config import RULES, AgentConfig, EnvConfig, choices
    from catchrl.envs import OBS_TYPES
    from catchrl.envs.core import SPAWNS, WALLS

    assert choices(EnvConfig, "obs_type") == OBS_TYPES
    assert {r["walls"] for r in RULES.values()} == set(WALLS)
    assert {r["spawn"] for r in RULES.values()} == set(SPAWNS)
    assert choices(EnvConfig, "rules") == tuple(RULES)
    assert choices(AgentConfig, "network") == NETWORK_KINDS
    assert choices(AgentConfig, "epsilon") == ("linear", "book")  # EpsilonSchedule's two


def test_no_table_restates_the_choices():
    import dataclasses as dc
    import inspect

    import catchrl.config as mod
    from catchrl.config import choices

    source = inspect.getsource(mod)
    for cls in (mod.EnvConfig, mod.AgentConfig, mod.RunConfig):
        for f in dc.fields(cls):
            if choices(cls, f.name):
                written = ", ".join(f'"{c}"' for c in choices(cls, f.name))
                assert source.count(written) == 1, f"{cls.__name__}.{f.name}'s choices restated"


# -- ranges: each bad number is one ConfigError naming the key ---------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("env.drift=1000", "env.drift: must be in [0, 190] for the pixels game"),
        ("env.drift=191", "env.drift: must be in [0, 190]"),
        ("env.drift=-1", "env.drift: must be >= 0, got -1"),
        ("run.seed=99999999999999999999", "run.seed: must be in [0, 2**32 - 1]"),
        ("run.seed=4294967296", "run.seed: must be in [0, 2**32 - 1]"),
        ("run.seed=-1", "run.seed: must be in [0, 2**32 - 1]"),
        ("agent.n_step=100000", "agent.n_step: must be in [1, 100] (three balls of the book's"),
        ("agent.n_step=0", "agent.n_step: must be in [1, 100] (three balls of the book's 33"),
        ("agent.n_step=34", "agent.n_step: must be in [1, 33] (the length of one pixels game"),
        ("env.num_envs=0", "env.num_envs: must be in [1, 4096], got 0"),
        ("env.num_envs=100000", "env.num_envs: must be in [1, 4096], got 100000"),
        ("env.frame_size=0", "env.frame_size: must be in [2, 1024]"),
        ("env.frame_size=100000", "env.frame_size: must be in [2, 1024]"),
        ("env.balls_per_game=0", "env.balls_per_game: must be in [1, 10000]"),
        ("agent.replay_capacity=0", "agent.replay_capacity: must be in [1, 10000000]"),
        ("agent.replay_capacity=10000001", "agent.replay_capacity: must be in [1, 10000000]"),
        ("agent.replay_capacity=100", "replay_capacity: 100 leaves 6 step(s) per game for 16"),
        ("agent.batch_size=50000", "agent.batch_size: must be in [1, 49696]"),
        ("agent.lr=0", "agent.lr: must be in (0, 1], got 0.0"),
        ("agent.lr=nan", "agent.lr: must be a finite number, got nan"),
        ("agent.lr=inf", "agent.lr: must be a finite number, got inf"),
        ("agent.target_every=-1", "agent.target_every: must be >= 0"),
        ("agent.tau=2", "agent.tau: must be in (0, 1]"),
        ("agent.epsilon_end=-0.1", "agent.epsilon_end: must be in [0, 1]"),
        ("agent.grad_clip_norm=-1", "agent.grad_clip_norm: must be >= 0"),
        ("agent.observe=-5", "agent.observe: must be >= 0"),
        ("run.total_steps=-1", "run.total_steps: must be >= 1"),
        ("run.total_steps=9223372036854775808", "total_steps: must be in [1, 2**63 - 1]"),
        ("run.total_steps=0", "run.total_steps: must be >= 1, got 0"),
        ("run.target_win_rate=1.5", "run.target_win_rate: must be in [0, 1]"),
        ("run.eval_games=-1", "run.eval_games: must be in [0, 2**32 - 1]"),
        ("run.eval_games=100000000000", "run.eval_games: must be in [0, 2**32 - 1]"),
    ],
)
def test_numbers_out_of_range_are_named(override, message):
    with pytest.raises(ConfigError) as e:
        apply_overrides(preset_config(), [override])
    text = str(e.value)
    assert message in text and "\n" not in text, text


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("lens:x.keras", "agent.module: must start with one of"),
        ("encoder", "write it as encoder:PATH"),
        ("landing-head:x.keras", "write it as landing-head (no path)"),
        ("perception:x.keras", "perception (the perceived state) needs agent.network 'mlp'"),
    ],
)
def test_bad_modules_are_named(module, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_overrides(preset_config(), [f"agent.module={module!r}"])
    state = ["env.obs_type=state", "agent.network=mlp", "agent.module='encoder:x.keras'"]
    with pytest.raises(ConfigError, match="encoder reads frames; it needs env.obs_type 'pixels'"):
        apply_overrides(preset_config(), state)


@pytest.mark.parametrize(
    "overrides",
    [
        ["env.drift=190"],
        ["run.seed=4294967295"],
        ["agent.n_step=33"],
        ["env.num_envs=4096", "agent.replay_capacity=10000000"],
        ["env.num_envs=1", "agent.replay_capacity=9", "agent.n_step=5", "agent.batch_size=1"],
        ["env.obs_type=grid", "agent.network=mlp", "env.drift=2", "agent.n_step=9"],
        ["env.balls_per_game=3", "agent.n_step=99"],
    ],
)
def test_numbers_at_their_bounds_are_accepted(overrides):
    apply_overrides(preset_config(), overrides)


def test_the_drift_bound_is_the_games():
    """env.drift's bound is exactly the largest drift CatchParams accepts, in both worlds."""
    from catchrl.envs import CatchParams

    for obs_type, game in (("pixels", CatchParams), ("grid", CatchParams.bsuite)):
        largest = 190 if obs_type == "pixels" else 2
        game(drift=largest)
        with pytest.raises(ValueError, match="drift"):
            game(drift=largest + 1)
        net = ["agent.network=mlp", "agent.n_step=3"] if obs_type == "grid" else []
        base = [f"env.obs_type={obs_type}", *net]
        apply_overrides(preset_config(), [*base, f"env.drift={largest}"])
        with pytest.raises(ConfigError, match=f"env.drift: must be in \\[0, {largest}\\]"):
            apply_overrides(preset_config(), [*base, f"env.drift={largest + 1}"])


def test_range_checks_apply_to_files_and_saved_configs(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[run]\nseed = 99999999999999999999\n")
    with pytest.raises(ConfigError, match=r"run.seed: must be in \[0, 2\*\*32 - 1\]"):
        load_config(path=path)
    saved = dataclasses.asdict(preset_config())
    saved["env"]["drift"] = 1000
    with pytest.raises(ConfigError, match="env.drift"):
        config_from_dict(saved)


def test_the_replay_checks_are_the_dqns_only():
    """SB3 algorithms do not use [agent]: a tiny replay_capacity there is not an error."""
    cfg = preset_config()
    cfg.algo = "sb3-ppo"
    cfg = apply_overrides(cfg, ["agent.replay_capacity=100"])
    assert cfg.agent.replay_capacity == 100


def test_config_error_is_a_catchrl_error():
    from catchrl.errors import CatchrlError

    assert issubclass(ConfigError, CatchrlError) and issubclass(ConfigError, ValueError)
