"""The catalog's tables: every column, its type and meaning, in one place.

Everything else derives from here: the Parquet schemas the writer uses, the schemas the
reader aligns old files to, `_schema.json` in S3, and the table reference in docs/catalog.md
(`python -m aps_mirror.catalog.schema --update-docs docs/catalog.md` regenerates it; a test
fails when the two disagree).

Versioning: CATALOG_FORMAT_VERSION is written into every Parquet file's key-value metadata
and into `_schema.json`. Adding a column keeps the version (older files read as null there);
renaming, removing or retyping a column, or changing the layout so that a reader listing a
table's folder would read it wrong, raises it. (Renaming the objects inside a partition, as
`runs`/`events` did going from one object per project run to one per run, does not: every
reader lists the partition and reads whatever objects are there.)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pyarrow as pa

CATALOG_FORMAT_VERSION = 1
FORMAT_VERSION_KEY = b"aps_mirror.catalog_format_version"
TABLE_KEY = b"aps_mirror.table"

TIMESTAMP = pa.timestamp("us", tz="UTC")
SNAPSHOT, APPEND = "snapshot", "append-only"
LATEST = "replaced by each check"  # one object, rewritten whole by the task that checks


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str
    # What a row without a value holds (a file written before the column existed); None: null.
    default: str | None = None

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, metadata={"description": self.description})


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    kind: str  # SNAPSHOT: rebuilt from the manifests by each publish; APPEND: one object per run
    #            (folded from the staged project records by each publish); LATEST: one object
    #            replaced by each check (not by the publish)
    layout: str  # object keys under the catalog folder
    columns: tuple[Column, ...]
    partition: Column | None = None  # a Hive partition: in the key (`name=value/`), not in the file

    def file_schema(self) -> pa.Schema:
        """The columns stored in each Parquet file, with the format version as metadata."""
        return pa.schema([c.field() for c in self.columns], metadata={
            FORMAT_VERSION_KEY: str(CATALOG_FORMAT_VERSION).encode(), TABLE_KEY: self.name.encode()})

    def schema(self) -> pa.Schema:
        """The table as a reader sees it: the file columns plus the partition column."""
        schema = self.file_schema()
        return schema.append(self.partition.field()) if self.partition else schema

    def all_columns(self) -> tuple[Column, ...]:
        return self.columns + ((self.partition,) if self.partition else ())


def _c(name: str, type_: pa.DataType, description: str, default: str | None = None) -> Column:
    return Column(name, type_, description, default)


HUB_IDS = (
    _c("hub_id", pa.string(), "Autodesk hub id as APS returns it: `b.<uuid>` for BIM 360/ACC, "
       "`a.<id>` for a personal (Fusion/A360) hub."),
    _c("bim360_account_id", pa.string(), "hub_id without its `b.` prefix: the account id of "
       "Autodesk Data Connector tables (`bim360_account_id`). Null for hubs that are not BIM 360/ACC."),
    _c("hub_name", pa.string(), "Hub (account) name in Autodesk."),
)
PROJECT_IDS = (
    _c("project_id", pa.string(), "Autodesk project id as APS returns it (`b.<uuid>`)."),
    _c("bim360_project_id", pa.string(), "project_id without its `b.` prefix: Data Connector's "
       "`bim360_project_id` (and `admin_projects.id`). Null for projects that are not BIM 360/ACC."),
    _c("project_name", pa.string(), "Project name in Autodesk."),
)
IDS = HUB_IDS + PROJECT_IDS
PUBLISHED = _c("catalog_published_at", TIMESTAMP, "When this snapshot of the table was published.")
HUB_PARTITION = _c("hub", pa.string(), "Partition: hub_id made safe for an S3 key (characters other "
                   "than letters, digits, `.`, `_` and `-` replaced, plus a short hash).")
RUN_DATE_PARTITION = _c("run_date", pa.date32(), "Partition: the UTC date the run started (its "
                        "earliest project's started_at; a verification's started_at), the same for "
                        "all the run's rows.")
RECORD_ID = _c("record_id", pa.string(), "Identifies one project run record (one attempt at one "
               "project in one run; a retried task adds another): `<project_id>__<started>-<random>`. "
               "Joins runs and events; null in rows written before the column existed.")
ITEM_ID = _c("item_id", pa.string(), "Lineage (item) id, `urn:adsk.wipprod:dm.lineage:...`: stable "
             "over versions, renames and moves.")
VERSION_ID = _c("version_id", pa.string(), "Version id, `urn:adsk.wipprod:fs.file:vf....?version=N`.")
SOURCE = _c("source", pa.string(), "Where the files come from: `docs` (Autodesk Docs, BIM 360, ACC, "
           "Fusion Team: the Data Management API) or `vault` (Autodesk Vault). Rows written before "
           "the column existed read as `docs`.", default="docs")
VERSION_NUMBER = _c("version_number", pa.int32(), "Autodesk's version number (1, 2, ...). A rename "
                    "is a new version with the same content.")

FILES = Table(
    name="files",
    description="The current state of every item the mirror knows: one row per item (lineage).",
    kind=SNAPSHOT,
    layout="files/hub=<hub>/files.parquet",
    partition=HUB_PARTITION,
    columns=IDS + (
        ITEM_ID,
        _c("folder_id", pa.string(), "Id of the folder holding the item (joins folders.folder_id)."),
        _c("name", pa.string(), "File name in Autodesk."),
        _c("path", pa.string(), "Path in Autodesk: top folder, sub-folders and name, joined by `/`."),
        _c("file_type", pa.string(), "File extension in lower case (rvt, dwg, pdf, ...)."),
        VERSION_ID,
        VERSION_NUMBER,
        _c("size", pa.int64(), "Bytes of the mirrored version (null when nothing is mirrored)."),
        _c("sha1", pa.string(), "SHA-1 of the mirrored bytes, hex."),
        _c("created_at", TIMESTAMP, "When the item's first version was created in Autodesk."),
        _c("created_by", pa.string(), "Who created the item's first version."),
        _c("modified_at", TIMESTAMP, "When the mirrored version was created in Autodesk."),
        _c("modified_by", pa.string(), "Who created the mirrored version."),
        _c("locked", pa.bool_(), "The item is locked (reserved) in Autodesk."),
        _c("status", pa.string(), "mirrored: the S3 object holds the item's current version; "
           "outdated: S3 holds an older version, the current one could not be copied "
           "(status_reason says why; retried every run); skipped: listed but nothing mirrored "
           "(not downloadable or the copy failed, status_reason says why); deleted: gone from "
           "Autodesk, the object kept (delete policy keep)."),
        _c("status_reason", pa.string(), "Why the status is not `mirrored`."),
        _c("status_since", TIMESTAMP, "Since when the status holds: deleted_at, or when the item "
           "was first found not mirrorable; null for mirrored."),
        _c("s3_bucket", pa.string(), "Bucket of the mirror."),
        _c("s3_key", pa.string(), "Key of the mirrored object (null when nothing is mirrored)."),
        _c("copied_at", TIMESTAMP, "When the mirror copied this version (or last moved it)."),
        _c("deleted_at", TIMESTAMP, "When the mirror found the item gone from Autodesk."),
        PUBLISHED,
        SOURCE,
        _c("source_ids", pa.string(), "JSON object of the ids only the item's source has, as "
           "`{\"name\": \"id\"}` (e.g. `json_extract_scalar(source_ids, '$.vault_id')`); null when it "
           "has none (Autodesk Docs)."),
    ),
)

VERSIONS = Table(
    name="versions",
    description="Every version the mirror has held, with the interval it was the current one, "
                "so history is queryable (`valid_from <= t AND (valid_to > t OR valid_to IS NULL)`).",
    kind=SNAPSHOT,
    layout="versions/hub=<hub>/versions.parquet",
    partition=HUB_PARTITION,
    columns=IDS + (
        ITEM_ID,
        VERSION_ID,
        VERSION_NUMBER,
        _c("name", pa.string(), "File name of this version."),
        _c("path", pa.string(), "Path in Autodesk of this version, `/`-joined."),
        _c("size", pa.int64(), "Bytes of this version."),
        _c("sha1", pa.string(), "SHA-1 of the bytes, hex."),
        _c("status", pa.string(), "current: the version the mirror holds now; superseded: a later "
           "version replaced it; deleted: it was current when the item was deleted in Autodesk."),
        _c("valid_from", TIMESTAMP, "When the version was created in Autodesk (when unknown, in "
           "catalogs of older manifests: when it was copied)."),
        _c("valid_to", TIMESTAMP, "When it stopped being current: the next version's valid_from "
           "(or, when unknown, superseded_at), or deleted_at; null while current."),
        _c("s3_key", pa.string(), "Key the version was mirrored at. For a superseded version the "
           "object there now holds a later version, or is gone."),
        _c("copied_at", TIMESTAMP, "When the mirror copied it."),
        _c("superseded_at", TIMESTAMP, "When the mirror replaced it with a later version."),
        PUBLISHED,
        SOURCE,
    ),
)

FOLDERS = Table(
    name="folders",
    description="Every folder the last walks saw, with the files the mirror holds directly in it.",
    kind=SNAPSHOT,
    layout="folders/hub=<hub>/folders.parquet",
    partition=HUB_PARTITION,
    columns=IDS + (
        _c("folder_id", pa.string(), "Folder id, `urn:adsk.wipprod:fs.folder:co....`."),
        _c("parent_id", pa.string(), "Id of the parent folder; null for a top folder."),
        _c("name", pa.string(), "Folder name in Autodesk."),
        _c("path", pa.string(), "Path in Autodesk from the top folder, `/`-joined."),
        _c("depth", pa.int32(), "1 for a top folder (Project Files, Plans, ...), 2 below it, ..."),
        _c("s3_prefix", pa.string(), "Key prefix of the folder's files in the mirror, ending in `/`."),
        _c("last_modified_rollup", TIMESTAMP, "Autodesk's lastModifiedTimeRollup when last listed; "
           "null when the next run must list it again."),
        _c("files", pa.int64(), "Files mirrored directly in this folder (not deleted)."),
        _c("bytes", pa.int64(), "Bytes of those files."),
        PUBLISHED,
        SOURCE,
    ),
)

PROJECTS = Table(
    name="projects",
    description="One row per mirrored project: what the mirror holds and how its syncs went.",
    kind=SNAPSHOT,
    layout="projects/projects.parquet",
    columns=IDS + (
        _c("s3_bucket", pa.string(), "Bucket of the mirror."),
        _c("s3_prefix", pa.string(), "Key prefix of the project's files, ending in `/`."),
        _c("files", pa.int64(), "Files mirrored (status mirrored or outdated)."),
        _c("bytes", pa.int64(), "Bytes of the mirrored files."),
        _c("deleted_files", pa.int64(), "Files gone from Autodesk whose object is kept."),
        _c("skipped_files", pa.int64(), "Files listed but not (or not currently) mirrored."),
        _c("locked_files", pa.int64(), "Files locked in Autodesk."),
        _c("folders", pa.int64(), "Folders recorded (rows of `folders`)."),
        _c("versions", pa.int64(), "Versions the mirror has held (rows of `versions`)."),
        _c("manifest_updated_at", TIMESTAMP, "When the project's manifest was last committed."),
        _c("last_full_walk", TIMESTAMP, "When every folder was last listed."),
        _c("last_run_id", pa.string(), "run_id of the project's latest run in `runs`."),
        _c("last_run_started_at", TIMESTAMP, "When the latest run started."),
        _c("last_run_finished_at", TIMESTAMP, "When the latest run finished."),
        _c("last_run_status", pa.string(), "Its status (see runs.status)."),
        _c("last_success_at", TIMESTAMP, "When the latest run with status success finished."),
        _c("last_error", pa.string(), "The latest run's last error (for a failed project: what "
           "stopped it); null when it had none."),
        _c("last_live_success_at", TIMESTAMP, "When the latest successful run started by Autodesk's "
           "change events (the live DAG: run_id `asset_triggered__...`) finished; null if none."),
        _c("last_nightly_success_at", TIMESTAMP, "When the latest successful run of any other kind "
           "(the scheduled nightly, a manual trigger, the CLI) finished; null if none."),
        PUBLISHED,
        SOURCE,
    ),
)

RUNS = Table(
    name="runs",
    description="One row per run and project, one object per run (append-only).",
    kind=APPEND,
    layout="runs/run_date=<YYYY-MM-DD>/<run_id>.parquet",
    partition=RUN_DATE_PARTITION,
    columns=(
        _c("run_id", pa.string(), "The run: Airflow's run_id, or `cli-<time>` for `aps-mirror sync`."),
        *IDS,
        _c("started_at", TIMESTAMP, "When the project's sync started."),
        _c("finished_at", TIMESTAMP, "When the project's sync finished."),
        _c("duration_seconds", pa.float64(), "finished_at - started_at, in seconds."),
        _c("status", pa.string(), "success; partial: some files failed; failed: the project "
           "failed (see errors)."),
        _c("trigger", pa.string(), "What started the run: cli or airflow."),
        _c("full_walk", pa.bool_(), "Every folder was listed (not only changed ones)."),
        _c("listing_complete", pa.bool_(), "Every folder could be listed."),
        _c("files_listed", pa.int64(), "Files the walk listed."),
        _c("files_copied", pa.int64(), "Files downloaded and uploaded (new files and new versions)."),
        _c("files_renamed", pa.int64(), "Files renamed or moved by a server-side copy, no download."),
        _c("files_skipped", pa.int64(), "Files unchanged since the last run."),
        _c("files_failed", pa.int64(), "Files whose copy failed (retried next run)."),
        _c("files_unavailable", pa.int64(), "Files listed but not downloadable."),
        _c("files_deleted", pa.int64(), "Files gone from Autodesk the delete policy acted on."),
        _c("files_excluded", pa.int64(), "Files the selection (extensions, size) left out."),
        _c("bytes_copied", pa.int64(), "Bytes downloaded and uploaded."),
        _c("folders_listed", pa.int64(), "Folders listed (their contents read)."),
        _c("folders_pruned", pa.int64(), "Folders not listed because their rollup had not moved."),
        _c("api_calls", pa.int64(), "Autodesk API requests made."),
        _c("api_calls_throttled", pa.int64(), "Of those, answered 429 (rate limited)."),
        _c("error_count", pa.int32(), "Number of entries in errors."),
        _c("errors", pa.list_(pa.string()), "The errors, each saying what failed and why."),
        _c("deletes_refused", pa.string(), "Why the delete policy did not run, when a guard refused."),
        RECORD_ID,
        SOURCE,
    ),
)

EVENTS = Table(
    name="events",
    description="What each run did to each item: copied, new version, renamed, moved, restored, "
                "deleted, trashed, unavailable, failed, delete refused; one object per run (append-only).",
    kind=APPEND,
    layout="events/run_date=<YYYY-MM-DD>/<run_id>.parquet",
    partition=RUN_DATE_PARTITION,
    columns=(
        _c("run_id", pa.string(), "The run (joins runs.run_id with project_id)."),
        _c("at", TIMESTAMP, "When the run did it."),
        *IDS,
        ITEM_ID,
        _c("action", pa.string(), "copied: new item, first mirrored; new_version: a newer version "
           "replaced the mirrored one; renamed / moved: same bytes, new name / folder (server-side "
           "copy); restored: was deleted, is back; deleted: gone from Autodesk (policy keep: object "
           "kept, or delete: object removed, see reason); trashed: gone, object moved to the trash "
           "prefix; unavailable: not downloadable; failed: the copy failed; delete_refused: a guard "
           "kept it."),
        _c("path", pa.string(), "Path in Autodesk, `/`-joined."),
        _c("s3_key", pa.string(), "Key the item is (or was) mirrored at."),
        _c("previous_s3_key", pa.string(), "new_version, renamed, moved: the key it had before."),
        VERSION_ID,
        VERSION_NUMBER,
        _c("size", pa.int64(), "Bytes of the version concerned."),
        _c("reason", pa.string(), "Why: the error, the unavailability, the guard, the policy."),
        RECORD_ID,
        _c("event_id", pa.string(), "Identifies the event: `<record_id>#<n>`, n its position in the "
           "record. Unique in the table; null in rows written before the column existed."),
        SOURCE,
    ),
)

VERIFICATIONS = Table(
    name="verifications",
    description="What each `aps-mirror verify` found: one row per verification and project checked, "
                "plus one (project columns null) for findings outside every project and what could not "
                "be checked; one object per verification (append-only).",
    kind=APPEND,
    layout="verifications/run_date=<YYYY-MM-DD>/<verification_id>.parquet",
    partition=RUN_DATE_PARTITION,
    columns=(
        _c("verification_id", pa.string(), "The verification: `verify__<started>`; joins its rows."),
        *IDS,
        _c("started_at", TIMESTAMP, "When the verification started."),
        _c("finished_at", TIMESTAMP, "When it finished."),
        _c("duration_seconds", pa.float64(), "finished_at - started_at, in seconds."),
        _c("deep", pa.bool_(), "Objects were re-read and their SHA-1 checked (--deep)."),
        _c("sample", pa.int64(), "--sample N: that many objects re-read at random; null: every "
           "object (deep) or none."),
        _c("against_autodesk", pa.bool_(), "The mirror was compared with a full walk of Autodesk "
           "(--conn-id): outdated and not_mirrored are counted."),
        _c("clean", pa.bool_(), "Nothing found in this row's scope and everything could be checked; "
           "the verification is clean when all its rows are."),
        _c("objects_checked", pa.int64(), "Objects the manifests reference that were checked "
           "(presence, size, metadata)."),
        _c("objects_read", pa.int64(), "Of those, objects re-read in full (deep)."),
        _c("bytes_read", pa.int64(), "Bytes re-read."),
        _c("missing", pa.int64(), "Objects a manifest references that are not in S3."),
        _c("corrupt", pa.int64(), "Objects whose size, metadata (item, version) or SHA-1 is not the "
           "manifest's."),
        _c("orphans", pa.int64(), "Objects under a project's root that no manifest references."),
        _c("outdated", pa.int64(), "Files the mirror holds at another version than Autodesk's."),
        _c("not_mirrored", pa.int64(), "Files Autodesk has (in the mirror's selection) that the "
           "mirror does not hold."),
        _c("stale_uploads", pa.int64(), "Multipart uploads begun and never completed nor aborted."),
        _c("error_count", pa.int32(), "Number of entries in errors."),
        _c("errors", pa.list_(pa.string()), "What could not be checked, and why."),
        _c("findings", pa.string(), "JSON: {category: [{key, item_id, path, why, project_id}]} for "
           "the categories above."),
    ),
)

HOOKS = Table(
    name="hooks",
    description="The mirror's Autodesk webhooks as the latest check left them (the mirror DAG's "
                "`ensure_webhooks` task): one row per selected project, or one (project columns null) "
                "when the check failed before reaching any project; replaced whole by each check.",
    kind=LATEST,
    layout="hooks/hooks.parquet",
    columns=IDS + (
        _c("mirror", pa.string(), "The mirror whose hooks these are (its DAG id, the hooks' "
           "`hookAttribute.aps_mirror`)."),
        _c("callback_url", pa.string(), "Where Autodesk delivers the events: the webhook receiver."),
        _c("state", pa.string(), "What the check left: active (every watched folder has its active hook "
           "set); error (the hooks could not be ensured, see error); missing (no folder watched: the "
           "selected top folders are not in the project)."),
        _c("found", pa.string(), "What the check found before repairing: active, inactive (deactivated by "
           "Autodesk), expired, partial (some events or folders had no hook), missing; anything but active "
           "means events may have been lost meanwhile (the nightly scan catches them). Null when unknown."),
        _c("hooks", pa.int64(), "Hooks of the project after the check (one per event and watched folder)."),
        _c("folders", pa.int64(), "Folders watched: the root folder, or the selected top folders."),
        _c("changes", pa.string(), "What the check changed, e.g. `2 reactivated`; null when nothing."),
        _c("error", pa.string(), "Why the hooks could not be ensured (state error)."),
        _c("checked_at", TIMESTAMP, "When the check finished."),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (FILES, VERSIONS, FOLDERS, PROJECTS, RUNS, EVENTS,
                                                VERIFICATIONS, HOOKS)}
SNAPSHOT_TABLES = tuple(n for n, t in TABLES.items() if t.kind == SNAPSHOT)


# -- descriptions for people and other tools ---------------------------------------------------
_SQL_TYPES = {pa.string(): "string", pa.int64(): "bigint", pa.int32(): "int", pa.float64(): "double",
              pa.bool_(): "boolean", TIMESTAMP: "timestamp", pa.date32(): "date",
              pa.list_(pa.string()): "array<string>"}


def sql_type(type_: pa.DataType) -> str:
    """The Athena/Hive/Spark SQL type of a column."""
    return _SQL_TYPES[type_]


def schema_document() -> dict:
    """The content of `_schema.json`: format version, layout and columns of every table."""
    return {
        "catalog_format_version": CATALOG_FORMAT_VERSION,
        "tables": {
            t.name: {
                "description": t.description,
                "kind": t.kind,
                "layout": t.layout,
                "partition": t.partition.name if t.partition else None,
                "columns": [{"name": c.name, "type": sql_type(c.type), "description": c.description,
                             **({"partition": True} if c is t.partition else {})}
                            for c in t.all_columns()],
            }
            for t in TABLES.values()
        },
    }


def athena_ddl(table: Table, location: str) -> str:
    """CREATE EXTERNAL TABLE for Athena; date partitions use partition projection."""
    columns = ",\n".join(f"  `{c.name}` {sql_type(c.type)}" for c in table.columns)
    lines = [f"CREATE EXTERNAL TABLE aps_mirror_{table.name} (\n{columns}\n)"]
    if table.partition:
        lines.append(f"PARTITIONED BY (`{table.partition.name}` {sql_type(table.partition.type)})")
    lines.append("STORED AS PARQUET")
    lines.append(f"LOCATION '{location.rstrip('/')}/{table.name}/'")
    if table.partition is RUN_DATE_PARTITION:
        p = table.partition.name
        lines.append(
            "TBLPROPERTIES (\n"
            "  'projection.enabled' = 'true',\n"
            f"  'projection.{p}.type' = 'date',\n"
            f"  'projection.{p}.format' = 'yyyy-MM-dd',\n"
            f"  'projection.{p}.range' = '2024-01-01,NOW',\n"
            f"  'projection.{p}.interval' = '1',\n"
            f"  'projection.{p}.interval.unit' = 'DAYS',\n"
            f"  'storage.location.template' = '{location.rstrip('/')}/{table.name}/{p}=${{{p}}}/'\n)")
    return "\n".join(lines) + ";"


DOCS_BEGIN = "<!-- BEGIN GENERATED: python -m aps_mirror.catalog.schema --update-docs docs/catalog.md -->"
DOCS_END = "<!-- END GENERATED -->"


def markdown_reference() -> str:
    """The table reference of docs/catalog.md."""
    out = [f"Catalog format version: **{CATALOG_FORMAT_VERSION}**.", ""]
    for t in TABLES.values():
        partition = f"; partitioned by `{t.partition.name}`" if t.partition else ""
        out += [f"### `{t.name}`", "", f"{t.description}", "",
                f"{t.kind.capitalize()}{partition}. Objects: `{t.layout}`.", "",
                "| column | type | meaning |", "| --- | --- | --- |"]
        out += [f"| `{c.name}` | {sql_type(c.type)} | {_cell(c.description)} |" for c in t.all_columns()]
        out.append("")
    location = "s3://BUCKET/PREFIX/_aps_mirror/catalog"
    out += ["### Athena DDL", "",
            f"Replace `{location}` with your catalog's location. `runs` and `events` use partition "
            "projection (no partition maintenance); after a new hub is mirrored, run "
            "`MSCK REPAIR TABLE` on `files`, `versions` and `folders`.", "", "```sql"]
    out += [athena_ddl(t, location) + "\n" for t in TABLES.values()]
    out += [f"MSCK REPAIR TABLE aps_mirror_{t.name};" for t in TABLES.values()
            if t.partition is HUB_PARTITION]
    out.append("```")
    return "\n".join(out).rstrip() + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def update_docs(text: str) -> str:
    """`text` with the generated section between the markers replaced."""
    head, begin, rest = text.partition(DOCS_BEGIN)
    _, end, tail = rest.partition(DOCS_END)
    if not begin or not end:
        raise ValueError(f"the markers {DOCS_BEGIN!r} and {DOCS_END!r} are missing")
    return f"{head}{DOCS_BEGIN}\n{markdown_reference()}{DOCS_END}{tail}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--update-docs"] and len(sys.argv) == 3:
        with open(sys.argv[2], encoding="utf-8") as handle:
            updated = update_docs(handle.read())
        with open(sys.argv[2], "w", encoding="utf-8") as handle:
            handle.write(updated)
    else:
        sys.stdout.write(markdown_reference())
