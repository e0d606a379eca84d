"""Ids of gateways, assets and measurement points: one rule for every role."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["ID_RE", "Id", "check_id"]

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def check_id(value: str) -> str:
    """Return value if it is a valid id, else raise ValueError saying the rule."""
    if not ID_RE.match(value):
        raise ValueError(
            "ids are 1-64 letters, digits, '_', '.', '-', starting with a letter or digit"
        )
    return value


Id = Annotated[str, AfterValidator(check_id)]
