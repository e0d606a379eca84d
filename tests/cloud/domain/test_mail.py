"""E-mail over a real SMTP server with transport security and login: STARTTLS and SMTPS.

aiosmtpd on 127.0.0.1 with a certificate from a throwaway CA (openssl); the sender trusts
that CA, requires TLS before login, and a wrong password fails the row for good.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import select

from cloud.db import Base, EmailDelivery, SessionFactory, make_engine, make_session_factory
from cloud.domain import open_manual, seed_fleet
from cloud.domain.escalation import check_escalations
from cloud.domain.notifications import add_recipient
from cloud.mail import EmailDispatcher, SmtpConfig, smtp_config
from cloud.settings import load_settings
from ironwatch_app.local_servers import free_port

from .conftest import FLEET, T0

pytestmark = pytest.mark.integration

USER, PASSWORD = "ironwatch", "s3cret-Mail-pass"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    d = tmp_path_factory.mktemp("smtp-pki")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=ironwatch smtp test CA", cwd=d)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName = IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
             cwd=d)
    return d


@dataclass
class Server:
    port: int
    received: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class _Handler:
    def __init__(self, server: Server) -> None:
        self.server = server

    async def handle_DATA(self, smtp: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        self.server.received.append((str(session.authenticated), list(envelope.rcpt_tos)))
        return "250 OK"


def _start(pki: Path, *, implicit_tls: bool) -> tuple[Controller, Server]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki / "server.pem", pki / "server.key")
    state = Server(port=free_port())

    def authenticate(smtp: SMTP, session: SmtpSession, envelope: Envelope, mechanism: str,
                     data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(), PASSWORD.encode())
        if ok:
            state.logins.append(mechanism)
        return AuthResult(success=ok, handled=False)  # the server answers 235 / 535

    kwargs: dict[str, Any] = {
        "authenticator": authenticate,
        "auth_required": True,
        # aiosmtpd's LOGIN ignores the initial response smtplib sends; PLAIN is the common one.
        "auth_exclude_mechanism": ["LOGIN"],
    }
    if implicit_tls:
        # aiosmtpd only counts STARTTLS as TLS for AUTH (and refuses to require AUTH without
        # it); this connection is TLS from its first byte, and the sender logs in anyway.
        kwargs["auth_require_tls"] = False
        kwargs["auth_required"] = False
        controller = Controller(_Handler(state), hostname="127.0.0.1", port=state.port,
                                ssl_context=server_ctx, **kwargs)
    else:
        kwargs["tls_context"] = server_ctx
        kwargs["require_starttls"] = True
        kwargs["auth_require_tls"] = True
        controller = Controller(_Handler(state), hostname="127.0.0.1", port=state.port,
                                **kwargs)
    controller.start()
    return controller, state


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[SessionFactory]:
    """A file database with one overdue P1 whose supervisor has an address."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ironwatch.db'}")
    Base.metadata.create_all(engine)
    made = make_session_factory(engine)
    with made() as session:
        seed_fleet(session, FLEET)
        add_recipient(session, role="supervisor", email="sup@plant.example", now=T0)
        open_manual(session, asset_id="fan-1", failure_mode="imbalance", priority="P1",
                    actor="d", now=T0)
        check_escalations(session, T0 + timedelta(hours=5))
        session.commit()
    yield made
    engine.dispose()


def _client_context(pki: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    return context


def _states(factory: SessionFactory) -> list[tuple[str, int, str | None]]:
    with factory() as session:
        return [(r.state, r.attempts, r.last_error) for r in session.scalars(
            select(EmailDelivery).order_by(EmailDelivery.id))]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_login(
    factory: SessionFactory, pki: Path, security: str, tmp_path: Path
) -> None:
    controller, server = _start(pki, implicit_tls=security == "ssl")
    try:
        config = smtp_config(load_settings(
            data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=server.port,
            smtp_security=security, smtp_username=USER, smtp_password=PASSWORD,
            smtp_ca_file=pki / "ca.pem", smtp_from="desk@plant.example",
        ))
        assert config is not None
        mail = EmailDispatcher(factory, config, clock=lambda: T0 + timedelta(hours=5))
        assert mail.deliver_due() == 1, _states(factory)
    finally:
        controller.stop()
    assert server.received == [("True", ["sup@plant.example"])]  # authenticated
    assert server.logins and _states(factory) == [("sent", 1, None)]


def test_wrong_password_and_untrusted_certificate_fail(factory: SessionFactory,
                                                        pki: Path) -> None:
    controller, server = _start(pki, implicit_tls=False)
    clock = [T0 + timedelta(hours=5)]
    try:
        wrong = SmtpConfig(host="127.0.0.1", port=server.port, security="starttls",
                           username=USER, password="not-the-password",
                           ssl_context=_client_context(pki))
        EmailDispatcher(factory, wrong, clock=lambda: clock[0]).deliver_due()
        ((state, attempts, error),) = _states(factory)
        assert (state, attempts) == ("failed", 1), error
        assert error is not None and "535" in error
        # The system's trust store does not know the test CA: TLS fails, retried later.
        with factory() as session:
            row = session.scalars(select(EmailDelivery)).one()
            row.state, row.attempts, row.next_attempt_at = "pending", 0, clock[0]
            session.commit()
        untrusted = SmtpConfig(host="127.0.0.1", port=server.port, security="starttls",
                               username=USER, password=PASSWORD)
        EmailDispatcher(factory, untrusted, clock=lambda: clock[0],
                        attempts_per_pass=1).deliver_due()
        ((state, attempts, error),) = _states(factory)
        assert (state, attempts) == ("pending", 1)
        assert error is not None and "CERTIFICATE_VERIFY_FAILED" in error
    finally:
        controller.stop()
    assert server.received == []
