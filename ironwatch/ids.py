"""Ids of gateways, assets and measurement points: one rule for every role.

An id is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit, so it is
safe in an MQTT topic level, a URL path segment and a file name alike. (`firmware_bridge`
uses no ids of this kind.)
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

__all__ = ["ID_PATTERN", "ID_RE", "ID_RULE", "Id", "check_id", "is_id"]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
ID_RE = re.compile(ID_PATTERN)
ID_RULE = "ids are 1-64 letters, digits, '_', '.', '-', starting with a letter or digit"


def is_id(value: str) -> bool:
    return ID_RE.match(value) is not None


def check_id(value: str) -> str:
    """Return value if it is a valid id, else raise ValueError saying the rule."""
    if not is_id(value):
        raise ValueError(ID_RULE)
    return value


Id = Annotated[
    str,
    AfterValidator(check_id),
    WithJsonSchema({"type": "string", "pattern": ID_PATTERN, "examples": ["pump-7"]}),
]
"""A validated id; its JSON schema carries the pattern, so API clients see the rule."""
