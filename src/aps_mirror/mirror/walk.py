"""The Autodesk Docs walk: hubs -> projects -> top folders -> folders, as neutral records.

The walker only lists and names (`sources.records`); it decides nothing about copying.
`sources.docs.DocsSource` serves it to the engine.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Mapping

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.models import Folder, Hub, Item, Version
from aps_mirror.mirror.keys import assign_hub_segments, assign_segments
from aps_mirror.mirror.selection import is_selected, select_top_folders
from aps_mirror.mirror.sources.records import (FileVersion, KnownTree, Listing, ProjectRef, RemoteFile,
                                               UnavailableFile, WalkedFolder)

__all__ = ["KnownTree", "Listing", "ProjectRef", "RemoteFile", "WalkedFolder", "file_version",
           "list_projects", "root_rollup", "walk_project"]

log = logging.getLogger(__name__)


def list_projects(client: ApsClient, project_filter: tuple[str, ...] = (), *,
                  exclude_projects: tuple[str, ...] = (), hub_filter: tuple[str, ...] = (),
                  exclude_hubs: tuple[str, ...] = (), held_hubs: Mapping[str, str] | None = None,
                  held_projects: Mapping[str, Mapping[str, str]] | None = None,
                  reserved: Mapping[str | None, set[str]] | None = None,
                  hubs: list[Hub] | None = None) -> list[ProjectRef]:
    """Every project the credentials can see in the selected hubs, that the filters select.

    Hubs are chosen by `hub_filter` / `exclude_hubs`, then projects by `project_filter` /
    `exclude_projects` (see `is_selected`); the projects of an excluded hub are not even listed.
    Key segments follow the one collision rule (`keys.assign_segments`) over every hub and
    project, keeping what the mirror already holds (`held_hubs`; `held_projects` per hub id;
    `reserved` segments per hub id, None for the hub level), so a filter never changes a key
    and a newcomer never takes an existing hub's or project's key; no hub takes another
    source's root (`keys.assign_hub_segments`). `hubs`: as already listed.
    """
    reserved = reserved or {}
    hubs = client.hubs() if hubs is None else hubs
    hub_segments = assign_hub_segments([(h.id, h.name) for h in hubs], held_hubs, reserved.get(None, ()))
    refs: list[ProjectRef] = []
    for hub in hubs:
        if not is_selected(hub_filter, exclude_hubs, hub.name, hub.id):
            log.info("skip hub %s: not selected by the hub filters", hub.name)
            continue
        projects = list(client.projects(hub.id))
        project_segments = assign_segments([(p.id, p.name) for p in projects],
                                           (held_projects or {}).get(hub.id), reserved.get(hub.id, ()))
        for project in projects:
            if is_selected(project_filter, exclude_projects, project.name, project.id):
                refs.append(ProjectRef(hub.id, hub.name, project.id, project.name,
                                       hub_segments[hub.id], project_segments[project.id],
                                       project.root_folder_id, hub.extension_type))
            else:
                log.debug("skip project %s / %s: not selected by the filter", hub.name, project.name)
    return refs


def root_rollup(client: ApsClient, project: ProjectRef) -> datetime | None:
    """The project root folder's `lastModifiedTimeRollup`: one call says whether anything in
    the project changed since a walk recorded it."""
    if not project.root_folder_id:
        return None
    return client.folder(project.project_id, project.root_folder_id).last_modified_rollup


def walk_project(client: ApsClient, project: ProjectRef, known: KnownTree | None = None,
                 known_root_rollup: datetime | None = None, full_walk: bool = True,
                 top_folders: tuple[str, ...] = ()) -> Listing:
    """List a project's current files, descending only where something changed.

    Without `known` (or with `full_walk`) every folder is listed. Otherwise the root folder's
    rollup is checked first (one call for an unchanged project), then each folder whose
    rollup and path are what the manifest recorded is pruned with its whole subtree.
    Only the top folders `select_top_folders` picks are walked (`top_folders` globs; empty =
    the default of the project's hub type); the others go to `unwalked_tops`.
    """
    listing = Listing(full_walk=full_walk or known is None)
    prune = not listing.full_walk
    try:
        listing.root_rollup = root_rollup(client, project)
    except Exception as exc:  # the walk below still works without it
        log.warning("could not read the root folder of %s: %s", project.label, exc)
    if prune and listing.root_rollup is not None and listing.root_rollup == known_root_rollup:
        listing.project_unchanged = True
        log.info("%s: unchanged since the last run (root rollup %s)", project.label, listing.root_rollup)
        return listing

    tops = client.top_folders(project.hub_id, project.project_id)
    selected = select_top_folders(tops, top_folders, project.hub_type, project.label)
    for skipped in set(tops) - set(selected):
        log.debug("skip top folder %r of %s: not selected, ACC system or hidden", skipped.name, project.label)
    listing.unwalked_tops = {f.id for f in tops} - {f.id for f in selected}
    held_by_folder = known.held_segments_by_folder() if known is not None else {}

    def held(parent_id: str | None) -> dict[str, str]:
        return held_by_folder.get(parent_id, {})
    # Every visible top folder takes part, selected or not: a selection never moves a key.
    segments = assign_segments([(f.id, f.name) for f in tops if not f.hidden], held(None))
    stack = [(f, (f.name,), (segments[f.id],), None) for f in selected]
    while stack:
        folder, names, segs, parent_id = stack.pop()
        listing.folders[folder.id] = WalkedFolder(folder.id, folder.last_modified_rollup, names, segs, parent_id)
        if prune and known is not None and _unchanged(known, folder, segs):
            listing.pruned.add(folder.id)
            log.debug("prune %s: rollup and path unchanged", "/".join(names))
            continue
        listing.folders_listed += 1
        try:
            children = list(client.folder_contents(project.project_id, folder.id))
        except Exception as exc:  # one unreadable folder must not stop the others
            listing.errors.append(f"{'/'.join(names)}: {exc}")
            log.error("could not list folder %s of %s: %s", "/".join(names), project.label, exc)
            continue
        child_names = {c.id: (c.name if isinstance(c, Folder) else _file_name(c)) for c in children}
        child_segments = assign_segments(list(child_names.items()), held(folder.id))
        for child in children:
            seg = child_segments[child.id]
            if isinstance(child, Folder):
                if not child.hidden:
                    stack.append((child, names + (child.name,), segs + (seg,), folder.id))
            elif not child.hidden:
                _add_item(listing, child, folder.id, names, segs, seg)
    return listing


def _unchanged(known: KnownTree, folder: Folder, segments: tuple[str, ...]) -> bool:
    record = known.known_rollup(folder.id)
    return (record is not None and folder.last_modified_rollup is not None
            and record == (folder.last_modified_rollup, segments))


def _file_name(item: Item) -> str:
    return item.tip.name if item.tip else item.name


def _add_item(listing: Listing, item: Item, folder_id: str, names: tuple[str, ...],
              segs: tuple[str, ...], name_segment: str) -> None:
    version = item.tip
    if version is None:
        reason = "the listing did not include its tip version"
    elif version.is_tombstone:
        reason = "deleted in Autodesk (tombstone version)"
    elif version.storage_location() is None:
        reason = "its tip version has no stored file (still processing, or a cloud model)"
    else:
        listing.files.append(RemoteFile(item.id, file_version(version), names, segs, name_segment, folder_id,
                                        created_at=item.create_time, created_by=item.create_user,
                                        locked=item.reserved))
        return
    listing.unavailable.append(UnavailableFile(item.id, item.name, reason, folder_id, names,
                                               file_version(version) if version else None))


def file_version(version: Version) -> FileVersion:
    """An APS version as the engine sees it; the APS object rides along for the download."""
    return FileVersion(id=version.id, version_number=version.version_number, name=version.name,
                       size=version.storage_size, file_type=version.file_type,
                       created_at=version.create_time, created_by=version.create_user,
                       modified_at=version.last_modified, modified_by=version.last_modified_user,
                       stored=not version.is_tombstone and version.storage_location() is not None,
                       native=version)
