"""Signed webhooks against a real HTTP receiver: signatures, retries, restarts, the log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cloud.db import (
    Base,
    SessionFactory,
    WebhookDelivery,
    WebhookSubscription,
    make_engine,
    make_session_factory,
)
from cloud.domain import open_manual, seed_fleet, transition
from cloud.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookDispatcher,
    sign,
    verify,
)
from ironwatch_app.local_servers import free_port

from .conftest import FLEET, T0, subscribe_desk

SECRET = b"desk-shared-secret-0123456789"


@dataclass
class Receiver:
    """A service-desk stand-in: verifies each signature, can fail the first requests."""

    fail_first: int = 0
    fail_status: int = 503
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    requests: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                state.requests += 1
                failing = state.requests <= state.fail_first
                ok = verify(
                    SECRET,
                    timestamp=self.headers[TIMESTAMP_HEADER],
                    body=body,
                    signature=self.headers[SIGNATURE_HEADER],
                )
                if not ok:
                    state.bad_signatures += 1
                elif not failing:
                    state.received.append(
                        {"delivery": self.headers[DELIVERY_HEADER], **json.loads(body)}
                    )
            status = 401 if not ok else (state.fail_status if failing else 204)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def session_factory(tmp_path: Path) -> Iterator[SessionFactory]:
    """A file database: the worker thread and the test need connections of their own.

    The service desk subscribes to work-order events before anything happens.
    """
    engine = make_engine(f"sqlite:///{tmp_path / 'ironwatch.db'}")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        seed_fleet(session, FLEET)
        subscribe_desk(session, secret=SECRET.decode())
        session.commit()
    yield factory
    engine.dispose()


def make_dispatcher(factory: SessionFactory, url: str, **kwargs: Any) -> WebhookDispatcher:
    """A dispatcher, with the service desk's subscription pointing at `url`."""
    with factory() as session:
        for subscription in session.scalars(select(WebhookSubscription)):
            subscription.url = url
        session.commit()
    options: dict[str, Any] = {
        "initial_backoff_s": 0.01,
        "timeout_s": 2.0,
        "clock": lambda: T0 + timedelta(minutes=1),
    }
    options.update(kwargs)
    return WebhookDispatcher(factory, **options)


def make_work(factory: SessionFactory) -> int:
    with factory() as session:
        wo = open_manual(
            session, asset_id="fan-1", failure_mode="imbalance", priority="P2", actor="d", now=T0
        )
        transition(session, wo.id, "assigned", actor="desk", now=T0, assignee="ana")
        session.commit()
        return wo.id


def log(factory: SessionFactory) -> list[WebhookDelivery]:
    with factory() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_signature_round_trip_and_replay_window() -> None:
    body = b'{"a":1}'
    now = 1_800_000_000
    sig = sign(SECRET, str(now), body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify(SECRET, timestamp=str(now), body=body, signature=sig, now=now + 10)
    assert not verify(SECRET, timestamp=str(now), body=b'{"a":2}', signature=sig, now=now)
    assert not verify(b"other", timestamp=str(now), body=body, signature=sig, now=now)
    # A captured request replayed later than the tolerance is refused.
    assert not verify(SECRET, timestamp=str(now), body=body, signature=sig, now=now + 301)
    assert not verify(SECRET, timestamp="soon", body=body, signature=sig, now=now)


@pytest.mark.integration
def test_deliveries_arrive_signed_and_in_order(
    session_factory: SessionFactory, receiver: Receiver
) -> None:
    wo_id = make_work(session_factory)
    dispatcher = make_dispatcher(session_factory, receiver.url)
    try:
        assert dispatcher.deliver_due() == 1  # only the head per work order in one pass
        assert dispatcher.deliver_due() == 1
        assert dispatcher.deliver_due() == 0
    finally:
        dispatcher.stop()
    assert receiver.bad_signatures == 0
    assert [r["event"] for r in receiver.received] == ["work_order.created", "work_order.updated"]
    assert all(r["work_order"]["id"] == wo_id for r in receiver.received)
    rows = log(session_factory)
    assert [(r.state, r.attempts, r.last_status_code) for r in rows] == [
        ("delivered", 1, 204),
        ("delivered", 1, 204),
    ]


@pytest.mark.integration
def test_receiver_failing_first_attempts_gets_it_with_backoff(
    session_factory: SessionFactory, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    make_work(session_factory)
    dispatcher = make_dispatcher(session_factory, receiver.url, attempts_per_pass=3)
    try:
        dispatcher.deliver_due()
    finally:
        dispatcher.stop()
    first = log(session_factory)[0]
    assert (first.state, first.attempts, first.last_status_code) == ("delivered", 3, 204)
    assert len(receiver.received) == 1
    assert receiver.bad_signatures == 0


@pytest.mark.integration
def test_pending_deliveries_survive_a_restart(
    session_factory: SessionFactory, receiver: Receiver
) -> None:
    receiver.fail_first = 1
    make_work(session_factory)
    first = make_dispatcher(session_factory, receiver.url, attempts_per_pass=1)
    try:
        assert first.deliver_due() == 0
    finally:
        first.stop()  # the "process" ends with the delivery still pending
    row = log(session_factory)[0]
    assert (row.state, row.attempts, row.last_status_code) == ("pending", 1, 503)
    assert row.last_error is not None and "503" in row.last_error
    assert row.next_attempt_at > T0 + timedelta(minutes=1)
    # A new worker, later: it resumes from the database and delivers everything.
    second = make_dispatcher(session_factory, receiver.url, clock=lambda: T0 + timedelta(hours=1))
    try:
        assert second.deliver_due() == 1
        assert second.deliver_due() == 1
    finally:
        second.stop()
    assert [r["event"] for r in receiver.received] == ["work_order.created", "work_order.updated"]
    assert [r.attempts for r in log(session_factory)] == [2, 1]


@pytest.mark.integration
def test_client_errors_fail_for_good_and_unreachable_receivers_are_retried(
    session_factory: SessionFactory, receiver: Receiver
) -> None:
    receiver.fail_first = 10
    receiver.fail_status = 400
    make_work(session_factory)
    dispatcher = make_dispatcher(session_factory, receiver.url)
    try:
        dispatcher.deliver_due()
    finally:
        dispatcher.stop()
    row = log(session_factory)[0]
    assert (row.state, row.attempts, row.last_status_code) == ("failed", 1, 400)

    nobody = make_dispatcher(
        session_factory,
        f"http://127.0.0.1:{free_port()}/hooks",
        attempts_per_pass=2,
        max_attempts=2,
    )
    try:
        nobody.deliver_due()
    finally:
        nobody.stop()
    second = log(session_factory)[1]
    assert (second.state, second.attempts, second.last_status_code) == ("failed", 2, None)
    assert second.last_error is not None and "Connect" in second.last_error


@pytest.mark.integration
def test_background_worker_delivers_and_stops(
    session_factory: SessionFactory, receiver: Receiver
) -> None:
    dispatcher = make_dispatcher(session_factory, receiver.url, poll_interval_s=0.05)
    dispatcher.start()
    try:
        make_work(session_factory)
        dispatcher.wake()
        deadline = time.monotonic() + 10
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        dispatcher.stop()
    assert len(receiver.received) == 2


@pytest.mark.integration
def test_private_receivers_are_refused_before_sending_when_configured(
    session_factory: SessionFactory, receiver: Receiver
) -> None:
    make_work(session_factory)
    dispatcher = make_dispatcher(session_factory, receiver.url, refuse_private=True)
    try:
        assert dispatcher.deliver_due() == 0
    finally:
        dispatcher.stop()
    first = log(session_factory)[0]
    assert (first.state, first.attempts) == ("failed", 1)
    assert first.last_error is not None and "non-public address 127.0.0.1" in first.last_error
    assert receiver.requests == 0
