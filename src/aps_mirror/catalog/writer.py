"""Writes the catalog next to the mirror: the engine's CatalogSink, and the snapshot publisher.

Atomicity (see docs/catalog.md):
- `runs` and `events` hold one object per run and table, `<table>/run_date=<date>/<run_id>.parquet`.
  The engine never writes them: `record_project_run` stages each project's record (its run
  row and its events, one Parquet object, one PUT; a scan's unchanged projects share one)
  under `_aps_mirror/catalog_staging/`,
  which no reader lists. `publish_snapshot` (once at the end of a run) first folds the
  staged records: for each run, one PUT of its `events` object, then one of its `runs`
  object, each merged with the run's object already there (a late record, a retried task,
  a publish that stopped before removing what it folded), rows deduplicated by `record_id`
  and `event_id`; only then are the folded staged objects deleted. A reader sees a run
  entirely or not at all, and a `runs` row implies its events are readable.
- `files`, `versions`, `folders` (one object per hub) and `projects` (one object) are
  rebuilt by `publish_snapshot` and each object is replaced by one PUT under the same key:
  a listing never shows a table twice or half-written. Partitions of hubs no longer mirrored
  are deleted after the new objects are in place.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from aps_mirror.catalog import parquet, reader
from aps_mirror.catalog.layout import (key_safe, partitions_of, run_object_key, run_object_name,
                                       schema_key, staged_key, staging_prefix, table_prefix)
from aps_mirror.catalog.records import CatalogEvent, ProjectRun
from aps_mirror.catalog.schema import (EVENTS, HOOKS, HUB_PARTITION, PROJECTS, RUN_DATE_PARTITION, RUNS,
                                       SNAPSHOT_TABLES, TABLES, VERIFICATIONS, schema_document)
from aps_mirror.catalog.snapshot import Row, build_snapshot, id_columns
from aps_mirror.errors import ConfigError, s3_write
from aps_mirror.mirror.manifest import Manifest, ManifestStore
from aps_mirror.mirror.verify_report import CATEGORIES, VerifyReport

if TYPE_CHECKING:
    from aps_mirror.mirror.webhooks import EnsureReport

log = logging.getLogger(__name__)

# A staged record is a Parquet file of `events` rows; its run row rides in the file's
# key-value metadata as JSON, so one PUT stages the whole record. Records staged together (a
# scan's unchanged projects) share one file: the metadata then holds a list of run rows.
STAGED_RUN_KEY = b"aps_mirror.staged_run"
STAGED_BATCH = 1000  # records per staged file at most (its footer holds their run rows)
# Airflow names the runs an asset event starts `asset_triggered__...`: the live DAG's, started by
# Autodesk's change events. Every other run (scheduled, manual, the CLI's) counts as nightly.
LIVE_RUN_PREFIX = "asset_triggered__"
DELETE_BATCH = 1000  # S3 DeleteObjects limit
VANISHED, UNREADABLE = "vanished", "unreadable"


@dataclass
class FoldResult:
    """What one fold of the staging area did."""

    runs: list[str] = field(default_factory=list)  # run_ids whose runs/events objects were written
    records: int = 0  # staged project records folded (and removed from the staging area)
    events: int = 0  # events in those records
    unreadable: list[str] = field(default_factory=list)  # staged keys left in place (see the log)
    run_rows: list[Row] = field(default_factory=list, repr=False)  # the folded runs rows

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "records": self.records, "events": self.events,
                "unreadable": self.unreadable}

    def summary(self) -> str:
        text = f"folded {self.records} staged record(s), {self.events} event(s), into {len(self.runs)} run(s)"
        return text + (f"; {len(self.unreadable)} unreadable, left staged" if self.unreadable else "")


@dataclass
class _Staged:
    key: str
    run: pa.Table  # a row per project record (of one run), RUNS file schema
    events: pa.Table  # EVENTS file schema


class CatalogWriter:
    """The catalog of the mirror at s3://bucket/prefix; pass it to MirrorEngine(catalog=...)."""

    def __init__(self, s3: Any, bucket: str, prefix: str, *, run_history_days: int = 35,
                 fold_lookback_days: int = 7) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        # How far back publish_snapshot reads `runs` for the projects' last_run_* columns;
        # older facts carry over from the previous snapshot.
        self.run_history_days = run_history_days
        # How many days before a staged record's start a fold looks for its run's object (a
        # task retried, or a publish that ran, days after the run began); a run whose object
        # is older than that gets a second object in its newer partition (no row is lost).
        self.fold_lookback_days = fold_lookback_days
        self.last_fold: FoldResult | None = None  # what the latest fold_staged did

    # -- runs and events: staged by each project, folded by the publish ---------------------
    def record_project_run(self, run: ProjectRun, events: list[CatalogEvent]) -> None:
        """Stage one project's run row and its events (CatalogSink): one object, one PUT,
        invisible to readers until `publish_snapshot` (or `fold_staged`) folds it."""
        self.record_project_runs([(run, events)])

    def record_project_runs(self, records: list[tuple[ProjectRun, list[CatalogEvent]]]) -> None:
        """Stage several projects' records (CatalogSink) as one object per run and
        STAGED_BATCH records: a scan's thousand unchanged projects are one PUT, not a thousand."""
        by_run: dict[str, list[tuple[ProjectRun, list[CatalogEvent]]]] = defaultdict(list)
        for run, events in records:
            by_run[run.run_id].append((run, events))
        for run_id, of_run in by_run.items():
            for start in range(0, len(of_run), STAGED_BATCH):
                self._stage(run_id, of_run[start:start + STAGED_BATCH])

    def _stage(self, run_id: str, records: list[tuple[ProjectRun, list[CatalogEvent]]]) -> None:
        run_rows, event_rows = [], []
        for run, events in records:
            started = parquet.to_datetime(run.started_at) or datetime.now(timezone.utc)
            record_id = (f"{key_safe(run.project_id)}__{started.strftime('%Y%m%dT%H%M%SZ')}-"
                         f"{uuid.uuid4().hex[:12]}")
            run_rows.append(self._run_row(run, record_id))
            event_rows += self._event_rows(run, events, record_id)
        # One record: its run row alone, as aps-mirror always wrote it; several: a list of them.
        staged_runs = run_rows[0] if len(run_rows) == 1 else run_rows
        body = parquet.encode(EVENTS, event_rows, {
            STAGED_RUN_KEY: json.dumps(staged_runs, default=str, ensure_ascii=False).encode("utf-8")})
        self._put(staged_key(self.prefix, run_id, run_rows[0]["record_id"]), body)

    @staticmethod
    def _run_row(run: ProjectRun, record_id: str) -> Row:
        row = run.to_dict()
        started, finished = parquet.to_datetime(run.started_at), parquet.to_datetime(run.finished_at)
        row.update(id_columns(run.hub_id, run.hub_name, run.project_id, run.project_name))
        row["duration_seconds"] = (finished - started).total_seconds() if started and finished else None
        row["error_count"] = len(run.errors)
        row["record_id"] = record_id
        return row

    @staticmethod
    def _event_rows(run: ProjectRun, events: list[CatalogEvent], record_id: str) -> list[Row]:
        rows = []
        for n, event in enumerate(events):
            row = event.to_dict()
            row.update(id_columns(event.hub_id, run.hub_name, event.project_id, run.project_name))
            row["source"] = run.source
            row["s3_key"], row["previous_s3_key"] = event.key, event.previous_key
            row["record_id"], row["event_id"] = record_id, f"{record_id}#{n}"
            rows.append(row)
        return rows

    def staged_keys(self) -> list[str]:
        """Keys of the staged records not folded yet."""
        root = staging_prefix(self.prefix)
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=root):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
        return keys

    def fold_staged(self) -> FoldResult:
        """Fold every staged record into its run's `runs` and `events` objects (one PUT per run
        and table, merged with the object already there, rows deduplicated by record_id and
        event_id), then delete the staged objects folded. Safe to repeat: a fold interrupted
        anywhere leaves the staged objects, and the next fold neither loses nor doubles rows."""
        result = self.last_fold = FoldResult()
        keys = self.staged_keys()
        if not keys:
            return result
        with ThreadPoolExecutor(max_workers=reader.FETCH_WORKERS) as pool:
            loaded = list(pool.map(self._read_staged, keys))
        by_run: dict[str, list[_Staged]] = defaultdict(list)
        for key, staged in zip(keys, loaded):
            if isinstance(staged, _Staged):
                by_run[staged.run.column("run_id")[0].as_py()].append(staged)
            elif staged == UNREADABLE:
                result.unreadable.append(key)
        if not by_run:
            return result
        first_days = {run_id: _first_day(records) for run_id, records in by_run.items()}
        since = min(first_days.values()) - timedelta(days=self.fold_lookback_days)
        existing = {table: self._objects_by_name(table, since) for table in (EVENTS.name, RUNS.name)}
        for run_id, records in sorted(by_run.items(), key=lambda item: (first_days[item[0]], item[0])):
            self._fold_run(run_id, records, first_days[run_id], existing, result)
        log.info("catalog: %s", result.summary())
        return result

    def _read_staged(self, key: str) -> _Staged | str:
        """The staged record, or why not: VANISHED (another fold removed it) or UNREADABLE."""
        where = f"s3://{self.bucket}/{key}"
        try:
            data = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            found = parquet.read(data, where)
            run_rows = json.loads((found.schema.metadata or {})[STAGED_RUN_KEY])
            if isinstance(run_rows, dict):
                run_rows = [run_rows]
            return _Staged(key, parquet.to_arrow(RUNS, run_rows), parquet.align(EVENTS, found))
        except ConfigError:
            raise  # written by a newer aps-mirror: upgrade, do not skip it
        except self.s3.exceptions.NoSuchKey:
            return VANISHED  # folded and removed by another publish since the listing
        except Exception as exc:  # one bad object must not stop the catalog: keep it, say so
            log.error("catalog: cannot read the staged record %s (%s); left in place", where, exc)
            return UNREADABLE

    def _objects_by_name(self, table: str, since: date) -> dict[str, list[str]]:
        """The table's objects from `since` on, by object name (a run's name is its run_id)."""
        found: dict[str, list[str]] = defaultdict(list)
        for key in reader.list_objects(self.s3, self.bucket, self.prefix, table, since=since):
            found[key.rsplit("/", 1)[1]].append(key)
        return found

    def _fold_run(self, run_id: str, records: list[_Staged], first_day: date,
                  existing: dict[str, dict[str, list[str]]], result: FoldResult) -> None:
        name = run_object_name(run_id)
        old = {table: existing[table].get(name, []) for table in (EVENTS.name, RUNS.name)}
        # A run keeps the partition it was first folded into, so its rows stay in one object.
        placed = old[RUNS.name] or old[EVENTS.name]
        day = date.fromisoformat(partitions_of(placed[0])[RUN_DATE_PARTITION.name]) if placed else first_day
        written = {}
        for table, spec, key_column, new in (
                (EVENTS.name, EVENTS, "event_id", [r.events for r in records]),
                (RUNS.name, RUNS, "record_id", [r.run for r in records])):  # events first
            parts = [parquet.decode_file(spec, self._get(key), f"s3://{self.bucket}/{key}")
                     for key in old[table]] + new
            merged = _first_of_each(pa.concat_tables(parts), key_column)
            key = run_object_key(self.prefix, table, day, run_id)
            if merged.num_rows or old[table]:
                self._put(key, parquet.write(merged))
                written[table] = key
        for table, keys in old.items():  # objects of the run elsewhere: now in the one written
            for key in keys:
                if key != written.get(table):
                    self.s3.delete_object(Bucket=self.bucket, Key=key)
        self._delete([r.key for r in records])
        result.runs.append(run_id)
        result.records += sum(r.run.num_rows for r in records)
        result.events += sum(r.events.num_rows for r in records)
        result.run_rows += pa.concat_tables([r.run for r in records]).to_pylist()

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start:start + DELETE_BATCH]
            answer = self.s3.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in batch], "Quiet": True})
            for error in answer.get("Errors", []):  # folded already: the next fold dedupes it
                log.warning("catalog: could not remove the folded record %s (%s)", error.get("Key"),
                            error.get("Message"))

    # -- snapshot: files, versions, folders, projects -------------------------------------
    def publish_snapshot(self, manifests: list[Manifest] | None = None, *,
                         now: datetime | None = None) -> dict[str, int]:
        """Fold the staged project records into `runs` and `events` (`fold_staged`; what it
        did is in `last_fold`), then rebuild the snapshot tables from the manifests (all of
        the mirror's, by default; the partitions of hubs without a manifest among them are
        removed).

        Returns each snapshot table's row count, e.g. {"files": 120, "versions": 131, ...}.
        """
        now = now or datetime.now(timezone.utc)
        folded = self.fold_staged()
        if manifests is None:
            manifests = ManifestStore(self.s3, self.bucket, self.prefix).load_all()
        snapshot = build_snapshot(manifests, bucket=self.bucket, prefix=self.prefix, published_at=now.isoformat(),
                                  project_runs=self._project_runs(now, folded.run_rows))
        hubs = {key_safe(m.hub_id) for m in manifests}
        written: set[str] = set()
        for table in SNAPSHOT_TABLES:
            spec = TABLES[table]
            rows = snapshot.table(table)
            if spec.partition is HUB_PARTITION:
                by_hub: dict[str, list[Row]] = defaultdict(list)
                for row in rows:
                    by_hub[key_safe(row["hub_id"])].append(row)
                for hub in sorted(hubs | set(by_hub)):
                    key = f"{table_prefix(self.prefix, table)}{HUB_PARTITION.name}={hub}/{table}.parquet"
                    self._put(key, parquet.encode(spec, by_hub.get(hub, [])))
                    written.add(key)
            else:
                key = f"{table_prefix(self.prefix, table)}{table}.parquet"
                self._put(key, parquet.encode(spec, rows))
                written.add(key)
        self._remove_stale(written)
        self.write_schema()
        counts = {table: len(snapshot.table(table)) for table in SNAPSHOT_TABLES}
        log.info("catalog published to s3://%s/%s: %s", self.bucket, table_prefix(self.prefix, "")[:-1],
                 ", ".join(f"{n} {t}" for t, n in counts.items()))
        return counts

    def _project_runs(self, now: datetime, folded: list[Row]) -> dict[tuple[str, str], Row]:
        """Each project's last run and last success: the previous snapshot, updated with the
        runs since it (a day's margin for runs that started before it and ended after) and
        with the rows just folded (a late record of an older run lands in that run's older
        partition)."""
        previous = reader.read_table(self.s3, self.bucket, self.prefix, PROJECTS.name).to_pylist()
        start = now - timedelta(days=self.run_history_days)
        published = [r["catalog_published_at"] for r in previous if r["catalog_published_at"]]
        if published:
            start = max(start, min(published) - timedelta(days=1))
        runs = reader.read_table(self.s3, self.bucket, self.prefix, RUNS.name, since=start.date()).to_pylist()
        runs += folded  # some may be in `runs` too: taking a run twice changes nothing below
        facts: dict[tuple[str, str], Row] = {}
        for row in previous:
            if row.get("last_run_id"):
                facts[(row["hub_id"], row["project_id"])] = {
                    k: row[k] for k in ("source", "hub_name", "project_name", "last_run_id", "last_run_started_at",
                                        "last_run_finished_at", "last_run_status", "last_success_at",
                                        "last_error", "last_live_success_at", "last_nightly_success_at")}
        runs = [r for r in runs if r["status"] != "dry_run" and r["finished_at"] is not None]
        for run in sorted(runs, key=lambda r: r["finished_at"]):
            fact = facts.setdefault((run["hub_id"], run["project_id"]), {})
            if run["status"] == "success":  # live or nightly: the later of each kind
                kind = "last_live_success_at" if run["run_id"].startswith(LIVE_RUN_PREFIX) else "last_nightly_success_at"
                if not fact.get(kind) or fact[kind] < run["finished_at"]:
                    fact[kind] = run["finished_at"]
            if fact.get("last_run_finished_at") and fact["last_run_finished_at"] > run["finished_at"]:
                continue  # the previous snapshot knows a later run
            fact.update(source=run["source"], hub_name=run["hub_name"], project_name=run["project_name"],
                        last_run_id=run["run_id"], last_run_started_at=run["started_at"],
                        last_run_finished_at=run["finished_at"], last_run_status=run["status"],
                        last_error=run["errors"][-1] if run["errors"] else None)
            if run["status"] == "success":
                fact["last_success_at"] = run["finished_at"]
        return facts

    def _remove_stale(self, keep: set[str]) -> None:
        """Delete snapshot objects the publish did not write (hubs no longer mirrored)."""
        for table in SNAPSHOT_TABLES:
            for key in reader.list_objects(self.s3, self.bucket, self.prefix, table):
                if key not in keep:
                    self.s3.delete_object(Bucket=self.bucket, Key=key)
                    log.info("removed s3://%s/%s: its hub is no longer mirrored", self.bucket, key)

    # -- verifications: one object per verification, written whole --------------------------
    def record_verification(self, report: VerifyReport) -> str:
        """Write a verification's rows (`VerifyReport.parts`: one per project checked, and one for
        what belongs to no project) as one object, in one PUT; returns its key."""
        started, finished = parquet.to_datetime(report.started_at), parquet.to_datetime(report.finished_at)
        common = {"verification_id": report.verification_id, "started_at": started, "finished_at": finished,
                  "duration_seconds": (finished - started).total_seconds() if started and finished else None,
                  "deep": report.deep, "sample": report.sample, "against_autodesk": report.against_autodesk}
        rows = []
        for part in report.parts():
            project = part.project
            ids = (id_columns(project.hub_id, project.hub_name, project.project_id, project.project_name)
                   if project else {})
            rows.append({**common, **ids, "clean": part.clean,
                         "objects_checked": project.objects_checked if project else 0,
                         "objects_read": project.objects_read if project else 0,
                         "bytes_read": project.bytes_read if project else 0,
                         **{c: len(part.findings[c]) for c in CATEGORIES},
                         "error_count": len(part.errors), "errors": part.errors,
                         "findings": json.dumps({c: [f.to_dict() for f in part.findings[c]] for c in CATEGORIES},
                                                ensure_ascii=False)})
        day = (started or datetime.now(timezone.utc)).date()
        key = run_object_key(self.prefix, VERIFICATIONS.name, day, report.verification_id)
        self._put(key, parquet.encode(VERIFICATIONS, rows))
        self.write_schema()  # `_schema.json` describes the table from its first row on
        return key

    # -- hooks: one object, replaced by each check -------------------------------------------
    def record_hooks(self, report: EnsureReport, checked_at: datetime) -> str:
        """The `hooks` table from an ensure (one row per project), in one PUT; returns its key."""
        from aps_mirror.mirror.hook_states import hook_rows

        return self._write_hooks(hook_rows(report, checked_at))

    def record_hooks_failure(self, *, mirror: str, callback_url: str, error: str, checked_at: datetime) -> str:
        """An ensure that reached no project: the projects of the previous check in error (or one
        row for the mirror), so the dashboard does not show yesterday's state as today's."""
        from aps_mirror.mirror.hook_states import failed_rows

        previous = reader.read_table(self.s3, self.bucket, self.prefix, HOOKS.name).to_pylist()
        return self._write_hooks(failed_rows(previous, mirror=mirror, callback_url=callback_url, error=error,
                                             checked_at=checked_at))

    def _write_hooks(self, rows: list[Row]) -> str:
        for row in rows:
            if row["project_id"]:
                row.update(id_columns(row["hub_id"], row["hub_name"], row["project_id"], row["project_name"]))
        key = f"{table_prefix(self.prefix, HOOKS.name)}{HOOKS.name}.parquet"
        self._put(key, parquet.encode(HOOKS, rows))
        self.write_schema()
        return key

    # -- shared ------------------------------------------------------------------------------
    def write_schema(self) -> None:
        """`_schema.json`: the format version, layout and every column's meaning."""
        body = json.dumps(schema_document(), indent=1, ensure_ascii=False).encode("utf-8")
        self._put(schema_key(self.prefix), body, "application/json")

    def _put(self, key: str, body: bytes, content_type: str = "application/vnd.apache.parquet") -> None:
        with s3_write(self.bucket, key, prefix=self.prefix):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def _get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()


def _first_day(records: list[_Staged]) -> date:
    """The UTC date of the earliest start among a run's records (today when none is known)."""
    starts = [s for r in records for s in r.run.column("started_at").to_pylist() if s is not None]
    return min(starts).date() if starts else datetime.now(timezone.utc).date()


def _first_of_each(table: pa.Table, key: str) -> pa.Table:
    """`table` without the rows whose `key` an earlier row has; rows with a null key (written
    before the column existed) are all kept."""
    if table.num_rows == 0:
        return table
    ids = table.column(key)
    index = pa.array(range(table.num_rows), pa.int64())
    firsts = (pa.table({"id": ids, "i": index}).group_by("id", use_threads=False)
              .aggregate([("i", "min")]).column("i_min"))
    return table.filter(pc.or_(pc.is_in(index, value_set=firsts), pc.is_null(ids)))
