"""What a mirror run is asked to do: `MirrorConfig`, validated where options enter (aps_mirror.options)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy
from aps_mirror.mirror.protection import ObjectProtection
from aps_mirror.mirror.selection import is_selected
from aps_mirror.mirror.sources.records import RemoteFile

# Stands for an empty `top_folders` in `MirrorConfig.selection`: before it, empty meant every
# top folder, so manifests of that time get a full walk once.
_DEFAULT_TOP_FOLDERS = "(default: Project Files in ACC and BIM 360 hubs, all in others)"


@dataclass(frozen=True)
class MirrorConfig:
    bucket: str
    prefix: str = "autodesk"
    dry_run: bool = False
    # Which projects: globs (fnmatch, case-insensitive) on the name or id of hubs and projects,
    # ids with or without their `b.` prefix; empty includes = all; an exclude wins over an include.
    project_filter: tuple[str, ...] = ()  # projects to include
    workers: int = 4  # parallel transfers per project
    project_workers: int = 4  # projects synced at once in a run (or in one batch of the DAG)
    # Rollups may miss deletes, moves and permission changes: list everything this often.
    full_walk_days: float = 7.0
    full_walk: bool = False  # list every folder this run, whatever the rollups say
    delete_policy: DeletePolicy = DeletePolicy.KEEP
    # "tip": the mirror holds each item's latest version. "all": also every earlier version,
    # under {project}/_versions/<folders>/<name>.v<N>.<ext> (see MirrorEngine._keep_versions).
    versions: str = "tip"
    # Sources to read ("docs", "vault"); empty = docs, and vault when the connection has a vault_url.
    sources: tuple[str, ...] = ()
    max_delete: DeleteLimit = field(default_factory=lambda: DeleteLimit(percent=10.0))
    # Selection. Like rclone's filters, what is not selected is neither copied nor deleted.
    exclude_projects: tuple[str, ...] = ()
    hub_filter: tuple[str, ...] = ()  # hubs to include
    exclude_hubs: tuple[str, ...] = ()
    # Globs on top folder names (see walk.select_top_folders). Empty = the default: "Project
    # Files" only in ACC / BIM 360 hubs, every non-system top folder in other hubs (Fusion
    # Team, A360). ("*",) = every non-system top folder of every hub. ACC system folders
    # (Photos, issue_*, ...) only when a pattern not starting with a wildcard names them.
    top_folders: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()  # e.g. ("rvt", "dwg"); empty = every file
    exclude_extensions: tuple[str, ...] = ()
    max_file_size: int | None = None  # bytes
    # A prefix holds one account's mirror (`_aps_mirror/mirror.json`); True mirrors another beside it.
    allow_other_account: bool = False
    # One run at a time per prefix: how long to wait for another run's lease before refusing,
    # and whether to break a lease an operator knows is left by a dead run.
    lock_wait_seconds: float = 300.0
    break_lock: bool = False
    # How the objects are protected in S3 (aps_mirror.mirror.protection): checked together below.
    storage_class: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    expected_bucket_owner: str | None = None
    object_tags: bool = False
    checksum_algorithm: str | None = None
    object_lock_mode: str | None = None
    object_lock_days: int | None = None
    legal_hold: bool = False

    def __post_init__(self) -> None:
        self.protection  # options that only make sense together are refused at once

    @property
    def protection(self) -> ObjectProtection:
        return ObjectProtection(storage_class=self.storage_class, sse=self.sse, sse_kms_key_id=self.sse_kms_key_id,
                                expected_bucket_owner=self.expected_bucket_owner, object_tags=self.object_tags,
                                checksum_algorithm=self.checksum_algorithm, object_lock_mode=self.object_lock_mode,
                                object_lock_days=self.object_lock_days, legal_hold=self.legal_hold)

    @property
    def transfers(self) -> int:
        """Transfers in flight at most: what the S3 connection pool is sized for."""
        return self.workers * self.project_workers

    @property
    def selection(self) -> str:
        """The filters that choose files inside a project, as one string, recorded in its
        manifest: a change forces a full walk, since pruned subtrees hide what it would select.

        The hub and project filters are not in it: they choose whole projects, and a project
        they select is walked the same whatever they are (a one-off run with a project filter
        must not cost a full walk the next night). The top folder default gets its own token.
        """
        return json.dumps([sorted(self.top_folders) or [_DEFAULT_TOP_FOLDERS],
                           sorted(e.casefold() for e in self.extensions),
                           sorted(e.casefold() for e in self.exclude_extensions), self.max_file_size]
                          + (["versions=all"] if self.versions == "all" else []))

    def selects_project(self, hub_name: str, hub_id: str, project_name: str, project_id: str) -> bool:
        """Whether the hub and project filters select this project."""
        return (is_selected(self.hub_filter, self.exclude_hubs, hub_name, hub_id)
                and is_selected(self.project_filter, self.exclude_projects, project_name, project_id))

    def selects(self, remote: RemoteFile) -> bool:
        """Whether the file filters select this file (top folders are chosen by the walk)."""
        extension = remote.version.name.rpartition(".")[2].casefold() if "." in remote.version.name else ""
        if self.extensions and extension not in {e.lstrip(".").casefold() for e in self.extensions}:
            return False
        if extension and extension in {e.lstrip(".").casefold() for e in self.exclude_extensions}:
            return False
        size = remote.version.size or 0
        return self.max_file_size is None or size <= self.max_file_size
