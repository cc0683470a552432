"""Autodesk Docs, BIM 360, ACC and Fusion Team as a source: the APS Data Management API.

Wraps the walk (`mirror.walk`) and `ApsClient` as they were before sources existed: the same
requests in the same order, the bytes read from Autodesk's signed S3 URLs.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.parsing import parse_timestamp
from aps_mirror.mirror.sources import ByteStream, CallCount, Download
from aps_mirror.mirror.sources.records import FileVersion, Listing, ProjectRef
from aps_mirror.mirror.walk import file_version, list_projects, root_rollup, walk_project

if TYPE_CHECKING:
    from aps_mirror.mirror.config import MirrorConfig
    from aps_mirror.mirror.manifest import Manifest, ManifestStore
    from aps_mirror.mirror.mirror_record import MirrorRecord

DOCS = "docs"


class DocsSource:
    """The hubs and projects an APS connection sees; a project is a scope."""

    name = DOCS
    has_change_dates = True  # folder rollups

    def __init__(self, client: ApsClient) -> None:
        self.client = client

    def list_scopes(self, config: MirrorConfig, record: MirrorRecord, manifests: ManifestStore) -> list[ProjectRef]:
        """The selected projects. The record must belong to this account (else a ConfigError,
        unless `allow_other_account`); it pins every hub's and project's segment."""
        hubs = self.client.hubs()
        record.claim({h.id: h.name for h in hubs}, self.client.transport.connection.client_id,
                     config.allow_other_account)
        held_hubs, held_projects = _held_root_segments(record, manifests)
        reserved: dict[str | None, set[str]] = {None: record.taken_segments("hub")}
        reserved.update({h.id: record.taken_segments("project", h.id) for h in hubs})
        refs = list_projects(self.client, config.project_filter, exclude_projects=config.exclude_projects,
                             hub_filter=config.hub_filter, exclude_hubs=config.exclude_hubs,
                             held_hubs=held_hubs, held_projects=held_projects, reserved=reserved, hubs=hubs)
        for ref in refs:
            record.assign("hub", ref.hub_id, ref.hub_segment, name=ref.hub_name)
            record.assign("project", ref.project_id, ref.project_segment, name=ref.project_name,
                          hub_id=ref.hub_id)
        return refs

    def may_have_changed(self, scope: ProjectRef, known: Manifest) -> bool:
        """The project root folder's rollup against the one the last clean walk recorded."""
        rollup = root_rollup(self.client, scope)
        return rollup is None or rollup != parse_timestamp(known.root_rollup)

    def walk(self, scope: ProjectRef, known: Manifest, *, full_walk: bool,
             top_folders: tuple[str, ...]) -> Listing:
        return walk_project(self.client, scope, known, parse_timestamp(known.root_rollup),
                            full_walk=full_walk, top_folders=top_folders)

    def download(self, version: FileVersion) -> Download:
        signed = self.client.signed_download(version.native)
        refusal = None
        if signed.status != "complete" or not signed.url:
            refusal = (f"Autodesk offers this version as {signed.status!r} storage, "
                       "not as one downloadable object")
        return Download(signed.url, signed.size, signed.sha1, refusal)

    def open_download(self, url: str, start: int = 0, end: int | None = None) -> ByteStream:
        return self.client.open_signed_url(url, start, end)

    def item_versions(self, scope: ProjectRef, item_id: str) -> list[FileVersion]:
        return [file_version(v) for v in self.client.item_versions(scope.project_id, item_id)]

    def count_calls(self) -> AbstractContextManager[CallCount]:
        return self.client.transport.counter.tally()


def _held_root_segments(record: MirrorRecord, manifests: ManifestStore
                        ) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Hub and project segments held: as the record pins them; for a mirror made before the
    record existed, as its manifests hold them (read once, then recorded)."""
    hubs = record.held("hub")
    projects: dict[str, dict[str, str]] = {}
    for project_id, entry in record.projects.items():
        projects.setdefault(entry["hub_id"], {})[project_id] = entry["segment"]
    if not record.exists:
        for manifest in manifests.load_all():
            if manifest.source == DOCS and len(manifest.root_segments) == 2:
                hubs.setdefault(manifest.hub_id, manifest.root_segments[0])
                projects.setdefault(manifest.hub_id, {}).setdefault(manifest.project_id,
                                                                    manifest.root_segments[1])
    return hubs, projects
