"""The cloud domain's errors: one base, subclasses that the API maps to status codes."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConflictError",
    "DomainError",
    "InvalidInputError",
    "InvalidTransitionError",
    "NotFoundError",
]


class DomainError(Exception):
    """Base of every error the cloud domain raises on purpose; `code` is machine-readable."""

    code = "domain_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class NotFoundError(DomainError):
    """The asset, alert, work order or token does not exist."""

    code = "not_found"


class ConflictError(DomainError):
    """The request clashes with the current state (a duplicate, an open twin)."""

    code = "conflict"


class InvalidTransitionError(ConflictError):
    """A state change the state machine does not allow from the current state."""

    code = "invalid_transition"


class InvalidInputError(DomainError):
    """Input that is well-formed but makes no sense for the domain (a bad fleet file)."""

    code = "invalid_input"
