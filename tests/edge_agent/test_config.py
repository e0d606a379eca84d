"""Config validation: good files load, bad ones fail with one message naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent import ConfigError
from edge_agent.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gateway.toml"

BASE = """
gateway_id = "gw-1"
[[assets]]
asset_id = "pump-01"
speed_rpm = 1480
points = ["de"]
[[serial]]
port = "/dev/ttyUSB0"
channels = [{ channel = 0, asset_id = "pump-01", point = "de" }]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return path


def test_example_file_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.gateway_id == "gw-hall-a"
    assert config.client_id == "gw-hall-a"
    assert config.outbox.policy == "drop_oldest"
    assert {a.asset_id for a in config.assets} == {"pump-01", "motor-03"}
    assert config.serial[0].channels[1].point == "nde_radial"
    assert config.modbus[0].profile


def test_defaults_and_relative_outbox_path(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    assert config.reporting_interval_s == 10.0
    assert config.mqtt.port == 1883 and config.mqtt.protocol == "3.1.1"
    assert config.outbox.path == tmp_path / "outbox.sqlite3"
    assert config.serial[0].baudrate == 921_600


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda t: t.replace('gateway_id = "gw-1"', ""), "gateway_id"),
        (lambda t: t.replace('"gw-1"', '"gw 1!"'), "gateway_id"),
        (lambda t: t.replace("1480", "-5"), "assets.0.speed_rpm"),
        (lambda t: t.replace('point = "de" }', 'point = "nde" }'), "no point 'nde'"),
        (lambda t: t.replace('channel = 0, asset_id = "pump-01"', 'channel = 0, asset_id = "x"'),
         "unknown asset_id 'x'"),
        (lambda t: t + "\nsurprise = 1\n", "surprise"),
        (lambda t: t + '\n[mqtt]\nport = 70000\n', "mqtt.port"),
        (lambda t: t + '\n[mqtt]\npassword = "changeme"\n', "mqtt.password"),
        (lambda t: t + '\n[mqtt.tls]\ncert_file = "/c.pem"\n', "mqtt.tls.cert_file"),
        (lambda t: t + f'\n[mqtt.tls]\ncert_file = "{__file__}"\n', "key_file"),
        (lambda t: t + '\n[outbox]\npolicy = "drop_newest"\n', "outbox.policy"),
        (lambda t: t + '\n[[modbus]]\nprofile = "p"\nasset_id = "pump-01"\npoint = "de"\n',
         "needs host"),
    ],
)
def test_invalid_config_names_file_and_field(tmp_path: Path, change: object, field: str) -> None:
    path = write(tmp_path, change(BASE))  # type: ignore[operator]
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert field in message
    assert "\n" not in message


def test_no_sources_is_an_error(tmp_path: Path) -> None:
    text = BASE.split("[[serial]]", maxsplit=1)[0]
    with pytest.raises(ConfigError, match="no sources"):
        load_config(write(tmp_path, text))


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "gateway_id = \n"))


def test_env_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, BASE + '\n[mqtt]\nhost = "file-host"\nusername = "gw"\n')
    monkeypatch.setenv("IRONWATCH_EDGE_MQTT__PASSWORD", "from-env-7f3a")
    monkeypatch.setenv("IRONWATCH_EDGE_MQTT__HOST", "env-host")
    config = load_config(path)
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "from-env-7f3a"
    assert config.mqtt.host == "env-host"
    assert config.mqtt.username == "gw"
    assert "from-env" not in repr(config)


def test_env_default_password_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONWATCH_EDGE_MQTT__PASSWORD", "changeme")
    with pytest.raises(ConfigError, match=r"mqtt\.password"):
        load_config(write(tmp_path, BASE))


def test_asset_physics_per_point_and_speed_required(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    pump = config.asset("pump-01")
    assert pump.speed_rpm == 1480 and pump.point_ids == ("de_radial", "nde_radial")
    de, nde = pump.bearing_at("de_radial"), pump.bearing_at("nde_radial")
    assert de is not None and nde is not None and de.designation == "SKF 6205"
    assert nde.pitch_diameter_mm == 46.0  # a second bearing on the same asset
    assert config.asset("motor-03").bearing_at("de") is None
    with pytest.raises(ConfigError, match=r"assets\.0: .*speed_rpm"):
        load_config(write(tmp_path, BASE.replace("speed_rpm = 1480\n", "")))
