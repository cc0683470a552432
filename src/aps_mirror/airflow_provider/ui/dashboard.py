"""The "Autodesk mirror" dashboard: how fresh and complete each mirror is, from its catalog.

Routes (mounted under /aps-mirror by app.py, same sign-in as the accounts pages):
- `/dashboard`: the page (server-rendered HTML, inline CSS and SVG: nothing is fetched from
  elsewhere, no script runs, so it works on an offline machine);
- `/dashboard.json`: the same figures as JSON.

Per mirror: its DAG's latest run, the catalog report (catalog/report.py: projects, nights,
failures, and the latest `aps-mirror verify` with its verified / faults / unverified status),
and its live side: whether its live DAG is deployed and unpaused, and per project the last
accepted webhook event (live_state.py, from the metadata database), the hook state the mirror
DAG's `ensure_webhooks` task recorded in the catalog's `hooks` table (Autodesk is never asked
on a page view), and whether the latest successful sync came from a live run or the nightly
one, with the age of each (the catalog's `projects` columns, and the live runs the next
publish has not folded yet: the database's).

Where the mirrors are: the environment variable `APS_MIRROR_DASHBOARD_MIRRORS` on the API
server, e.g. `s3://my-bucket/autodesk?aws_conn_id=aws_mirror&dag_id=acme_docs` (several
separated by commas; `aws_conn_id` defaults to `aws_default`); when it is unset, the latest
asset events of every mirror DAG (their extra records bucket, prefix and aws_conn_id; see
mirror_locations.py). A user sees the mirrors whose DAG Airflow lets them read
(mirror_access.py has the rule), each with its DAG's latest run. Each mirror's catalog is
read from S3 with that Airflow `aws` connection (its extra `endpoint_url` is honoured), and
kept for CACHE_SECONDS so reloading the page does not read S3 again.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from aps_mirror.airflow_provider.ui.connection_health import ConnectionHealth, connection_health
from aps_mirror.airflow_provider.ui.live_state import OFF, MirrorLive, bare_project_id, live_states
from aps_mirror.airflow_provider.ui.mirror_access import (
    NO_DAG_READ,
    NO_MIRROR_VISIBLE,
    may_read_some_dag,
    visible_mirrors,
)
from aps_mirror.airflow_provider.ui.mirror_locations import MirrorLocation, find_mirrors
from aps_mirror.errors import ConfigError

if TYPE_CHECKING:
    from aps_mirror.catalog.report import CatalogReport

CACHE_SECONDS = 60.0  # the catalog changes once a night; a reload storm must not hit S3
STALE_AFTER_HOURS = 36  # a nightly mirror older than a night and a half is late
NIGHTS_SHOWN = 30

router = APIRouter()
log = logging.getLogger(__name__)

HOOK_FIELDS = ("state", "found", "changes", "hooks", "folders", "error", "checked_at")


@dataclass
class MirrorStatus:
    location: MirrorLocation
    report: CatalogReport | None = None
    error: str | None = None  # why the catalog could not be read
    latest_run: dict[str, Any] | None = None  # its DAG's newest run: id, state, dates
    hooks: list[dict[str, Any]] = field(default_factory=list)  # the catalog's `hooks` rows (ISO times)
    # Project id without "b." -> {"live": ISO, "nightly": ISO}: the catalog's last successes of each kind.
    successes: dict[str, dict[str, str | None]] = field(default_factory=dict)
    live: MirrorLive | None = None  # from the metadata database, per page view
    now: datetime | None = None  # when the page was made: ages count from then

    @property
    def shows_live(self) -> bool:
        """Whether the page has anything live to say about this mirror."""
        return bool((self.live and self.live.status != OFF) or self.hooks
                    or any(s.get("live") for s in self.successes.values()))

    def project_live(self, project_id: str, last_success_at: str | None = None) -> dict[str, Any]:
        """A project's live side: freshness (which kind of run synced it last, the age of
        each), its hook state as last checked, its last accepted event."""
        key = bare_project_id(project_id)
        known = self.successes.get(key, {})
        events = self.live.projects.get(key) if self.live else None
        live_at = _latest(known.get("live"), events.live_synced_at if events else None)
        nightly_at = known.get("nightly")
        if not known.get("live") and not nightly_at:  # a snapshot from before the split: one kind known
            nightly_at = last_success_at
        via = ("live" if live_at and (not nightly_at or _parse(live_at) > _parse(nightly_at))
               else "nightly" if nightly_at else "never")
        hook = self._hooks_by_project.get(key)
        return {
            "freshness": {"via": via, "live_success_at": live_at, "live_age_hours": self.age_hours(live_at),
                          "nightly_success_at": nightly_at, "nightly_age_hours": self.age_hours(nightly_at)},
            "hook": {k: hook.get(k) for k in HOOK_FIELDS} if hook else None,
            "last_event": ({"at": events.last_event_at, "event": events.last_event, "events": events.events,
                            "age_hours": self.age_hours(events.last_event_at)} if events else None),
        }

    @cached_property
    def _hooks_by_project(self) -> dict[str, dict[str, Any]]:
        return {bare_project_id(h["project_id"]): h for h in self.hooks if h.get("project_id")}

    def hooks_summary(self) -> dict[str, Any] | None:
        """The latest hook check: when, by which mirror, to which URL, projects per state, and
        the mirror-wide error of a check that reached no project."""
        if not self.hooks:
            return None
        checked = [h["checked_at"] for h in self.hooks if h.get("checked_at")]
        wide = next((h for h in self.hooks if not h.get("project_id")), None)
        return {"checked_at": max(checked) if checked else None, "age_hours": self.age_hours(max(checked, default=None)),
                "mirror": self.hooks[0].get("mirror"), "callback_url": self.hooks[0].get("callback_url"),
                "states": dict(Counter(h["state"] for h in self.hooks if h.get("project_id"))),
                "error": plain_reason(wide["error"]) if wide else None}

    def age_hours(self, iso: str | None) -> float | None:
        """Hours from `iso` to the page's time (None when either is unknown)."""
        if not iso or self.now is None:
            return None
        return round(max(0.0, (self.now - _parse(iso)).total_seconds() / 3600), 3)

    def to_dict(self) -> dict[str, Any]:
        report = self.report.to_dict() if self.report else None
        if report:
            for failure in report.get("failures", []):
                failure["reason"] = plain_reason(failure.get("reason"))
                failure["advice"] = advice(failure.get("reason") or "", failure.get("kind") or "",
                                           self.location.dag_id)
            for project in report.get("projects", []):
                project["last_error"] = plain_reason(project.get("last_error"))
                project.update(self.project_live(project["project_id"], project.get("last_success_at")))
                if project["hook"]:
                    project["hook"]["error"] = plain_reason(project["hook"]["error"])
            if report.get("verification"):
                verification = report["verification"]
                verification["errors"] = [plain_reason(e) for e in verification.get("errors", [])]
        return {**self.location.to_dict(), "latest_run": self.latest_run, "report": report, "error": self.error,
                "live": self.live.to_dict() if self.live else None, "hooks": self.hooks_summary()}


def _parse(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _latest(*moments: str | None) -> str | None:
    known = [m for m in moments if m]
    return max(known, key=_parse) if known else None


@dataclass
class Dashboard:
    generated_at: str
    mirrors: list[MirrorStatus]
    connections: list[ConnectionHealth]
    problem: str | None = None  # why no mirror could be listed (bad configuration)

    def to_dict(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at, "problem": self.problem,
                "mirrors": [m.to_dict() for m in self.mirrors],
                "connections": [c.to_dict() for c in self.connections]}


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(request: Request) -> Response:
    from aps_mirror.airflow_provider.ui.app import _user_or_login
    from aps_mirror.airflow_provider.ui.dashboard_page import render_dashboard

    user = await _user_or_login(request)
    if isinstance(user, Response):
        return user
    return HTMLResponse(render_dashboard(await run_in_threadpool(collect_dashboard, user)))


@router.get("/dashboard.json")
async def dashboard_json(request: Request) -> Response:
    from aps_mirror.airflow_provider.ui.app import _user_or_login

    user = await _user_or_login(request)
    if isinstance(user, Response):  # an API client gets a status, not a login page
        return JSONResponse({"detail": "Not authenticated"}, 401)
    return JSONResponse((await run_in_threadpool(collect_dashboard, user)).to_dict())


def collect_dashboard(user: Any) -> Dashboard:
    """What `user` may see; blocking (database and S3), so routes run it in a thread.
    Raises 403 when the user may see nothing here (mirror_access.py)."""
    from aps_mirror.airflow_provider.ui.app import allowed

    problem, found = None, []
    try:
        found = find_mirrors()
    except ConfigError as exc:
        problem = str(exc)
    locations = visible_mirrors(user, found)  # before any S3 read: hidden mirrors cost nothing
    if found and not locations:
        raise HTTPException(403, NO_MIRROR_VISIBLE)
    if not found and not may_read_some_dag(user):
        raise HTTPException(403, NO_DAG_READ)
    now = datetime.now(timezone.utc)
    dag_ids = {loc.dag_id for loc in locations if loc.dag_id}
    runs = latest_dag_runs(dag_ids)
    lives = _live_states(dag_ids, now)
    mirrors = [replace(read_mirror(loc), latest_run=runs.get(loc.dag_id or ""), live=lives.get(loc.dag_id or ""),
                       now=now) for loc in locations]
    # Connection ids and who consented are connection data: Airflow's own rule decides.
    connections = [c for c in connection_health() if allowed(user, "GET", c.conn_id)]
    return Dashboard(generated_at=now.isoformat(timespec="seconds"),
                     mirrors=mirrors, connections=connections, problem=problem)


def _live_states(dag_ids: set[str], now: datetime) -> dict[str, MirrorLive]:
    """The mirrors' live side; none when the database cannot say (the rest of the page stands)."""
    try:
        return live_states(sorted(dag_ids), now)
    except Exception:  # noqa: BLE001 - the catalog's figures are still worth showing
        log.exception("could not read the live mirrors' events from the metadata database")
        return {}


_cache: dict[tuple[str, str, str], tuple[float, MirrorStatus]] = {}
_cache_lock = threading.Lock()


def read_mirror(location: MirrorLocation) -> MirrorStatus:
    """The mirror's catalog report, or why it could not be read (never raises)."""
    key = (location.bucket, location.prefix, location.aws_conn_id)
    with _cache_lock:
        cached = _cache.get(key)
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
        return replace(cached[1], location=location)  # this request's location
    status = MirrorStatus(location)
    try:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from aps_mirror.catalog.report import build_report

        s3 = S3Hook(aws_conn_id=location.aws_conn_id).get_conn()
        status.report = build_report(s3, location.bucket, location.prefix, stale_after_hours=STALE_AFTER_HOURS,
                                     days=NIGHTS_SHOWN, aws_conn_id=location.aws_conn_id)
        status.hooks, status.successes = read_live_tables(s3, location.bucket, location.prefix)
    except Exception as exc:  # noqa: BLE001 - shown on the page: one bad mirror must not hide others
        status.error = (f"Could not read the catalog of {location.uri} with the connection "
                        f"{location.aws_conn_id!r}: {type(exc).__name__}: {plain_reason(str(exc))}")
        if not _connection_defined(location.aws_conn_id):
            status.error += (f" (no connection {location.aws_conn_id!r} is defined in Airflow, so boto3's "
                             "default credentials were tried)")
    with _cache_lock:
        _cache[key] = (time.monotonic(), status)
    return status


def read_live_tables(s3: Any, bucket: str, prefix: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, str | None]]]:
    """The catalog's `hooks` rows and each project's last live and nightly successes (two small
    objects: `hooks/hooks.parquet`, `projects/projects.parquet`)."""
    from aps_mirror.catalog import reader

    hooks = [{k: _exact(v) if isinstance(v, datetime) else v for k, v in row.items()}
             for row in reader.read_table(s3, bucket, prefix, "hooks").to_pylist()]
    successes = {bare_project_id(row["project_id"]): {"live": _exact(row["last_live_success_at"]),
                                                      "nightly": _exact(row["last_nightly_success_at"])}
                 for row in reader.read_table(s3, bucket, prefix, "projects").to_pylist()}
    return hooks, successes


def _exact(value: datetime | None) -> str | None:
    """To the microsecond, as the catalog and the database keep it: a live sync a second after
    the nightly one is still the later."""
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds") if value else None


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


def latest_dag_runs(dag_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Each DAG's newest run (id, state, dates); DAGs that never ran are absent."""
    if not dag_ids:
        return {}
    from sqlalchemy import func, select

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    newest = (select(func.max(DagRun.id)).where(DagRun.dag_id.in_(sorted(dag_ids)))
              .group_by(DagRun.dag_id))
    with create_session() as session:
        return {run.dag_id: {"dag_id": run.dag_id, "run_id": run.run_id, "state": _state(run.state),
                             "start_date": _iso(run.start_date), "end_date": _iso(run.end_date)}
                for run in session.scalars(select(DagRun).where(DagRun.id.in_(newest)))}


def _state(state: Any) -> str:
    return str(state.value if hasattr(state, "value") else state)


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
     "Reconnect the Autodesk account on the 'Autodesk accounts' page, then trigger {dag}."),
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


def advice(reason: str, kind: str, dag_id: str | None = None) -> str:
    """What to do about a failure of the mirror written by `dag_id` (None: not known)."""
    lowered = reason.lower()
    for words, text in _ADVICE:
        if any(word in lowered for word in words):
            return text.format(dag=dag_id or "the mirror's DAG")
    if kind == "project":
        return ("The whole project stopped: read its night's sync_batch log (each lists its projects); "
                "the next run retries it.")
    return "It is retried on the next run; if it keeps failing, read the sync_batch task log of that night."
