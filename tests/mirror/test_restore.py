"""Restore end to end: mirror (simulator over HTTP -> moto), break things in Autodesk, restore,
and check every restored byte against the simulator's ground truth."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport, CallCounter
from aps_mirror.aps.uploads import PART_SIZE
from aps_mirror.aps.auth import MemoryTokenStore
from aps_mirror.connection import AuthMode
from aps_mirror.errors import ApsMirrorError, ConfigError
from aps_mirror.mirror.plan import DeleteLimit
from aps_mirror.mirror.restore import Restorer, RestoreRequest
from tests.conftest import FAST_RETRY, connection_for
from tests.mirror.test_engine import PREFIX, run

PROJECT = "Riverside Tower"
FOLDER = ("Project Files", "Structure")
TODAY = "2026-11-30"
WRITE_SCOPES = ("data:read", "data:write", "data:create")
BIG = 12 * 1024 * 1024  # two parts (8 MiB, then 4): the multipart path
WRITES = {"storage", "create_folder", "create_item", "create_version", "signeds3upload", "complete_upload", "upload"}


@pytest.fixture
def writer(simulator) -> ApsClient:
    return ApsClient(ApsTransport(connection_for(simulator, scopes=WRITE_SCOPES), retry_policy=FAST_RETRY))


def mirror(aps, s3, bucket, **config):
    return run(aps, s3, bucket, project_filter=(PROJECT,), max_delete=DeleteLimit(percent=100), **config)


def restore(aps, s3, bucket, **request):
    request.setdefault("projects", (PROJECT,))
    return Restorer(aps, s3, bucket, PREFIX, RestoreRequest(**request), today=TODAY).run()


def files_under(sim, project: str, path: tuple[str, ...]) -> dict[tuple[str, ...], object]:
    """(path below `path`..., name) -> tip version, for the live files under a folder."""
    return {(*f.path[len(path):], f.tip.name): f.tip for f in sim.iter_files()
            if f.project == project and f.path[:len(path)] == path}


def sim_now(sim) -> datetime:
    return datetime.fromtimestamp(sim.clock.now(), tz=timezone.utc)


def test_round_trip_restores_a_deleted_folder_as_of_before_the_changes(simulator, writer, s3, bucket):
    sim = simulator.sim
    project_id = sim.project_id(PROJECT)
    folder_id = sim.folder_id(project_id, FOLDER)
    sim.add_file(project_id, folder_id, "big model.rvt", size=BIG)
    mirror(writer, s3, bucket, versions="all")
    then = files_under(sim, PROJECT, FOLDER)
    assert len(then) >= 5 and any(v.size > 8 * 1024 * 1024 for v in then.values())
    as_of = sim_now(sim)
    sim.advance_clock(60)

    changed = sorted(f.item_id for f in sim.iter_files() if f.project == PROJECT and f.path == FOLDER)[:2]
    for item_id in changed:
        sim.add_version(item_id, size=2345)
    mirror(writer, s3, bucket, versions="all")  # the new tips are mirrored, the old ones kept
    sim.delete_folder(folder_id)
    mirror(writer, s3, bucket, versions="all")  # marked deleted, kept (policy keep)
    assert not files_under(sim, PROJECT, FOLDER)

    with CallCounter.tally() as calls:
        summary = restore(writer, s3, bucket, path="/".join(FOLDER), as_of=as_of)
    assert (summary.files_restored, summary.files_failed, summary.not_restorable) == (len(then), 0, [])
    # Each request went through the transport, counted in its write class; parts of 8 MiB at most.
    sent = calls.snapshot()
    parts = sum(max(1, -(-v.size // PART_SIZE)) for v in then.values())
    assert {k: sent.get(k) for k in ("storage", "create_item", "complete_upload", "upload")} == {
        "storage": len(then), "create_item": len(then), "complete_upload": len(then), "upload": parts}
    assert parts > len(then) and sent["signeds3upload"] == len(then)
    below = {where[:depth] for where in then for depth in range(1, len(where))}  # subfolders of Structure
    assert below and sent["create_folder"] == 2 + len(below)  # "Restored <date>", "Structure", and those
    assert summary.bytes_restored == sum(v.size for v in then.values())
    restored = files_under(sim, PROJECT, ("Project Files", f"Restored {TODAY}", "Structure"))
    assert set(restored) == set(then)
    for where, version in restored.items():
        assert sim.file_bytes(version.id) == sim.file_bytes(then[where].id), where
        assert sim.sha1(version.id) == sim.sha1(then[where].id)
    for item_id in changed:  # the restored bytes are those of then, not of the later version
        later = sim.account.item(item_id).versions[-2]  # the last before the delete's tombstone
        [(where, _)] = [(w, v) for w, v in then.items() if v.item.id == item_id]
        assert later.size == 2345 and sim.file_bytes(restored[where].id) != sim.file_bytes(later.id)

    # The next mirror copies the restored files as new items, and nothing else.
    downloads = sim.stats()["downloads"]
    after = mirror(writer, s3, bucket, versions="all")
    assert after.files_copied == len(then) and after.files_failed == 0
    assert sim.stats()["downloads"] - downloads == len(then)

    # A rerun restores nothing twice.
    again = restore(writer, s3, bucket, path="/".join(FOLDER), as_of=as_of)
    assert (again.files_restored, again.files_skipped, again.files_failed) == (0, len(then), 0)
    assert files_under(sim, PROJECT, ("Project Files", f"Restored {TODAY}", "Structure")).keys() == then.keys()


def test_dry_run_writes_nothing(simulator, writer, s3, bucket):
    mirror(writer, s3, bucket)
    before = writer.transport.counter.snapshot()
    summary = restore(writer, s3, bucket, path="/".join(FOLDER), dry_run=True)
    expected = files_under(simulator.sim, PROJECT, FOLDER)
    assert summary.files_restored == len(expected) and summary.files_failed == 0
    assert {p["target"] for p in summary.restored} == {
        "/".join(("Project Files", f"Restored {TODAY}", "Structure", *where)) for where in expected}
    calls = writer.transport.counter.snapshot()
    assert not {k for k in calls if calls[k] != before.get(k, 0)} & WRITES
    assert not files_under(simulator.sim, PROJECT, ("Project Files", f"Restored {TODAY}"))


def test_in_place_brings_a_deleted_item_back_once(simulator, writer, s3, bucket):
    sim = simulator.sim
    mirror(writer, s3, bucket)
    target = next(f for f in sim.iter_files() if f.project == PROJECT and f.path == FOLDER)
    sim.delete_item(target.item_id)
    mirror(writer, s3, bucket)
    path = "/".join((*FOLDER, target.tip.name))

    summary = restore(writer, s3, bucket, path=path, in_place=True)
    assert (summary.files_restored, summary.files_failed) == (1, 0)
    [back] = [f for f in sim.iter_files() if f.item_id == target.item_id]
    assert back.path == FOLDER and back.tip.number > target.tip.number
    assert sim.sha1(back.tip.id) == sim.sha1(target.tip.id)

    again = restore(writer, s3, bucket, path=path, in_place=True)
    assert (again.files_restored, again.files_skipped) == (0, 1)
    assert sim.account.item(target.item_id).tip.id == back.tip.id


def test_a_version_not_kept_is_reported_not_replaced(simulator, writer, s3, bucket):
    sim = simulator.sim
    mirror(writer, s3, bucket)  # versions=tip: earlier versions are not kept
    as_of = sim_now(sim)
    sim.advance_clock(60)
    target = next(f for f in sim.iter_files() if f.project == PROJECT and f.path == FOLDER)
    sim.add_version(target.item_id, size=999)
    mirror(writer, s3, bucket)
    summary = restore(writer, s3, bucket, path="/".join((*FOLDER, target.tip.name)), as_of=as_of)
    assert summary.files_restored == 0
    [refused] = summary.not_restorable
    assert refused["item_id"] == target.item_id and "cannot be restored as of that time" in refused["reason"]


def test_a_path_that_matches_nothing_is_refused(simulator, writer, s3, bucket):
    mirror(writer, s3, bucket)
    with pytest.raises(ConfigError, match="No mirrored file of the projects Riverside Tower is under "
                                          "Project Files/Nope"):
        restore(writer, s3, bucket, path="Project Files/Nope")


def test_missing_write_scope_is_one_clear_error(simulator, aps, s3, bucket):
    mirror(aps, s3, bucket)
    with pytest.raises(ConfigError, match="needs the scopes data:write and data:create"):
        restore(aps, s3, bucket, path="/".join(FOLDER))
    calls = aps.transport.counter.snapshot()
    assert not set(calls) & WRITES


def test_a_user_who_granted_only_read_is_one_clear_error(simulator, s3, bucket):
    # The connection asks for the write scopes; the person who authorized it granted data:read.
    reader = ApsClient(ApsTransport(connection_for(simulator), retry_policy=FAST_RETRY))
    mirror(reader, s3, bucket)
    store = MemoryTokenStore(simulator.sim.user_tokens("data:read")["refresh_token"])
    user = ApsClient(ApsTransport(connection_for(simulator, auth_mode=AuthMode.AUTHORIZATION_CODE,
                                                 scopes=WRITE_SCOPES), store, retry_policy=FAST_RETRY))
    with pytest.raises(ApsMirrorError) as refused:
        restore(user, s3, bucket, path="/".join(FOLDER))
    assert isinstance(refused.value, ConfigError) and "\n" not in str(refused.value)
    assert "its token lacks data:write or data:create" in str(refused.value)
    assert not files_under(simulator.sim, PROJECT, ("Project Files", f"Restored {TODAY}"))


def test_a_version_the_mirror_never_saw_is_not_replaced_by_an_earlier_one(simulator, writer, s3, bucket):
    sim = simulator.sim
    mirror(writer, s3, bucket, versions="all")
    target = next(f for f in sim.iter_files() if f.project == PROJECT and f.path == FOLDER)
    sim.advance_clock(60)
    sim.add_version(target.item_id, size=1111)  # current at as_of, never mirrored as a tip...
    as_of = sim_now(sim)
    sim.advance_clock(60)
    sim.add_version(target.item_id, size=2222)
    mirror(writer, s3, bucket)  # ...nor kept: this run keeps tips only
    summary = restore(writer, s3, bucket, path="/".join((*FOLDER, target.tip.name)), as_of=as_of)
    assert summary.files_restored == 0
    [refused] = summary.not_restorable
    assert refused["item_id"] == target.item_id and "never saw" in refused["reason"]


def test_a_failed_file_is_reported_and_the_rerun_finishes_the_job(simulator, writer, s3, bucket):
    sim = simulator.sim
    mirror(writer, s3, bucket)
    expected = files_under(sim, PROJECT, FOLDER)
    sim.inject_fault("upload", status=500, count=None)  # every part PUT fails, after the retries
    first = restore(writer, s3, bucket, path="/".join(FOLDER))
    assert (first.files_restored, first.files_failed) == (0, len(expected))
    assert all("500" in f["error"] for f in first.failed)
    sim.clear_faults()
    sim.inject_fault("create_item", status=503, count=2)  # transient: the transport retries
    second = restore(writer, s3, bucket, path="/".join(FOLDER))
    assert (second.files_restored, second.files_failed, second.files_skipped) == (len(expected), 0, 0)
    restored = files_under(sim, PROJECT, ("Project Files", f"Restored {TODAY}", "Structure"))
    assert {w: sim.sha1(v.id) for w, v in restored.items()} == {w: sim.sha1(v.id) for w, v in expected.items()}


def test_in_place_as_of_makes_the_earlier_bytes_a_new_version(simulator, writer, s3, bucket):
    sim = simulator.sim
    mirror(writer, s3, bucket, versions="all")
    target = next(f for f in sim.iter_files() if f.project == PROJECT and f.path == FOLDER)
    as_of = sim_now(sim)
    sim.advance_clock(60)
    bad = sim.add_version(target.item_id, size=3333)
    mirror(writer, s3, bucket, versions="all")
    path = "/".join((*FOLDER, target.tip.name))
    summary = restore(writer, s3, bucket, path=path, as_of=as_of, in_place=True)
    assert (summary.files_restored, summary.files_failed) == (1, 0)
    tip = sim.account.item(target.item_id).tip
    assert tip.id not in (bad, target.tip.id) and sim.sha1(tip.id) == sim.sha1(target.tip.id)
    again = restore(writer, s3, bucket, path=path, as_of=as_of, in_place=True)
    assert (again.files_restored, again.files_skipped) == (0, 1)


def test_a_parallel_restore_creates_each_folder_once(simulator, writer, s3, bucket):
    import threading

    sim = simulator.sim
    project_id = sim.project_id(PROJECT)
    bulk = sim.add_folder(project_id, sim.folder_id(project_id, ("Project Files",)), "Bulk")
    folders = {(): bulk}
    for path in (("A",), ("B",), ("A", "Deep"), ("A", "Deep", "Deeper"), ("C",)):
        folders[path] = sim.add_folder(project_id, folders[path[:-1]], path[-1])
    for path, folder_id in folders.items():  # many files in each folder: many workers reach it at once
        for number in range(3):  # the simulator takes about a second to create an item
            sim.add_file(project_id, folder_id, f"sheet {number}.pdf", size=1000 + number)
    mirror(writer, s3, bucket)
    then = files_under(sim, PROJECT, ("Project Files", "Bulk"))
    assert len(then) == 18
    sim.delete_folder(bulk)

    restorer = Restorer(writer, s3, bucket, PREFIX, RestoreRequest(projects=(PROJECT,), path="Project Files/Bulk"),
                        today=TODAY, workers=8)
    # The first two uploads wait for each other: they pass only when uploads run in parallel.
    both_uploading, upload = threading.Barrier(2, timeout=60), restorer.uploader.upload
    started = []

    def upload_together(*args, **kwargs):
        started.append(1)
        if len(started) <= 2:
            both_uploading.wait()
        return upload(*args, **kwargs)

    restorer.uploader.upload = upload_together
    with CallCounter.tally() as calls:
        summary = restorer.run()
    assert (summary.files_restored, summary.files_failed) == (18, 0), summary.failed
    # "Restored <date>", "Bulk" and its five folders: each created once (Autodesk refuses a second).
    assert calls.snapshot()["create_folder"] == 2 + 5
    restored = files_under(sim, PROJECT, ("Project Files", f"Restored {TODAY}", "Bulk"))
    assert {w: sim.sha1(v.id) for w, v in restored.items()} == {w: sim.sha1(v.id) for w, v in then.items()}
    assert [r["path"] for r in summary.restored] == sorted(r["path"] for r in summary.restored), \
        "the summary lists the files in the plan's order"
