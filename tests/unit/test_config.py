from pathlib import Path

import pytest

from cairn.config import Config, global_config_path
from cairn.errors import ConfigError, FormatError


@pytest.fixture
def config(tmp_path: Path) -> Config:
    dot = tmp_path / ".cairn"
    dot.mkdir()
    return Config(dot, environ={})


def test_layers_in_spec_order(config: Config, tmp_path: Path) -> None:
    config.set("core.remote", "repo-level")
    assert config.get("core.remote") == "repo-level"
    config.set("core.remote", "local-level", "local")
    assert config.get("core.remote") == "local-level"
    config.set("core.remote", "global-level", "global")
    assert global_config_path().exists()
    assert config.get("core.remote") == "global-level"
    env = Config(config.dot_dir, environ={"CAIRN_CORE__REMOTE": "env-level"})
    assert env.get("core.remote") == "env-level"
    config.unset("core.remote", "global")
    assert config.get("core.remote") == "local-level"


def test_values_take_their_key_type(config: Config) -> None:
    config.set("core.autostage", "true")
    config.set("core.jobs", "4")
    assert config.get("core.autostage") is True
    assert config.get("core.jobs") == 4
    with pytest.raises(ConfigError, match="core.jobs takes an integer, not 'many'"):
        config.set("core.jobs", "many")
    env = Config(config.dot_dir, environ={"CAIRN_CORE__AUTOSTAGE": "no"})
    assert env.get("core.autostage") is False


def test_remote_options_pass_through(config: Config) -> None:
    config.set("remote.s3.url", "s3://bucket/path")
    config.set("remote.s3.endpoint_url", "http://127.0.0.1:9000")
    assert config.remotes() == {"s3": {"url": "s3://bucket/path",
                                       "endpoint_url": "http://127.0.0.1:9000"}}


def test_unknown_keys_and_bad_files_are_one_clear_error(config: Config) -> None:
    with pytest.raises(ConfigError, match="unknown config key 'core.remtoe'"):
        config.set("core.remtoe", "x")
    with pytest.raises(ConfigError, match="remote.NAME.OPTION"):
        config.set("remote.url", "x")
    (config.dot_dir / "config.toml").write_text("[core\nremote = 1\n")
    with pytest.raises(FormatError, match=r"config.toml:1: invalid TOML"):
        config.get("core.remote")


def test_a_config_file_that_is_not_utf8_is_one_clear_error(config: Config) -> None:
    (config.dot_dir / "config.toml").write_bytes(b"format = 1\n[core]\nremote = '\xff'\n")
    with pytest.raises(FormatError, match=r"config.toml:3: not UTF-8 text"):
        config.get("core.remote")


def test_tracking_settings_are_known_keys_with_types(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_TRACKING__FLUSH_INTERVAL", "0.5")
    config = Config(tmp_path)
    assert config.get("tracking.flush_interval") == 0.5
    with pytest.raises(ConfigError, match="tracking.flush_rows takes an integer"):
        config.set("tracking.flush_rows", "many")
