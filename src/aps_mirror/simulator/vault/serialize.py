"""Vault entities -> the Data API v2 JSON shapes (vault-notes.md restates the spec's fields).

Every ``url`` is server-relative (``/AutodeskDM/...``), ids are strings, dates are ISO-8601 UTC
with up to 7 fractional digits and ``0001-01-01T00:00:00Z`` when unset. A cloaked entity keeps
its ids and ``isCloaked: true`` and loses the rest (GUESS: what a caller without view
permission may still learn). ``entityType`` values are a GUESS (FileVersion, Folder, Link).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aps_mirror.connection import VAULT_API_PATH

from .model import RELEASED, File, FileVersion, Folder, Link, PropertyDefinition, Vault, VaultUser
from .properties import DATETIME, value_of
from .sessions import Session

UNSET_DATE = "0001-01-01T00:00:00Z"
TICKS_PER_SECOND = 10_000_000  # .NET's 100 ns ticks: Vault writes up to 7 fractional digits
STATE_COLORS = {"Work in Progress": 16776960, "For Review": 16744448, RELEASED: 65280}  # GUESS
NO_COLOR = -1
Doc = dict[str, Any]


def vault_date(ts: float | None) -> str:
    """``2024-10-21T07:56:45.2277149Z``-style: 7 digits, trailing zeros trimmed to at least 3."""
    if ts is None:
        return UNSET_DATE
    ticks = round(ts * TICKS_PER_SECOND)
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    digits = f"{fraction:07d}".rstrip("0").ljust(3, "0")
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + digits + "Z"


def vault_url(vault: Vault, *tail: str) -> str:
    return "/".join([f"{VAULT_API_PATH}/vaults/{vault.id}", *tail])


def vault(v: Vault) -> Doc:
    return {"name": v.name, "id": v.id, "url": vault_url(v)}


def user(u: VaultUser) -> Doc:
    """GUESS: the spec's User is not restated in the notes; id, name, email and url."""
    return {"id": u.id, "name": u.name, "email": u.email, "url": f"{VAULT_API_PATH}/users/{u.id}"}


def session(s: Session) -> Doc:
    """``Session``; the docs' example adds ``createDate`` and ``url``."""
    return {"id": s.id, "accessToken": s.token, "vaultInformation": vault(s.vault), "userInformation": user(s.user),
            "createDate": vault_date(s.create_time), "url": f"{VAULT_API_PATH}/sessions/{s.id}"}


def _properties(entity: FileVersion | Folder, definitions: list[PropertyDefinition]) -> list[Doc]:
    out = []
    for definition in definitions:
        value = value_of(definition, entity)
        if definition.data_type == DATETIME:
            text = vault_date(value) if value is not None else ""
        elif isinstance(value, bool):
            text = "True" if value else "False"
        elif isinstance(value, float):
            text = str(int(value)) if value.is_integer() else str(value)
        else:
            text = "" if value is None else str(value)
        out.append({"propertyDefinitionId": definition.id, "value": text})
    return out


def folder(f: Folder, viewer: VaultUser, extended: bool = False,
           definitions: list[PropertyDefinition] | None = None) -> Doc:
    cloaked = not viewer.admin and f.hidden_from_non_admins()
    doc: Doc = {"id": f.id, "url": vault_url(f.vault, "folders", f.id), "entityType": "Folder",
                "name": "" if cloaked else f.name, "fullName": "" if cloaked else f.full_name,
                "createDate": UNSET_DATE if cloaked else vault_date(f.create_time),
                "createUserName": "" if cloaked else f.create_user,
                "category": "" if cloaked else f.category, "categoryColor": NO_COLOR,
                "state": "", "stateColor": NO_COLOR, "subfolderCount": 0 if cloaked else len(f.folders),
                "isLibrary": False, "isReadOnly": False, "isCloaked": cloaked,
                "properties": [] if cloaked else _properties(f, definitions or [])}
    if extended and f.parent is not None:
        doc["parentFolderId"] = f.parent.id
        doc["parent"] = folder(f.parent, viewer)
    return doc


def _version_type(v: FileVersion) -> str:
    if v.is_tip:
        return "Latest"
    released = [x for x in v.file.versions if x.released]
    return "LatestReleased" if released and released[-1] is v else "None"


def file_reference(v: FileVersion) -> Doc:
    """The ``file`` member of a FileVersion: its master (no nested version, which would recurse)."""
    return {"id": v.file.id, "url": vault_url(v.file.folder.vault, "files", v.file.id),
            "versionType": _version_type(v)}


def file_version(v: FileVersion, viewer: VaultUser, extended: bool = False,
                 definitions: list[PropertyDefinition] | None = None) -> Doc:
    f: File = v.file
    cloaked = not viewer.admin and f.hidden_from_non_admins()
    checked_out = f.checked_out_by is not None  # "refers to the latest version": every row says it
    doc: Doc = {
        "id": v.id, "url": vault_url(f.folder.vault, "file-versions", v.id), "entityType": "FileVersion",
        "name": "" if cloaked else f.name, "version": v.number, "revision": "" if cloaked else v.revision,
        "file": file_reference(v), "parentFolderId": f.folder.id,
        # The spec: size is valid only when not checked out; this keeps the last checked-in size.
        "size": 0 if cloaked else v.size,
        "createDate": UNSET_DATE if cloaked else vault_date(v.create_time),
        # Valid only when not checked out: unset on the tip of a checked-out file (Autodesk's example).
        "checkinDate": UNSET_DATE if cloaked or (checked_out and v.is_tip) else vault_date(v.checkin_time),
        "checkoutDate": vault_date(f.checked_out_at) if checked_out and not cloaked else UNSET_DATE,
        "checkoutUserName": (f.checked_out_by or "") if not cloaked else "",
        "lastModifiedDate": UNSET_DATE if cloaked else vault_date(v.modified_time),
        "isCheckedOut": checked_out and not cloaked,
        "state": "" if cloaked else v.state, "stateColor": NO_COLOR if cloaked else STATE_COLORS.get(v.state, NO_COLOR),
        "category": "" if cloaked else f.category, "categoryColor": NO_COLOR,
        "classification": "None", "visualizationAttachmentStatus": "None", "hasVisualizationAttachment": False,
        "isReadOnly": not v.is_tip or v.released, "isCloaked": cloaked, "isOnSite": True,
        "isHidden": False,  # live responses carry fields the schema does not list
        "createUserName": "" if cloaked else v.create_user,
        "properties": [] if cloaked else _properties(v, definitions or []),
    }
    if extended:
        doc["checkoutUser"] = None
        doc["parent"] = folder(f.folder, viewer)
    return doc


def checkout_user(doc: Doc, found: VaultUser | None) -> Doc:
    """Fill ``checkoutUser`` of an extended version with the checking-out user, when known."""
    if "checkoutUser" in doc and found is not None and doc["isCheckedOut"]:
        doc["checkoutUser"] = user(found)
    return doc


def link(entity: Link, viewer: VaultUser) -> Doc:
    target = entity.target
    to_entity = folder(target, viewer) if isinstance(target, Folder) else file_version(target.tip, viewer)
    return {"id": entity.id, "name": entity.name, "entityType": "Link",
            "createDate": vault_date(entity.create_time), "createUserName": entity.create_user,
            "url": vault_url(entity.folder.vault, "links", entity.id),  # GUESS: no links endpoint is documented
            "toEntity": to_entity, "fromEntity": folder(entity.folder, viewer)}


def property_definition(v: Vault, d: PropertyDefinition, extended: bool = False) -> Doc:
    doc: Doc = {"id": d.id, "url": vault_url(v, "property-definitions", d.id), "displayName": d.display_name,
                "systemName": d.system_name, "dataType": d.data_type, "active": True, "isSystem": True,
                "initialValue": ""}
    if extended:
        doc["entityClassId"] = d.entity_class
    return doc
