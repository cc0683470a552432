"""Incremental behaviour: rollup pruning, delete policies and guards, retries, races."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aps_mirror.mirror.keys import safe_segment
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine
from aps_mirror.mirror.manifest import ManifestConflict
from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy
from tests.mirror.test_engine import PREFIX, assert_exact_mirror, mirrored, object_keys, run


def calls(simulator) -> dict[str, int]:
    return dict(simulator.sim.stats()["requests"])


def test_unchanged_night_costs_one_call_per_project(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    simulator.sim.reset_stats()
    summary = run(aps, s3, bucket)
    assert summary.files_copied == 0 and summary.folders_listed == 0
    assert summary.files_skipped == len(list(simulator.sim.iter_files()))
    served = calls(simulator)
    assert served.get("folder", 0) == 3, "one root-folder read per project"
    assert "folder_contents" not in served and "top_folders" not in served


def test_a_change_deep_down_lists_only_the_path_to_it(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    deep = max(simulator.sim.iter_files(), key=lambda f: len(f.path))
    project_id = simulator.sim.project_id(deep.project)
    simulator.sim.add_file(project_id, simulator.sim.folder_id(project_id, deep.path), "new.txt", size=10)
    simulator.sim.reset_stats()
    summary = run(aps, s3, bucket)
    assert summary.files_copied == 1
    # Only the folders on the path from the top folder to the change are listed again.
    assert calls(simulator)["folder_contents"] == len(deep.path) == summary.folders_listed
    assert summary.folders_pruned > 0
    assert_exact_mirror(simulator, s3, bucket)


def test_full_walk_lists_everything(simulator, aps, s3, bucket):
    first = run(aps, s3, bucket)
    again = run(aps, s3, bucket, full_walk=True)
    assert again.folders_listed == first.folders_listed and again.folders_pruned == 0
    assert again.files_copied == 0


def test_failed_copy_is_retried_although_the_rollup_did_not_move(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    target = next(iter(simulator.sim.iter_files()))
    simulator.sim.add_version(target.item_id, size=2048)
    simulator.sim.inject_fault("download", 500, count=1000)
    failed = run(aps, s3, bucket)
    assert failed.files_failed == 1
    simulator.sim.clear_faults()
    retried = run(aps, s3, bucket)  # nothing changed in Autodesk since the failed run
    assert retried.files_copied == 1 and retried.files_failed == 0
    assert_exact_mirror(simulator, s3, bucket)


def test_delete_policy_delete_removes_the_object(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    target = next(iter(simulator.sim.iter_files()))
    key = mirrored(s3, bucket)[target.item_id]["key"]
    simulator.sim.delete_item(target.item_id)
    summary = run(aps, s3, bucket, delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(count=5))
    assert summary.files_deleted == 1
    assert key not in object_keys(s3, bucket) and target.item_id not in mirrored(s3, bucket)
    assert_exact_mirror(simulator, s3, bucket)


def test_delete_policy_trash_moves_the_object_under_a_dated_prefix(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    target = next(iter(simulator.sim.iter_files()))
    key = mirrored(s3, bucket)[target.item_id]["key"]
    simulator.sim.delete_item(target.item_id)
    run(aps, s3, bucket, delete_policy=DeletePolicy.TRASH, max_delete=DeleteLimit(count=5))
    assert key not in object_keys(s3, bucket)
    trash = s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_aps_mirror/trash/")["Contents"]
    assert [o["Key"].split("/", 4)[-1] for o in trash] == [key]


def test_max_delete_refuses_and_says_why(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    victims = [f for f in simulator.sim.iter_files() if f.project == "Drone Gimbal"][:3]
    keys = {mirrored(s3, bucket)[v.item_id]["key"] for v in victims}
    for victim in victims:
        simulator.sim.delete_item(victim.item_id)
    summary = run(aps, s3, bucket, delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(count=2))
    assert summary.files_deleted == 0
    assert "exceed max_delete=2" in summary.deletes_refused
    assert keys <= object_keys(s3, bucket)
    percent = run(aps, s3, bucket, delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit.parse("10%"))
    assert percent.files_deleted == 0, "3 of 12 files is 25%"
    allowed = run(aps, s3, bucket, delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit.parse("30%"))
    assert allowed.files_deleted == 3 and not keys & object_keys(s3, bucket)


def test_no_deletes_after_an_error(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    files = [f for f in simulator.sim.iter_files() if f.project == "Drone Gimbal"]
    simulator.sim.delete_item(files[0].item_id)
    simulator.sim.add_version(files[1].item_id, size=99)
    simulator.sim.inject_fault("download", 500, count=1000)
    summary = run(aps, s3, bucket, delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(count=10))
    assert summary.files_failed == 1 and summary.files_deleted == 0
    assert "error" in summary.deletes_refused
    assert mirrored(s3, bucket)[files[0].item_id]["key"] in object_keys(s3, bucket)


def test_a_restored_item_is_mirrored_again(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    target = next(iter(simulator.sim.iter_files()))
    simulator.sim.delete_item(target.item_id)
    run(aps, s3, bucket)
    assert mirrored(s3, bucket)[target.item_id]["deleted_at"]
    simulator.sim.add_version(target.item_id, size=321)  # a new version brings it back
    summary = run(aps, s3, bucket)
    assert summary.files_copied == 1
    assert not mirrored(s3, bucket)[target.item_id]["deleted_at"]
    assert_exact_mirror(simulator, s3, bucket)


def test_racing_runs_cannot_lose_an_update(simulator, aps, s3, bucket):
    engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix=PREFIX))
    project = next(p for p in engine.list_projects() if p.project_name == "Drone Gimbal")
    engine.sync_project(project)
    first = engine.manifests.load(project)
    second = engine.manifests.load(project)
    first.unavailable["urn:example"] = {"reason": "changed by the first run"}
    engine.manifests.save(first)
    with pytest.raises(ManifestConflict, match="run again"):
        engine.manifests.save(second)


def test_folder_rename_move_and_delete(simulator, aps, s3, bucket):
    sim = simulator.sim
    run(aps, s3, bucket)
    project_id = sim.project_id("Riverside Tower")
    details = sim.folder_id(project_id, ("Project Files", "Architecture", "Details"))
    sim.rename_folder(details, "Detail Drawings")
    rebar = sim.folder_id(project_id, ("Project Files", "Structure", "Rebar"))
    sim.move_folder(rebar, sim.folder_id(project_id, ("Project Files",)))
    sim.delete_folder(sim.folder_id(project_id, ("Project Files", "Site Photos")))
    downloads = sim.stats()["downloads"]
    summary = run(aps, s3, bucket, delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(count=10))
    assert summary.files_copied == 0, "renamed and moved folders cost no download"
    assert summary.files_renamed >= 5 and summary.files_deleted == 5
    assert sim.stats()["downloads"] == downloads
    keys = object_keys(s3, bucket)
    assert any("/Project Files/Architecture/Detail Drawings/" in k for k in keys)
    assert not any("/Architecture/Details/" in k or "/Site Photos/" in k for k in keys)
    assert any("/Project Files/Rebar/" in k for k in keys)
    assert_exact_mirror(simulator, s3, bucket)
    assert keys == {e["key"] for e in mirrored(s3, bucket).values()}


def test_project_added_and_removed(simulator, aps, s3, bucket):
    sim = simulator.sim
    run(aps, s3, bucket)
    new_project = sim.add_project("Airport Terminal")
    top = sim.folder_id(new_project, ("Project Files",))
    sim.add_file(new_project, top, "Terminal.rvt", size=4096)
    added = run(aps, s3, bucket)
    assert added.files_copied == 1
    assert_exact_mirror(simulator, s3, bucket)

    gone = sim.project_id("Harbor Bridge Retrofit")
    sim.delete_project(gone)
    aps_engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix=PREFIX))
    listed = aps_engine.list_projects()
    results = [aps_engine.sync_project(p) for p in listed]
    # The CLI's and the DAG's rule, in the engine: a run with any unclean project retires nothing.
    unclean = [replace(results[0], errors=["could not list a folder"])] + results[1:]
    assert aps_engine.retire_missing_projects(listed, unclean) == []
    assert aps_engine.retire_missing_projects(listed, [None] + results[1:]) == []  # a sync that never finished
    assert all(not e["deleted_at"] for e in mirrored(s3, bucket).values())
    manifests_read = []
    s3.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: manifests_read.append(params["Key"])
                            if "/_aps_mirror/manifests/" in params["Key"] else None)
    retired = aps_engine.retire_missing_projects(listed, results)
    (result,) = retired
    assert "Harbor Bridge Retrofit" in result.project and result.files_deleted == 13
    # Only the manifest of the project no longer listed is read, however many are listed.
    assert len(manifests_read) == 1 and manifests_read[0].endswith(f"/{safe_segment(gone)}.json"), manifests_read
    entries = mirrored(s3, bucket)
    assert all(e["deleted_at"] for e in entries.values() if "/Harbor Bridge Retrofit/" in e["key"])
    assert_exact_mirror(simulator, s3, bucket)


def test_filters_select_files_and_never_delete_what_they_leave_out(simulator, aps, s3, bucket):
    sim = simulator.sim
    pdfs = {f.item_id for f in sim.iter_files() if f.tip.name.lower().endswith(".pdf")}
    only_pdf = run(aps, s3, bucket, extensions=("pdf",))
    assert only_pdf.files_copied == len(pdfs) and only_pdf.files_excluded > 0
    assert set(mirrored(s3, bucket)) == pdfs

    everything = run(aps, s3, bucket)  # a wider filter walks everything again
    assert everything.files_copied == len(list(sim.iter_files())) - len(pdfs)
    assert_exact_mirror(simulator, s3, bucket)

    # Narrowing the filters later excludes files; it does not delete them.
    narrow = run(aps, s3, bucket, top_folders=("Project Files",), max_file_size=1024 * 1024,
                 delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(count=100))
    assert narrow.files_deleted == 0 and narrow.files_copied == 0
    assert_exact_mirror(simulator, s3, bucket)


def test_top_folder_and_size_selection(simulator, aps, s3, bucket):
    sim = simulator.sim
    summary = run(aps, s3, bucket, top_folders=("Project Files",), max_file_size=1024 * 1024)
    expected = {f.item_id for f in sim.iter_files()
                if f.path and f.path[0] == "Project Files" and (f.tip.size or 0) <= 1024 * 1024}
    assert set(mirrored(s3, bucket)) == expected
    assert summary.files_copied == len(expected)
