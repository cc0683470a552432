"""The ``payload`` of a Data Management callback, as Autodesk's callback reference shows it for each
event (dm.version.added / deleted / moved / moved.out, dm.folder.added / modified / deleted / moved /
moved.out), built from a :class:`~aps_mirror.simulator.changes.Change` while the account is locked."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from .changes import (FOLDER_ADDED, FOLDER_DELETED, FOLDER_MODIFIED, FOLDER_MOVED, VERSION_DELETED, VERSION_MOVED,
                      Change)
from .model import Folder, Item, Project

VERSION_MOVED_OUT = "dm.version.moved.out"
FOLDER_MOVED_OUT = "dm.folder.moved.out"

# A move is "moved" for hooks whose scope holds the new place and "moved.out" for hooks whose scope
# holds only the old one (Autodesk: "moved into this folder" / "moved out of this folder").
MOVED_OUT = {VERSION_MOVED: VERSION_MOVED_OUT, FOLDER_MOVED: FOLDER_MOVED_OUT}

_MOVE_FLAGS = json.dumps({"newVersion": False, "accessDefOrScopeChange": True, "metadataOnly": True},
                         separators=(",", ":"))
_RENAME_FLAGS = json.dumps({"newVersion": False, "accessDefOrScopeChange": False, "metadataOnly": False},
                           separators=(",", ":"))


def event_time(ts: float) -> str:
    """The callbacks' timestamp format: ``2017-09-06T03:08:53+0000``."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def bare_id(dm_id: str) -> str:
    """Payloads carry the account and project GUIDs without the Data Management ``b.`` prefix
    (a Fusion hub's ``a.`` ids, which have no GUID behind them here, are kept whole)."""
    return dm_id[2:] if dm_id.startswith("b.") else dm_id


def _ancestors(folder: Folder) -> list[dict[str, str]]:
    """The folders from the project root down to ``folder`` (included)."""
    chain: list[dict[str, str]] = []
    node: Folder | None = folder
    while node is not None:
        chain.append({"urn": node.id, "name": node.name})
        node = node.parent
    return list(reversed(chain))


def _place(project: Project, parent: Folder) -> dict[str, Any]:
    return {"parentFolderUrn": parent.id, "ancestors": _ancestors(parent), "project": bare_id(project.id),
            "tenant": bare_id(project.hub.id)}


def _aggregate_path(folder: Folder) -> str:
    project = folder.project
    return "/".join([f"/tenant-{bare_id(project.hub.id)}", f"group-{bare_id(project.id)}", *folder.path])


def resource_urn(change: Change) -> str:
    """``resourceUrn``: the version for version events, the folder for folder events."""
    return change.version.id if change.version is not None else change.node.id


def payload(change: Change, user_id: str) -> dict[str, Any]:
    """The event's payload (the same for a hook told "moved" and one told "moved.out")."""
    node = change.node
    if isinstance(node, Item):
        return _version_payload(change, node, user_id)
    assert isinstance(node, Folder)
    return _folder_payload(change, node, user_id)


def _version_payload(change: Change, item: Item, user_id: str) -> dict[str, Any]:
    version = change.version
    assert version is not None
    user = {"id": user_id}
    if change.event == VERSION_DELETED:  # Autodesk's example: the lineage's file urn, no version number
        doc: dict[str, Any] = {"ext": version.file_type or "", "lineageUrn": item.id,
                               "source": version.id.split("?", 1)[0], "mimeType": version.mime_type,
                               "user_info": user, "name": version.name, "state": "CONTENT_AVAILABLE"}
        last_size = next((v.size for v in reversed(item.versions) if v.size is not None), None)
        if last_size is not None:
            doc["sizeInBytes"] = last_size
        return {**doc, **_place(item.project, item.parent)}
    doc = {"ext": version.file_type or "", "modifiedTime": event_time(change.at), "creator": user_id,
           "lineageUrn": item.id, "hidden": item.hidden, "indexable": True, "source": version.id,
           "version": str(version.number), "user_info": user, "name": version.name,
           "createdTime": event_time(version.create_time), "modifiedBy": user_id,
           "state": "CONTENT_AVAILABLE" if version.downloadable else "CONTENT_NOT_AVAILABLE"}
    if version.size is not None:
        doc["sizeInBytes"] = version.size
    if version.storage_urn is not None:
        doc["contentURL"] = version.storage_urn
    if change.event == VERSION_MOVED:
        assert change.old_parent is not None
        doc.update(target=version.id, modification_flags=_MOVE_FLAGS,
                   context={"operation": "Move", "sourceParentFolderUrn": change.old_parent.id})
    return {**doc, **_place(item.project, item.parent)}


def _folder_payload(change: Change, folder: Folder, user_id: str) -> dict[str, Any]:
    assert folder.parent is not None  # the project root is never created, moved or deleted by a change
    user = {"id": user_id}
    if change.event == FOLDER_DELETED:
        doc: dict[str, Any] = {"user_info": user, "name": folder.name, "indexable": False, "branchName": "master",
                               "source": folder.id}
        return {**doc, **_place(folder.project, folder.parent)}
    doc = {"modifiedTime": event_time(change.at), "hidden": folder.hidden,
           "folderAggregatePath": _aggregate_path(folder), "indexable": False, "source": folder.id,
           "user_info": user, "name": folder.name, "modifiedBy": user_id}
    if change.event == FOLDER_ADDED:
        doc.update(creator=user_id, createdTime=event_time(folder.create_time))
    elif change.event == FOLDER_MODIFIED:
        doc["modification_flags"] = _RENAME_FLAGS
    elif change.event == FOLDER_MOVED:
        doc.update(target=folder.id, modification_flags=_MOVE_FLAGS)
    return {**doc, **_place(folder.project, folder.parent)}
