"""Secrets no role may run with: passwords and tokens from tutorials, templates and examples.

One list for the gateway, the cloud and the broker connection; each role may add rules of
its own on top (the cloud also asks for a minimum length).
"""

from __future__ import annotations

__all__ = ["WEAK_SECRETS", "is_weak_secret"]

WEAK_SECRETS = frozenset(
    {
        "changeme",
        "changethis",
        "change-me",
        "admin",
        "password",
        "public",
        "secret",
        "token",
        "ironwatch",
        "default",
        "test",
        "12345678",
        "123456789",
        "1234567890",
        "0000000000000000",
    }
)


def is_weak_secret(value: str) -> bool:
    """True for a well-known default (any case, surrounding blanks ignored)."""
    return value.strip().lower() in WEAK_SECRETS
