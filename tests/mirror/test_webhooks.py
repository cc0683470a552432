"""A mirror's webhook lifecycle against the simulator over HTTP: hook sets per selected project,
repairs, deletions, and the secret kept in a real Airflow connection (ORM writer) that signs the
simulator's callbacks to a real local receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.aps.webhooks import ApsWebhooks
from aps_mirror.connection import lookup_connection
from aps_mirror.errors import ConfigError
from aps_mirror.mirror.webhook_secret import (CHANGED_AT_KEY, PENDING_KEY, PREVIOUS_KEY, SECRET_KEY, SecretKeeper,
                                              installed_writer)
from aps_mirror.mirror.config import MirrorConfig
from aps_mirror.mirror.webhooks import (HookSelection, check_callback_url, delete_hooks, ensure_hooks,
                                        ensure_mirror_hooks, list_hooks, selected_projects)
from aps_mirror.simulator.webhook_registry import DM_EVENTS, Caller
from tests.airflow_provider.airflow_home import migrate_db
from tests.conftest import FAST_RETRY, connection_for

MIRROR = "aps_mirror_live_test"
HOOK_SCOPES = "data:read data:write"
LISTING_CLASSES = {"token", "hubs", "projects", "webhooks_system_hooks"}


@pytest.fixture(scope="module")
def airflow_db():
    return migrate_db()


@pytest.fixture
def receiver() -> Iterator[str]:
    """A real HTTP endpoint that accepts every callback (200): the hooks stay active."""
    class Accept(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def callback(receiver) -> str:
    return f"{receiver}/aps-mirror/webhooks/dm"


def add_connection(conn_id: str, simulator, **extra) -> None:
    """An `autodesk` connection row in the Airflow database, as an operator would create it."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(Connection(conn_id=conn_id, conn_type="autodesk", host=simulator.base_url,
                               login=simulator.client_id, password=simulator.client_secret,
                               extra=json.dumps({"auth_mode": "client_credentials", "scopes": HOOK_SCOPES, **extra})))


def remove_connection(conn_id: str) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()


@pytest.fixture
def conn_id(airflow_db, simulator) -> Iterator[str]:
    name = f"autodesk_hooks_{uuid.uuid4().hex[:10]}"
    add_connection(name, simulator)
    yield name
    remove_connection(name)


@pytest.fixture
def client(simulator, conn_id) -> ApsClient:
    connection = connection_for(simulator, conn_id=conn_id, scopes=tuple(HOOK_SCOPES.split()))
    return ApsClient(ApsTransport(connection, retry_policy=FAST_RETRY))


def extra_of(conn_id: str) -> dict:
    return dict(lookup_connection(conn_id).extra)


def ensure(client, conn_id, callback, *, projects=None, mirror=MIRROR, rotate=False, **kwargs):
    projects = selected_projects(client, HookSelection()) if projects is None else projects
    return ensure_hooks(client, projects, mirror=mirror, conn_id=conn_id, callback_url=callback,
                        secret=SecretKeeper(installed_writer(conn_id), rotate=rotate), **kwargs)


def sim_hooks(simulator, region: str = "US") -> list:
    """The simulator's own record of the app's hooks (ground truth, not our listing)."""
    caller = Caller(f"app:{simulator.client_id}", simulator.client_id, "Application")
    return simulator.sim.webhooks.registry.hooks(caller, region)


def hook_sets(simulator, mirror: str = MIRROR) -> dict[str, list]:
    """Folder urn -> the mirror's hooks on it."""
    sets: dict[str, list] = {}
    for hook in sim_hooks(simulator):
        if (hook.attribute or {}).get("aps_mirror") == mirror:
            sets.setdefault(hook.folder.id, []).append(hook)
    return sets


def root_folders(client, **selection) -> dict[str, str]:
    """Project name -> root folder urn."""
    return {p.project_name: p.root_folder_id for p in selected_projects(client, HookSelection(**selection))}


def signed_deliveries(simulator, item_id: str) -> list[dict]:
    """The delivered callbacks about one item, once every queued one is sent."""
    assert simulator.sim.webhooks.drain(30)
    return [d for d in simulator.sim.webhooks.deliveries()
            if d["outcome"] == "delivered" and item_id in d["body"]]


def signature_ok(delivery: dict, secret: str) -> bool:
    expected = "sha1hash=" + hmac.new(secret.encode(), delivery["body"].encode(), hashlib.sha1).hexdigest()
    return hmac.compare_digest(expected, delivery["headers"].get("x-adsk-signature", ""))


def test_ensure_makes_one_active_set_per_project_and_callbacks_verify_with_the_saved_secret(
        simulator, client, conn_id, callback):
    report = ensure(client, conn_id, callback)
    assert report.ok and report.secret == "created", report.format_text()
    roots = root_folders(client)
    sets = hook_sets(simulator)
    assert set(sets) == set(roots.values()) and len(roots) == 3
    for hooks in sets.values():
        assert sorted(h.event for h in hooks) == sorted(DM_EVENTS)  # one hook per event, no duplicate
        assert all(h.status == "active" and h.auto_reactivate and h.expiry is None for h in hooks)
        assert all(h.callback_url == callback for h in hooks)
        assert all(h.attribute == {"aps_mirror": MIRROR, "conn_id": conn_id} for h in hooks)
    assert [p.sets_created for p in report.projects] == [1, 1, 1]
    extra = extra_of(conn_id)
    assert isinstance(extra[SECRET_KEY], str) and len(extra[SECRET_KEY]) >= 40
    assert PREVIOUS_KEY not in extra and PENDING_KEY not in extra
    assert datetime.now(timezone.utc) - datetime.fromisoformat(extra[CHANGED_AT_KEY]) < timedelta(minutes=1)
    assert extra[SECRET_KEY] not in json.dumps(report.to_dict()) + report.format_text()

    # Autodesk (the simulator) signs a change's callback with the very secret the connection holds.
    entry = next(f for f in simulator.sim.iter_files() if f.project == "Riverside Tower")
    simulator.sim.add_version(entry.item_id, size=2048)
    [delivery] = [d for d in signed_deliveries(simulator, entry.item_id) if d["event"] == "dm.version.added"]
    assert signature_ok(delivery, extra[SECRET_KEY])
    assert json.loads(delivery["body"])["hook"]["hookAttribute"] == {"aps_mirror": MIRROR, "conn_id": conn_id}


def test_a_second_ensure_changes_nothing_and_only_lists(simulator, client, conn_id, callback):
    projects = selected_projects(client, HookSelection())
    ensure(client, conn_id, callback, projects=projects)
    before = {h.hook_id: h.updated for h in sim_hooks(simulator)}
    extra = extra_of(conn_id)
    served = dict(simulator.sim.stats()["requests"])

    again = ensure(client, conn_id, callback, projects=projects)
    assert again.ok and not again.changed and again.secret == "kept"
    assert all(p.unchanged == len(DM_EVENTS) for p in again.projects)
    assert set(again.api_calls) <= LISTING_CLASSES, again.api_calls
    calls = {k: v - served.get(k, 0) for k, v in simulator.sim.stats()["requests"].items() if v != served.get(k, 0)}
    assert set(calls) <= LISTING_CLASSES, calls  # what the simulator saw: listings only
    assert {h.hook_id: h.updated for h in sim_hooks(simulator)} == before
    assert extra_of(conn_id) == extra


def test_an_inactive_hook_is_reactivated(simulator, client, conn_id, callback):
    ensure(client, conn_id, callback)
    api = ApsWebhooks(client)
    hook = next(h for h in api.hooks() if h.event == "dm.version.added")
    api.update_hook(hook, {"status": "inactive", "autoReactivateHook": False})
    assert simulator.sim.webhooks.hook(hook.hook_id)["status"] == "inactive"

    report = ensure(client, conn_id, callback)
    assert sum(p.reactivated for p in report.projects) == 1 and report.ok
    assert sum(p.created + p.deleted for p in report.projects) == 0
    details = simulator.sim.webhooks.hook(hook.hook_id)
    assert details["status"] == "active" and details["autoReactivateHook"] is True


def test_missing_and_expired_hooks_are_made_again(simulator, client, conn_id, callback):
    ensure(client, conn_id, callback)
    api = ApsWebhooks(client)
    [expiring, deleted] = [h for h in api.hooks() if h.event in ("dm.folder.added", "dm.version.deleted")
                           and h.folder == root_folders(client)["Harbor Bridge Retrofit"]]
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    api.update_hook(expiring, {"hookExpiry": past})  # Autodesk removes a hook once it expires
    api.delete_hook(deleted)
    assert simulator.sim.webhooks.hook(expiring.hook_id) is None

    report = ensure(client, conn_id, callback)
    harbor = next(p for p in report.projects if p.project_name == "Harbor Bridge Retrofit")
    assert (harbor.created, harbor.unchanged) == (2, len(DM_EVENTS) - 2)
    assert all(sorted(h.event for h in hooks) == sorted(DM_EVENTS) for hooks in hook_sets(simulator).values())


def test_a_deselected_projects_hooks_are_deleted_and_other_mirrors_kept(simulator, client, conn_id, callback):
    ensure(client, conn_id, callback)
    other_url = callback.replace("127.0.0.1", "localhost")
    ensure(client, conn_id, other_url, mirror="another_mirror")
    roots = root_folders(client)

    kept = selected_projects(client, HookSelection(exclude_projects=("Drone*",)))
    report = ensure(client, conn_id, callback, projects=kept)
    assert report.ok and {h["folder"] for h in report.stale_deleted} == {roots["Drone Gimbal"]}
    assert len(report.stale_deleted) == len(DM_EVENTS)
    assert set(hook_sets(simulator)) == {roots["Riverside Tower"], roots["Harbor Bridge Retrofit"]}
    assert set(hook_sets(simulator, "another_mirror")) == set(roots.values())  # untouched


def test_a_mirror_config_selects_like_the_mirror(simulator, client, conn_id, callback):
    """What the nightly DAG's task calls: the mirror's own MirrorConfig decides the projects."""
    config = MirrorConfig(bucket="any-bucket", project_filter=("Drone*", "Riverside*"), exclude_projects=("Drone*",))
    report = ensure_mirror_hooks(client, config, mirror=MIRROR, conn_id=conn_id, callback_url=callback,
                                 writer=installed_writer(conn_id))
    assert report.ok and [p.project_name for p in report.projects] == ["Riverside Tower"]
    assert set(hook_sets(simulator)) == {root_folders(client)["Riverside Tower"]}
    assert json.loads(json.dumps(report.to_dict()))["secret"] == "created"  # XCom-safe, no secret inside


def test_a_new_callback_url_replaces_the_old_set(simulator, client, conn_id, callback):
    ensure(client, conn_id, callback)
    moved = callback.replace("127.0.0.1", "localhost")
    report = ensure(client, conn_id, moved)
    assert report.ok and all((p.sets_created, p.deleted) == (1, len(DM_EVENTS)) for p in report.projects)
    assert {h.callback_url for hooks in hook_sets(simulator).values() for h in hooks} == {moved}


def test_top_folders_are_watched_instead_of_the_root(simulator, client, conn_id, callback):
    ensure(client, conn_id, callback)
    projects = selected_projects(client, HookSelection(project_filter=("Riverside*",)))
    report = ensure(client, conn_id, callback, projects=projects, top_folders=("Project Files", "Plans"))
    [riverside] = report.projects
    assert sorted(f["name"] for f in riverside.folders) == ["Plans", "Project Files"]
    assert set(hook_sets(simulator)) == {f["folder"] for f in riverside.folders}
    assert len(report.stale_deleted) == 3 * len(DM_EVENTS)  # every root set, Riverside's too


def test_a_folder_held_by_another_mirror_fails_its_project_in_one_line(simulator, client, conn_id, callback):
    ensure(client, conn_id, callback)
    drone = selected_projects(client, HookSelection(project_filter=("Drone*",)))
    held = ensure(client, conn_id, callback, projects=drone, mirror="first_mirror")
    assert not held.ok  # our mirror's set to the same URL is there: Autodesk answers 409
    [failure] = held.projects
    assert f"belong to mirror {MIRROR}" in failure.error and "\n" not in failure.error
    assert hook_sets(simulator, "first_mirror") == {} and len(hook_sets(simulator)) == 3


def test_while_a_project_fails_no_hook_elsewhere_is_deleted(simulator, client, conn_id, callback):
    ensure(client, conn_id, callback)
    simulator.sim.inject_fault("top_folders", status=404, count=1)  # one project cannot be read
    report = ensure(client, conn_id, callback, top_folders=("Project Files",))
    assert not report.ok and sum(1 for p in report.projects if p.error) == 1
    assert report.stale_deleted == [] and len(report.stale_kept) == 3 * len(DM_EVENTS)
    # The roots' sets, and Harbor's Project Files (Drone Gimbal, a Fusion project, has no such folder).
    assert len(hook_sets(simulator)) == 3 + 1
    again = ensure(client, conn_id, callback, top_folders=("Project Files",))
    assert again.ok and len(again.stale_deleted) == 3 * len(DM_EVENTS) and len(hook_sets(simulator)) == 2
    assert [p.folders == [] for p in again.projects] == [False, False, True]


def test_rotation_keeps_the_previous_secret_and_autodesk_signs_with_the_new_one(simulator, client, conn_id, callback):
    simulator.sim.webhooks.configure(token_delay=0)  # Autodesk's up-to-10-minute delay, skipped
    ensure(client, conn_id, callback)
    first = extra_of(conn_id)[SECRET_KEY]

    report = ensure(client, conn_id, callback, rotate=True)
    assert report.secret == "rotated" and not any(p.changed for p in report.projects)
    extra = extra_of(conn_id)
    assert extra[PREVIOUS_KEY] == first and extra[SECRET_KEY] != first and PENDING_KEY not in extra
    assert datetime.now(timezone.utc) - datetime.fromisoformat(extra[CHANGED_AT_KEY]) < timedelta(minutes=1)
    entry = next(f for f in simulator.sim.iter_files() if f.project == "Drone Gimbal")
    simulator.sim.rename_item(entry.item_id, "renamed.f3d")
    deliveries = signed_deliveries(simulator, entry.item_id)
    assert deliveries and all(signature_ok(d, extra[SECRET_KEY]) for d in deliveries)
    assert not any(signature_ok(d, first) for d in deliveries)


def test_a_secret_saved_but_not_known_to_be_applied_is_given_again(simulator, client, conn_id, callback):
    simulator.sim.webhooks.configure(token_delay=0)
    ensure(client, conn_id, callback)
    secret = extra_of(conn_id)[SECRET_KEY]
    installed_writer(conn_id).update_extra(conn_id, {PENDING_KEY: True})  # as after a crash
    report = ensure(client, conn_id, callback)
    assert report.secret == "resent" and report.api_calls.get("webhooks_tokens") == 2  # POST 400, then PUT
    extra = extra_of(conn_id)
    assert extra[SECRET_KEY] == secret and PENDING_KEY not in extra and PREVIOUS_KEY not in extra


def test_dry_run_changes_nothing(simulator, client, conn_id, callback):
    report = ensure(client, conn_id, callback, dry_run=True)
    assert report.ok and report.secret == "created" and [p.sets_created for p in report.projects] == [1, 1, 1]
    assert sim_hooks(simulator) == [] and SECRET_KEY not in extra_of(conn_id)
    assert set(report.api_calls) <= LISTING_CLASSES


def test_list_says_each_projects_state(simulator, client, conn_id, callback):
    projects = selected_projects(client, HookSelection())
    ensure(client, conn_id, callback, projects=projects[:2])
    api = ApsWebhooks(client)
    roots = root_folders(client)
    inactive = next(h for h in api.hooks() if h.folder == roots["Harbor Bridge Retrofit"])
    api.update_hook(inactive, {"status": "inactive"})

    listing = list_hooks(client, projects[1:], mirror=MIRROR, callback_url=callback)
    states = {p.project_name: p for p in listing.projects}
    assert states["Harbor Bridge Retrofit"].state == "inactive" and states["Harbor Bridge Retrofit"].inactive == 1
    assert states["Drone Gimbal"].state == "missing" and states["Drone Gimbal"].hooks == 0
    assert states["Harbor Bridge Retrofit"].callback_urls == [callback]
    assert states["Harbor Bridge Retrofit"].last_change is not None
    assert {h["folder"] for h in listing.unselected} == {roots["Riverside Tower"]}


def test_delete_removes_only_this_mirrors_hooks(simulator, client, conn_id, callback):
    ensure(client, conn_id, callback)
    ensure(client, conn_id, callback.replace("127.0.0.1", "localhost"), mirror="another_mirror")
    drone = selected_projects(client, HookSelection(project_filter=("Drone*",)))
    report = delete_hooks(client, mirror=MIRROR, projects=drone)
    assert len(report.deleted) == len(DM_EVENTS)
    assert len(hook_sets(simulator)) == 2 and len(hook_sets(simulator, "another_mirror")) == 3
    assert len(delete_hooks(client, mirror=MIRROR).deleted) == 2 * len(DM_EVENTS)
    assert hook_sets(simulator) == {} and len(hook_sets(simulator, "another_mirror")) == 3
    assert SECRET_KEY in extra_of(conn_id)  # the app's secret stays: other mirrors use it


@pytest.mark.parametrize(("url", "accepted"), [
    ("https://airflow.example.com/aps-mirror/webhooks/dm", True),
    ("https://airflow.example.com/base/aps-mirror/webhooks/dm", True),
    ("http://localhost:8080/aps-mirror/webhooks/dm", True),
    ("http://127.0.0.1:8080/aps-mirror/webhooks/dm", True),
    ("http://[::1]:8080/aps-mirror/webhooks/dm", True),
    ("http://airflow.example.com/aps-mirror/webhooks/dm", False),
    ("https://airflow.example.com/aps-mirror/webhooks", False),
    ("https://airflow.example.com/aps-mirror/webhooks/dm?x=1", False),
    ("ftp://airflow.example.com/aps-mirror/webhooks/dm", False),
    ("airflow.example.com/aps-mirror/webhooks/dm", False),
])
def test_callback_urls(url, accepted):
    if accepted:
        assert check_callback_url(url) == url
    else:
        with pytest.raises(ConfigError) as refused:
            check_callback_url(url)
        assert "\n" not in str(refused.value) and "/aps-mirror/webhooks/dm" in str(refused.value)
