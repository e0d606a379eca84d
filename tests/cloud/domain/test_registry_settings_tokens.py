"""Fleet seeding and the cached registry, settings loading, API tokens."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cloud.db import Asset, Gateway, SessionFactory
from cloud.domain import DbAssetRegistry, InvalidInputError, seed_fleet
from cloud.domain.errors import InvalidTransitionError
from cloud.domain.gateways import record_status, register_gateway
from cloud.domain.tokens import authenticate, create_token, hash_token, revoke_token
from cloud.settings import SettingsError, load_settings

from .conftest import T0

FLEET_TOML = """
[[gateways]]
id = "gw-9"
name = "Hall C"

[[assets]]
id = "spindle-9"
gateway_id = "gw-9"
kind = "spindle"
customer_tier = "key"
[assets.physics]
speed_rpm = 12000
iso_group = 1
foundation = "flexible"
[[assets.physics.points]]
id = "de"
bearing={n_balls=12, ball_diameter_mm=6.35, pitch_diameter_mm=46.5, contact_angle_deg = 15}
"""


def test_seed_fleet_from_toml_upserts(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET_TOML)
    seed_fleet(session, path)
    asset = session.get(Asset, "spindle-9")
    assert asset is not None
    assert asset.physics is not None
    bearing = asset.physics.bearing_at("de")
    assert bearing is not None
    assert (asset.kind, bearing.n_balls, bearing.contact_angle_deg) == ("spindle", 12, 15.0)
    assert (asset.physics.iso_group, asset.physics.foundation, asset.customer_tier) == (
        1, "flexible", "key")
    asset.running_hours = 1234.0
    seed_fleet(
        session, path.read_text().replace("Hall C", "Hall D").replace("12000", "9000") and path
    )
    path.write_text(FLEET_TOML.replace("12000", "9000"))
    seed_fleet(session, path)
    assert asset.physics.speed_rpm == 9000
    assert asset.running_hours == 1234.0  # counted hours survive a re-seed


@pytest.mark.parametrize(
    "fleet",
    [
        {"gateways": [], "assets": [{"id": "a", "gateway_id": "ghost"}]},
        {"gateways": [{"id": "g"}], "assets": [{"id": "a", "gateway_id": "g", "kind": "robot"}]},
        {"gateways": [{"id": "bad id!"}]},
        {"gateways": [{"id": "g"}],
         "assets": [{"id": "a", "gateway_id": "g", "physics": {"iso_group": 3}}]},
        {"vehicles": []},
    ],
)
def test_bad_fleet_is_refused(session: Session, fleet: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInputError):
        seed_fleet(session, fleet)


def test_registry_answers_from_a_short_lived_cache(session_factory: SessionFactory) -> None:
    now = [0.0]
    registry = DbAssetRegistry(session_factory, ttl_s=5.0, clock=lambda: now[0])
    assert registry.gateway_known("gw-1")
    assert not registry.gateway_known("gw-x")
    assert registry.asset_allowed("gw-1", "pump-1")
    assert not registry.asset_allowed("gw-2", "pump-1")  # another gateway's asset
    assert not registry.asset_allowed("gw-x", "pump-1")
    with session_factory() as s:
        s.add(Gateway(id="gw-x", name="", status={}))
        s.commit()
    assert not registry.gateway_known("gw-x")  # still cached
    now[0] = 6.0
    assert registry.gateway_known("gw-x")
    with session_factory() as s:
        s.add(Asset(id="new-1", gateway_id="gw-x"))
        s.commit()
    registry.invalidate()
    assert registry.asset_allowed("gw-x", "new-1")
    assert registry.assets_of("gw-1") == frozenset({"pump-1", "fan-1"})


def test_gateway_registration_and_status(session: Session) -> None:
    gateway, password = register_gateway(session, gateway_id="gw-7", with_credentials=True)
    assert password is not None and gateway.credentials_hash == hash_token(password)
    record_status(session, gateway_id="gw-7", state="online", now=T0, seq=41, counters={"sent": 3})
    assert (gateway.state, gateway.last_seq, gateway.status["counters"]) == (
        "online",
        41,
        {"sent": 3},
    )
    assert gateway.last_seen == T0
    with pytest.raises(InvalidInputError):
        record_status(session, gateway_id="gw-7", state="sleepy", now=T0)


def test_tokens_are_random_hashed_and_revocable(session: Session) -> None:
    row, text = create_token(session, name="desk", role="service_desk", actor="admin", now=T0)
    assert text.startswith("iw_") and len(text) > 40
    assert row.token_hash == hash_token(text) and text not in row.token_hash
    assert authenticate(session, text, now=T0) is row
    assert authenticate(session, text + "x", now=T0) is None
    revoke_token(session, row.id, now=T0)
    assert authenticate(session, text, now=T0) is None
    with pytest.raises(InvalidTransitionError):
        revoke_token(session, row.id, now=T0)
    expiring, t2 = create_token(
        session, name="tmp", role="engineer", actor="a", now=T0, expires_at=T0 + timedelta(hours=1)
    )
    assert authenticate(session, t2, now=T0) is expiring
    assert authenticate(session, t2, now=T0 + timedelta(hours=2)) is None
    with pytest.raises(InvalidInputError):
        create_token(session, name="g", role="gateway", actor="a", now=T0)  # needs a gateway
    gw, _ = create_token(session, name="g", role="gateway", actor="a", now=T0, gateway_id="gw-1")
    assert gw.gateway_id == "gw-1"


def test_settings_defaults_env_file_and_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url == "sqlite:///ironwatch-data/ironwatch.db"
    assert (settings.http_port, settings.mqtt_port, settings.commissioning_records) == (
        8080,
        1883,
        30,
    )
    config = tmp_path / "cloud.toml"
    config.write_text('http_port = 9000\nmqtt_host = "broker"\ndata_dir = "/srv/iw"\n')
    monkeypatch.setenv("IRONWATCH_CLOUD_HTTP_PORT", "9100")
    settings = load_settings(config)
    assert settings.http_port == 9100  # env beats the file
    assert settings.mqtt_host == "broker"
    assert settings.database_url == "sqlite:////srv/iw/ironwatch.db"
    assert load_settings(config, http_port=9200).http_port == 9200  # overrides beat env
    monkeypatch.setenv("IRONWATCH_CLOUD_CONFIG", str(config))
    assert load_settings().mqtt_host == "broker"
    with pytest.raises(SettingsError):
        load_settings(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "weak", ["changeme", "CHANGEME", "password", "short", "aaaaaaaaaaaaaaaaaaaa"]
)
def test_settings_refuse_weak_secrets(weak: str) -> None:
    with pytest.raises(ValidationError):
        load_settings(admin_token=weak)
    with pytest.raises(ValidationError):
        load_settings(webhook_url="http://desk", webhook_secret=weak)


def test_settings_refuse_unsigned_webhooks_and_incomplete_influx() -> None:
    with pytest.raises(ValidationError):
        load_settings(webhook_url="http://desk")
    with pytest.raises(ValidationError):
        load_settings(telemetry_backend="influxdb")
    ok = load_settings(admin_token="k3y-" + "Zq8" * 6)
    assert ok.admin_token is not None and "Zq8" not in repr(ok)
