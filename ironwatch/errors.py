"""Errors every role shares."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["CliError", "describe_validation_error"]


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def describe_validation_error(err: ValidationError, limit: int = 5) -> str:
    """One line for a pydantic error: 'where: why' per problem, the first `limit` of them.

    Every file an operator writes (gateway config, fleet file) reports its errors this way,
    so the same mistake reads the same wherever it is made.
    """
    errors = err.errors()
    parts = []
    for e in errors[:limit]:
        loc = ".".join(str(p) for p in e.get("loc", ())) or "<root>"
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
