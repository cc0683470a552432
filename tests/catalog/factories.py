"""Catalog inputs built by hand: run records, events and manifests with known content."""

from __future__ import annotations

from aps_mirror.catalog.records import CatalogEvent, EventAction, ProjectRun
from aps_mirror.mirror.manifest import FolderRecord, Manifest, ManifestEntry

HUB = "b.0a1b2c3d-0000-4000-8000-000000000001"
PROJECT = "b.5e6f7a8b-0000-4000-8000-000000000002"
OTHER_PROJECT = "b.5e6f7a8b-0000-4000-8000-000000000003"
PERSONAL_HUB = "a.cGVyc29uYWw"
PERSONAL_PROJECT = "a.cGVyc29uYWw.project"
PREFIX = "mirror"


def project_run(run_id: str = "scheduled__2025-03-01T02:00:00+00:00", *, project_id: str = PROJECT,
                project_name: str = "Tower", hub_id: str = HUB, status: str = "success",
                started_at: str = "2025-03-01T02:00:05+00:00",
                finished_at: str = "2025-03-01T02:03:05+00:00", **counts) -> ProjectRun:
    return ProjectRun(run_id=run_id, hub_id=hub_id, hub_name="Acme", project_id=project_id,
                      project_name=project_name, started_at=started_at, finished_at=finished_at,
                      status=status, trigger="airflow", **counts)


def event(action: str, item: str = "urn:adsk.wipprod:dm.lineage:item1", *, run_id: str = "run-1",
          project_id: str = PROJECT, at: str = "2025-03-01T02:01:00+00:00", **fields) -> CatalogEvent:
    return CatalogEvent(run_id=run_id, at=at, hub_id=HUB, project_id=project_id, item_id=item,
                        action=action, path=fields.pop("path", "Project Files/a.rvt"), **fields)


def manifest() -> Manifest:
    """Tower: a current file with two earlier versions, a deleted one, a locked one, one whose
    new version is not downloadable, and one never mirrored."""
    m = Manifest(hub_id=HUB, project_id=PROJECT, project_name="Tower", hub_name="Acme",
                 root_segments=["Acme", "Tower"], last_full_walk="2025-03-01T02:03:00+00:00",
                 updated_at="2025-03-01T02:03:01+00:00")
    m.folders = {
        "f.top": FolderRecord("2025-03-01T01:00:00.000Z", ["Project Files"], ["Project Files"], None),
        "f.arch": FolderRecord(None, ["Project Files", "Arch＊"], ["Project Files", "Arch*"], "f.top"),
    }
    m.items = {
        "i.model": ManifestEntry(
            version_id="v.model?version=3", version_number=3, key="mirror/Acme/Tower/Project Files/Arch＊/model.rvt",
            size=300, source_path="Project Files/Arch*/model.rvt", sha1="c3", copied_at="2025-03-01T02:02:00+00:00",
            folder_id="f.arch", name="model.rvt", file_type="rvt", created_at="2025-01-01T10:00:00.000Z",
            created_by="Ann", modified_at="2025-02-28T10:00:00.000Z", modified_by="Bob",
            history=[
                {"version_id": "v.model?version=1", "version_number": 1, "size": 100, "sha1": "c1",
                 "key": "mirror/Acme/Tower/Project Files/old.rvt", "source_path": "Project Files/old.rvt",
                 "modified_at": "2025-01-01T10:00:00.000Z", "copied_at": "2025-01-02T02:00:00+00:00",
                 "superseded_at": "2025-02-02T02:00:00+00:00"},
                {"version_id": "v.model?version=2", "version_number": 2, "size": 200, "sha1": "c2",
                 "key": "mirror/Acme/Tower/Project Files/Arch＊/model.rvt",
                 "source_path": "Project Files/Arch*/model.rvt", "modified_at": "2025-02-01T10:00:00.000Z",
                 "copied_at": "2025-02-02T02:00:00+00:00", "superseded_at": "2025-03-01T02:02:00+00:00"},
            ]),
        "i.gone": ManifestEntry(
            version_id="v.gone?version=1", version_number=1, key="mirror/Acme/Tower/Project Files/gone.pdf",
            size=50, source_path="Project Files/gone.pdf", folder_id="f.top",
            modified_at="2025-01-05T00:00:00.000Z", deleted_at="2025-02-10T02:00:00+00:00"),
        "i.locked": ManifestEntry(
            version_id="v.locked?version=1", version_number=1, key="mirror/Acme/Tower/Project Files/plan.dwg",
            size=70, source_path="Project Files/plan.dwg", folder_id="f.top", name="plan.dwg",
            file_type="dwg", reserved=True),
        "i.stuck": ManifestEntry(
            version_id="v.stuck?version=1", version_number=1, key="mirror/Acme/Tower/Project Files/stuck.nwd",
            size=10, source_path="Project Files/stuck.nwd", folder_id="f.top"),
    }
    m.unavailable = {
        "i.stuck": {"reason": "no storage: not published", "source_path": "Project Files/stuck.nwd",
                    "version_id": "v.stuck?version=2", "version_number": 2, "since": "2025-02-20T02:00:00+00:00"},
        "i.cloud": {"reason": "cloud model: not downloadable", "source_path": "Project Files/Arch*/cloud.rvt",
                    "version_id": "v.cloud?version=1", "version_number": 1, "since": "2025-02-21T02:00:00+00:00",
                    "folder_id": "f.arch"},
    }
    return m


def personal_manifest() -> Manifest:
    m = Manifest(hub_id=PERSONAL_HUB, project_id=PERSONAL_PROJECT, project_name="Sketches",
                 hub_name="Mine", root_segments=["Mine", "Sketches"])
    m.items = {"i.sketch": ManifestEntry(version_id="v.sketch?version=1", version_number=1,
                                         key="mirror/Mine/Sketches/s.f3d", size=5, source_path="s.f3d")}
    return m


ALL_ACTIONS = [EventAction.COPIED, EventAction.NEW_VERSION, EventAction.RENAMED, EventAction.MOVED,
               EventAction.RESTORED, EventAction.DELETED, EventAction.TRASHED, EventAction.UNAVAILABLE,
               EventAction.FAILED, EventAction.DELETE_REFUSED]
