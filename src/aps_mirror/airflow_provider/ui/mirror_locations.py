"""Which mirrors the dashboard shows: the environment's explicit list, else the DAG's asset events.

`APS_MIRROR_DASHBOARD_MIRRORS` (on the API server) lists them explicitly, separated by commas
or spaces: `s3://bucket/prefix` or `s3://bucket/prefix?aws_conn_id=my_aws` (default
`aws_default`). Without it, every distinct bucket/prefix of the asset events a mirror DAG
emitted (the `aps_mirror` DAG, or the mirror asset of any `build_mirror_dag`: group
`aps-mirror`), or that someone created on such an asset (from Airflow's "Create asset event"
button or REST API) is shown, with the `aws_conn_id` its latest event recorded: the
run's own params, so a run triggered with another bucket appears without any configuration.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aps_mirror.airflow_provider.assets import MIRROR_GROUP
from aps_mirror.connection import DEFAULT_AWS_CONN_ID
from aps_mirror.errors import ConfigError

MIRRORS_ENV = "APS_MIRROR_DASHBOARD_MIRRORS"
MIRROR_DAG_ID = "aps_mirror"
MIRROR_ASSET_NAME = "aps_mirror"  # the Asset the DAG's summarize task updates
EVENTS_SCANNED = 500  # newest asset events looked at; a deployment has a handful of mirrors


@dataclass(frozen=True)
class MirrorLocation:
    bucket: str
    prefix: str
    aws_conn_id: str = DEFAULT_AWS_CONN_ID
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
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"{MIRRORS_ENV}: {text!r} is not like s3://bucket/prefix[?aws_conn_id=...]")
    conn = parse_qs(parts.query).get("aws_conn_id", [DEFAULT_AWS_CONN_ID])[0]
    return MirrorLocation(bucket=parts.netloc, prefix=parts.path.strip("/"), aws_conn_id=conn)


def configured_mirrors() -> list[MirrorLocation] | None:
    """The explicit list, or None when the variable is unset (then asset events decide)."""
    value = os.environ.get(MIRRORS_ENV, "").replace(",", " ").split()
    return [parse_mirror_uri(v) for v in value] or None


def mirrors_from_asset_events() -> list[MirrorLocation]:
    """Newest first, one per bucket/prefix, from the asset events of the aps_mirror DAG or asset."""
    from sqlalchemy import or_, select

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra, AssetEvent.timestamp, AssetModel.uri)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(or_(AssetEvent.source_dag_id == MIRROR_DAG_ID, AssetModel.name == MIRROR_ASSET_NAME,
                       AssetModel.group == MIRROR_GROUP))
            .order_by(AssetEvent.timestamp.desc()).limit(EVENTS_SCANNED)).all()
    found: dict[tuple[str, str], MirrorLocation] = {}
    for extra, timestamp, uri in rows:
        location = _from_event(extra or {}, uri, timestamp.isoformat(timespec="seconds"))
        if location is not None:
            found.setdefault((location.bucket, location.prefix), location)
    return list(found.values())


def _from_event(extra: dict[str, Any], uri: str, at: str) -> MirrorLocation | None:
    bucket, prefix = extra.get("bucket"), extra.get("prefix")
    if not bucket:  # an event from before the extra carried the bucket: the asset's URI says it
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            return None
        bucket, prefix = parts.netloc, parts.path
    counts = {k: v for k, v in extra.items() if k not in ("bucket", "prefix", "aws_conn_id", "from_rest_api")}
    return MirrorLocation(bucket=str(bucket), prefix=str(prefix or "").strip("/"),
                          aws_conn_id=str(extra.get("aws_conn_id") or DEFAULT_AWS_CONN_ID),
                          found_in="asset event", last_event_at=at, last_event=counts)


def find_mirrors() -> list[MirrorLocation]:
    configured = configured_mirrors()
    return configured if configured is not None else mirrors_from_asset_events()
