import dataclasses

import pytest

from catchrl.config import (
    PRESETS,
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    make_config,
    to_toml,
)


def test_book_preset_is_the_books_run():
    c = make_config("book")
    assert (c.agent.network, c.agent.lr, c.agent.loss, c.agent.gamma) == ("book", 1e-6, "mse", 0.99)
    assert (c.agent.target_update, c.agent.double, c.agent.batch_size) == ("none", False, 32)
    assert (c.agent.replay_capacity, c.agent.observe, c.agent.epsilon) == (50_000, 100, "book")
    assert (c.agent.epsilon_start, c.agent.epsilon_end) == (0.1, 1e-4)
    assert (c.env.walls, c.env.spawn, c.env.num_envs) == ("book", "book", 1)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_toml_round_trip(tmp_path, preset):
    cfg = apply_overrides(make_config(preset), ["agent.lr=0.00025", "run.seed=7"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_config(path=path) == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_layering_preset_file_then_set(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "fast-state"\n[agent]\nlr = 0.002\nbatch_size = 128\n')
    cfg = load_config("fast", path, ["agent.batch_size=16", "env.drift=3"])
    assert cfg.preset == "fast-state" and cfg.env.obs_type == "state"  # from the file's preset
    assert cfg.agent.lr == 0.002 and cfg.agent.batch_size == 16 and cfg.env.drift == 3


def test_sb3_table_is_kept(tmp_path):
    cfg = apply_overrides(
        make_config(), ["sb3.learning_rate=3e-4", "sb3.policy_kwargs={net_arch = [64, 64]}"]
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
        ("agent.double=1", "agent.double: expected bool"),
        ("agent.no_such_key=1", "unknown key agent.no_such_key"),
        ("nope.lr=1", "unknown table [nope]"),
        ("env.obs_type=rgb", "env.obs_type: must be one of"),
        ("agent.gamma=1.5", "agent.gamma: must be in (0, 1]"),
        ("agent.batch_size=0", "agent.batch_size: must be > 0"),
        ("agent.lr", "expected table.key=value"),
        ("agent.network=mlp", "'mlp' needs env.obs_type"),
    ],
)
def test_bad_overrides_are_named(override, message):
    with pytest.raises(ConfigError) as e:
        apply_overrides(make_config(), [override])
    assert message in str(e.value)


def test_bad_files_and_presets(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        make_config("nope")
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
    import inspect

    import catchrl.config as mod

    source = inspect.getsource(mod)
    for cls in (mod.EnvConfig, mod.AgentConfig, mod.RunConfig):
        for f in dataclasses.fields(cls):
            # the line after the field is its docstring
            after = source.split(f"    {f.name}: ", 1)[1].splitlines()[1].strip()
            assert after.startswith('"""'), f"{cls.__name__}.{f.name} has no docstring"
