"""The catalog events of a project's sync: what happened to each item, and why."""

from __future__ import annotations

from aps_mirror.catalog.records import CatalogEvent, EventAction
from aps_mirror.mirror.manifest import now_iso
from aps_mirror.mirror.plan import Action, DeletePolicy
from aps_mirror.mirror.sources.records import FileVersion, ProjectRef
from aps_mirror.mirror.transfer import Transferred

DELETE_REASONS = {
    DeletePolicy.KEEP: "no longer in Autodesk; policy keep: marked deleted, the object stays",
    DeletePolicy.TRASH: "no longer in Autodesk; policy trash: moved under the trash prefix",
    DeletePolicy.DELETE: "no longer in Autodesk; policy delete: removed from the mirror",
}


class ProjectEvents:
    """The catalog events of one project's sync, collected as it goes."""

    def __init__(self, run_id: str, project: ProjectRef) -> None:
        self.run_id = run_id
        self.project = project
        self.rows: list[CatalogEvent] = []

    def add(self, action: str, item_id: str, path: str, *, key: str | None = None,
            previous_key: str | None = None, version: FileVersion | None = None,
            version_id: str | None = None, version_number: int | None = None,
            size: int | None = None, reason: str | None = None) -> None:
        self.rows.append(CatalogEvent(
            run_id=self.run_id, at=now_iso(), hub_id=self.project.hub_id,
            project_id=self.project.project_id, item_id=item_id, action=action, path=path,
            key=key, previous_key=previous_key,
            version_id=version.id if version else version_id,
            version_number=version.version_number if version else version_number,
            size=size if size is not None else (version.size if version else None),
            reason=reason))


def event_action(action: Action, transferred: Transferred) -> str:
    """Name what a successful action did, for the events table."""
    previous = action.previous
    if previous is None:
        return EventAction.COPIED
    if previous.deleted_at:
        return EventAction.RESTORED
    if previous.version_id != action.remote.version.id and not transferred.reused:
        return EventAction.NEW_VERSION
    if previous.key == action.key:
        return EventAction.NEW_VERSION  # same bytes, same place: only the version moved on
    return EventAction.RENAMED if previous.folder_id == action.remote.folder_id else EventAction.MOVED
