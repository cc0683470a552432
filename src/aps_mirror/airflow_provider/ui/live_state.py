"""Each mirror's live side, from Airflow's metadata database (never from Autodesk).

- Is it live: its live asset (`<mirror DAG id>_live`, which the webhook receiver records
  deliveries on) is declared by a deployed DAG, and one DAG scheduled on it is unpaused.
- Per project, over the last EVENT_DAYS days: the last accepted delivery (when, which event),
  how many were accepted, and when the latest successful run of the live DAG that consumed one
  of the project's events finished (the live sync the catalog shows only after the next
  publish folds its record).

One query for every mirror's asset and DAGs, and one per live asset for its projects: grouped
by project in the database and bounded by the window, however many events there are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from aps_mirror.airflow_provider.assets import live_asset_name

EVENT_DAYS = 30  # the dashboard's window (its nights chart's)
MAX_PROJECTS = 5000  # projects listed per mirror: a guard, far above a selection's size
LIVE, PAUSED, OFF = "live", "paused", "off"


@dataclass
class ProjectEvents:
    last_event_at: str | None  # ISO 8601 UTC: when the receiver accepted the latest delivery
    last_event: str | None  # its event, e.g. dm.version.added
    events: int  # deliveries accepted in the window
    live_synced_at: str | None  # when the latest successful live run that consumed one of them ended


@dataclass
class MirrorLive:
    asset: str  # the live asset's name
    declared: bool  # a deployed DAG declares it (the receiver answers 503 otherwise)
    dags: list[dict[str, Any]] = field(default_factory=list)  # scheduled on it: dag_id, paused, stale
    projects: dict[str, ProjectEvents] = field(default_factory=dict)  # by project id without "b."
    window_days: int = EVENT_DAYS

    @property
    def status(self) -> str:
        """live: a DAG scheduled on the asset is deployed and unpaused; paused: deployed but
        paused (deliveries are recorded, nothing syncs them); off: no live DAG."""
        deployed = [d for d in self.dags if not d["stale"]]
        if not self.declared or not deployed:
            return OFF
        return LIVE if any(not d["paused"] for d in deployed) else PAUSED

    def to_dict(self) -> dict[str, Any]:
        """With every project the events name, in the catalog or not (yet)."""
        return {"status": self.status, "asset": self.asset, "declared": self.declared, "dags": self.dags,
                "window_days": self.window_days, "projects": {k: asdict(v) for k, v in sorted(self.projects.items())}}


def bare_project_id(project_id: str | None) -> str:
    """The project's GUID: deliveries name it bare, the catalog and Autodesk with `b.`."""
    return (project_id or "").removeprefix("b.")


def live_states(mirror_dag_ids: Iterable[str], now: datetime) -> dict[str, MirrorLive]:
    """Mirror DAG id -> its live side (every mirror asked gets one, `off` when nothing is deployed)."""
    names = {live_asset_name(dag_id): dag_id for dag_id in mirror_dag_ids}
    if not names:
        return {}
    from sqlalchemy import select

    from airflow.models.asset import AssetActive, AssetModel, DagScheduleAssetReference
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    states = {dag_id: MirrorLive(asset=name, declared=False) for name, dag_id in names.items()}
    with create_session() as session:
        assets: dict[str, int] = {}
        for asset_id, name, dag_id, paused, stale in session.execute(
                select(AssetModel.id, AssetModel.name, DagModel.dag_id, DagModel.is_paused, DagModel.is_stale)
                .join(AssetActive, (AssetActive.name == AssetModel.name) & (AssetActive.uri == AssetModel.uri))
                .outerjoin(DagScheduleAssetReference, DagScheduleAssetReference.asset_id == AssetModel.id)
                .outerjoin(DagModel, DagModel.dag_id == DagScheduleAssetReference.dag_id)
                .where(AssetModel.name.in_(sorted(names)))).all():
            state = states[names[name]]
            state.declared, assets[name] = True, asset_id
            if dag_id is not None:
                state.dags.append({"dag_id": dag_id, "paused": bool(paused), "stale": bool(stale)})
        for name, asset_id in assets.items():
            state = states[names[name]]
            state.projects = _projects(session, asset_id, [d["dag_id"] for d in state.dags],
                                       now - timedelta(days=EVENT_DAYS))
    return states


def _projects(session: Any, asset_id: int, consumers: list[str], since: datetime) -> dict[str, ProjectEvents]:
    """Per project named by the asset's events since `since`: its latest event, their count,
    and the end of the latest successful run (of a DAG scheduled on the asset) that consumed one."""
    from sqlalchemy import and_, case, distinct, func, select

    from airflow.models.asset import AssetEvent
    from airflow.models.asset import association_table as consumed
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState

    # The project is named once, in a subquery, and grouped by as a column: a JSON expression
    # repeated in GROUP BY is not "the same" to PostgreSQL when its key is a bound parameter.
    tagged = (select(AssetEvent.id.label("event_id"), AssetEvent.extra["project_id"].as_string().label("project_id"))
              .where(AssetEvent.asset_id == asset_id, AssetEvent.timestamp >= since).subquery())
    synced = case((and_(DagRun.state == DagRunState.SUCCESS, DagRun.dag_id.in_(consumers or [""])),
                   DagRun.end_date))
    grouped = (select(tagged.c.project_id, func.max(tagged.c.event_id).label("last_id"),
                      func.count(distinct(tagged.c.event_id)).label("events"), func.max(synced).label("synced"))
               .select_from(tagged)
               .outerjoin(consumed, consumed.c.event_id == tagged.c.event_id)
               .outerjoin(DagRun, DagRun.id == consumed.c.dag_run_id)
               .group_by(tagged.c.project_id).limit(MAX_PROJECTS).subquery())
    rows = session.execute(select(grouped.c.project_id, grouped.c.events, grouped.c.synced, AssetEvent.timestamp,
                                  AssetEvent.extra)
                           .join(AssetEvent, AssetEvent.id == grouped.c.last_id)).all()
    found = {}
    for project_id, events, synced_at, timestamp, extra in rows:
        if not project_id:
            continue  # a delivery that named no project
        event = (extra or {}).get("event")
        found[bare_project_id(project_id)] = ProjectEvents(
            last_event_at=_iso(timestamp), last_event=str(event) if event else None, events=int(events),
            live_synced_at=_iso(synced_at))
    return found


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands back text for an aggregated timestamp
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # Airflow stores UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")  # as the catalog keeps it
