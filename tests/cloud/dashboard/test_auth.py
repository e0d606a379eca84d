"""Who counts as local: the read-only default must not leak to other hosts."""

from __future__ import annotations

from cloud.dashboard.auth import LOCAL_VIEWER, is_loopback


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.3.2.1") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    for host in ("10.0.0.1", "::ffff:10.0.0.1", "testclient", "", None):
        assert not is_loopback(host)


def test_local_viewer_cannot_write() -> None:
    assert not LOCAL_VIEWER.can_write and not LOCAL_VIEWER.via_token
