"""Domain fixtures: an in-memory SQLite session with a small fleet.

The real PostgreSQL fixtures are in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cloud.db import Base, SessionFactory, WebhookSubscription, make_engine, make_session_factory
from cloud.domain import seed_fleet

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

FLEET = {
    "gateways": [{"id": "gw-1", "name": "Hall A"}, {"id": "gw-2"}],
    "assets": [
        {
            "id": "pump-1",
            "gateway_id": "gw-1",
            "kind": "pump",
            "physics": {
                "speed_rpm": 1480.0,
                "iso_group": 2,
                "foundation": "rigid",
                "points": [
                    {
                        "id": "de_radial",
                        "bearing": {
                            "n_balls": 9,
                            "ball_diameter_mm": 7.94,
                            "pitch_diameter_mm": 39.04,
                            "contact_angle_deg": 0.0,
                        },
                    }
                ],
            },
            "customer_tier": "strategic",
        },
        {"id": "fan-1", "gateway_id": "gw-1", "kind": "fan", "customer_tier": "standard"},
        {"id": "motor-2", "gateway_id": "gw-2", "customer_tier": "key"},
    ],
}


def subscribe_desk(
    session: Session,
    *,
    url: str = "http://127.0.0.1:9/hooks",
    secret: str = "desk-shared-secret-0123456789",
    since: datetime = T0 - timedelta(days=1),
) -> WebhookSubscription:
    """The service desk's subscription to work-order events (what the one webhook carried
    before subscriptions), existing since before T0."""
    row = WebhookSubscription(
        name="service desk", url=url, events=["work_order.*"], secret=secret, active=True,
        created_at=since, updated_at=since,
    )
    session.add(row)
    session.flush()
    return row


def sqlite_factory() -> tuple[Engine, SessionFactory]:
    """An in-memory database with the test fleet and the service desk's subscription.

    create_all rather than the migrations, for speed: test_persistence proves they agree.
    """
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        seed_fleet(session, FLEET)
        subscribe_desk(session)
        session.commit()
    return engine, factory


@pytest.fixture
def session_factory() -> Iterator[SessionFactory]:
    engine, factory = sqlite_factory()
    yield factory
    engine.dispose()


@pytest.fixture
def session(session_factory: SessionFactory) -> Iterator[Session]:
    with session_factory() as s:
        yield s
