"""Autodesk's webhook callbacks through a real `airflow api-server`: `POST /aps-mirror/webhooks/dm`.

One deployment for the module (api-server only: `dags reserialize` puts the DAG declaring the
live asset in the database, and no run is needed), an `autodesk` connection holding the
webhook secrets, and deliveries signed here exactly as Autodesk signs them (HMAC-SHA1 of the
raw body). What the receiver recorded is read back through Airflow's REST API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from aps_mirror.airflow_provider.assets import live_asset_name
from tests.airflow_deployment import Deployment, airflow_deployment, run_airflow, wait_until

MIRROR = "m1"
CONN_ID = "autodesk_hooks"
SECRET = "current-" + secrets.token_urlsafe(16)
PREVIOUS = "previous-" + secrets.token_urlsafe(16)
ROTATED = "rotated-" + secrets.token_urlsafe(16)
ACCOUNT = "292139e5-5f7f-402c-90f0-e61b53f38aad"  # what DM payloads call "tenant"
PROJECT = "4f8b8b74-3853-473d-85c4-4e8a8bff885b"
ROOT_FOLDER = "urn:adsk.wipprod:fs.folder:co.6a5Ylw9mRDus2bhttmH7dw"
FOLDER = "urn:adsk.wipprod:fs.folder:co.chOa5mlkR6mjN-PEx8-r8Q"
REFUSED = {"detail": "Delivery refused."}

LIVE_DAG = f"""
from datetime import datetime

from airflow.sdk import DAG, task

from aps_mirror.airflow_provider.assets import live_asset

with DAG("{MIRROR}_live", schedule=[live_asset("{MIRROR}", "b-1", "p")], start_date=datetime(2026, 1, 1),
         catchup=False):
    @task
    def sync_named_projects():
        pass

    sync_named_projects()
"""


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def secrets_extra(current: str, previous: str, changed_minutes_ago: float) -> dict[str, str]:
    return {"auth_mode": "client_credentials", "webhook_secret": current, "webhook_secret_previous": previous,
            "webhook_secret_changed_at": iso(datetime.now(timezone.utc) - timedelta(minutes=changed_minutes_ago))}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow-webhooks")
    dags = home / "dags"
    dags.mkdir()
    (dags / "live.py").write_text(LIVE_DAG)

    connections = home / "connections.json"
    connections.write_text(json.dumps({
        CONN_ID: {"conn_type": "autodesk", "host": "https://developer.api.autodesk.com", "login": "client-id",
                  "password": "client-secret", "extra": secrets_extra(SECRET, PREVIOUS, 20)},
        "not_autodesk": {"conn_type": "http", "extra": {"webhook_secret": SECRET}}}))

    def setup(env: dict[str, str]) -> None:
        run_airflow(env, "connections", "import", str(connections))
        run_airflow(env, "dags", "reserialize")  # the DAG and its live asset, in the database

    # One worker starts twice as fast as two, and its thread pool races copies of a delivery just
    # as well: the dedupe lock is the database's, the same across threads, workers and replicas.
    # The dashboard lists the mirror (its catalog is nowhere: the live side, from the database, still shows).
    extra_env = {"AIRFLOW__API__WORKERS": "1", "PYTHONUNBUFFERED": "1",
                 "APS_MIRROR_DASHBOARD_MIRRORS": f"s3://b-1/p?dag_id={MIRROR}", "AWS_EC2_METADATA_DISABLED": "true"}
    with airflow_deployment(home, dags, setup=setup, components=("api-server",), extra_env=extra_env) as dep:
        yield dep


@pytest.fixture(scope="module")
def live_asset_id(deployment: Deployment) -> int:
    assets = deployment.api.get(f"{deployment.base}/api/v2/assets", timeout=10,
                                params={"name_pattern": live_asset_name(MIRROR)}).json()["assets"]
    return next(a["id"] for a in assets if a["name"] == live_asset_name(MIRROR))


@pytest.fixture
def rotation(deployment: Deployment) -> Iterator[Any]:
    """Sets the connection's secrets through the REST API (as an admin or `webhooks ensure`
    would), and puts them back after the test."""
    def set_secrets(current: str, previous: str, changed_minutes_ago: float) -> None:
        patched = deployment.api.patch(
            f"{deployment.base}/api/v2/connections/{CONN_ID}", params={"update_mask": ["extra"]}, timeout=10,
            json={"connection_id": CONN_ID, "conn_type": "autodesk",
                  "extra": json.dumps(secrets_extra(current, previous, changed_minutes_ago))})
        assert patched.ok, patched.text

    yield set_secrets
    set_secrets(SECRET, PREVIOUS, 20)


def delivery_body(*, mirror: str = MIRROR, conn_id: str = CONN_ID, event: str = "dm.version.added",
                  version: int = 1) -> bytes:
    """A callback as Autodesk sends it for a hook made by aps-mirror (Autodesk's documented example)."""
    version_urn = f"urn:adsk.wipprod:fs.file:vf.0zvdp3CoTzWDcZC_wL0kJA?version={version}"
    return json.dumps({
        "version": "1.0",
        "resourceUrn": version_urn,
        "hook": {"system": "data", "event": event, "hookId": str(uuid.uuid4()), "tenant": ROOT_FOLDER,
                 "callbackUrl": "https://airflow.example.com/aps-mirror/webhooks/dm", "createdBy": "app",
                 "createdDate": "2026-01-01T00:00:00.000+0000", "creatorType": "Application",
                 "hookAttribute": {"aps_mirror": mirror, "conn_id": conn_id}, "scope": {"folder": ROOT_FOLDER},
                 "autoReactivateHook": True, "status": "active"},
        "payload": {"ext": "txt", "modifiedTime": iso(datetime.now(timezone.utc)), "creator": "U1",
                    "lineageUrn": "urn:adsk.wipprod:dm.lineage:0zvdp3CoTzWDcZC_wL0kJA", "sizeInBytes": 36,
                    "project": PROJECT, "source": version_urn, "version": str(version), "name": "a.txt",
                    "state": "CONTENT_AVAILABLE", "parentFolderUrn": FOLDER, "tenant": ACCOUNT,
                    "ancestors": [{"urn": ROOT_FOLDER, "name": f"{PROJECT}-root-folder"}]},
    }).encode()


def signature(body: bytes, secret: str) -> str:
    return "sha1hash=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def deliver(deployment: Deployment, body: bytes, *, secret: str | None = SECRET, delivery_id: str | None = None,
            headers: dict[str, str] | None = None) -> requests.Response:
    sent = {"content-type": "application/json", "x-adsk-delivery-id": delivery_id or str(uuid.uuid4())}
    if secret is not None:
        sent["x-adsk-signature"] = signature(body, secret)
    sent.update(headers or {})
    return requests.post(f"{deployment.base}/aps-mirror/webhooks/dm", data=body, headers=sent, timeout=10)


def live_events(deployment: Deployment, asset_id: int) -> list[dict[str, Any]]:
    """Every event of the live asset, as Airflow's REST API returns them."""
    page = deployment.api.get(f"{deployment.base}/api/v2/assets/events", timeout=10,
                              params={"asset_id": asset_id, "limit": 100, "order_by": "timestamp"}).json()
    assert page["total_entries"] == len(page["asset_events"]), page["total_entries"]
    return page["asset_events"]


def all_events_count(deployment: Deployment) -> int:
    return deployment.api.get(f"{deployment.base}/api/v2/assets/events", params={"limit": 1},
                              timeout=10).json()["total_entries"]


def with_id(events: list[dict[str, Any]], delivery_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["extra"].get("delivery_id") == delivery_id]


# ---------------------------------------------------------------------------- tests
def test_a_signed_delivery_is_one_asset_event_and_its_replay_records_nothing(
        deployment: Deployment, live_asset_id: int) -> None:
    body, delivery_id = delivery_body(version=3), str(uuid.uuid4())
    before = len(live_events(deployment, live_asset_id))
    started = time.perf_counter()
    accepted = deliver(deployment, body, delivery_id=delivery_id)
    elapsed = time.perf_counter() - started
    print(f"\naccepted delivery answered in {elapsed * 1000:.0f} ms (Autodesk's deadline: 7 s)")
    assert accepted.status_code == 200, accepted.text

    events = live_events(deployment, live_asset_id)
    assert len(events) == before + 1
    extra = events[-1]["extra"]
    received = datetime.fromisoformat(extra.pop("received_at"))
    assert abs(datetime.now(timezone.utc) - received) < timedelta(minutes=5)
    assert extra == {"delivery_id": delivery_id, "event": "dm.version.added", "hub_id": ACCOUNT,
                     "project_id": PROJECT, "folder_urn": FOLDER,
                     "item_urn": "urn:adsk.wipprod:dm.lineage:0zvdp3CoTzWDcZC_wL0kJA",
                     "version_urn": "urn:adsk.wipprod:fs.file:vf.0zvdp3CoTzWDcZC_wL0kJA?version=3",
                     "version_number": 3}
    assert events[-1]["asset_id"] == live_asset_id and events[-1]["source_dag_id"] is None

    # A replay, word for word or re-signed with another body, gets the refusal and records nothing.
    replayed = deliver(deployment, body, delivery_id=delivery_id)
    other_body = deliver(deployment, delivery_body(version=4), delivery_id=delivery_id)
    assert [(r.status_code, r.json()) for r in (replayed, other_body)] == [(401, REFUSED)] * 2
    assert len(live_events(deployment, live_asset_id)) == before + 1


def test_unsigned_forged_and_unknown_deliveries_get_one_and_the_same_401(
        deployment: Deployment, live_asset_id: int) -> None:
    body = delivery_body()
    cases = {
        "no signature": deliver(deployment, body, secret=None),
        "signed with another secret": deliver(deployment, body, secret="guess"),
        "signature of another body": deliver(deployment, body, headers={
            "x-adsk-signature": signature(delivery_body(version=9), SECRET)}),
        "malformed signature": deliver(deployment, body, headers={"x-adsk-signature": "sha1hash=zz"}),
        "another algorithm": deliver(deployment, body, headers={
            "x-adsk-signature": "sha256hash=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}),
        "no delivery id": deliver(deployment, body, headers={"x-adsk-delivery-id": ""}),
        "not JSON": deliver(deployment, b"not json"),
        "no hookAttribute": deliver(deployment, json.dumps({"hook": {"event": "dm.version.added"}}).encode()),
        "unknown connection": deliver(deployment, delivery_body(conn_id="autodesk_nope")),
        "not an autodesk connection": deliver(deployment, delivery_body(conn_id="not_autodesk")),
        "previous secret, rotated 20 minutes ago": deliver(deployment, body, secret=PREVIOUS),
    }
    assert {name: (r.status_code, r.text) for name, r in cases.items()} == {
        name: (401, json.dumps(REFUSED, separators=(",", ":"))) for name in cases}
    sent_ids = {r.request.headers["x-adsk-delivery-id"] for r in cases.values()}
    assert not [e for e in live_events(deployment, live_asset_id) if e["extra"]["delivery_id"] in sent_ids]


def test_previous_secret_counts_for_15_minutes_after_a_rotation_and_a_new_one_at_once(
        deployment: Deployment, live_asset_id: int, rotation) -> None:
    rotation(SECRET, PREVIOUS, 5)
    assert deliver(deployment, delivery_body(), secret=PREVIOUS).status_code == 200
    assert deliver(deployment, delivery_body(), secret=SECRET).status_code == 200

    rotation(ROTATED, SECRET, 0)  # what a rotation writes; no cache delays it
    assert deliver(deployment, delivery_body(), secret=ROTATED).status_code == 200
    assert deliver(deployment, delivery_body(), secret=SECRET).status_code == 200
    assert deliver(deployment, delivery_body(), secret=PREVIOUS).status_code == 401

    rotation(ROTATED, SECRET, 16)
    assert deliver(deployment, delivery_body(), secret=SECRET).status_code == 401
    assert deliver(deployment, delivery_body(), secret=ROTATED).status_code == 200


def test_a_signed_delivery_for_a_mirror_without_live_dag_is_refused_and_recorded_nowhere(
        deployment: Deployment) -> None:
    before = all_events_count(deployment)
    refused = deliver(deployment, delivery_body(mirror="no_such_mirror"))
    # Not ready rather than unauthorized: Autodesk retries it for 48 hours (the live DAG may be
    # about to be parsed); an unsigned one gets the usual 401.
    assert refused.status_code == 503 and refused.headers["retry-after"] == "600"
    assert deliver(deployment, delivery_body(mirror="no_such_mirror"), secret="guess").status_code == 401
    assert all_events_count(deployment) == before


def test_copies_of_one_delivery_sent_at_once_record_one_event(deployment: Deployment, live_asset_id: int) -> None:
    body, delivery_id = delivery_body(version=7), str(uuid.uuid4())
    start = threading.Barrier(8)
    answers: list[int] = []

    def send() -> None:
        start.wait()
        answers.append(deliver(deployment, body, delivery_id=delivery_id).status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200] + [401] * 7, "one is recorded, the others are replays"
    assert len(with_id(live_events(deployment, live_asset_id), delivery_id)) == 1


def test_the_dashboard_shows_each_projects_last_event_and_whether_the_mirror_is_live(
        deployment: Deployment, live_asset_id: int) -> None:
    """The dashboard's grouped query of the live asset's events, on PostgreSQL through the API server."""
    assert deliver(deployment, delivery_body(event="dm.version.modified", version=12)).status_code == 200
    recorded = [e for e in live_events(deployment, live_asset_id) if e["extra"].get("project_id") == PROJECT]

    def live_side() -> dict[str, Any]:
        answer = deployment.api.get(f"{deployment.base}/aps-mirror/dashboard.json", timeout=60)
        assert answer.status_code == 200, answer.text
        [mirror] = answer.json()["mirrors"]
        assert mirror["dag_id"] == MIRROR and mirror["error"], "no catalog here: said, and the rest still shown"
        return mirror["live"]

    paused = live_side()  # as parsed: paused at creation
    assert (paused["status"], paused["dags"]) == ("paused", [{"dag_id": f"{MIRROR}_live", "paused": True,
                                                              "stale": False}])
    project = paused["projects"][PROJECT]
    assert (project["last_event"], project["events"]) == ("dm.version.modified", len(recorded))
    assert datetime.fromisoformat(project["last_event_at"]) == max(datetime.fromisoformat(e["timestamp"])
                                                                   for e in recorded)
    assert project["live_synced_at"] is None  # no run of the live DAG yet
    unpaused = deployment.api.patch(f"{deployment.base}/api/v2/dags/{MIRROR}_live", json={"is_paused": False},
                                    timeout=10)
    assert unpaused.ok, unpaused.text
    assert live_side()["status"] == "live"
    page = deployment.api.get(f"{deployment.base}/aps-mirror/dashboard", timeout=60).text
    assert "<p class='meta live' data-live='live'>" in page and f">{MIRROR}_live</a>" in page


def test_an_oversized_body_is_refused_unread(deployment: Deployment) -> None:
    body = b'{"pad": "' + b"x" * (300 * 1024) + b'"}'
    assert deliver(deployment, body).status_code == 413


def test_accepted_deliveries_answer_in_milliseconds(deployment: Deployment) -> None:
    """Reported, not asserted (no timed tests): Autodesk's deadline is 7 s."""
    seconds = []
    for version in range(20):
        started = time.perf_counter()
        answer = deliver(deployment, delivery_body(version=version))
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    seconds.sort()
    print(f"\n20 accepted deliveries: fastest {seconds[0] * 1000:.0f} ms, median {seconds[10] * 1000:.0f} ms, "
          f"slowest {seconds[-1] * 1000:.0f} ms")


def test_the_log_says_why_each_delivery_was_refused_and_never_a_secret(deployment: Deployment) -> None:
    accepted, replayed, forged, unknown = (str(uuid.uuid4()) for _ in range(4))
    body = delivery_body()
    assert deliver(deployment, body, delivery_id=accepted).status_code == 200
    assert deliver(deployment, body, delivery_id=accepted).status_code == 401  # a replay
    assert deliver(deployment, body, delivery_id=replayed, secret=PREVIOUS).status_code == 401
    assert deliver(deployment, body, delivery_id=forged, secret="guess").status_code == 401
    assert deliver(deployment, delivery_body(mirror="no_such_mirror"), delivery_id=unknown).status_code == 503
    log_file = Path(deployment.home) / "component-api-server.log"
    wait_until(lambda: unknown in log_file.read_text(errors="replace"), 30, "the last refusal in the log")
    text = log_file.read_text(errors="replace")
    for line in (f"Accepted Autodesk delivery {accepted} for mirror {MIRROR}: dm.version.added in project {PROJECT}",
                 f"Refused an Autodesk delivery '{accepted}': a replay: delivery {accepted} was already "
                 f"accepted for mirror '{MIRROR}'",
                 f"Refused an Autodesk delivery '{replayed}': signature matches no acceptable secret",
                 f"Refused an Autodesk delivery '{forged}': signature matches no acceptable secret",
                 f"Refused an Autodesk delivery '{unknown}': mirror 'no_such_mirror' has no live asset"):
        assert line in text
    for secret in (SECRET, PREVIOUS, ROTATED):
        assert secret not in text


# ---------------------------------------------------------------------------- without a deployment
def test_a_folder_event_names_its_folder_and_no_version() -> None:
    from aps_mirror.airflow_provider.ui.webhook_receiver import event_extra

    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    document = {"resourceUrn": FOLDER, "hook": {"event": "dm.folder.added"},
                "payload": {"project": PROJECT, "tenant": ACCOUNT, "name": "Specs", "version": True,
                            "lineageUrn": 42, "ancestors": [{"urn": ROOT_FOLDER}]}}
    assert event_extra(document, "d-1", now) == {
        "delivery_id": "d-1", "event": "dm.folder.added", "hub_id": ACCOUNT, "project_id": PROJECT,
        "folder_urn": FOLDER, "received_at": "2026-03-01T00:00:00+00:00"}


def test_the_previous_secret_counts_only_inside_its_grace_period() -> None:
    from aps_mirror.airflow_provider.ui.webhook_receiver import _recent

    now = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    assert _recent("2026-03-01T11:46:00Z", now) and _recent("2026-03-01T11:46:00", now)
    assert _recent("2026-03-01T12:50:00+01:00", now)  # 10 minutes ago, written in another zone
    assert not _recent("2026-03-01T11:45:00+00:00", now)  # exactly 15 minutes: over
    assert not _recent("2026-03-01T12:05:00+00:00", now)  # in the future beyond clock skew: refused
    assert not _recent(None, now) and not _recent("yesterday", now) and not _recent(17, now)
