"""Small value types for what the Vault Data API v2 returns, parsed leniently.

Unknown fields are ignored (live answers carry fields the spec does not list), numbers may
arrive as floats, ids are kept as strings, and Vault's unset date ``0001-01-01T00:00:00Z`` (or
any date that does not parse) becomes None.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aps_mirror.aps.parsing import parse_timestamp

log = logging.getLogger(__name__)

ROOT = "root"  # the keyword Vault accepts for a vault's root folder id


def vault_time(value: Any) -> datetime | None:
    """A Vault date, or None when unset (year 1) or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_timestamp(value)
    except ValueError:
        log.debug("Vault sent an unreadable date %r; treated as unset", value)
        return None
    return None if parsed is None or parsed.year <= 1 else parsed


def _id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Vault:
    id: str
    name: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Vault:
        vault_id = _id(doc.get("id")) or ""
        return cls(vault_id, _text(doc.get("name")) or vault_id)


@dataclass(frozen=True)
class VaultFolder:
    """A folder; ``full_name`` is its vault path (``$/Designs/Gearbox``; the root is ``$``)."""

    id: str
    name: str
    full_name: str
    subfolder_count: int
    created: datetime | None
    cloaked: bool
    is_library: bool = False
    parent_id: str | None = None  # only in extended models

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> VaultFolder:
        return cls(id=_id(doc.get("id")) or "", name=_text(doc.get("name")), full_name=_text(doc.get("fullName")),
                   subfolder_count=_int(doc.get("subfolderCount"), 0) or 0, created=vault_time(doc.get("createDate")),
                   cloaked=bool(doc.get("isCloaked")), is_library=bool(doc.get("isLibrary")),
                   parent_id=_id(doc.get("parentFolderId")))

    @property
    def segments(self) -> tuple[str, ...]:
        """Folder names below the root (``$/A/B`` -> ``("A", "B")``)."""
        return tuple(part for part in self.full_name.split("/")[1:] if part)


@dataclass(frozen=True)
class VaultFileVersion:
    """One version (iteration) of a file. ``file_id`` is the master id, stable across versions;
    ``id`` is new per check-in. ``size`` and ``checked_in`` are reliable only when the file is
    not checked out (the spec's words); ``modified`` is the client's file time, not the server's."""

    id: str
    file_id: str
    name: str
    version: int
    revision: str
    parent_folder_id: str | None
    size: int | None
    created: datetime | None
    checked_in: datetime | None
    modified: datetime | None
    checked_out: bool
    checkout_user: str
    create_user: str
    state: str
    category: str
    cloaked: bool
    on_site: bool
    version_type: str  # None, Latest or LatestReleased

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> VaultFileVersion:
        file = doc.get("file") if isinstance(doc.get("file"), dict) else {}
        return cls(
            id=_id(doc.get("id")) or "", file_id=_id(file.get("id")) or "", name=_text(doc.get("name")),
            version=_int(doc.get("version"), 0) or 0, revision=_text(doc.get("revision")),
            parent_folder_id=_id(doc.get("parentFolderId")), size=_int(doc.get("size")),
            created=vault_time(doc.get("createDate")), checked_in=vault_time(doc.get("checkinDate")),
            modified=vault_time(doc.get("lastModifiedDate")), checked_out=bool(doc.get("isCheckedOut")),
            checkout_user=_text(doc.get("checkoutUserName")), create_user=_text(doc.get("createUserName")),
            state=_text(doc.get("state")), category=_text(doc.get("category")), cloaked=bool(doc.get("isCloaked")),
            on_site=doc.get("isOnSite") is not False, version_type=_text(file.get("versionType")) or "None",
        )

    @property
    def reliable_size(self) -> int | None:
        """The size to check a download against: None while checked out."""
        return None if self.checked_out else self.size


@dataclass(frozen=True)
class Download:
    """What a download delivered: its byte count and SHA-256 (Vault offers no checksum)."""

    size: int
    sha256: str
