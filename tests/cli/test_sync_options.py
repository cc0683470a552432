"""`aps-mirror sync` options as a user types them: a bad value is one line and exit code 2,
the delete guard cannot be lifted by accident, and `--json` is only JSON on stdout."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests.cli.test_cli import cli, env  # noqa: F401  (the same servers and connections)
from tests.mirror.test_selection import selected_by_default

BAD_VALUES = [
    ("--workers", "0"), ("--workers", "65"), ("--full-walk-days", "nan"), ("--full-walk-days", "-1"),
    ("--max-file-size", "-5"), ("--max-file-size", "0"), ("--max-file-size", "5Q"),
    ("--prefix", "../x"), ("--prefix", "/x"), ("--prefix", "a//b"), ("--prefix", "a/./b"),
    ("--prefix", "m/_aps_mirror"), ("--prefix", "a/"),
    ("--max-delete", "nan%"), ("--max-delete", "inf"), ("--max-delete", "-1"), ("--max-delete", "200%"),
    ("--delete-policy", "purge"), ("--versions", "every"), ("--bucket", "Not_A_Bucket"),
]


def assert_one_line_usage_error(result, *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aps-mirror: error: "), result.stderr
    for text in expected:
        assert text in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(("flag", "value"), BAD_VALUES)
def test_a_bad_value_is_one_line_and_exit_2(flag: str, value: str) -> None:
    # No connection is defined: the value is refused before anything is looked up.
    args = {"--bucket": "acme-docs", flag: value}
    argv = [f"{k}={v}" for k, v in args.items()]  # `=` so that `-1` stays a value
    result = cli("sync", *argv, env={k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")})
    assert_one_line_usage_error(result, f"{flag} {value!r} is not accepted")


def test_a_mistyped_aws_conn_id_is_one_line_and_exit_2(simulator, bucket, env):
    result = cli("sync", "--bucket", bucket, "--aws-conn-id", "aws_defualt", env=env)
    assert_one_line_usage_error(result, "AWS connection 'aws_defualt' was not found", "AIRFLOW_CONN_AWS_DEFUALT")


def test_an_empty_max_delete_is_the_default_guard_not_no_limit(simulator, bucket, env, s3):
    sync = ("sync", "--bucket", bucket, "--project", "Drone*", "--json")
    assert cli(*sync, env=env).returncode == 0
    victims = [f for f in simulator.sim.iter_files() if f.project == "Drone Gimbal"][:3]  # 3 of 12: 25%
    for victim in victims:
        simulator.sim.delete_item(victim.item_id)
    before = s3.list_objects_v2(Bucket=bucket)["KeyCount"]

    guarded = cli(*sync, "--delete-policy", "delete", "--max-delete", "", env=env)
    assert guarded.returncode == 0, guarded.stderr
    summary = json.loads(guarded.stdout)
    assert summary["files_deleted"] == 0 and "exceed max_delete=10%" in summary["deletes_refused"]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] >= before

    allowed = json.loads(cli(*sync, "--delete-policy", "delete", "--max-delete", "30%", env=env).stdout)
    assert allowed["files_deleted"] == 3, "the guard, not something else, held the deletes back"


def test_a_run_with_every_kind_of_option_mirrors(simulator, bucket, env, s3):
    result = cli("sync", "--bucket", bucket, "--prefix", "mirrors/aps", "--workers", "8",
                 "--max-file-size", "1G", "--full-walk-days", "0.5", "--max-delete", "5",
                 "--delete-policy", "trash", "--exclude-extension", "jpg", "--json", env=env)
    assert result.returncode == 0, result.stderr
    files = [f for f in selected_by_default(simulator.sim) if not f.tip.name.lower().endswith(".jpg")]
    summary = json.loads(result.stdout)
    assert summary["files_copied"] == len(files) and summary["files_failed"] == 0
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, MaxKeys=1000)["Contents"]}
    assert keys and all(k.startswith("mirrors/aps/") for k in keys)
    assert not any(k.endswith(".jpg") for k in keys)


def test_json_is_alone_on_stdout_when_the_connections_live_in_the_airflow_database(simulator, bucket, env,
                                                                                   s3_endpoint):
    # Importing Airflow (to read its database) configures its logging onto stdout.
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from tests.airflow_provider.airflow_home import migrate_db

    migrate_db()
    suffix = uuid.uuid4().hex[:8]
    autodesk_id, aws_id = f"autodesk_db_{suffix}", f"aws_db_{suffix}"
    with create_session() as session:
        session.add(Connection(conn_id=autodesk_id, conn_type="autodesk", host=simulator.base_url,
                               login=simulator.client_id, password=simulator.client_secret,
                               extra=json.dumps({"auth_mode": "client_credentials"})))
        session.add(Connection(conn_id=aws_id, conn_type="aws", login="test", password="test",
                               extra=json.dumps({"endpoint_url": s3_endpoint, "region_name": "us-east-1"})))
    db_env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW_CONN_")}
    result = cli("sync", "--bucket", bucket, "--conn-id", autodesk_id, "--aws-conn-id", aws_id,
                 "--project", "Drone*", "--json", env=db_env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # nothing but the JSON document
    assert summary["files_copied"] > 0 and summary["files_failed"] == 0
    assert "project(s) selected" in result.stderr, "the logs went to stderr"
