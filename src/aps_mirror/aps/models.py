"""Small value types for what APS returns, parsed leniently from JSON:API resources."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aps_mirror.aps.parsing import parse_timestamp

TOMBSTONE_TYPE = "versions:autodesk.core:Deleted"
_STORAGE_URN = re.compile(r"^urn:adsk\.objects:os\.object:([-_.a-z0-9]{3,128})/(.+)$")


@dataclass(frozen=True)
class Hub:
    id: str
    name: str
    region: str | None
    extension_type: str | None

    @classmethod
    def from_resource(cls, res: dict[str, Any]) -> Hub:
        attrs = res.get("attributes") or {}
        return cls(res["id"], attrs.get("name") or res["id"], attrs.get("region"),
                   _extension_type(attrs))


@dataclass(frozen=True)
class Project:
    id: str
    hub_id: str
    name: str
    root_folder_id: str | None
    extension_type: str | None

    @classmethod
    def from_resource(cls, res: dict[str, Any], hub_id: str) -> Project:
        attrs = res.get("attributes") or {}
        rel = res.get("relationships") or {}
        root = ((rel.get("rootFolder") or {}).get("data") or {}).get("id")
        return cls(res["id"], hub_id, attrs.get("name") or res["id"], root, _extension_type(attrs))


@dataclass(frozen=True)
class Folder:
    id: str
    name: str
    hidden: bool
    last_modified: datetime | None
    last_modified_rollup: datetime | None
    extension_type: str | None

    @classmethod
    def from_resource(cls, res: dict[str, Any]) -> Folder:
        attrs = res.get("attributes") or {}
        return cls(
            id=res["id"],
            name=attrs.get("displayName") or attrs.get("name") or res["id"],
            hidden=bool(attrs.get("hidden")),
            last_modified=parse_timestamp(attrs.get("lastModifiedTime")),
            last_modified_rollup=parse_timestamp(attrs.get("lastModifiedTimeRollup")),
            extension_type=_extension_type(attrs),
        )


@dataclass(frozen=True)
class Version:
    id: str
    name: str
    version_number: int | None
    storage_size: int | None
    storage_urn: str | None
    file_type: str | None
    last_modified: datetime | None
    extension_type: str | None
    create_time: datetime | None = None
    create_user: str | None = None  # createUserName
    last_modified_user: str | None = None  # lastModifiedUserName

    @classmethod
    def from_resource(cls, res: dict[str, Any]) -> Version:
        attrs = res.get("attributes") or {}
        rel = res.get("relationships") or {}
        storage = ((rel.get("storage") or {}).get("data") or {}).get("id")
        size = attrs.get("storageSize")
        number = attrs.get("versionNumber")
        return cls(
            id=res["id"],
            name=attrs.get("name") or attrs.get("displayName") or res["id"],
            version_number=int(number) if number is not None else None,
            storage_size=int(size) if size is not None else None,
            storage_urn=storage,
            file_type=attrs.get("fileType"),
            last_modified=parse_timestamp(attrs.get("lastModifiedTime")),
            extension_type=_extension_type(attrs),
            create_time=parse_timestamp(attrs.get("createTime")),
            create_user=attrs.get("createUserName"),
            last_modified_user=attrs.get("lastModifiedUserName"),
        )

    @property
    def is_tombstone(self) -> bool:
        return self.extension_type == TOMBSTONE_TYPE

    def storage_location(self) -> tuple[str, str] | None:
        """(bucketKey, objectKey) of the file behind this version, or None if it has none."""
        match = _STORAGE_URN.match(self.storage_urn or "")
        return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True)
class Item:
    id: str  # lineage URN: stable across versions, renames and moves
    name: str
    hidden: bool
    reserved: bool
    extension_type: str | None
    tip_version_id: str | None
    tip: Version | None  # from the folder listing's `included`, when present
    create_time: datetime | None = None  # when the first version was created
    create_user: str | None = None

    @classmethod
    def from_resource(cls, res: dict[str, Any], included: dict[str, Version]) -> Item:
        attrs = res.get("attributes") or {}
        rel = res.get("relationships") or {}
        tip_id = ((rel.get("tip") or {}).get("data") or {}).get("id")
        return cls(
            id=res["id"],
            name=attrs.get("displayName") or res["id"],
            hidden=bool(attrs.get("hidden")),
            reserved=bool(attrs.get("reserved")),
            extension_type=_extension_type(attrs),
            tip_version_id=tip_id,
            tip=included.get(tip_id) if tip_id else None,
            create_time=parse_timestamp(attrs.get("createTime")),
            create_user=attrs.get("createUserName"),
        )


@dataclass(frozen=True)
class SignedDownload:
    status: str  # complete | chunked | fallback
    url: str | None = None
    size: int | None = None
    sha1: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SignedDownload:
        size = body.get("size")
        return cls(body.get("status") or "complete", body.get("url"),
                   int(size) if size is not None else None, body.get("sha1") or None)


@dataclass(frozen=True)
class UserProfile:
    user_id: str | None
    user_name: str | None
    email: str | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> UserProfile:
        return cls(body.get("userId") or body.get("sub"), body.get("userName") or body.get("name"),
                   body.get("emailId") or body.get("email"))


def _extension_type(attrs: dict[str, Any]) -> str | None:
    return (attrs.get("extension") or {}).get("type")
