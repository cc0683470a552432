"""The dashboard's live side from real data: a mirror DAG and its live DAG parsed into the Airflow
database (SQLite), the mirror DAG's `ensure_live_hooks` against the simulator over HTTP (the
secret in a real `autodesk` connection), the simulator's signed deliveries recorded by the
webhook receiver's own `accept`, the live DAG's `sync_affected` and the nightly engine writing
the catalog to moto's S3; then `read_mirror`, `live_states` and `render_dashboard` read it all.

What the scheduler would do is the one thing done by hand: a successful run of the live DAG
that consumed the recorded events (the deployment test tests/deploy/test_live_mirror.py has
the real scheduler)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest

from aps_mirror.airflow_provider.ui import dashboard
from aps_mirror.airflow_provider.ui.dashboard import Dashboard, MirrorStatus, read_live_tables, read_mirror
from aps_mirror.airflow_provider.ui.mirror_locations import MirrorLocation
from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.aps.webhooks import ApsWebhooks
from aps_mirror.catalog import reader
from aps_mirror.catalog.layout import table_prefix
from aps_mirror.connection import lookup_connection
from aps_mirror.errors import ConfigError
from aps_mirror.mirror.webhooks import HookSelection, selected_projects
from aps_mirror.simulator import Simulator, SimulatorServer
from tests.conftest import FAST_RETRY, connection_for
from tests.mirror.test_webhooks import (HOOK_SCOPES, add_connection, callback, client, conn_id,  # noqa: F401
                                        ensure, receiver, remove_connection, root_folders)

PREFIX = "autodesk"
DRONE, RIVERSIDE, HARBOR = "Drone Gimbal", "Riverside Tower", "Harbor Bridge Retrofit"


@dataclass
class LiveMirror:
    mirror: str  # the mirror DAG's id
    bucket: str
    s3: Any
    ids: dict[str, str]  # project name -> project id (as Autodesk and the catalog name it)
    first_check: list[dict]  # the hooks table after the first ensure
    second_check: list[dict]  # after the second (one hook deactivated meanwhile)
    failed_check: list[dict]  # after an ensure that could not start
    ensure_result: dict  # what the task returns (XCom)
    paused: MirrorStatus  # the dashboard's view while the live DAG was still paused
    status: MirrorStatus  # its view after the live run, before any publish
    published: dict[str, dict[str, str | None]]  # the catalog's successes after the next publish
    secret: str
    live_run_end: datetime
    nightly_end: datetime


class Receiver(BaseHTTPRequestHandler):
    """Autodesk's callbacks through the receiver's own checks and record (its `accept`)."""

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        from aps_mirror.airflow_provider.ui.webhook_receiver import Refused, accept

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            accept(body, self.headers.get("x-adsk-signature"), self.headers.get("x-adsk-delivery-id"),
                   datetime.now(timezone.utc))
            status = 200
        except Refused as refusal:
            status = refusal.status
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def parse_into_db(folder: Path, source: str) -> None:
    """The DAG file parsed and written to the metadata database, as the dag-processor does."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    (folder / "live_mirror.py").write_text(source)
    bag = DagBag(dag_folder=str(folder), bundle_path=folder)
    assert bag.import_errors == {}
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)


def set_paused(dag_id: str, paused: bool) -> None:
    from sqlalchemy import update

    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=paused))


def live_run_consuming_every_event(live_dag_id: str, asset_name: str, run_id: str, end: datetime) -> None:
    """A successful run of the live DAG holding the asset's events, as the scheduler records it."""
    from sqlalchemy import select

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    with create_session() as session:
        events = session.scalars(select(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                                 .where(AssetModel.name == asset_name)).all()
        assert events, "the receiver recorded no event"
        run = DagRun(dag_id=live_dag_id, run_id=run_id, run_type=DagRunType.ASSET_TRIGGERED,
                     state=DagRunState.SUCCESS, start_date=end - timedelta(seconds=20), run_after=end,
                     triggered_by=DagRunTriggeredByType.ASSET)
        run.end_date = end
        run.consumed_asset_events.extend(events)
        session.add(run)


@pytest.fixture(scope="module")
def live(airflow_db, s3_endpoint: str, tmp_path_factory) -> Iterator[LiveMirror]:
    from aps_mirror.airflow_provider.mirror import ensure_live_hooks, mirror_engine, publish_catalog

    tag = uuid.uuid4().hex[:8]
    mirror, conn_id, aws_conn_id = f"live_{tag}", f"autodesk_live_{tag}", f"aws_live_{tag}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    bucket = f"live-{tag}"
    s3.create_bucket(Bucket=bucket)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{server.server_address[1]}/aps-mirror/webhooks/dm"
    with SimulatorServer(Simulator(seed="demo", rate_scale=0)) as simulator, pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"AIRFLOW_CONN_{aws_conn_id.upper()}", json.dumps({
            "conn_type": "aws", "login": "test", "password": "test",
            "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}))
        patch.setattr(dashboard, "_cache", {})
        add_connection(conn_id, simulator)
        no_hooks_conn = f"{conn_id}_read"
        add_connection(no_hooks_conn, simulator, scopes="data:read")
        try:
            folder = tmp_path_factory.mktemp("live-dags")
            options = f"bucket={bucket!r}, prefix={PREFIX!r}, autodesk_conn_id={conn_id!r}, aws_conn_id={aws_conn_id!r}"
            parse_into_db(folder, "from aps_mirror.airflow_provider.dags import build_live_dag, build_mirror_dag\n"
                                  f"build_mirror_dag({mirror!r}, schedule=None, webhook_callback_url={callback!r}, "
                                  f"{options})\nbuild_live_dag({mirror!r}, {options})\n")
            from airflow.dag_processing.dagbag import DagBag

            dags = DagBag(dag_folder=str(folder), bundle_path=folder).dags
            params = {key: dags[mirror].params.get_param(key).value for key in dags[mirror].params}
            client = ApsClient(ApsTransport(connection_for(simulator, conn_id=conn_id,
                                                           scopes=tuple(HOOK_SCOPES.split())),
                                            retry_policy=FAST_RETRY))
            projects = selected_projects(client, HookSelection())
            ids = {p.project_name: p.project_id for p in projects}

            # Last night: the nightly engine, then its publish.
            nightly = mirror_engine(params, run_id=f"scheduled__{datetime.now(timezone.utc).isoformat()}")
            with nightly.locked():
                assert not any(r.errors for r in nightly.mirror_projects(nightly.list_projects()))
            publish_catalog(params)
            nightly_end = datetime.now(timezone.utc)

            # Another mirror holds Drone Gimbal's root folder with this callback URL: Autodesk
            # refuses this mirror's set there (409), the project's check fails.
            drone = [p for p in projects if p.project_name == DRONE]
            assert ensure(client, conn_id, callback, projects=drone, mirror=f"other_{tag}").ok
            ensure_result = run_ensure(ensure_live_hooks, params, mirror, callback)
            first_check = hooks_table(s3, bucket)
            # Autodesk deactivates one of Harbor's hooks (failed deliveries): the next check repairs it.
            api = ApsWebhooks(client)
            harbor_root = next(p.root_folder_id for p in projects if p.project_name == HARBOR)
            harbor_hook = next(h for h in api.hooks() if h.hook_attribute.get("aps_mirror") == mirror
                               and h.folder == harbor_root)
            api.update_hook(harbor_hook, {"status": "inactive", "autoReactivateHook": False})
            run_ensure(ensure_live_hooks, params, mirror, callback)
            second_check = hooks_table(s3, bucket)

            location = MirrorLocation(bucket, PREFIX, aws_conn_id, dag_id=mirror)
            paused = collect(location)
            # A change in Riverside Tower: the simulator delivers it, the receiver records it.
            sim = simulator.sim
            target = next(f for f in sim.iter_files() if f.project == RIVERSIDE)
            sim.add_version(target.item_id, size=4096)
            assert sim.webhooks.drain(30)
            delivered = [d for d in sim.webhooks.deliveries() if d["outcome"] == "delivered"]
            assert delivered and all(d["status"] == 200 for d in delivered), delivered

            # The live DAG syncs what the events name, under a run id the scheduler would give it.
            set_paused(f"{mirror}_live", False)
            run_id = f"asset_triggered__{datetime.now(timezone.utc).isoformat()}_{tag}"
            patch.setattr("aps_mirror.airflow_provider.dags.live_dag.get_current_context", lambda: {"run_id": run_id})
            live_params = {key: dags[f"{mirror}_live"].params.get_param(key).value for key in dags[f"{mirror}_live"].params}
            synced = dags[f"{mirror}_live"].get_task("sync_affected").python_callable(
                [ids[RIVERSIDE].removeprefix("b.")], live_params)
            assert [r["project"].split(" / ")[-1] for r in synced] == [RIVERSIDE]
            live_run_end = datetime.now(timezone.utc)
            live_run_consuming_every_event(f"{mirror}_live", f"{mirror}_live", run_id, live_run_end)
            dashboard._cache.clear()
            status = collect(location)

            publish_catalog(params)  # the next night's publish folds the live run's record
            published = read_live_tables(s3, bucket, PREFIX)[1]

            # A check that cannot start (the connection lacks data:write): every project in error.
            with pytest.raises(ConfigError, match="data:write"):
                run_ensure(ensure_live_hooks, {**params, "autodesk_conn_id": no_hooks_conn}, mirror, callback)
            failed_check = hooks_table(s3, bucket)
            secret = dict(lookup_connection(conn_id).extra)["webhook_secret"]
            yield LiveMirror(mirror, bucket, s3, ids, first_check, second_check, failed_check, ensure_result, paused,
                             status, published, secret, live_run_end, nightly_end)
        finally:
            remove_connection(conn_id)
            remove_connection(no_hooks_conn)
            server.shutdown()
            server.server_close()


def run_ensure(ensure_live_hooks, params: dict, mirror: str, callback: str) -> dict | None:
    """The task's call; a project that failed fails the task after its state is recorded."""
    try:
        return ensure_live_hooks(params, mirror=mirror, callback_url=callback)
    except RuntimeError as exc:
        assert "could not be ensured" in str(exc)
        return None


def hooks_table(s3, bucket: str) -> list[dict]:
    rows = reader.read_table(s3, bucket, PREFIX, "hooks").to_pylist()
    return sorted(rows, key=lambda r: r["project_name"] or "")


def collect(location: MirrorLocation) -> MirrorStatus:
    """What `collect_dashboard` puts together for one mirror."""
    now = datetime.now(timezone.utc)
    lives = dashboard.live_states([location.dag_id], now)
    return replace(read_mirror(location), live=lives[location.dag_id], now=now)


# -- the hooks table: what ensure_webhooks records ----------------------------------------------
def test_each_check_records_each_projects_hook_state(live: LiveMirror):
    first = {r["project_name"]: r for r in live.first_check}
    assert {n: (r["state"], r["found"]) for n, r in first.items()} == {
        DRONE: ("error", None), HARBOR: ("active", "missing"), RIVERSIDE: ("active", "missing")}
    assert "belong to mirror other_" in first[DRONE]["error"] and "\n" not in first[DRONE]["error"]
    for name, row in first.items():  # the catalog's ids, like every table's
        assert row["project_id"] == live.ids[name] and row["hub_id"] and row["mirror"] == live.mirror
        assert row["bim360_project_id"] == (live.ids[name][2:] if live.ids[name].startswith("b.") else None)
    assert first[HARBOR]["hooks"] == first[RIVERSIDE]["hooks"] > 1 and first[HARBOR]["folders"] == 1
    assert first[HARBOR]["changes"].startswith("1 new hook set")

    second = {r["project_name"]: r for r in live.second_check}
    assert {n: (r["state"], r["found"], r["changes"]) for n, r in second.items() if n != DRONE} == {
        HARBOR: ("active", "inactive", "1 reactivated"), RIVERSIDE: ("active", "active", None)}
    assert second[DRONE]["state"] == "error"
    assert all(r["checked_at"] > first[r["project_name"]]["checked_at"] for r in live.second_check)
    assert live.ensure_result is None, "a project failed: the task fails after recording"


def test_a_check_that_cannot_start_marks_every_project_in_error(live: LiveMirror):
    rows = live.failed_check
    assert [r["project_name"] for r in rows] == [DRONE, HARBOR, RIVERSIDE]
    assert all(r["state"] == "error" and "data:write" in r["error"] for r in rows)
    assert all(r["checked_at"] > max(s["checked_at"] for s in live.second_check) for r in rows)


def test_no_secret_in_the_hooks_table(live: LiveMirror):
    body = live.s3.get_object(Bucket=live.bucket, Key=f"{table_prefix(PREFIX, 'hooks')}hooks.parquet")["Body"].read()
    assert live.secret and live.secret.encode() not in body


def test_what_a_check_found_is_what_webhooks_list_says_before_it(simulator, client, conn_id, callback):
    """The found states, against the listing's own words: one hook deleted, one deactivated, one set intact."""
    from aps_mirror.mirror.hook_states import hook_rows, shown_url
    from aps_mirror.mirror.webhooks import list_hooks

    ensure(client, conn_id, callback)
    api, roots = ApsWebhooks(client), root_folders(client)
    api.delete_hook(next(h for h in api.hooks() if h.folder == roots[HARBOR] and h.event == "dm.version.deleted"))
    api.update_hook(next(h for h in api.hooks() if h.folder == roots[RIVERSIDE]), {"status": "inactive"})
    projects = selected_projects(client, HookSelection())
    listed = {p.project_name: p.state for p in list_hooks(client, projects, mirror="aps_mirror_live_test").projects}
    assert listed == {DRONE: "active", HARBOR: "partial", RIVERSIDE: "inactive"}
    rows = hook_rows(ensure(client, conn_id, callback, projects=projects), datetime.now(timezone.utc))
    assert {r["project_name"]: r["found"] for r in rows} == listed
    assert {r["project_name"]: r["changes"] for r in rows} == {DRONE: None, HARBOR: "1 hook created",
                                                             RIVERSIDE: "1 reactivated"}
    assert shown_url("https://ops:pw@airflow.example.com/aps-mirror/webhooks/dm") == \
        "https://airflow.example.com/aps-mirror/webhooks/dm"  # a password in the URL stays out of the catalog


# -- live or not, the last event, freshness: dashboard.json --------------------------------------
def test_the_mirror_is_live_once_its_live_dag_is_unpaused(live: LiveMirror):
    assert live.paused.live.status == "paused" and live.paused.live.projects == {}
    data = live.status.to_dict()
    events = data["live"].pop("projects")
    assert data["live"] == {"status": "live", "asset": f"{live.mirror}_live", "declared": True, "window_days": 30,
                            "dags": [{"dag_id": f"{live.mirror}_live", "paused": False, "stale": False}]}
    [(project, riverside)] = events.items()  # every project named by an event, in the catalog or not
    assert project == live.ids[RIVERSIDE].removeprefix("b.") and riverside["last_event"] == "dm.version.added"
    assert riverside["live_synced_at"] == live.live_run_end.isoformat(timespec="microseconds")
    assert data["hooks"]["states"] == {"active": 2, "error": 1} and data["hooks"]["mirror"] == live.mirror
    assert data["hooks"]["error"] is None and data["hooks"]["callback_url"].endswith("/aps-mirror/webhooks/dm")


def test_each_project_has_its_last_event_hook_state_and_freshness(live: LiveMirror):
    projects = {p["project_name"]: p for p in live.status.to_dict()["report"]["projects"]}
    riverside = projects[RIVERSIDE]
    assert riverside["last_event"]["event"] == "dm.version.added" and riverside["last_event"]["events"] >= 1
    assert riverside["last_event"]["age_hours"] < 1
    # The live run is not in the catalog yet (its record waits for the next publish): the database says.
    fresh = riverside["freshness"]
    assert fresh["via"] == "live" and fresh["live_success_at"] == live.live_run_end.isoformat(timespec="microseconds")
    assert fresh["nightly_success_at"] < fresh["live_success_at"] and fresh["nightly_age_hours"] >= fresh["live_age_hours"]
    assert riverside["hook"]["state"] == "active" and riverside["hook"]["found"] == "active"

    for name in (HARBOR, DRONE):
        assert projects[name]["last_event"] is None
        assert projects[name]["freshness"]["via"] == "nightly" and projects[name]["freshness"]["live_success_at"] is None
    assert (projects[HARBOR]["hook"]["found"], projects[HARBOR]["hook"]["changes"]) == ("inactive", "1 reactivated")
    assert projects[DRONE]["hook"]["state"] == "error" and "belong to mirror" in projects[DRONE]["hook"]["error"]
    assert json.loads(json.dumps(live.status.to_dict()))  # JSON as the route sends it


def test_the_next_publish_records_the_live_success_in_the_catalog(live: LiveMirror):
    riverside = live.published[live.ids[RIVERSIDE].removeprefix("b.")]
    assert riverside["live"] and riverside["nightly"] and riverside["live"] > riverside["nightly"]
    assert datetime.fromisoformat(riverside["live"]) <= live.live_run_end  # the sync's own end, before the run's
    harbor = live.published[live.ids[HARBOR].removeprefix("b.")]
    assert harbor["live"] is None and datetime.fromisoformat(harbor["nightly"]) <= live.nightly_end


# -- the page ---------------------------------------------------------------------------------------
def test_the_page_shows_live_status_hooks_events_and_freshness(live: LiveMirror):
    from aps_mirror.airflow_provider.ui.dashboard_page import render_dashboard

    page = render_dashboard(Dashboard(generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                      mirrors=[live.status, live.paused], connections=[]))
    overview = re.findall(r"<td class='live-status' data-live='(\w+)'>", page)
    assert overview == ["live", "paused"]
    section = page.split("<section class='mirror' id='mirror-0'", 1)[1].split("</section>", 1)[0]
    line = re.search(r"<p class='meta live' data-live='live'>(.*?)</p>", section).group(1)
    assert f">{live.mirror}_live</a>" in line and "event" in line and "min ago" in line
    assert "Webhooks: 2 active, 1 error, checked" in line

    rows = {re.search(r"<td>[^<]*</td><td>([^<]*)</td>", row).group(1): row
            for row in re.findall(r"<tr class='project'.*?</tr>", section)}
    assert "data-freshness='live'" in rows[RIVERSIDE] and "data-last-event='dm.version.added'" in rows[RIVERSIDE]
    assert "<span class='badge live'>live</span><small>live 0 min ago · nightly" in rows[RIVERSIDE]
    assert "data-freshness='nightly'" in rows[HARBOR] and "data-hook-state='active'" in rows[HARBOR]
    assert "was inactive" in rows[HARBOR] and "no event" in rows[HARBOR]
    assert "data-hook-state='error'" in rows[DRONE] and "<span class='badge alert'" in rows[DRONE]
    paused = page.split("<section class='mirror' id='mirror-1'", 1)[1].split("</section>", 1)[0]
    assert "data-live='paused'" in paused and "is paused: deliveries are recorded" in paused
    assert live.secret not in page


def test_a_mirror_without_live_dag_says_nightly_only(airflow_db):
    from aps_mirror.airflow_provider.ui.dashboard_page import _live_line

    lives = dashboard.live_states(["never_live_mirror"], datetime.now(timezone.utc))
    status = MirrorStatus(MirrorLocation("some-bucket", PREFIX, dag_id="never_live_mirror"),
                          live=lives["never_live_mirror"], now=datetime.now(timezone.utc))
    assert status.live.status == "off" and not status.shows_live
    assert "Nightly only" in _live_line(status) and status.to_dict()["hooks"] is None
