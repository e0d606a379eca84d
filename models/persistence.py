"""Versioned save/load of fitted models with provenance metadata.

A model file is one bytes blob: a JSON header (format version, model class, parameters,
training provenance, creation time) followed by the pickled estimator. The header can be
read without unpickling, so a registry can list models without trusting their payload.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "FORMAT_VERSION",
    "ModelFormatError",
    "ModelMetadata",
    "dump_model",
    "load_model",
    "read_metadata",
]

FORMAT_VERSION = 1
_MAGIC = b"IRONWATCH-MODEL\n"


class ModelFormatError(ValueError):
    """The blob is not an Ironwatch model or has an unsupported format version."""


@dataclass(frozen=True)
class ModelMetadata:
    """What was trained, on which assets and time range, when, with which parameters."""

    model_class: str
    params: dict[str, Any]
    asset_ids: tuple[str, ...] = ()
    trained_from_utc: str | None = None
    trained_to_utc: str | None = None
    created_utc: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    format_version: int = FORMAT_VERSION
    notes: str = ""


def _jsonable(value: Any) -> Any:
    # Parameters may hold tuples or numpy scalars; keep the header plain JSON.
    try:
        json.dumps(value)
    except TypeError:
        return repr(value)
    return value


def dump_model(
    model: Any,
    *,
    asset_ids: tuple[str, ...] | list[str] = (),
    trained_from_utc: str | None = None,
    trained_to_utc: str | None = None,
    notes: str = "",
) -> bytes:
    """Serialise a fitted model and its provenance to bytes."""
    get_params = getattr(model, "get_params", None)
    params = get_params(deep=False) if callable(get_params) else {}
    meta = ModelMetadata(
        model_class=f"{type(model).__module__}.{type(model).__qualname__}",
        params={k: _jsonable(v) for k, v in params.items()},
        asset_ids=tuple(str(a) for a in asset_ids),
        trained_from_utc=trained_from_utc,
        trained_to_utc=trained_to_utc,
        notes=notes,
    )
    header = json.dumps(asdict(meta), sort_keys=True).encode()
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    return _MAGIC + len(header).to_bytes(8, "big") + header + payload


def _split(blob: bytes) -> tuple[ModelMetadata, bytes]:
    if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 8:
        raise ModelFormatError("not an Ironwatch model blob")
    start = len(_MAGIC) + 8
    size = int.from_bytes(blob[len(_MAGIC) : start], "big")
    try:
        raw = json.loads(blob[start : start + size])
    except ValueError as err:
        raise ModelFormatError("corrupt model header") from err
    if raw.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"unsupported model format {raw.get('format_version')!r}")
    raw["asset_ids"] = tuple(raw.get("asset_ids", ()))
    return ModelMetadata(**raw), blob[start + size :]


def read_metadata(blob: bytes) -> ModelMetadata:
    """Provenance of a model blob, without unpickling the model."""
    return _split(blob)[0]


def load_model(blob: bytes) -> tuple[Any, ModelMetadata]:
    """Model and metadata from bytes. Only load blobs from a trusted store (pickle)."""
    meta, payload = _split(blob)
    model = pickle.loads(payload)
    actual = f"{type(model).__module__}.{type(model).__qualname__}"
    if actual != meta.model_class:
        raise ModelFormatError(f"header says {meta.model_class}, payload is {actual}")
    return model, meta
