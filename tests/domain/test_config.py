import pytest

from elfctl import config
from elfctl.errors import ConfigError


def write(tmp_path, text):
    (tmp_path / "elfctl.toml").write_text(text)


def test_precedence_file_profile_env_flag(tmp_path):
    write(tmp_path, '[store]\nurl = "sqlite:///file.db"\n[profiles.staging.store]\nurl = "sqlite:///staging.db"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    cfg = config.load(cwd=sub, environ={})
    assert cfg.root == tmp_path and cfg.get("store.url") == "sqlite:///file.db"
    cfg = config.load(cwd=sub, profile="staging", environ={})
    assert cfg.get("store.url") == "sqlite:///staging.db"
    assert "profiles.staging" in cfg.source("store.url")
    cfg = config.load(cwd=sub, profile="staging", environ={"ELFCTL_STORE_URL": "sqlite:///env.db"})
    assert cfg.get("store.url") == "sqlite:///env.db" and cfg.source("store.url") == "env ELFCTL_STORE_URL"
    cfg = config.load(cwd=sub, environ={"ELFCTL_STORE_URL": "sqlite:///env.db"},
                      overrides={"store.url": "sqlite:///flag.db"})
    assert cfg.get("store.url") == "sqlite:///flag.db" and cfg.source("store.url") == "flag"


def test_default_store_is_sqlite_under_project_root(tmp_path):
    cfg = config.load(cwd=tmp_path, environ={})
    assert cfg.file is None
    assert cfg.store_url == f"sqlite:///{tmp_path / '.elf' / 'elf.db'}"


def test_unknown_key_names_file_and_suggests(tmp_path):
    write(tmp_path, "[store]\nulr = 'x'\n")
    with pytest.raises(ConfigError) as err:
        config.load(cwd=tmp_path, environ={})
    assert "elfctl.toml" in err.value.message and "store.ulr" in err.value.message
    assert "store.url" in err.value.hint


def test_corrupted_toml_names_file_and_line(tmp_path):
    write(tmp_path, "[store\nurl = 1\n")
    with pytest.raises(ConfigError) as err:
        config.load(cwd=tmp_path, environ={})
    assert "elfctl.toml" in err.value.message and "line 1" in err.value.message


def test_wrong_type_from_env_names_variable(tmp_path):
    with pytest.raises(ConfigError, match="ELFCTL_STORE_BUSY_TIMEOUT_MS"):
        config.load(cwd=tmp_path, environ={"ELFCTL_STORE_BUSY_TIMEOUT_MS": "soon"})


def test_unknown_profile_lists_known_ones(tmp_path):
    write(tmp_path, "[profiles.dev]\n[profiles.production]\n")
    with pytest.raises(ConfigError, match="dev, production"):
        config.load(cwd=tmp_path, profile="prod", environ={})


def test_secrets_and_url_passwords_are_masked(tmp_path):
    cfg = config.load(cwd=tmp_path, environ={"ELFCTL_STORE_URL": "postgresql://u:hunter22@db/x",
                                             "SUPABASE_KEY": "eyJsecretvalue"})
    assert cfg.shown("store.url") == "postgresql://u:****@db/x"
    assert cfg.shown("supabase.key") == "****"
    assert cfg.source("supabase.key") == "env SUPABASE_KEY"


@pytest.mark.parametrize(
    "key, raw, shown",
    [
        ("deploy.timeout_s", "-5", "from 0.1 to 86400, got -5"),
        ("deploy.keep_images", "-1", "from 1 to 1000, got -1"),
        ("health.timeout_s", "nan", "a finite number from 0.1 to 3600, got 'nan'"),
        ("llm.timeout_s", "inf", "a finite number from 0.1 to 3600, got 'inf'"),
        ("deploy.keep_images", "2.5", "a whole number from 1 to 1000, got '2.5'"),
        ("registry.port", "70000", "from 1 to 65535, got 70000"),
    ],
)
def test_numbers_out_of_range_name_key_value_range_and_source(tmp_path, key, raw, shown):
    var = config.env_name(key)
    with pytest.raises(ConfigError) as err:
        config.load(cwd=tmp_path, environ={var: raw})
    assert err.value.message == f"env {var}: '{key}' must be {shown}"
    assert err.value.exit_code == 2


def test_range_applies_to_the_file_too(tmp_path):
    write(tmp_path, "[deploy]\nkeep_images = 0\n[health]\ndisk_warn_free = 1.5\n")
    with pytest.raises(ConfigError) as err:
        config.load(cwd=tmp_path, environ={})
    assert err.value.message == f"{tmp_path / 'elfctl.toml'}: 'deploy.keep_images' must be from 1 to 1000, got 0"


def test_every_number_key_has_a_range_and_its_default_is_inside():
    for key, spec in config.SCHEMA.items():
        if spec.type in (int, float):
            assert spec.lo is not None and spec.hi is not None, key
            assert spec.lo <= spec.default <= spec.hi, key
