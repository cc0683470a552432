"""The "Autodesk mirror" dashboard: how fresh and complete each mirror is, from its catalog.

Routes (mounted under /aps-mirror by app.py, same sign-in as the accounts pages, and the user
must be allowed to read the aps_mirror DAG):
- `/dashboard`: the page (server-rendered HTML, inline CSS and SVG: nothing is fetched from
  elsewhere, no script runs, so it works on an offline machine);
- `/dashboard.json`: the same figures as JSON.

Where the mirrors are: the environment variable `APS_MIRROR_DASHBOARD_MIRRORS` on the API
server, e.g. `s3://my-bucket/autodesk?aws_conn_id=aws_mirror` (several separated by commas;
`aws_conn_id` defaults to `aws_default`); when it is unset, the latest asset events of the
`aps_mirror` DAG or asset (their extra records bucket, prefix and aws_conn_id; see
mirror_locations.py). Each mirror's catalog is
read from S3 with that Airflow `aws` connection (its extra `endpoint_url` is honoured), and
kept for CACHE_SECONDS so reloading the page does not read S3 again.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from aps_mirror.airflow_provider.ui.connection_health import ConnectionHealth, connection_health
from aps_mirror.airflow_provider.ui.mirror_locations import (
    MIRROR_DAG_ID,
    MirrorLocation,
    find_mirrors,
)
from aps_mirror.errors import ConfigError

if TYPE_CHECKING:
    from aps_mirror.catalog.report import CatalogReport

CACHE_SECONDS = 60.0  # the catalog changes once a night; a reload storm must not hit S3
STALE_AFTER_HOURS = 36  # a nightly mirror older than a night and a half is late
NIGHTS_SHOWN = 30

router = APIRouter()


@dataclass
class MirrorStatus:
    location: MirrorLocation
    report: CatalogReport | None = None
    error: str | None = None  # why the catalog could not be read

    def to_dict(self) -> dict[str, Any]:
        report = self.report.to_dict() if self.report else None
        if report:
            for failure in report.get("failures", []):
                failure["reason"] = plain_reason(failure.get("reason"))
                failure["advice"] = advice(failure.get("reason") or "", failure.get("kind") or "")
            for project in report.get("projects", []):
                project["last_error"] = plain_reason(project.get("last_error"))
        return {**self.location.to_dict(), "report": report, "error": self.error}


@dataclass
class Dashboard:
    generated_at: str
    mirrors: list[MirrorStatus]
    connections: list[ConnectionHealth]
    latest_run: dict[str, Any] | None  # the aps_mirror DAG's newest run: id, state, dates
    problem: str | None = None  # why no mirror could be listed (bad configuration)

    def to_dict(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at, "problem": self.problem, "latest_run": self.latest_run,
                "mirrors": [m.to_dict() for m in self.mirrors],
                "connections": [c.to_dict() for c in self.connections]}


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(request: Request) -> Response:
    from aps_mirror.airflow_provider.ui.app import _user_or_login
    from aps_mirror.airflow_provider.ui.dashboard_page import render_dashboard

    user = await _user_or_login(request)
    if isinstance(user, Response):
        return user
    _require_dag_read(user)
    data = _visible_to(user, await run_in_threadpool(collect_dashboard))
    return HTMLResponse(render_dashboard(data))


@router.get("/dashboard.json")
async def dashboard_json(request: Request) -> Response:
    from aps_mirror.airflow_provider.ui.app import _user_or_login

    user = await _user_or_login(request)
    if isinstance(user, Response):  # an API client gets a status, not a login page
        return JSONResponse({"detail": "Not authenticated"}, 401)
    _require_dag_read(user)
    data = _visible_to(user, await run_in_threadpool(collect_dashboard))
    return JSONResponse(data.to_dict())


def _require_dag_read(user: Any) -> None:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    if not get_auth_manager().is_authorized_dag(method="GET", user=user, details=DagDetails(id=MIRROR_DAG_ID)):
        raise HTTPException(403, f"You may not read the {MIRROR_DAG_ID} DAG, whose mirror this page shows.")


def _visible_to(user: Any, data: Dashboard) -> Dashboard:
    """Only the connections the user may read (ids and who consented are connection data)."""
    from aps_mirror.airflow_provider.ui.app import allowed

    data.connections = [c for c in data.connections if allowed(user, "GET", c.conn_id)]
    return data


def collect_dashboard() -> Dashboard:
    """Everything the page shows; blocking (database and S3), so routes run it in a thread."""
    problem, mirrors = None, []
    try:
        mirrors = [read_mirror(location) for location in find_mirrors()]
    except ConfigError as exc:
        problem = str(exc)
    return Dashboard(generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     mirrors=mirrors, connections=connection_health(), latest_run=latest_dag_run(),
                     problem=problem)


_cache: dict[tuple[str, str, str], tuple[float, MirrorStatus]] = {}
_cache_lock = threading.Lock()


def read_mirror(location: MirrorLocation) -> MirrorStatus:
    """The mirror's catalog report, or why it could not be read (never raises)."""
    key = (location.bucket, location.prefix, location.aws_conn_id)
    with _cache_lock:
        cached = _cache.get(key)
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
        return MirrorStatus(location, cached[1].report, cached[1].error)  # this request's location
    status = MirrorStatus(location)
    try:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from aps_mirror.catalog.report import build_report

        s3 = S3Hook(aws_conn_id=location.aws_conn_id).get_conn()
        status.report = build_report(s3, location.bucket, location.prefix,
                                     stale_after_hours=STALE_AFTER_HOURS, days=NIGHTS_SHOWN)
    except Exception as exc:  # noqa: BLE001 - shown on the page: one bad mirror must not hide others
        status.error = (f"Could not read the catalog of {location.uri} with the connection "
                        f"{location.aws_conn_id!r}: {type(exc).__name__}: {plain_reason(str(exc))}")
        if not _connection_defined(location.aws_conn_id):
            status.error += (f" (no connection {location.aws_conn_id!r} is defined in Airflow, so boto3's "
                             "default credentials were tried)")
    with _cache_lock:
        _cache[key] = (time.monotonic(), status)
    return status


def _connection_defined(conn_id: str) -> bool:
    """Whether Airflow knows the connection (the Amazon hook quietly falls back to boto3's
    default credentials when it does not: right for instance roles, puzzling in an error)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return False
    except Exception:  # noqa: BLE001 - a backend that cannot answer: do not claim it is missing
        return True
    return True


def latest_dag_run() -> dict[str, Any] | None:
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == MIRROR_DAG_ID)
                             .order_by(DagRun.id.desc()).limit(1))
        if run is None:
            return None
        return {"run_id": run.run_id, "state": str(run.state.value if hasattr(run.state, "value") else run.state),
                "start_date": _iso(run.start_date), "end_date": _iso(run.end_date)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


_URL_QUERY = re.compile(r"(https?://[^\s?#'\"]+)\?[^\s'\"]*")


def plain_reason(text: str | None) -> str | None:
    """A reason fit to show: signed URLs lose their query string (signatures, expiry)."""
    return _URL_QUERY.sub(r"\1?…", text) if text else text


# What an operator can do about a failure, by the words of its reason (first match wins, so
# the specific comes before the general: a failed download may quote Autodesk's 403).
_ADVICE = (
    (("re-authoriz", "reauthoriz", "refresh token", "invalid_grant"),
     "Reconnect the Autodesk account on the 'Autodesk accounts' page, then trigger aps_mirror."),
    (("429", "rate limit", "too many requests"),
     "Autodesk kept throttling: lower the autodesk_api pool or the connection's rate share. "
     "It is retried on the next run."),
    (("storage", "not downloadable", "virus", "processing"),
     "Autodesk cannot serve this file yet (still processing, or blocked). It is retried every night; "
     "if it lasts, open the file in Autodesk Docs."),
    (("accessdenied", "nosuchbucket", "invalidaccesskeyid", "signaturedoesnotmatch", "expiredtoken"),
     "S3 refused: check the aws connection's credentials and its rights on the bucket "
     "(GetObject, PutObject, ListBucket, DeleteObject)."),
    (("could not copy", "sha-1", "checksum", "received", "transfer"),
     "The download failed or came back different; nothing was written. It is retried on the next run; "
     "if the same file fails night after night, read that night's sync_batch log (each lists its projects)."),
    (("401", "unauthorized", "invalid_client", "client credentials"),
     "Check the autodesk connection's client id and secret (Admin > Connections)."),
    (("403", "forbidden", "not authorized", "permission"),
     "The connected account (or the app) lost access: check its membership of this project in "
     "Autodesk, and that the APS app is provisioned in the hub."),
)


def advice(reason: str, kind: str) -> str:
    lowered = reason.lower()
    for words, text in _ADVICE:
        if any(word in lowered for word in words):
            return text
    if kind == "project":
        return ("The whole project stopped: read its night's sync_batch log (each lists its projects); "
                "the next run retries it.")
    return "It is retried on the next run; if it keeps failing, read the sync_batch task log of that night."
