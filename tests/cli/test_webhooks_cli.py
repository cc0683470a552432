"""`aps-mirror webhooks ensure|list|delete` as a user runs it (a subprocess) against the simulator,
with the Autodesk connection in the Airflow database (where the secret is kept)."""

from __future__ import annotations

import json

import pytest

from aps_mirror.mirror.webhook_secret import CHANGED_AT_KEY, PREVIOUS_KEY, SECRET_KEY
from aps_mirror.simulator.webhook_registry import DM_EVENTS
from tests.cli.test_cli import cli
from tests.cli.test_prefix_everywhere import no_connections
from tests.cli.test_sync_options import assert_one_line_usage_error
from tests.mirror.test_webhooks import (LISTING_CLASSES, MIRROR, add_connection, airflow_db, callback,  # noqa: F401
                                        conn_id, extra_of, hook_sets, receiver, remove_connection)


def webhooks(*args: str, env: dict[str, str] | None = None):
    return cli(*args, env=env or no_connections())


def ensure_args(conn_id: str, callback: str, *extra: str) -> list[str]:
    return ["webhooks", "ensure", "--conn-id", conn_id, "--callback-url", callback, "--mirror", MIRROR, *extra]


def test_ensure_creates_a_set_per_project_then_changes_nothing(simulator, conn_id, callback):  # noqa: F811
    first = webhooks(*ensure_args(conn_id, callback, "--json"))
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["ok"] and report["changed"] and report["secret"] == "created"
    assert [(p["project"], p["sets_created"], p["created"]) for p in report["projects"]] == [
        ("Riverside Tower", 1, len(DM_EVENTS)), ("Harbor Bridge Retrofit", 1, len(DM_EVENTS)),
        ("Drone Gimbal", 1, len(DM_EVENTS))]
    assert len(hook_sets(simulator)) == 3
    assert "webhooks [3/3]" in first.stderr  # progress, on stderr

    again = webhooks(*ensure_args(conn_id, callback, "--json"))
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert not second["changed"] and second["secret"] == "kept" and second["stale_deleted"] == []
    assert set(second["api_calls"]) <= LISTING_CLASSES, second["api_calls"]
    text = webhooks(*ensure_args(conn_id, callback))
    assert text.returncode == 0 and text.stdout.strip().splitlines()[-1].endswith("nothing changed")


def test_rotate_secret_keeps_the_previous_one_and_no_secret_is_ever_printed(simulator, conn_id, callback):  # noqa: F811
    results = [webhooks("-vv", *ensure_args(conn_id, callback, *extra))
               for extra in ((), ("--rotate-secret",), ("--rotate-secret", "--json"))]
    assert [r.returncode for r in results] == [0, 0, 0], results[-1].stderr
    outputs = [r.stdout + r.stderr for r in results]
    assert '"PUT /webhooks/v1/tokens/@me HTTP/1.1" 204' in outputs[1]  # -vv: the HTTP library's lines
    assert json.loads(results[2].stdout)["secret"] == "rotated"
    final = extra_of(conn_id)
    assert final[PREVIOUS_KEY] != final[SECRET_KEY] and final[CHANGED_AT_KEY]
    # Every value the connection held at any point: none reached stdout, stderr or the logs.
    secrets = {final[SECRET_KEY], final[PREVIOUS_KEY]}
    assert len(secrets) == 2 and not any(s in out for s in secrets for out in outputs)


def test_list_json_gives_each_projects_state(simulator, conn_id, callback):  # noqa: F811
    assert webhooks(*ensure_args(conn_id, callback, "--project", "Riverside*")).returncode == 0
    result = webhooks("webhooks", "list", "--conn-id", conn_id, "--mirror", MIRROR, "--callback-url", callback,
                      "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert set(listing) == {"mirror", "projects", "unselected"} and listing["mirror"] == MIRROR
    assert listing["unselected"] == []
    riverside, harbor, drone = listing["projects"]
    assert set(riverside) == {"hub", "project", "project_id", "folders", "state", "hooks", "inactive", "expired",
                              "callback_urls", "last_change", "error"}
    assert (riverside["project"], riverside["state"], riverside["hooks"]) == ("Riverside Tower", "active",
                                                                              len(DM_EVENTS))
    assert riverside["callback_urls"] == [callback] and riverside["last_change"]
    assert [f["name"] for f in riverside["folders"]] == ["root folder"]
    assert (harbor["state"], drone["state"], drone["hooks"]) == ("missing", "missing", 0)


def test_delete_removes_only_this_mirrors_hooks(simulator, conn_id, callback):  # noqa: F811
    assert webhooks(*ensure_args(conn_id, callback)).returncode == 0
    other = ["webhooks", "ensure", "--conn-id", conn_id, "--mirror", "another_mirror",
             "--callback-url", callback.replace("127.0.0.1", "localhost")]
    assert webhooks(*other).returncode == 0

    dry = webhooks("webhooks", "delete", "--conn-id", conn_id, "--mirror", MIRROR, "--dry-run", "--json")
    assert dry.returncode == 0 and len(json.loads(dry.stdout)["deleted"]) == 3 * len(DM_EVENTS)
    assert len(hook_sets(simulator)) == 3
    done = webhooks("webhooks", "delete", "--conn-id", conn_id, "--mirror", MIRROR)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"{3 * len(DM_EVENTS)} hooks of mirror {MIRROR} deleted"
    assert hook_sets(simulator) == {} and len(hook_sets(simulator, "another_mirror")) == 3


@pytest.mark.parametrize(("args", "message"), [
    (["--callback-url", "http://airflow.example.com/aps-mirror/webhooks/dm"], "over https"),
    (["--callback-url", "https://airflow.example.com/webhooks"], "the receiver's path is /aps-mirror/webhooks/dm"),
    ([], "--callback-url is required"),
    (["--callback-url", "https://a.example/aps-mirror/webhooks/dm", "--mirror", "no spaces"], "--mirror 'no spaces'"),
])
def test_bad_arguments_exit_2_in_one_line_before_any_connection(args, message):
    assert_one_line_usage_error(webhooks("webhooks", "ensure", *args), message)


def test_a_connection_without_data_write_is_refused_in_one_line(simulator, airflow_db, callback):  # noqa: F811
    add_connection("autodesk_read_only_hooks", simulator, scopes="data:read")
    try:
        result = webhooks(*ensure_args("autodesk_read_only_hooks", callback))
    finally:
        remove_connection("autodesk_read_only_hooks")
    assert_one_line_usage_error(result, "needs the scopes data:read and data:write")
    assert hook_sets(simulator) == {}


def test_a_connection_aps_mirror_cannot_write_gets_no_hooks(simulator, airflow_db, callback):  # noqa: F811
    env = no_connections()
    env["AIRFLOW_CONN_AUTODESK_FROM_ENV"] = json.dumps({
        "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
        "password": simulator.client_secret,
        "extra": {"auth_mode": "client_credentials", "scopes": "data:read data:write"}})
    result = webhooks(*ensure_args("autodesk_from_env", callback), env=env)
    assert_one_line_usage_error(result, "AIRFLOW_CONN_AUTODESK_FROM_ENV", "cannot keep its webhook secret")
    assert hook_sets(simulator) == {}  # the secret comes first: no hook would be signed otherwise

