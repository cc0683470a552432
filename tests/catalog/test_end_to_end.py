"""The engine writes the catalog through a sequence of changes; every table read back with DuckDB
and with pyarrow alone matches the simulator's ground truth."""

from __future__ import annotations

from collections import Counter

import pyarrow.dataset as ds

from aps_mirror.catalog import reader
from aps_mirror.catalog.layout import catalog_prefix
from aps_mirror.catalog.records import EventAction
from aps_mirror.catalog.schema import TABLES
from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine
from tests.mirror.test_engine import ALL_TOP_FOLDERS, PREFIX, object_keys


class Mirror:
    """One night: sync every project with the catalog writer, then publish the snapshot."""

    def __init__(self, aps, s3, bucket, arrow_s3) -> None:
        self.aps, self.s3, self.bucket, self.arrow_s3 = aps, s3, bucket, arrow_s3
        self.catalog = CatalogWriter(s3, bucket, PREFIX)

    def night(self, run_id: str) -> dict[str, list[dict]]:
        engine = MirrorEngine(self.aps, self.s3, MirrorConfig(bucket=self.bucket, prefix=PREFIX,
                                                              top_folders=ALL_TOP_FOLDERS),
                              catalog=self.catalog, run_id=run_id, trigger="airflow")
        for project in engine.list_projects():
            engine.sync_project(project)
        counts = self.catalog.publish_snapshot()
        tables = self.read()
        assert counts == {t: len(tables[t]) for t in counts}
        return tables

    def read(self) -> dict[str, list[dict]]:
        """Every table through DuckDB (our reader); pyarrow's own S3 client must read the same rows."""
        con = reader.connect(self.s3, self.bucket, PREFIX)
        tables = {}
        for table, spec in TABLES.items():
            cursor = con.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            tables[table] = [dict(zip(names, row)) for row in cursor.fetchall()]
            if not reader.list_objects(self.s3, self.bucket, PREFIX, table):
                continue  # never written by a sync (verifications): pyarrow has no folder to read
            stored = [c.name for c in spec.columns]  # the partition column's type is the engine's guess
            arrow = ds.dataset(f"{self.bucket}/{catalog_prefix(PREFIX)}/{table}", filesystem=self.arrow_s3,
                               format="parquet", partitioning="hive").to_table()
            by_arrow = sorted(map(repr, ([r[c] for c in stored] for r in arrow.to_pylist())))
            by_duckdb = sorted(map(repr, ([r[c] for c in stored] for r in tables[table])))
            assert by_arrow == by_duckdb, table
        return tables


def by_item(rows: list[dict]) -> dict[str, dict]:
    return {r["item_id"]: r for r in rows}


def assert_files_match_ground_truth(sim, files: list[dict], keys: set[str]) -> None:
    truth = {f.item_id: f for f in sim.iter_files()}
    live = {r["item_id"]: r for r in files if r["status"] == "mirrored"}
    assert set(live) == set(truth)
    for item_id, f in truth.items():
        row = live[item_id]
        assert (row["hub_name"], row["project_name"]) == (f.hub, f.project)
        assert row["name"] == f.tip.name and row["path"] == "/".join([*f.path, f.tip.name])
        assert (row["version_id"], row["version_number"], row["size"]) == (f.tip.id, f.tip.number, f.tip.size)
        assert row["sha1"] == sim.sha1(f.tip.id) and row["s3_key"] in keys
        assert row["project_id"] == sim.project_id(f.project)
        assert row["bim360_project_id"] == row["project_id"].removeprefix("b.") or not row["project_id"].startswith("b.")
        assert row["created_at"] and row["modified_at"] and row["created_by"]
    for row in files:
        if row["status"] == "skipped":  # listed but not downloadable: not in the ground truth
            assert row["item_id"] not in truth and row["status_reason"]


def test_catalog_follows_add_version_rename_move_delete_restore(simulator, aps, s3, bucket, arrow_s3):
    sim = simulator.sim
    mirror = Mirror(aps, s3, bucket, arrow_s3)

    first = mirror.night("night-1")
    assert_files_match_ground_truth(sim, first["files"], object_keys(s3, bucket))
    projects = {p["project_name"]: p for p in first["projects"]}
    truth_by_project = Counter(f.project for f in sim.iter_files())
    assert {n: p["files"] for n, p in projects.items()} == dict(truth_by_project)
    assert all(p["last_run_status"] == "success" and p["last_success_at"] for p in projects.values())
    assert len(first["runs"]) == len(projects)
    skipped = sum(1 for r in first["files"] if r["status"] == "skipped")
    assert Counter(e["action"] for e in first["events"]) == Counter(
        {EventAction.COPIED: len(list(sim.iter_files())), EventAction.UNAVAILABLE: skipped})
    assert sum(r["files_copied"] for r in first["runs"]) == len(list(sim.iter_files()))
    assert sum(r["bytes_copied"] for r in first["runs"]) == sum(f.tip.size for f in sim.iter_files())
    assert all(r["api_calls"] > 0 and r["run_id"] == "night-1" for r in first["runs"])
    folders = {(f["project_name"], f["path"]) for f in first["folders"]}
    assert {(f.project, "/".join(f.path)) for f in sim.iter_files() if f.path} <= folders
    assert sum(f["files"] for f in first["folders"]) == len(list(sim.iter_files()))

    # Night 2: one of each change in one project.
    project_id = sim.project_id("Riverside Tower")
    files = [f for f in sim.iter_files() if f.project == "Riverside Tower"]
    versioned, renamed, moved, deleted = files[:4]
    destination = next(f for f in files if f.path != moved.path).path
    new_folder = sim.folder_id(project_id, versioned.path)
    sim.add_version(versioned.item_id, size=4096)
    sim.rename_item(renamed.item_id, "renamed.bin")
    sim.move_item(moved.item_id, sim.folder_id(project_id, destination))
    sim.delete_item(deleted.item_id)
    added = sim.add_file(project_id, new_folder, "added.dwg", size=777)
    second = mirror.night("night-2")
    assert_files_match_ground_truth(sim, second["files"], object_keys(s3, bucket))
    night2 = [e for e in second["events"] if e["run_id"] == "night-2"]
    assert {e["item_id"]: e["action"] for e in night2} == {
        versioned.item_id: EventAction.NEW_VERSION, renamed.item_id: EventAction.RENAMED,
        moved.item_id: EventAction.MOVED, deleted.item_id: EventAction.DELETED, added: EventAction.COPIED}
    events = by_item(night2)
    assert events[renamed.item_id]["previous_s3_key"] != events[renamed.item_id]["s3_key"]
    assert events[renamed.item_id]["path"].endswith("/renamed.bin")
    assert events[added]["size"] == 777 and events[added]["project_name"] == "Riverside Tower"
    run = next(r for r in second["runs"] if r["run_id"] == "night-2" and r["project_id"] == project_id)
    assert (run["files_copied"], run["files_renamed"], run["files_deleted"]) == (2, 2, 1)
    assert run["bytes_copied"] == 4096 + 777 and run["status"] == "success"
    assert len(second["runs"]) == 2 * len(projects)

    files_now = by_item(second["files"])
    assert files_now[deleted.item_id]["status"] == "deleted" and files_now[deleted.item_id]["deleted_at"]
    assert files_now[moved.item_id]["path"] == "/".join([*destination, moved.tip.name])
    versions = [v for v in second["versions"] if v["item_id"] == versioned.item_id]
    old, new = sorted(versions, key=lambda v: v["version_number"])
    assert (old["status"], new["status"]) == ("superseded", "current")
    assert new["version_number"] == old["version_number"] + 1 == sim.version(new["version_id"]).number
    assert old["valid_to"] == new["valid_from"] and new["valid_to"] is None and new["size"] == 4096
    assert old["valid_from"] < old["valid_to"]
    old_name, new_name = sorted((v for v in second["versions"] if v["item_id"] == renamed.item_id),
                                key=lambda v: v["version_number"])
    assert old_name["name"] == renamed.tip.name and new_name["name"] == "renamed.bin"
    [gone] = [v for v in second["versions"] if v["item_id"] == deleted.item_id]
    assert gone["status"] == "deleted" and gone["valid_to"] == files_now[deleted.item_id]["deleted_at"]

    # Night 3: the deleted file comes back.
    sim.restore_item(deleted.item_id)
    third = mirror.night("night-3")
    assert_files_match_ground_truth(sim, third["files"], object_keys(s3, bucket))
    assert [(e["item_id"], e["action"]) for e in third["events"] if e["run_id"] == "night-3"] == [
        (deleted.item_id, EventAction.RESTORED)]
    restored = by_item(third["files"])[deleted.item_id]
    assert restored["status"] == "mirrored" and restored["deleted_at"] is None
    chain = sorted((v for v in third["versions"] if v["item_id"] == deleted.item_id),
                   key=lambda v: v["version_number"])
    assert [v["status"] for v in chain] == ["superseded", "current"]
    # History stays queryable: what each item was at the end of night 1.
    night1_end = max(r["finished_at"] for r in third["runs"] if r["run_id"] == "night-1")
    night2_start = min(r["started_at"] for r in third["runs"] if r["run_id"] == "night-2")
    assert night1_end < night2_start  # the times keep the runs' order, even within one second
    at_night1 = {v["item_id"]: v["version_number"] for v in third["versions"]
                 if v["copied_at"] <= night1_end and (v["superseded_at"] is None or v["superseded_at"] > night1_end)}
    # Every item as night 1 left it (a move re-stamps copied_at, see the schema: not the moved one).
    at_night1.pop(moved.item_id, None)
    assert at_night1 == {r["item_id"]: r["version_number"] for r in first["files"]
                         if r["status"] == "mirrored" and r["item_id"] != moved.item_id}
    assert at_night1[versioned.item_id] == versioned.tip.number
    assert at_night1[renamed.item_id] == renamed.tip.number
    assert len(third["runs"]) == 3 * len(projects)
    tower = next(p for p in third["projects"] if p["project_id"] == project_id)
    assert tower["last_run_id"] == "night-3" and tower["files"] == truth_by_project["Riverside Tower"] + 1
