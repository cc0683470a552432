"""Which mirrors the dashboard shows: the environment's explicit list, else the mirror DAGs' asset events.

`APS_MIRROR_DASHBOARD_MIRRORS` (on the API server) lists them explicitly, separated by commas
or spaces: `s3://bucket/prefix`, optionally with `?aws_conn_id=my_aws` (default `aws_default`)
and `&dag_id=my_mirror` (the DAG that writes it: its runs are shown, and Airflow's rights on
it decide who sees the mirror; without it the mirror has no DAG, see mirror_access.py).
Without the variable, every distinct bucket/prefix of the events on a mirror asset (group
`aps-mirror`: the asset each `build_mirror_dag` DAG's summarize task updates, named after the
DAG; or the `aps_mirror` asset of older versions) is shown, with the `aws_conn_id` its latest
event recorded: the run's own params, so a run triggered with another bucket appears without
any configuration. Its DAG is the one that emitted that event; for an event someone created
(Airflow's "Create asset event" button or REST API), the DAG that declares the asset as an
outlet, when exactly one does.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aps_mirror.airflow_provider.assets import MIRROR_GROUP
from aps_mirror.connection import DEFAULT_AWS_CONN_ID
from aps_mirror.errors import ConfigError

MIRRORS_ENV = "APS_MIRROR_DASHBOARD_MIRRORS"
MIRROR_ASSET_NAME = "aps_mirror"  # the repository DAG's asset, from before asset groups
EVENTS_SCANNED = 500  # newest asset events looked at; a deployment has a handful of mirrors
_URI_OPTIONS = ("aws_conn_id", "dag_id")
_DAG_ID = re.compile(r"^[\w.-]{1,250}$")  # Airflow's KEY_REGEX and the dag_id column's length


@dataclass(frozen=True)
class MirrorLocation:
    bucket: str
    prefix: str
    aws_conn_id: str = DEFAULT_AWS_CONN_ID
    dag_id: str | None = None  # the DAG that writes the mirror; None when nothing says
    found_in: str = MIRRORS_ENV  # the env var, or "asset event"
    last_event_at: str | None = None  # ISO 8601: when the DAG last published this mirror
    last_event: dict[str, Any] | None = None  # that event's counts (copied, failed...)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "uri": self.uri}


def parse_mirror_uri(text: str) -> MirrorLocation:
    parts = urlsplit(text.strip())
    query = parse_qs(parts.query, keep_blank_values=True)
    if parts.scheme != "s3" or not parts.netloc or set(query) - set(_URI_OPTIONS):
        raise ConfigError(f"{MIRRORS_ENV}: {text!r} is not like s3://bucket/prefix[?aws_conn_id=...&dag_id=...]")
    dag_id = query.get("dag_id", [None])[0]
    if dag_id is not None and not _DAG_ID.fullmatch(dag_id):
        raise ConfigError(f"{MIRRORS_ENV}: dag_id {dag_id!r} in {text!r} is not a DAG id "
                          "(letters, digits, '_', '-' and '.').")
    return MirrorLocation(bucket=parts.netloc, prefix=parts.path.strip("/"), dag_id=dag_id,
                          aws_conn_id=query.get("aws_conn_id", [DEFAULT_AWS_CONN_ID])[0] or DEFAULT_AWS_CONN_ID)


def configured_mirrors() -> list[MirrorLocation] | None:
    """The explicit list, or None when the variable is unset (then asset events decide)."""
    value = os.environ.get(MIRRORS_ENV, "").replace(",", " ").split()
    return [parse_mirror_uri(v) for v in value] or None


def mirrors_from_asset_events() -> list[MirrorLocation]:
    """Newest first, one per bucket/prefix, from the events of the mirror assets."""
    from sqlalchemy import or_, select

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra, AssetEvent.timestamp, AssetEvent.source_dag_id, AssetModel.id, AssetModel.uri)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(or_(AssetModel.group == MIRROR_GROUP, AssetModel.name == MIRROR_ASSET_NAME))
            .order_by(AssetEvent.timestamp.desc()).limit(EVENTS_SCANNED)).all()
        producers = _producing_dags(session, {row.id for row in rows if not row.source_dag_id})
    found: dict[tuple[str, str], MirrorLocation] = {}
    for extra, timestamp, source_dag_id, asset_id, uri in rows:
        dag_id = source_dag_id or producers.get(asset_id)
        location = _from_event(extra or {}, uri, timestamp.isoformat(timespec="seconds"), dag_id)
        if location is not None:
            found.setdefault((location.bucket, location.prefix), location)
    return list(found.values())


def _producing_dags(session: Any, asset_ids: set[int]) -> dict[int, str]:
    """Asset id -> the DAG whose task declares it as an outlet, for assets exactly one DAG updates."""
    if not asset_ids:
        return {}
    from sqlalchemy import select

    from airflow.models.asset import TaskOutletAssetReference

    dags: dict[int, set[str]] = {}
    for asset_id, dag_id in session.execute(
            select(TaskOutletAssetReference.asset_id, TaskOutletAssetReference.dag_id)
            .where(TaskOutletAssetReference.asset_id.in_(asset_ids))).all():
        dags.setdefault(asset_id, set()).add(dag_id)
    return {asset_id: ids.pop() for asset_id, ids in dags.items() if len(ids) == 1}


def _from_event(extra: dict[str, Any], uri: str, at: str, dag_id: str | None = None) -> MirrorLocation | None:
    bucket, prefix = extra.get("bucket"), extra.get("prefix")
    if not bucket:  # an event from before the extra carried the bucket: the asset's URI says it
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            return None
        bucket, prefix = parts.netloc, parts.path
    counts = {k: v for k, v in extra.items() if k not in ("bucket", "prefix", "aws_conn_id", "from_rest_api")}
    return MirrorLocation(bucket=str(bucket), prefix=str(prefix or "").strip("/"),
                          aws_conn_id=str(extra.get("aws_conn_id") or DEFAULT_AWS_CONN_ID), dag_id=dag_id,
                          found_in="asset event", last_event_at=at, last_event=counts)


def find_mirrors() -> list[MirrorLocation]:
    configured = configured_mirrors()
    return configured if configured is not None else mirrors_from_asset_events()
