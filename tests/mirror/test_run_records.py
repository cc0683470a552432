"""What the engine reports to the catalog: one run record per project, and an event per change."""

from __future__ import annotations

from collections import Counter

from aps_mirror.catalog.records import CatalogEvent, EventAction, ProjectRun
from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine
from aps_mirror.mirror.plan import DeleteLimit
from tests.mirror.test_engine import PREFIX, mirrored


class RecordingSink:
    """A catalog that keeps what it is sent in memory (the Parquet writer is tested in tests/catalog)."""

    def __init__(self) -> None:
        self.runs: list[ProjectRun] = []
        self.events: list[CatalogEvent] = []

    def record_project_run(self, run: ProjectRun, events: list[CatalogEvent]) -> None:
        self.runs.append(run)
        self.events += events

    def record_project_runs(self, records: list[tuple[ProjectRun, list[CatalogEvent]]]) -> None:
        for run, events in records:
            self.record_project_run(run, events)


def sync(aps, s3, bucket, sink: RecordingSink, run_id: str, **config):
    sink.runs.clear()
    sink.events.clear()
    engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix=PREFIX, **config),
                          catalog=sink, run_id=run_id)
    return [engine.sync_project(p) for p in engine.list_projects()]


def actions(sink: RecordingSink) -> Counter[str]:
    return Counter(e.action for e in sink.events)


def test_each_change_kind_is_one_event(simulator, aps, s3, bucket):
    sim, sink = simulator.sim, RecordingSink()
    results = sync(aps, s3, bucket, sink, "night-1")
    held = mirrored(s3, bucket)
    files = [f for f in sim.iter_files() if f.item_id in held]
    assert len(files) > 10 and actions(sink)[EventAction.COPIED] == len(held)
    assert {r.run_id for r in sink.runs} == {"night-1"} and len(sink.runs) == len(results)
    assert all(r.status == "success" and r.api_calls > 0 for r in sink.runs)
    assert sum(r.files_copied for r in sink.runs) == len(files)
    assert sum(r.bytes_copied for r in sink.runs) == sum(e.size for e in sink.events)

    project_id = sim.project_id("Riverside Tower")
    in_project = [f for f in files if f.project == "Riverside Tower"]
    versioned, renamed, moved, deleted = in_project[:4]
    target_folder = next(f for f in in_project if f.path != moved.path).path
    sim.add_version(versioned.item_id, size=4096)
    sim.rename_item(renamed.item_id, "renamed.bin")
    sim.move_item(moved.item_id, sim.folder_id(project_id, target_folder))
    sim.delete_item(deleted.item_id)
    sim.reset_stats()
    sync(aps, s3, bucket, sink, "night-2")
    by_item = {e.item_id: e for e in sink.events}
    assert by_item[versioned.item_id].action == EventAction.NEW_VERSION
    assert by_item[renamed.item_id].action == EventAction.RENAMED
    assert by_item[renamed.item_id].previous_key != by_item[renamed.item_id].key
    assert by_item[moved.item_id].action == EventAction.MOVED
    assert by_item[deleted.item_id].action == EventAction.DELETED
    assert "policy keep" in by_item[deleted.item_id].reason
    assert len(sink.events) == 4, [e.action for e in sink.events]
    assert sim.stats()["requests"].get("download", 0) == 1, "only the new version is downloaded"

    entry = mirrored(s3, bucket)[versioned.item_id]
    assert [h["version_number"] for h in entry["history"]] == [entry["version_number"] - 1]
    assert entry["history"][0]["superseded_at"] and entry["name"] and entry["created_by"]

    sim.restore_item(deleted.item_id)
    sync(aps, s3, bucket, sink, "night-3")
    assert [(e.item_id, e.action) for e in sink.events] == [(deleted.item_id, EventAction.RESTORED)]


def test_failed_copies_and_unavailable_versions_are_recorded_with_their_reason(simulator, aps, s3, bucket):
    sim, sink = simulator.sim, RecordingSink()
    sync(aps, s3, bucket, sink, "night-1")
    target = next(f for f in sim.iter_files() if f.item_id in mirrored(s3, bucket))
    sim.add_version(target.item_id, size=2048)
    sim.inject_fault("download", 500, count=1000)
    sync(aps, s3, bucket, sink, "night-2")
    failed = [e for e in sink.events if e.action == EventAction.FAILED]
    assert [e.item_id for e in failed] == [target.item_id] and failed[0].reason
    run = next(r for r in sink.runs if r.project_id == sim.project_id(target.project))
    assert run.status == "partial" and run.files_failed == 1 and run.errors


def test_dry_runs_record_nothing(simulator, aps, s3, bucket):
    sink = RecordingSink()
    sync(aps, s3, bucket, sink, "dry", dry_run=True)
    assert sink.runs == [] and sink.events == []


def test_a_project_gone_from_autodesk_is_recorded_with_its_deletes(simulator, aps, s3, bucket):
    sim, sink = simulator.sim, RecordingSink()
    sync(aps, s3, bucket, sink, "night-1")
    gone = sim.project_id("Harbor Bridge Retrofit")
    held = [i for i, e in mirrored(s3, bucket).items() if not e["deleted_at"]]
    sim.delete_project(gone)
    sink.runs.clear()
    sink.events.clear()
    engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix=PREFIX, max_delete=DeleteLimit()),
                          catalog=sink, run_id="night-2")
    listed = engine.list_projects()
    results = [engine.sync_project(p) for p in listed]
    sink.runs.clear()
    sink.events.clear()
    engine.retire_missing_projects(listed, results)
    (run,) = sink.runs
    assert run.project_id == gone and run.run_id == "night-2" and run.status == "success"
    deleted = {e.item_id for e in sink.events if e.action == EventAction.DELETED}
    assert deleted and run.files_deleted == len(deleted)
    assert deleted < set(held), "only the gone project's files"


def test_a_scan_stages_its_unchanged_projects_records_as_one_object(simulator, aps, s3, bucket):
    """A quiet night of a big account: one PUT for the scan's records, not one per project."""
    sync(aps, s3, bucket, RecordingSink(), "night-1")
    catalog = CatalogWriter(s3, bucket, PREFIX)
    engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix=PREFIX), catalog=catalog, run_id="night-2")
    projects = engine.list_projects()
    scanned = engine.scan_projects(projects)
    assert len(projects) > 1 and all(r.needs_walk is None for r in scanned)
    assert len(catalog.staged_keys()) == 1
    folded = catalog.fold_staged()
    assert folded.records == len(projects) and folded.events == 0
    assert sorted(r["project_id"] for r in folded.run_rows) == sorted(p.project_id for p in projects)
    assert {(r["run_id"], r["status"]) for r in folded.run_rows} == {("night-2", "success")}
    skipped = {r["project_id"]: r["files_skipped"] for r in folded.run_rows}
    assert skipped == {r.project_id: r.files_skipped for r in scanned} and sum(skipped.values()) > 10
