"""Each run appears in the catalog whole, as one object per table: projects stage their records,
the publish folds them (merging, without duplicates, whatever it finds already there)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from aps_mirror.catalog import parquet, reader
from aps_mirror.catalog.layout import catalog_prefix, key_safe, staging_prefix
from aps_mirror.catalog.records import EventAction
from aps_mirror.catalog.schema import EVENTS, RUNS
from aps_mirror.catalog import writer as writer_module
from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.mirror.manifest import ManifestStore
from tests.catalog.factories import OTHER_PROJECT, PREFIX, PROJECT, event, manifest, project_run

UTC = timezone.utc
RUN = "scheduled__2025-03-01T02:00:00+00:00"
THIRD_PROJECT = "b.5e6f7a8b-0000-4000-8000-000000000004"


def keys(s3, bucket, table: str) -> list[str]:
    return sorted(reader.list_objects(s3, bucket, PREFIX, table))


def every_key(s3, bucket) -> list[str]:
    return sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                  for o in page.get("Contents", []))


def staged(s3, bucket) -> list[str]:
    return [k for k in every_key(s3, bucket) if k.startswith(staging_prefix(PREFIX))]


def table(s3, bucket, name: str) -> list[dict]:
    return reader.read_table(s3, bucket, PREFIX, name).to_pylist()


def record(writer, project_id: str = PROJECT, *, run_id: str = RUN, items: int = 2, started: str = "02:00:05",
           day: str = "2025-03-01", status: str = "success", **fields) -> None:
    writer.record_project_run(
        project_run(run_id, project_id=project_id, project_name=project_id[-4:], status=status,
                    started_at=f"{day}T{started}+00:00", finished_at=f"{day}T{started[:3]}59:59+00:00", **fields),
        [event(EventAction.COPIED, f"i.{project_id[-4:]}.{n}", run_id=run_id, project_id=project_id,
               at=f"{day}T{started}+00:00", size=n) for n in range(items)])


def assert_no_duplicates(s3, bucket) -> None:
    runs, events = table(s3, bucket, "runs"), table(s3, bucket, "events")
    assert len({r["record_id"] for r in runs}) == len(runs)
    assert len({e["event_id"] for e in events}) == len(events)
    assert {e["record_id"] for e in events} <= {r["record_id"] for r in runs}


def test_staged_records_are_invisible_until_the_publish(s3, bucket, writer, tmp_path):
    record(writer, PROJECT)
    record(writer, OTHER_PROJECT, items=0)
    assert len(staged(s3, bucket)) == 2, "one object, one PUT, per project record"
    assert not [k for k in every_key(s3, bucket) if k.startswith(catalog_prefix(PREFIX) + "/")]
    assert table(s3, bucket, "runs") == [] and table(s3, bucket, "events") == []
    folder = reader.download_catalog(s3, bucket, PREFIX, tmp_path / "catalog")
    assert not list(folder.rglob("*.parquet"))

    writer.publish_snapshot(now=datetime(2025, 3, 1, 6, tzinfo=UTC))
    assert (writer.last_fold.runs, writer.last_fold.records, writer.last_fold.events) == ([RUN], 2, 2)
    assert staged(s3, bucket) == []
    assert len(table(s3, bucket, "runs")) == 2 and len(table(s3, bucket, "events")) == 2


def test_publish_folds_the_projects_of_a_run_into_one_object_per_table(s3, bucket, writer):
    record(writer, PROJECT, items=3)
    record(writer, OTHER_PROJECT, items=0)
    record(writer, THIRD_PROJECT, started="03:10:00", status="failed", errors=["ApiError: 503"])
    record(writer, PROJECT, run_id="manual__2025-03-01T09:00:00+00:00", started="09:00:00")
    folded = writer.fold_staged()
    assert (sorted(folded.runs), folded.records, folded.events) == (
        sorted([RUN, "manual__2025-03-01T09:00:00+00:00"]), 4, 7)
    names = sorted(f"{key_safe(r)}.parquet" for r in folded.runs)
    for name in ("runs", "events"):
        found = keys(s3, bucket, name)
        assert [k.rsplit("/", 1)[1] for k in found] == names, name
        assert all("/run_date=2025-03-01/" in k for k in found)
    runs = table(s3, bucket, "runs")
    assert sorted((r["run_id"] == RUN, r["project_id"], r["status"]) for r in runs) == sorted([
        (True, PROJECT, "success"), (True, OTHER_PROJECT, "success"), (True, THIRD_PROJECT, "failed"),
        (False, PROJECT, "success")])
    assert_no_duplicates(s3, bucket)
    assert staged(s3, bucket) == [] and writer.fold_staged().records == 0, "nothing left to fold"


def test_records_staged_together_are_one_object_and_fold_like_single_ones(s3, bucket, writer, monkeypatch):
    """A scan's unchanged projects: one PUT for all, STAGED_BATCH at most per object."""
    monkeypatch.setattr(writer_module, "STAGED_BATCH", 2)
    quiet = [project_run(RUN, project_id=p, project_name=p[-4:], status="success",
                         started_at="2025-03-01T02:00:01+00:00", finished_at="2025-03-01T02:00:02+00:00")
             for p in (PROJECT, OTHER_PROJECT, THIRD_PROJECT)]
    other_run = project_run("manual__2025-03-01T09:00:00+00:00", project_id=PROJECT, project_name="once",
                            started_at="2025-03-01T09:00:00+00:00", finished_at="2025-03-01T09:00:01+00:00")
    writer.record_project_runs([(run, []) for run in quiet] + [(other_run, [])])
    assert len(staged(s3, bucket)) == 3, "two objects for the run's three records, one for the other run"
    record(writer, PROJECT, started="03:00:00", items=2)  # and a single record, as a sync stages it
    folded = writer.fold_staged()
    assert (folded.records, folded.events, len(folded.run_rows)) == (5, 2, 5)
    assert staged(s3, bucket) == []
    runs = table(s3, bucket, "runs")
    assert sorted((r["run_id"] == RUN, r["project_id"]) for r in runs) == sorted(
        [(True, PROJECT), (True, OTHER_PROJECT), (True, THIRD_PROJECT), (True, PROJECT), (False, PROJECT)])
    assert_no_duplicates(s3, bucket)


def test_run_date_is_the_runs_earliest_start_and_stays_when_records_come_late(s3, bucket, writer):
    record(writer, PROJECT, day="2025-03-01", started="23:59:00")
    record(writer, OTHER_PROJECT, day="2025-03-02", started="00:30:00")  # the same run, after midnight
    writer.fold_staged()
    assert [k.split("/")[-2] for k in keys(s3, bucket, "runs")] == ["run_date=2025-03-01"]
    # A task cleared two days later, and one that started before every folded record:
    record(writer, THIRD_PROJECT, day="2025-03-03", started="10:00:00")
    record(writer, "b.5e6f7a8b-0000-4000-8000-000000000005", day="2025-03-01", started="22:00:00")
    writer.fold_staged()
    assert [k.split("/")[-2] for k in keys(s3, bucket, "runs")] == ["run_date=2025-03-01"]
    assert [k.split("/")[-2] for k in keys(s3, bucket, "events")] == ["run_date=2025-03-01"]
    assert len(table(s3, bucket, "runs")) == 4
    assert_no_duplicates(s3, bucket)


def test_a_late_record_is_merged_by_the_next_publish_without_duplicates(s3, bucket, writer):
    ManifestStore(s3, bucket, PREFIX).save(manifest())
    record(writer, PROJECT, status="failed", errors=["ApiError: 503"], items=1)
    record(writer, OTHER_PROJECT, items=2)
    writer.publish_snapshot(now=datetime(2025, 3, 1, 6, tzinfo=UTC))
    [runs_key] = keys(s3, bucket, "runs")
    before = s3.head_object(Bucket=bucket, Key=runs_key)["ETag"]
    # The failed project's task is retried after the publish, under the same run_id.
    record(writer, PROJECT, started="07:00:00", items=3)
    assert len(table(s3, bucket, "runs")) == 2, "the retry is staged: not visible yet"
    writer.publish_snapshot(now=datetime(2025, 3, 1, 8, tzinfo=UTC))
    assert keys(s3, bucket, "runs") == [runs_key], "same object, replaced in one PUT"
    assert s3.head_object(Bucket=bucket, Key=runs_key)["ETag"] != before
    runs = table(s3, bucket, "runs")
    assert sorted((r["project_id"], r["status"]) for r in runs) == sorted([
        (PROJECT, "failed"), (PROJECT, "success"), (OTHER_PROJECT, "success")])
    assert len(table(s3, bucket, "events")) == 1 + 2 + 3
    assert_no_duplicates(s3, bucket)
    [tower] = [p for p in table(s3, bucket, "projects") if p["project_id"] == PROJECT]
    assert tower["last_run_status"] == "success"


def test_a_late_record_of_a_run_older_than_the_history_window_still_updates_projects(s3, bucket, writer):
    """The retry lands in its run's old partition, which the publish no longer reads: the fold
    hands its rows to the snapshot."""
    ManifestStore(s3, bucket, PREFIX).save(manifest())
    record(writer, PROJECT, status="failed", errors=["ApiError: 503"])
    writer.publish_snapshot(now=datetime(2025, 3, 1, 6, tzinfo=UTC))
    record(writer, OTHER_PROJECT, run_id="night-2025-03-04", day="2025-03-04")
    writer.publish_snapshot(now=datetime(2025, 3, 4, 6, tzinfo=UTC))
    record(writer, PROJECT, day="2025-03-05", started="10:00:00")  # the 1 March task, cleared on 5 March
    writer.publish_snapshot(now=datetime(2025, 3, 5, 12, tzinfo=UTC))
    [late] = [r for r in table(s3, bucket, "runs") if r["started_at"].day == 5]
    assert late["run_date"].isoformat() == "2025-03-01"
    [tower] = [p for p in table(s3, bucket, "projects") if p["project_id"] == PROJECT]
    assert (tower["last_run_id"], tower["last_run_status"]) == (RUN, "success")
    assert tower["last_success_at"] == datetime(2025, 3, 5, 10, 59, 59, tzinfo=UTC)


def test_a_fold_stopped_before_removing_the_staged_records_is_repeated_without_duplicates(s3, bucket, writer):
    record(writer, PROJECT, items=2)
    record(writer, OTHER_PROJECT, items=3)

    def crash(keys):
        raise ConnectionError("the worker died after the fold's PUTs")

    crashing = CatalogWriter(s3, bucket, PREFIX)
    crashing._delete = crash
    with pytest.raises(ConnectionError):
        crashing.fold_staged()
    assert len(staged(s3, bucket)) == 2 and len(table(s3, bucket, "runs")) == 2, "folded, not removed"

    assert writer.fold_staged().records == 2
    assert staged(s3, bucket) == []
    assert len(table(s3, bucket, "runs")) == 2 and len(table(s3, bucket, "events")) == 5
    assert len(keys(s3, bucket, "runs")) == len(keys(s3, bucket, "events")) == 1
    assert_no_duplicates(s3, bucket)


def test_a_staged_record_folded_twice_is_taken_once(s3, bucket, writer):
    """As if a delete were lost, or the staged object came back: the same record, folded again."""
    record(writer, PROJECT, items=4)
    [key] = staged(s3, bucket)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    writer.publish_snapshot(now=datetime(2025, 3, 1, 6, tzinfo=UTC))
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    record(writer, OTHER_PROJECT, items=1)
    writer.publish_snapshot(now=datetime(2025, 3, 1, 7, tzinfo=UTC))
    assert len(table(s3, bucket, "runs")) == 2 and len(table(s3, bucket, "events")) == 5
    assert_no_duplicates(s3, bucket)


def test_a_fold_stopped_between_the_events_and_the_runs_object(s3, bucket, writer):
    record(writer, PROJECT, items=2)
    crashing = CatalogWriter(s3, bucket, PREFIX)
    put = crashing._put

    def put_then_die(key, body, *args):
        if "/catalog/runs/" in key:
            raise ConnectionError("gone before the runs object")
        put(key, body, *args)

    crashing._put = put_then_die
    with pytest.raises(ConnectionError):
        crashing.fold_staged()
    assert len(table(s3, bucket, "events")) == 2 and table(s3, bucket, "runs") == []
    writer.fold_staged()
    assert len(table(s3, bucket, "events")) == 2 and len(table(s3, bucket, "runs")) == 1
    assert_no_duplicates(s3, bucket)


def test_a_run_older_than_the_lookback_gets_a_second_object_and_loses_nothing(s3, bucket):
    writer = CatalogWriter(s3, bucket, PREFIX, fold_lookback_days=1)
    record(writer, PROJECT, day="2025-03-01")
    writer.fold_staged()
    record(writer, OTHER_PROJECT, day="2025-03-09")
    writer.fold_staged()
    assert [k.split("/")[-2] for k in keys(s3, bucket, "runs")] == ["run_date=2025-03-01", "run_date=2025-03-09"]
    assert len(table(s3, bucket, "runs")) == 2
    assert_no_duplicates(s3, bucket)


def test_objects_of_the_older_layout_are_still_read(s3, bucket, writer):
    """Before staging, each project run wrote its own objects; they stay where they are."""
    day, started = "2025-02-27", datetime(2025, 2, 27, 2, tzinfo=UTC)
    name = f"old-run__{PROJECT}__20250227T020000Z-0123abcd.parquet"
    run_row = {**project_run("old-run").to_dict(), "started_at": started, "finished_at": started, "errors": []}
    event_row = event(EventAction.COPIED, run_id="old-run").to_dict()
    old_runs = f"{PREFIX}/_aps_mirror/catalog/runs/run_date={day}/{name}"
    old_events = f"{PREFIX}/_aps_mirror/catalog/events/run_date={day}/{name}"
    s3.put_object(Bucket=bucket, Key=old_runs, Body=parquet.encode(RUNS, [run_row]))
    s3.put_object(Bucket=bucket, Key=old_events, Body=parquet.encode(EVENTS, [event_row]))
    record(writer, PROJECT, day="2025-02-28")
    writer.fold_staged()
    assert old_runs in keys(s3, bucket, "runs") and old_events in keys(s3, bucket, "events")
    runs = {r["run_id"]: r for r in table(s3, bucket, "runs")}
    assert set(runs) == {"old-run", RUN} and runs["old-run"]["record_id"] is None
    assert runs["old-run"]["run_date"].isoformat() == day
    assert len(table(s3, bucket, "events")) == 3
    since = reader.read_table(s3, bucket, PREFIX, "runs", since=datetime(2025, 2, 28).date())
    assert since.column("run_id").to_pylist() == [RUN]


def test_an_unreadable_staged_object_is_left_in_place_and_the_rest_is_folded(s3, bucket, writer):
    record(writer, PROJECT)
    bad = f"{staging_prefix(PREFIX)}{key_safe(RUN)}/broken.parquet"
    s3.put_object(Bucket=bucket, Key=bad, Body=b"not parquet")
    folded = writer.fold_staged()
    assert (folded.records, folded.unreadable) == (1, [bad])
    assert staged(s3, bucket) == [bad] and len(table(s3, bucket, "runs")) == 1
