"""Health and the asset API say when scoring fails for an asset or stops keeping up."""

from __future__ import annotations

from datetime import timedelta

from cloud.pipeline import ScoringHealth

from .conftest import NOW, Api

V1 = "/api/v1"


def _failing_fan(api: Api) -> ScoringHealth:
    health = ScoringHealth(2.0, clock=lambda: api.clock[0])
    health.scored("pump-1", NOW)
    health.scored("fan-1", NOW)
    for k in range(3):
        health.failed("fan-1", "diagnosis", IndexError("index 793 is out of bounds"),
                      NOW + timedelta(seconds=2 * (k + 1)))
    health.round_completed(NOW + timedelta(seconds=6))
    return health


def test_health_is_ok_without_scoring_and_degraded_when_an_asset_fails(api: Api) -> None:
    body = api.client.get(f"{V1}/health").json()
    assert body == {"status": "ok", "database": "ok", "telemetry": "absent"}

    context = api.client.app.state.ironwatch_api  # type: ignore[attr-defined]
    context.scoring = _failing_fan(api)
    api.clock[0] = NOW + timedelta(seconds=7)
    response = api.client.get(f"{V1}/health")
    # Still 200: the service answers; one asset's scoring is what is degraded.
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["scoring"]["status"] == "degraded"
    assert body["scoring"]["last_round_at"] == "2026-03-02T08:00:06Z"
    assert body["scoring"]["failures_total"] == 3
    [failing] = body["scoring"]["failing_assets"]
    assert failing == {
        "asset_id": "fan-1", "stage": "diagnosis",
        "error": "IndexError: index 793 is out of bounds",
        "since": "2026-03-02T08:00:02Z", "last_at": "2026-03-02T08:00:06Z", "rounds": 3,
    }
    assert body["reasons"] == [
        "scoring failed for fan-1 since 2026-03-02T08:00:02+00:00:"
        " diagnosis: IndexError: index 793 is out of bounds"
    ]


def test_health_is_degraded_when_rounds_stop_completing(api: Api) -> None:
    context = api.client.app.state.ironwatch_api  # type: ignore[attr-defined]
    health = ScoringHealth(2.0, clock=lambda: api.clock[0])
    health.round_completed(NOW)
    context.scoring = health
    api.clock[0] = NOW + timedelta(seconds=20)
    assert api.client.get(f"{V1}/health").json()["status"] == "ok"
    api.clock[0] = NOW + timedelta(seconds=45)  # 5 intervals, at least 30 s
    body = api.client.get(f"{V1}/health").json()
    assert body["status"] == "degraded"
    assert body["reasons"] == ["scoring lags: last round completed 45 s ago (interval 2 s)"]


def test_asset_shows_its_scoring_failure(api: Api) -> None:
    context = api.client.app.state.ironwatch_api  # type: ignore[attr-defined]
    context.scoring = _failing_fan(api)
    fan = api.request("engineer", "GET", f"{V1}/assets/fan-1").json()
    assert fan["scoring"]["failure"]["stage"] == "diagnosis"
    assert fan["scoring"]["failure"]["since"] == "2026-03-02T08:00:02Z"
    assert fan["scoring"]["last_scored_at"] == "2026-03-02T08:00:00Z"
    listed = {a["id"]: a for a in api.request("engineer", "GET", f"{V1}/assets").json()["items"]}
    assert listed["pump-1"]["scoring"] == {
        "last_scored_at": "2026-03-02T08:00:00Z", "failure": None}
    assert listed["fan-1"]["scoring"]["failure"]["rounds"] == 3
    assert listed["motor-2"]["scoring"] is None  # not scored yet
