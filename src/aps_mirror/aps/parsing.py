"""Lenient parsing of APS responses: real ones carry BOMs and 3- or 7-digit fractions."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

_UTF8_BOM = b"\xef\xbb\xbf"
# 2022-04-26T07:23:03.0000000Z, 2022-04-26T07:23:03.123Z, 2022-04-26T07:23:03Z, +00:00 offsets.
_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$"
)


def loads_json(body: bytes | str) -> Any:
    """Decode a JSON body, tolerating a UTF-8 byte-order mark (seen on real APS answers)."""
    if isinstance(body, bytes):
        if body.startswith(_UTF8_BOM):
            body = body[len(_UTF8_BOM):]
        body = body.decode("utf-8")
    return json.loads(body.lstrip("\ufeff"))


def parse_timestamp(value: str | None) -> datetime | None:
    """Parse an APS timestamp into an aware UTC datetime; None for an empty value.

    Accepts any number of fractional digits (Python only takes up to 6) and Z or an offset.
    """
    if not value:
        return None
    match = _TIMESTAMP.match(value.strip())
    if not match:
        raise ValueError(f"unrecognised APS timestamp {value!r}")
    day, clock, fraction, zone = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    if zone in (None, "Z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    parsed = datetime.fromisoformat(f"{day}T{clock}.{micros}{zone}")
    return parsed.astimezone(timezone.utc)


def format_timestamp(value: datetime) -> str:
    """Format a datetime the way APS does (UTC, milliseconds, Z)."""
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
