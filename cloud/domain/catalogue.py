"""The failure-mode catalogue: ISO 14224 codes, suggested actions and spare parts per mode.

A configurable TOML file; the default ships in this package (failure_modes.toml).
Unknown failure modes fall back to `unknown_anomaly`, so a new model output never
blocks a work order.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.domain.errors import InvalidInputError

__all__ = [
    "DEFAULT_CATALOGUE_FILE",
    "FALLBACK_MODE",
    "FailureMode",
    "FailureModeCatalogue",
    "default_catalogue",
    "load_catalogue",
]

DEFAULT_CATALOGUE_FILE = Path(__file__).with_name("failure_modes.toml")
FALLBACK_MODE = "unknown_anomaly"


class FailureMode(BaseModel):
    """One catalogue entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    aliases: tuple[str, ...] = ()
    iso14224_mode: str = Field(min_length=1, max_length=8)
    iso14224_mechanism: str = ""
    maintainable_item: str = ""
    lead_time_h: float = Field(default=8.0, ge=0)
    actions: tuple[str, ...] = ()
    spare_parts: tuple[str, ...] = ()
    # Part number → quantity: what a work order for this mode reserves from stock.
    parts: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(default_factory=dict)


class FailureModeCatalogue:
    """Looks failure modes up by id or alias (case-insensitive)."""

    def __init__(self, modes: dict[str, FailureMode]) -> None:
        if FALLBACK_MODE not in modes:
            raise InvalidInputError(f"the failure-mode catalogue needs a [modes.{FALLBACK_MODE}]")
        self.modes = modes
        self._index: dict[str, FailureMode] = {}
        for mode in modes.values():
            for key in (mode.id, *mode.aliases):
                self._index[key.lower()] = mode

    def lookup(self, failure_mode: str) -> FailureMode:
        """The entry for a failure mode or alias; the unknown-anomaly entry if none."""
        return self._index.get(failure_mode.lower(), self.modes[FALLBACK_MODE])

    def __contains__(self, failure_mode: object) -> bool:
        return isinstance(failure_mode, str) and failure_mode.lower() in self._index


def load_catalogue(path: Path | str | None = None) -> FailureModeCatalogue:
    """Read a catalogue TOML (`[modes.<id>]` tables); None reads the packaged default."""
    source = Path(path) if path is not None else DEFAULT_CATALOGUE_FILE
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
        tables = raw.get("modes", {})
        modes = {
            mode_id: FailureMode.model_validate({"id": mode_id, **fields})
            for mode_id, fields in tables.items()
        }
    except (OSError, tomllib.TOMLDecodeError, AttributeError, TypeError) as err:
        raise InvalidInputError(f"cannot read failure-mode catalogue {source}: {err}") from err
    except ValidationError as err:
        raise InvalidInputError(
            f"invalid failure-mode catalogue {source}",
            details={"errors": err.errors(include_url=False)},
        ) from err
    return FailureModeCatalogue(modes)


@cache
def default_catalogue() -> FailureModeCatalogue:
    """The packaged catalogue, read once."""
    return load_catalogue(None)
