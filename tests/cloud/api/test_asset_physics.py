"""An asset's physics over the API: one type in and out, learned or compared with the gateway's."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from cloud.app import CloudServices
from cloud.domain.physics import record_reported_physics
from cloud.settings import CloudSettings
from ironwatch.physics import AssetPhysics
from ironwatch.wire import GatewayStatus

from .conftest import NOW, Api

V1 = "/api/v1"
BEARING = {"n_balls": 9, "ball_diameter_mm": 7.94, "pitch_diameter_mm": 39.04,
           "designation": "SKF 6205"}
OURS = {"speed_rpm": 1480.0, "iso_group": 2, "foundation": "rigid",
        "points": [{"id": "de_radial", "bearing": BEARING}]}
# What the gateway is really configured with: another speed and an 8-ball bearing.
THEIRS = AssetPhysics.model_validate({
    **OURS, "speed_rpm": 1500.0,
    "points": [{"id": "de_radial", "bearing": {**BEARING, "n_balls": 8}}],
})


def _report(api: Api, gateway_id: str, physics: dict[str, AssetPhysics]) -> None:
    with api.session_factory() as session:
        record_reported_physics(session, gateway_id=gateway_id, physics=physics, now=NOW)
        session.commit()


def test_mismatch_with_the_gateway_is_logged_once_and_shown_on_the_asset(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    created = api.request("admin", "POST", f"{V1}/assets",
                          json={"id": "pump-9", "gateway_id": "gw-1", "physics": OURS})
    assert created.status_code == 201, created.text
    assert created.json()["physics"]["points"][0]["bearing"]["designation"] == "SKF 6205"
    assert created.json()["physics_mismatch"] == []
    with caplog.at_level(logging.WARNING, logger="cloud.domain.physics"):
        _report(api, "gw-1", {"pump-9": THEIRS})
        _report(api, "gw-1", {"pump-9": THEIRS})  # the periodic status repeats it
    warnings = [r.getMessage() for r in caplog.records if "disagrees" in r.getMessage()]
    assert len(warnings) == 1 and "speed_rpm 1480.0 here, 1500.0 on the gateway" in warnings[0]
    body = api.request("engineer", "GET", f"{V1}/assets/pump-9").json()
    assert body["physics"]["speed_rpm"] == 1480.0  # the cloud keeps its own copy
    assert body["reported_physics"]["speed_rpm"] == 1500.0
    assert body["physics_reported_at"] == "2026-03-02T08:00:00Z"
    assert body["physics_mismatch"] == [
        {"field": "speed_rpm", "cloud": 1480.0, "gateway": 1500.0},
        {"field": "points.de_radial.bearing.n_balls", "cloud": 9, "gateway": 8},
    ]
    # Clearing the cloud's copy lets it learn the gateway's at the next report.
    cleared = api.request("admin", "PATCH", f"{V1}/assets/pump-9", json={"physics": None})
    assert cleared.json()["physics"] is None and cleared.json()["physics_mismatch"] == []
    _report(api, "gw-1", {"pump-9": THEIRS})
    body = api.request("engineer", "GET", f"{V1}/assets/pump-9").json()
    assert AssetPhysics.model_validate(body["physics"]) == THEIRS
    assert body["physics_mismatch"] == []


def test_an_asset_without_physics_learns_it_and_foreign_reports_are_ignored(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cloud.domain.physics"):
        _report(api, "gw-2", {"pump-1": THEIRS})  # pump-1 belongs to gw-1
    assert "not its own" in caplog.text
    assert api.request("engineer", "GET", f"{V1}/assets/pump-1").json()["physics"] is None
    _report(api, "gw-1", {"pump-1": THEIRS})
    body = api.request("engineer", "GET", f"{V1}/assets/pump-1").json()
    assert AssetPhysics.model_validate(body["physics"]) == THEIRS


def test_partly_known_physics_is_completed_not_contradicted(api: Api) -> None:
    api.request("admin", "POST", f"{V1}/assets",
                json={"id": "fan-9", "gateway_id": "gw-1", "physics": {"iso_group": 1}})
    _report(api, "gw-1", {"fan-9": THEIRS})
    body = api.request("engineer", "GET", f"{V1}/assets/fan-9").json()
    physics = AssetPhysics.model_validate(body["physics"])
    assert physics.iso_group == 1 and physics.speed_rpm == 1500.0
    assert physics.bearing_at("de_radial") == THEIRS.bearing_at("de_radial")
    # The gateway states group 2: that is a contradiction, shown, not overwritten.
    assert body["physics_mismatch"] == [{"field": "iso_group", "cloud": 1, "gateway": 2}]


def test_a_bad_bearing_is_refused_by_the_api(api: Api) -> None:
    bad = {**OURS, "points": [{"id": "de", "bearing": {**BEARING, "ball_diameter_mm": 40.0}}]}
    r = api.request("admin", "POST", f"{V1}/assets",
                    json={"id": "pump-8", "gateway_id": "gw-1", "physics": bad})
    assert r.status_code == 422
    (error,) = r.json()["error"]["details"]["errors"]
    assert error["loc"][-4:] == ["physics", "points", 0, "bearing"]
    assert "pitch_diameter_mm (39.04) must exceed ball_diameter_mm (40)" in error["msg"]


def test_the_gateway_birth_message_teaches_the_cloud_service(tmp_path: Path) -> None:
    # The callback ingestion calls with each validated status message.
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[[gateways]]\nid = "gw-1"\n\n[[assets]]\nid = "pump-1"\n'
                     'gateway_id = "gw-1"\n')
    settings = CloudSettings(data_dir=tmp_path / "data", fleet_file=fleet,
                             admin_token=SecretStr("bootstrap-Adm1n-t0ken-4f9c2e"))
    services = CloudServices.open(settings, clock=lambda: NOW + timedelta(minutes=1))
    try:
        services.on_status(GatewayStatus(
            gateway_id="gw-1", seq=3, sent_at=NOW, state="online", assets=["pump-1"],
            physics={"pump-1": THEIRS},
        ))
        from cloud.db import Asset

        with services.session_factory() as session:
            asset = session.get(Asset, "pump-1")
            assert asset is not None and asset.physics == THEIRS
            assert asset.physics_reported_at == NOW + timedelta(minutes=1)
    finally:
        services.close()
