"""CatalogWriter -> moto's S3 server -> read back with our reader (DuckDB), pyarrow and DuckDB alone."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from aps_mirror.catalog import parquet, reader
from aps_mirror.catalog.layout import catalog_prefix, key_safe, partitions_of
from aps_mirror.catalog.schema import (CATALOG_FORMAT_VERSION, FORMAT_VERSION_KEY, RUNS, TABLES,
                                       schema_document)
from aps_mirror.errors import ConfigError
from aps_mirror.mirror.manifest import ManifestStore
from aps_mirror.catalog.records import EventAction
from tests.catalog.factories import (ALL_ACTIONS, HUB, PERSONAL_HUB, PREFIX, PROJECT, event, manifest,
                                     personal_manifest, project_run)

NOW = datetime(2025, 3, 1, 6, 0, tzinfo=timezone.utc)
UTC = timezone.utc


def keys(s3, bucket, table: str) -> list[str]:
    return sorted(reader.list_objects(s3, bucket, PREFIX, table))


def rows(con, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor.fetchall()]


# -- runs and events ---------------------------------------------------------------------------
def test_a_published_run_is_one_object_per_table_in_its_date_partition(s3, bucket, writer):
    run = project_run(files_listed=12, files_copied=3, bytes_copied=4096, api_calls=40,
                      api_calls_throttled=2, errors=["Plans/x.pdf: 500"], files_failed=1, status="partial")
    writer.record_project_run(run, [event(a) for a in ALL_ACTIONS])
    writer.fold_staged()
    [run_key] = keys(s3, bucket, "runs")
    [event_key] = keys(s3, bucket, "events")
    assert run_key == f"{PREFIX}/_aps_mirror/catalog/runs/run_date=2025-03-01/{key_safe(run.run_id)}.parquet"
    assert event_key.rsplit("/", 1)[1] == run_key.rsplit("/", 1)[1]
    name = run_key.rsplit("/", 1)[1]
    assert all(c.isalnum() or c in "._-" for c in name), "key-safe: no Hive or URL escaping needed"

    con = reader.connect(s3, bucket, PREFIX)
    [row] = rows(con, "SELECT * FROM runs")
    assert row["run_id"] == run.run_id and row["run_date"].isoformat() == "2025-03-01"
    assert row["bim360_account_id"] == HUB[2:] and row["bim360_project_id"] == PROJECT[2:]
    assert (row["files_copied"], row["bytes_copied"], row["api_calls"], row["api_calls_throttled"]) == (3, 4096, 40, 2)
    assert row["errors"] == ["Plans/x.pdf: 500"] and row["error_count"] == 1
    assert row["duration_seconds"] == 180.0 and row["status"] == "partial" and row["trigger"] == "airflow"
    assert row["started_at"] == datetime(2025, 3, 1, 2, 0, 5, tzinfo=UTC)
    assert row["record_id"].startswith(PROJECT + "__20250301T020005Z-")

    events = rows(con, "SELECT * FROM events ORDER BY action")
    assert sorted(e["action"] for e in events) == sorted(ALL_ACTIONS)
    assert {(e["hub_name"], e["project_name"], e["bim360_project_id"]) for e in events} == {("Acme", "Tower", PROJECT[2:])}
    assert {e["record_id"] for e in events} == {row["record_id"]}
    assert len({e["event_id"] for e in events}) == len(ALL_ACTIONS)
    # Joinable: every event belongs to its run row (the exact attempt, by record_id).
    assert con.execute("SELECT count(*) FROM events JOIN runs USING (record_id, run_date)").fetchone()[0] == len(ALL_ACTIONS)


def test_a_run_without_events_writes_no_events_object(s3, bucket, writer):
    writer.record_project_run(project_run(), [])
    writer.fold_staged()
    assert len(keys(s3, bucket, "runs")) == 1 and keys(s3, bucket, "events") == []
    assert reader.read_table(s3, bucket, PREFIX, "events").schema == TABLES["events"].schema()


def test_the_same_run_recorded_twice_keeps_both_rows(s3, bucket, writer):
    """An Airflow task retried under one run_id must not overwrite the first attempt's record."""
    writer.record_project_run(project_run(status="failed"), [])
    writer.record_project_run(project_run(), [])
    writer.fold_staged()
    assert len(keys(s3, bucket, "runs")) == 1, "one object for the run"
    statuses = reader.read_table(s3, bucket, PREFIX, "runs").column("status").to_pylist()
    assert sorted(statuses) == ["failed", "success"]


def test_since_reads_only_the_days_from_then_on(s3, bucket, writer):
    for day in ("2025-02-27", "2025-02-28", "2025-03-01"):
        writer.record_project_run(project_run(f"run-{day}", started_at=f"{day}T23:59:00+00:00",
                                              finished_at=f"{day}T23:59:30+00:00"), [])
    writer.fold_staged()
    since = datetime(2025, 2, 28).date()
    days = reader.read_table(s3, bucket, PREFIX, "runs", since=since).column("run_date").to_pylist()
    assert sorted(d.isoformat() for d in days) == ["2025-02-28", "2025-03-01"]


# -- snapshot tables ---------------------------------------------------------------------------
@pytest.fixture
def published(s3, bucket, writer) -> dict[str, int]:
    store = ManifestStore(s3, bucket, PREFIX)
    store.save(manifest())
    store.save(personal_manifest())
    return writer.publish_snapshot(now=NOW)


def test_publish_writes_one_object_per_table_and_hub_and_returns_row_counts(s3, bucket, published):
    assert published == {"files": 6, "versions": 7, "folders": 2, "projects": 2}
    for table in ("files", "versions", "folders"):
        assert keys(s3, bucket, table) == sorted(
            f"{PREFIX}/_aps_mirror/catalog/{table}/hub={hub}/{table}.parquet" for hub in (HUB, PERSONAL_HUB))
    assert keys(s3, bucket, "projects") == [f"{PREFIX}/_aps_mirror/catalog/projects/projects.parquet"]


def test_files_say_what_the_mirror_holds_and_why_not(s3, bucket, published):
    con = reader.connect(s3, bucket, PREFIX)
    files = {r["item_id"]: r for r in rows(con, "SELECT * FROM files")}
    assert {i: f["status"] for i, f in files.items()} == {
        "i.model": "mirrored", "i.gone": "deleted", "i.locked": "mirrored", "i.stuck": "outdated",
        "i.cloud": "skipped", "i.sketch": "mirrored"}
    model = files["i.model"]
    assert (model["name"], model["path"], model["file_type"], model["version_number"], model["size"]) == (
        "model.rvt", "Project Files/Arch*/model.rvt", "rvt", 3, 300)
    assert model["s3_key"] == "mirror/Acme/Tower/Project Files/Arch＊/model.rvt" and model["s3_bucket"] == bucket
    assert (model["created_by"], model["modified_by"]) == ("Ann", "Bob")
    assert model["modified_at"] == datetime(2025, 2, 28, 10, tzinfo=UTC)
    assert model["hub"] == HUB and model["bim360_account_id"] == HUB[2:]
    assert model["catalog_published_at"] == NOW
    assert files["i.locked"]["locked"] is True and not model["locked"]
    assert files["i.gone"]["status_reason"] == "no longer in Autodesk"
    assert files["i.gone"]["status_since"] == datetime(2025, 2, 10, 2, tzinfo=UTC)
    assert files["i.stuck"]["status_reason"] == "version 2 not mirrored: no storage: not published"
    assert files["i.stuck"]["version_number"] == 1, "the version the mirror holds"
    cloud = files["i.cloud"]
    assert (cloud["name"], cloud["folder_id"], cloud["s3_key"], cloud["version_number"]) == ("cloud.rvt", "f.arch", None, 1)
    assert cloud["status_reason"] == "cloud model: not downloadable"
    sketch = files["i.sketch"]
    assert sketch["bim360_account_id"] is None and sketch["bim360_project_id"] is None
    assert sketch["name"] == "s.f3d" and sketch["file_type"] == "f3d", "derived from the path for old manifests"


def test_versions_have_validity_intervals(s3, bucket, published):
    con = reader.connect(s3, bucket, PREFIX)
    chain = rows(con, "SELECT * FROM versions WHERE item_id = 'i.model' ORDER BY version_number")
    assert [(v["version_number"], v["status"], v["size"]) for v in chain] == [
        (1, "superseded", 100), (2, "superseded", 200), (3, "current", 300)]
    assert chain[0]["valid_to"] == chain[1]["valid_from"] == datetime(2025, 2, 1, 10, tzinfo=UTC)
    assert chain[1]["valid_to"] == chain[2]["valid_from"] == datetime(2025, 2, 28, 10, tzinfo=UTC)
    assert chain[2]["valid_to"] is None
    assert chain[0]["path"] == "Project Files/old.rvt" and chain[0]["name"] == "old.rvt"
    assert chain[0]["superseded_at"] == datetime(2025, 2, 2, 2, tzinfo=UTC)
    # The version current at a moment, as an analyst asks it.
    at = con.execute("SELECT version_number FROM versions WHERE item_id = 'i.model' AND valid_from <= "
                     "TIMESTAMPTZ '2025-02-15 00:00:00+00' AND (valid_to > TIMESTAMPTZ '2025-02-15 00:00:00+00' "
                     "OR valid_to IS NULL)").fetchall()
    assert at == [(2,)]
    [gone] = rows(con, "SELECT * FROM versions WHERE item_id = 'i.gone'")
    assert gone["status"] == "deleted" and gone["valid_to"] == datetime(2025, 2, 10, 2, tzinfo=UTC)
    [sketch] = rows(con, "SELECT * FROM versions WHERE item_id = 'i.sketch'")
    assert sketch["valid_from"] is None, "no version time and no copy time in an old manifest"


def test_folders_and_projects(s3, bucket, published):
    con = reader.connect(s3, bucket, PREFIX)
    folders = {r["folder_id"]: r for r in rows(con, "SELECT * FROM folders")}
    top, arch = folders["f.top"], folders["f.arch"]
    assert (top["name"], top["path"], top["depth"], top["parent_id"]) == ("Project Files", "Project Files", 1, None)
    assert (arch["name"], arch["path"], arch["depth"], arch["parent_id"]) == ("Arch*", "Project Files/Arch*", 2, "f.top")
    assert arch["s3_prefix"] == "mirror/Acme/Tower/Project Files/Arch＊/"
    assert (top["files"], top["bytes"], arch["files"], arch["bytes"]) == (2, 80, 1, 300), "deleted files not counted"
    assert arch["last_modified_rollup"] is None and top["last_modified_rollup"] == datetime(2025, 3, 1, 1, tzinfo=UTC)

    projects = {r["project_id"]: r for r in rows(con, "SELECT * FROM projects")}
    tower = projects[PROJECT]
    assert (tower["files"], tower["bytes"], tower["deleted_files"], tower["skipped_files"],
            tower["locked_files"], tower["folders"], tower["versions"]) == (3, 380, 1, 2, 1, 2, 6)
    assert tower["s3_prefix"] == "mirror/Acme/Tower/" and tower["bim360_project_id"] == PROJECT[2:]
    assert tower["last_full_walk"] == datetime(2025, 3, 1, 2, 3, tzinfo=UTC)
    assert tower["last_run_id"] is None, "no run recorded yet"


def test_projects_know_their_last_run_and_last_success(s3, bucket, writer):
    ManifestStore(s3, bucket, PREFIX).save(manifest())
    writer.record_project_run(project_run("night-1"), [])
    writer.record_project_run(project_run("night-2", status="failed", errors=["listing", "ApiError: 503"],
                                          started_at="2025-03-02T02:00:00+00:00",
                                          finished_at="2025-03-02T02:00:09+00:00"), [])
    first_only = "b.5e6f7a8b-0000-4000-8000-00000000beef"
    writer.record_project_run(project_run("night-2", project_id=first_only, project_name="New", status="failed",
                                          started_at="2025-03-02T02:00:00+00:00",
                                          finished_at="2025-03-02T02:00:01+00:00"), [])
    writer.publish_snapshot(now=datetime(2025, 3, 2, 6, tzinfo=UTC))
    projects = {r["project_id"]: r for r in rows(reader.connect(s3, bucket, PREFIX), "SELECT * FROM projects")}
    tower = projects[PROJECT]
    assert (tower["last_run_id"], tower["last_run_status"], tower["last_error"]) == ("night-2", "failed", "ApiError: 503")
    assert tower["last_success_at"] == datetime(2025, 3, 1, 2, 3, 5, tzinfo=UTC)
    new = projects[first_only]
    assert (new["project_name"], new["files"], new["last_run_status"]) == ("New", 0, "failed"), \
        "a project whose first sync failed has a row too"

    # Months later the runs are outside the history window: the facts carry over.
    writer.publish_snapshot(now=datetime(2025, 9, 1, tzinfo=UTC))
    again = {r["project_id"]: r for r in rows(reader.connect(s3, bucket, PREFIX), "SELECT * FROM projects")}
    assert again[PROJECT]["last_success_at"] == tower["last_success_at"]
    assert again[PROJECT]["last_run_id"] == "night-2"


def test_publish_replaces_the_snapshot_and_drops_vanished_hubs(s3, bucket, writer, published):
    before = {k: s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in keys(s3, bucket, "files")}
    counts = writer.publish_snapshot([manifest()], now=NOW)  # the personal hub is gone
    assert counts == {"files": 5, "versions": 6, "folders": 2, "projects": 1}
    files_keys = keys(s3, bucket, "files")
    assert files_keys == [f"{PREFIX}/_aps_mirror/catalog/files/hub={HUB}/files.parquet"]
    assert files_keys[0] in before, "same key, replaced in one PUT"
    con = reader.connect(s3, bucket, PREFIX)
    assert con.execute("SELECT count(*), count(DISTINCT item_id) FROM files").fetchone() == (5, 5)


def test_a_hub_without_folders_still_replaces_its_partition(s3, bucket, writer, published):
    emptied = manifest()
    emptied.folders = {}
    writer.publish_snapshot([emptied, personal_manifest()], now=NOW)
    con = reader.connect(s3, bucket, PREFIX)
    assert con.execute("SELECT count(*) FROM folders").fetchone() == (0,)


# -- readable without our code -----------------------------------------------------------------
def test_pyarrow_reads_every_table_straight_from_s3(s3, bucket, writer, published, arrow_s3):
    writer.record_project_run(project_run(), [event(a) for a in ALL_ACTIONS])
    writer.fold_staged()
    base = f"{bucket}/{catalog_prefix(PREFIX)}"
    expected = {"files": 6, "versions": 7, "folders": 2, "projects": 2, "runs": 1, "events": len(ALL_ACTIONS)}
    for table, count in expected.items():
        data = ds.dataset(f"{base}/{table}", filesystem=arrow_s3, format="parquet", partitioning="hive").to_table()
        assert data.num_rows == count, table
        spec = TABLES[table]
        assert set(data.column_names) == {c.name for c in spec.all_columns()}, table
    files = ds.dataset(f"{base}/files", filesystem=arrow_s3, format="parquet", partitioning="hive").to_table()
    assert sorted(set(files.column("hub").to_pylist())) == sorted([HUB, PERSONAL_HUB])


def test_download_then_plain_duckdb_reads_it(s3, bucket, writer, published, tmp_path):
    writer.record_project_run(project_run(), [event(a) for a in ALL_ACTIONS])
    writer.fold_staged()
    folder = reader.download_catalog(s3, bucket, PREFIX, tmp_path / "catalog")
    assert json.loads((folder / "_schema.json").read_text()) == schema_document()
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM read_parquet('{folder}/files/*/*.parquet', hive_partitioning = true) "
                       "WHERE status = 'mirrored'").fetchone() == (3,)
    assert con.execute(f"SELECT run_date::VARCHAR, count(*) FROM read_parquet('{folder}/events/*/*.parquet', "
                       "hive_partitioning = true) GROUP BY ALL").fetchall() == [("2025-03-01", len(ALL_ACTIONS))]
    assert con.execute(f"SELECT sum(files) FROM '{folder}/projects/projects.parquet'").fetchone() == (4,)
    # The helper over the local copy sees what the S3 reader sees.
    local = reader.connect_local(folder)
    remote = reader.connect(s3, bucket, PREFIX)
    for table in TABLES:
        query = f"SELECT * FROM {table} ORDER BY ALL"
        assert local.execute(query).fetchall() == remote.execute(query).fetchall(), table
    assert not list(folder.rglob("*.part"))


# -- versioned schema --------------------------------------------------------------------------
def test_files_carry_the_format_version_and_column_meanings(s3, bucket, writer, published):
    key = keys(s3, bucket, "files")[0]
    schema = pq.read_schema(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    assert schema.metadata[FORMAT_VERSION_KEY] == str(CATALOG_FORMAT_VERSION).encode()
    assert schema.field("bim360_project_id").metadata[b"description"].startswith(b"project_id without")
    assert "hub" not in schema.names, "the partition column lives in the key only (Spark, Athena)"
    stored = reader.read_schema_document(s3, bucket, PREFIX)
    assert stored == schema_document() and stored["catalog_format_version"] == CATALOG_FORMAT_VERSION


def test_a_newer_catalog_format_is_refused_with_advice(s3, bucket, writer):
    writer.record_project_run(project_run(), [])
    writer.fold_staged()
    [key] = keys(s3, bucket, "runs")
    newer = RUNS.file_schema().with_metadata({FORMAT_VERSION_KEY: str(CATALOG_FORMAT_VERSION + 1).encode()})
    buffer = io.BytesIO()
    pq.write_table(newer.empty_table(), buffer)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    with pytest.raises(ConfigError, match="Upgrade aps-mirror"):
        reader.read_table(s3, bucket, PREFIX, "runs")


def test_an_older_file_without_a_newer_column_reads_as_null(s3, bucket, writer):
    writer.record_project_run(project_run(), [])
    writer.fold_staged()
    [key] = keys(s3, bucket, "runs")
    old = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).drop_columns(["deletes_refused", "trigger"])
    buffer = io.BytesIO()
    pq.write_table(old, buffer)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    table = reader.read_table(s3, bucket, PREFIX, "runs")
    assert table.schema == RUNS.schema()
    assert table.column("trigger").to_pylist() == [None] and table.column("run_id").to_pylist() != [None]


def test_rows_carry_their_source_and_old_files_without_it_read_as_docs(s3, bucket, writer):
    vault = manifest()
    vault.hub_id, vault.project_id, vault.source = "vault", "vault-project", "vault"
    writer.record_project_run(project_run(), [event(EventAction.COPIED)])
    writer.record_project_run(project_run(project_id="vault-project", hub_id="vault", source="vault"),
                              [event(EventAction.COPIED, project_id="vault-project")])
    writer.publish_snapshot([manifest(), vault], now=NOW)
    con = reader.connect(s3, bucket, PREFIX)
    for table in ("files", "versions", "folders", "projects", "runs", "events"):
        found = dict(con.execute(f"SELECT project_id, min(source) FROM {table} GROUP BY ALL").fetchall())
        assert found == {PROJECT: "docs", "vault-project": "vault"}, table
        assert con.execute(f"SELECT count(*) FROM {table} WHERE source IS NULL").fetchone() == (0,), table

    # Files written before the column existed (and a staged record of that time) are Docs'.
    for table in ("runs", "events", "files"):
        for key in keys(s3, bucket, table):
            old = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
            buffer = io.BytesIO()
            pq.write_table(old.drop_columns(["source"]), buffer)
            s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    for table in ("runs", "events", "files"):
        read = reader.read_table(s3, bucket, PREFIX, table)
        assert read.schema == TABLES[table].schema()
        assert set(read.column("source").to_pylist()) == {"docs"}, table
    staged_run = project_run(run_id="older-run").to_dict()
    del staged_run["source"]
    assert parquet.to_arrow(RUNS, [staged_run]).column("source").to_pylist() == ["docs"]


def test_encode_accepts_aps_and_python_timestamps():
    data = parquet.encode(RUNS, [{"run_id": "r", "started_at": "2025-03-01T02:00:05.123Z",
                                  "finished_at": datetime(2025, 3, 1, 2, 1), "errors": []}])
    table = parquet.decode(RUNS, data, {"run_date": "2025-03-01"}, "test")
    assert table.column("started_at")[0].as_py() == datetime(2025, 3, 1, 2, 0, 5, 123000, tzinfo=UTC)
    assert table.column("finished_at")[0].as_py() == datetime(2025, 3, 1, 2, 1, tzinfo=UTC)
    assert table.column("run_date").type == pa.date32()
    odd = parquet.decode(RUNS, parquet.encode(RUNS, [{"run_id": "r", "started_at": "yesterday"}]), {}, "test")
    assert odd.column("started_at").to_pylist() == [None], "one odd value must not stop a publish"


def test_key_safe_segments():
    assert key_safe("b.0a1b-2c") == "b.0a1b-2c"
    odd = key_safe("scheduled__2025-03-01T02:00:00+00:00")
    assert odd.startswith("scheduled__2025-03-01T02_00_00_00_00-") and odd != key_safe("scheduled__2025-03-01T02_00_00_00_00")
    assert "/" not in key_safe("a/b") and "=" not in key_safe("x=y") and len(key_safe("x" * 500)) < 100
    assert partitions_of("hub=b.1/run_date=2025-03-01/x.parquet") == {"hub": "b.1", "run_date": "2025-03-01"}
