"""The escalation ladder end to end, on SQLite and a real PostgreSQL.

A strategic customer's (a customer record, owning the pump's site) P1 alert gets a 1 h
response deadline; the ladder warns at 75 %,
escalates to the supervisor at the deadline and to the manager half a window later. Each
level is e-mailed to its roles through a real SMTP server (aiosmtpd on 127.0.0.1) and sent
by webhook to a real HTTP receiver that checks each subscription's HMAC signature.
"""

from __future__ import annotations

import email
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import func, select

from cloud.db import (
    EmailDelivery,
    Escalation,
    SessionFactory,
    WebhookDelivery,
    WorkOrder,
    make_engine,
    make_session_factory,
    upgrade,
)
from cloud.domain import open_from_alert, seed_fleet, transition, upsert_alert
from cloud.domain.escalation import check_escalations
from cloud.domain.notifications import add_recipient
from cloud.domain.policy import EscalationLevel, ServiceLevelPolicy
from cloud.domain.subscriptions import create_subscription
from cloud.mail import EmailDispatcher, SmtpConfig
from cloud.webhooks import EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookDispatcher
from cloud.webhooks import verify as verify_signature
from ironwatch_app.local_servers import free_port

from .conftest import FLEET, T0

# The test fleet with a strategic customer owning the pump's site, and its contacts.
_ASSETS: list[dict[str, Any]] = list(FLEET["assets"])  # type: ignore[call-overload]
LADDER_FLEET: dict[str, Any] = {
    "customers": [
        {
            "id": "acme",
            "name": "ACME Steel",
            "tier": "strategic",
            "contacts": [
                {"name": "Li Wei", "email": "li.wei@acme.example", "role": "plant_manager"},
                {"name": "Ana Ruiz", "email": "ana@acme.example", "role": "maintenance"},
            ],
        }
    ],
    "sites": [{"id": "acme-works", "customer_id": "acme", "name": "Works",
               "timezone": "Europe/Berlin"}],
    "gateways": FLEET["gateways"],
    "assets": [
        {**{k: v for k, v in _ASSETS[0].items() if k != "customer_tier"},
         "site_id": "acme-works"},
        *_ASSETS[1:],
    ],
}

pytestmark = pytest.mark.integration

DASHBOARD = "https://ironwatch.plant.example"


# -- a real SMTP server ------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the SMTP server accepted; `refuse_next` answers the next DATA commands, and
    `refuse_rcpt` names addresses the server refuses."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse_next: list[str] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    port: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        if self.refuse_next:
            return self.refuse_next.pop(0)
        content = envelope.content
        assert isinstance(content, bytes)
        message = email.message_from_bytes(content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    try:
        yield box
    finally:
        controller.stop()


# -- a real webhook receiver -------------------------------------------------------------


@dataclass
class Receiver:
    """Accepts POSTs at /<name>, verifying each with that subscription's secret."""

    secrets: dict[str, bytes] = field(default_factory=dict)
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bad_signatures: int = 0
    port: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def events(self, name: str) -> list[str]:
        return [body["event"] for body in self.received.get(name, [])]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            name = self.path.strip("/")
            with lock:
                ok = name in state.secrets and verify_signature(
                    state.secrets[name],
                    timestamp=self.headers[TIMESTAMP_HEADER],
                    body=body,
                    signature=self.headers[SIGNATURE_HEADER],
                )
                if ok:
                    decoded = json.loads(body)
                    assert decoded["event"] == self.headers[EVENT_HEADER]
                    state.received.setdefault(name, []).append(decoded)
                else:
                    state.bad_signatures += 1
            self.send_response(204 if ok else 401)
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


# -- the database, on both backends ------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionFactory]:
    """A migrated database (the real migrations) with the test fleet."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ironwatch.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    upgrade(engine)
    made = make_session_factory(engine)
    with made() as session:
        seed_fleet(session, LADDER_FLEET)
        session.commit()
    yield made
    engine.dispose()


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def subscribe(
    factory: SessionFactory, receiver: Receiver, name: str, events: list[str], at: datetime
) -> None:
    with factory() as session:
        _, secret = create_subscription(
            session, name=name, url=receiver.url(name), events=events, actor="test", now=at
        )
        session.commit()
    receiver.secrets[name] = secret.encode("utf-8")


def p1_alert_for_strategic_customer(factory: SessionFactory, at: datetime) -> int:
    with factory() as session:
        alert = upsert_alert(
            session,
            asset_id="pump-1",  # on a site of ACME, a strategic customer
            failure_mode="bearing_outer_race",
            severity="alarm",  # → P1
            score=7.5,
            evidence={"bpfo_amplitude_ms2": 3.1},
            model="envelope",
            model_version="2.1",
            rul_hours=None,
            now=at,
            confidence=0.9,
        )
        wo = open_from_alert(session, alert, now=at)
        assert wo is not None
        session.commit()
        return wo.id


def climb(factory: SessionFactory, at: datetime) -> list[tuple[str, str]]:
    with factory() as session:
        raised = check_escalations(session, at, dashboard_url=DASHBOARD)
        session.commit()
        return [(e.kind, e.level) for e in raised]


def drain(webhooks: WebhookDispatcher) -> None:
    # One pass sends the head per (subscription, work order); loop until the outbox is empty.
    for _ in range(20):
        if webhooks.deliver_due() == 0:
            return
    raise AssertionError("webhook outbox did not drain")


def test_p1_for_a_strategic_customer_climbs_the_whole_ladder(
    factory: SessionFactory, mailbox: Mailbox, receiver: Receiver
) -> None:
    clock = Clock(T0 - timedelta(minutes=5))
    subscribe(factory, receiver, "desk", ["work_order.*", "escalation.*"], clock.now)
    subscribe(factory, receiver, "alerts", ["alert.opened"], clock.now)
    with factory() as session:
        for role, address in [("service_desk", "desk@plant.example"),
                              ("supervisor", "sup@plant.example"),
                              ("manager", "mgr@plant.example")]:
            add_recipient(session, role=role, email=address, now=clock.now)
        session.commit()
    webhooks = WebhookDispatcher(factory, clock=clock, initial_backoff_s=0.01, timeout_s=5)
    mail = EmailDispatcher(
        factory, SmtpConfig(host="127.0.0.1", port=mailbox.port, sender="ironwatch@plant.example"),
        clock=clock, initial_backoff_s=0.01,
    )

    clock.now = T0
    wo_id = p1_alert_for_strategic_customer(factory, T0)
    with factory() as session:
        wo = session.get(WorkOrder, wo_id)
        assert wo is not None and wo.priority == "P1"
        assert wo.respond_by == T0 + timedelta(hours=1)  # strategic: 1 h, tighter than P1's 4 h
    # A subscription made after the alert and the work order opened gets neither.
    clock.now = T0 + timedelta(minutes=10)
    subscribe(factory, receiver, "late", ["*"], clock.now)

    assert climb(factory, T0 + timedelta(minutes=44)) == []
    assert climb(factory, T0 + timedelta(minutes=45)) == [("response", "warning")]
    assert climb(factory, T0 + timedelta(minutes=59)) == []
    assert climb(factory, T0 + timedelta(minutes=60)) == [("response", "supervisor")]
    assert climb(factory, T0 + timedelta(minutes=89)) == []
    assert climb(factory, T0 + timedelta(minutes=90)) == [("response", "manager")]
    assert climb(factory, T0 + timedelta(hours=5)) == []  # each level once

    clock.now = T0 + timedelta(hours=5)
    drain(webhooks)
    assert mail.deliver_due() == 4
    webhooks.stop()
    mail.stop()

    # E-mail: the warning to the desk, the deadline to desk and supervisor, then the manager.
    assert [m["Subject"].split(":")[0] for m in mailbox.to("desk@plant.example")] == [
        "[Ironwatch P1] warning", "[Ironwatch P1] supervisor"]
    assert [m["Subject"].split(":")[0] for m in mailbox.to("sup@plant.example")] == [
        "[Ironwatch P1] supervisor"]
    (to_manager,) = mailbox.to("mgr@plant.example")
    assert "missed" in to_manager["Subject"] and f"#{wo_id}" in to_manager["Subject"]
    plain = to_manager.get_body(("plain",))
    html = to_manager.get_body(("html",))
    assert plain is not None and html is not None
    text = plain.get_content()
    for expected in (f"#{wo_id}", "pump-1", "Priority: P1", "response by 2026-03-02 09:00 UTC",
                     "Level: manager", f"{DASHBOARD}/work-orders#wo-{wo_id}"):
        assert expected in text
    assert f'href="{DASHBOARD}/work-orders#wo-{wo_id}"' in html.get_content()
    assert to_manager["From"] == "ironwatch@plant.example"

    # Webhooks: every body signed with its own subscription's secret, filters honoured.
    assert receiver.bad_signatures == 0
    assert receiver.events("alerts") == ["alert.opened"]
    assert receiver.events("desk") == [
        "work_order.created",
        "escalation.warning",
        "escalation.raised", "work_order.updated",
        "escalation.raised", "work_order.updated",
    ]
    assert receiver.events("late") == receiver.events("desk")[1:]
    levels = [b["escalation"]["level"] for b in receiver.received["desk"] if "escalation" in b]
    assert levels == ["warning", "supervisor", "manager"]
    assert all(b["work_order"]["id"] == wo_id for b in receiver.received["late"])
    with factory() as session:
        history = [e.kind for e in session.scalars(
            select(WorkOrder).where(WorkOrder.id == wo_id)).one().events]
        assert history.count("escalation_warning") == 1 and history.count("escalated") == 2
        states = set(session.scalars(select(WebhookDelivery.state)))
        assert states == {"delivered"}
        assert set(session.scalars(select(EmailDelivery.state))) == {"sent"}


def test_ladder_stops_when_the_deadline_is_met_or_the_work_order_is_cancelled(
    factory: SessionFactory,
) -> None:
    wo_id = p1_alert_for_strategic_customer(factory, T0)
    assert climb(factory, T0 + timedelta(minutes=50)) == [("response", "warning")]
    with factory() as session:
        transition(session, wo_id, "assigned", actor="desk", now=T0 + timedelta(minutes=55),
                   assignee="ana")
        session.commit()
    # Responded in time: no supervisor or manager for the response deadline.
    assert climb(factory, T0 + timedelta(hours=3)) == []
    # The resolution deadline (P1: 48 h) keeps its own ladder until cancelled.
    assert climb(factory, T0 + timedelta(hours=36)) == [("resolution", "warning")]
    with factory() as session:
        transition(session, wo_id, "cancelled", actor="desk", now=T0 + timedelta(hours=37))
        session.commit()
    assert climb(factory, T0 + timedelta(days=5)) == []


def test_two_processes_checking_at_once_raise_each_level_once(
    factory: SessionFactory,
) -> None:
    p1_alert_for_strategic_customer(factory, T0)
    with factory() as session:
        add_recipient(session, role="supervisor", email="sup@plant.example", now=T0)
        session.commit()
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def process() -> None:
        try:
            with factory() as session:
                barrier.wait(5)
                raised = check_escalations(session, T0 + timedelta(hours=2))
                session.commit()
                results.append(len(raised))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=process) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # SQLite serialises writers: the slower one may be refused a write lock for this tick
    # (the periodic task logs and retries); PostgreSQL waits and then skips the duplicates.
    if factory.kw["bind"].dialect.name == "postgresql":
        assert errors == []
    assert sum(results) == 3 and len(results) + len(errors) == 2
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Escalation)) == 3
        emails = session.scalars(select(EmailDelivery.to_address)).all()
        assert emails == ["sup@plant.example"]  # the supervisor level, once


def test_smtp_refusals_are_retried_or_failed_and_counted(
    factory: SessionFactory, mailbox: Mailbox
) -> None:
    p1_alert_for_strategic_customer(factory, T0)
    with factory() as session:
        add_recipient(session, role="supervisor", email="sup@plant.example", now=T0)
        add_recipient(session, role="manager", email="mgr@plant.example", now=T0)
        session.commit()
    climb(factory, T0 + timedelta(hours=2))
    clock = Clock(T0 + timedelta(hours=2))
    mailbox.refuse_next = ["451 4.3.0 try again later"]
    mailbox.refuse_rcpt = {"mgr@plant.example": "550 5.1.1 no such mailbox"}
    mail = EmailDispatcher(factory, SmtpConfig(host="127.0.0.1", port=mailbox.port),
                           clock=clock, attempts_per_pass=2, initial_backoff_s=0.01)
    mail.deliver_due()
    with factory() as session:
        rows = session.scalars(select(EmailDelivery).order_by(EmailDelivery.id)).all()
        outcome = [(r.to_address, r.state, r.attempts) for r in rows]
    # The first: 451, then accepted on the retry. The second: 550 is permanent.
    assert outcome == [("sup@plant.example", "sent", 2), ("mgr@plant.example", "failed", 1)]
    assert rows[1].last_error is not None and "550" in rows[1].last_error
    assert (mail.stats.sent, mail.stats.failed_attempts, mail.stats.failed_for_good) == (1, 2, 1)
    assert [m["To"] for m in mailbox.messages] == ["sup@plant.example"]

    # A server that is down: the row stays pending with a later retry time.
    with factory() as session:
        add_recipient(session, role="service_desk", email="desk@plant.example", now=T0)
        session.commit()
    with factory() as session:
        wo = session.scalars(select(WorkOrder)).one()
        transition(session, wo.id, "assigned", actor="d", now=clock.now, assignee="ana")
        session.commit()
    climb(factory, T0 + timedelta(hours=36))  # resolution warning → service desk
    clock.now = T0 + timedelta(hours=36)
    down = EmailDispatcher(factory, SmtpConfig(host="127.0.0.1", port=free_port(),
                                               timeout_s=2), clock=clock, attempts_per_pass=1)
    assert down.deliver_due() == 0
    with factory() as session:
        row = session.scalars(select(EmailDelivery).where(
            EmailDelivery.to_address == "desk@plant.example")).one()
        assert (row.state, row.attempts) == ("pending", 1)
        assert row.next_attempt_at > clock.now and "Connection" in (row.last_error or "")
    # Still unsent a day later (the server stayed down): expired, never sent late.
    clock.now = T0 + timedelta(hours=36 + 25)
    assert mail.deliver_due() == 0
    with factory() as session:
        assert session.scalars(select(EmailDelivery.state).where(
            EmailDelivery.to_address == "desk@plant.example")).one() == "expired"
    assert mail.stats.expired == 1
    assert [m["To"] for m in mailbox.messages] == ["sup@plant.example"]


def test_cloud_service_wires_the_settings_webhook_smtp_and_policy(
    tmp_path: Path, mailbox: Mailbox, receiver: Receiver
) -> None:
    from cloud.app import CloudServices
    from cloud.mail import smtp_config
    from cloud.settings import load_settings
    from cloud.webhooks import make_dispatcher

    secret = "legacy-Desk-secret-7f3a9c21"
    receiver.secrets["legacy"] = secret.encode()
    settings = load_settings(
        data_dir=tmp_path, webhook_url=receiver.url("legacy"), webhook_secret=secret,
        smtp_host="127.0.0.1", smtp_port=mailbox.port, public_url=DASHBOARD,
    )
    clock = Clock(T0)
    services = CloudServices.open(settings, clock=clock)
    try:
        factory = services.session_factory
        with factory() as session:
            seed_fleet(session, LADDER_FLEET)
            add_recipient(session, role="manager", email="mgr@plant.example", now=T0)
            session.commit()
        wo_id = p1_alert_for_strategic_customer(factory, T0)
        clock.now = T0 + timedelta(hours=2)
        services.check_deadlines()
        webhooks = make_dispatcher(settings, factory, clock=clock)
        drain(webhooks)
        webhooks.stop()
        smtp = smtp_config(settings)
        assert smtp is not None
        assert EmailDispatcher(factory, smtp, clock=clock).deliver_due() == 1
    finally:
        services.close()
    # The settings file's webhook is the legacy subscription to every event since start-up.
    assert receiver.events("legacy") == [
        "alert.opened", "work_order.created", "escalation.warning",
        "escalation.raised", "work_order.updated", "escalation.raised", "work_order.updated",
    ]
    (message,) = mailbox.messages
    body = message.get_body(("plain",))
    assert body is not None
    assert f"{DASHBOARD}/work-orders#wo-{wo_id}" in body.get_content()


def test_a_level_can_notify_the_customers_contacts(
    factory: SessionFactory, mailbox: Mailbox
) -> None:
    policy = ServiceLevelPolicy(escalation_levels=(
        EscalationLevel(name="supervisor", at_fraction=1.0, notify=("supervisor",)),
        EscalationLevel(name="customer_notice", at_fraction=1.0,
                        notify=("customer:plant_manager",)),
        EscalationLevel(name="account", after_deadline_h=4, notify=("customer",)),
    ))
    with factory() as session:
        add_recipient(session, role="supervisor", email="sup@plant.example", now=T0)
        session.commit()
    wo_id = p1_alert_for_strategic_customer(factory, T0)
    with factory() as session:
        raised = check_escalations(session, T0 + timedelta(hours=6), policy=policy)
        session.commit()
        assert [e.level for e in raised] == ["supervisor", "customer_notice", "account"]
    mail = EmailDispatcher(factory, SmtpConfig(host="127.0.0.1", port=mailbox.port),
                           clock=Clock(T0 + timedelta(hours=6)))
    assert mail.deliver_due() == 4
    sent = [(m["To"], m["Subject"].split(":")[0]) for m in mailbox.messages]
    assert sent == [
        ("sup@plant.example", "[Ironwatch P1] supervisor"),
        ("li.wei@acme.example", "[Ironwatch P1] customer_notice"),
        ("li.wei@acme.example", "[Ironwatch P1] account"),
        ("ana@acme.example", "[Ironwatch P1] account"),
    ]
    with factory() as session:
        roles = session.scalars(select(EmailDelivery.role).where(
            EmailDelivery.work_order_id == wo_id).order_by(EmailDelivery.id)).all()
    assert roles == ["supervisor", "customer:plant_manager", "customer:plant_manager",
                     "customer:maintenance"]
    # An asset without a customer (fan-1) has no contacts to tell: nothing is written.
    with factory() as session:
        from cloud.domain import open_manual

        open_manual(session, asset_id="fan-1", failure_mode="imbalance", priority="P1",
                    actor="d", now=T0)
        raised = check_escalations(session, T0 + timedelta(hours=30), policy=policy)
        session.commit()
        assert sorted(e.level for e in raised) == ["account", "customer_notice", "supervisor"]
        emails = session.scalars(select(EmailDelivery.to_address).where(
            EmailDelivery.work_order_id != wo_id)).all()
    assert emails == ["sup@plant.example"]
