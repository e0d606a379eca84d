"""CSV export: cells a spreadsheet opens safely, rows streamed in chunks.

Excel reads a CSV file as UTF-8 only after a byte-order mark, so the stream starts with
one (Chinese asset names otherwise come out garbled). A text cell that begins with
`=`, `+`, `-`, `@`, a tab or a carriage return would be run as a formula by Excel,
LibreOffice and Google Sheets ("CSV injection"); such a cell gets a leading apostrophe,
which spreadsheets show as plain text. Numbers stay numbers, so a negative value is
still -1.5.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime

__all__ = ["BOM", "FORMULA_PREFIXES", "csv_cell", "csv_chunks"]

BOM = "\ufeff"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Rows per chunk handed to the HTTP response: small enough to start at once, large enough
# not to send a packet per row.
ROWS_PER_CHUNK = 200


def _iso(value: datetime | date) -> str:
    return value.isoformat().replace("+00:00", "Z")


def csv_cell(value: object) -> str | int | float:
    """One value as a CSV cell: None is empty, times ISO 8601 UTC, formula-like text neutral."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime | date):
        return _iso(value)
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[bytes]:
    """The CSV file (BOM, header, rows; RFC 4180 quoting, CRLF) as UTF-8 chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow([csv_cell(h) for h in header])
    pending = 0
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        pending += 1
        if pending >= ROWS_PER_CHUNK:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode("utf-8")
