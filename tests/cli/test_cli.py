"""The `aps-mirror` console script, run as a user runs it (a subprocess), against live servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aps_mirror.catalog import reader

from tests.conftest import FAST_RETRY  # noqa: F401  (same servers as the other tests)
from tests.mirror.test_selection import selected_by_default


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aps_mirror.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def env(simulator, s3_endpoint):
    env = dict(os.environ)
    env["AIRFLOW_CONN_AUTODESK_DEFAULT"] = json.dumps({
        "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
        "password": simulator.client_secret, "extra": {"auth_mode": "client_credentials"}})
    env["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({
        "conn_type": "aws", "login": "test", "password": "test",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}})
    return env


def test_sync_json_summary_matches_the_simulators_request_log(simulator, bucket, env):
    result = cli("sync", "--bucket", bucket, "--json", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    files = selected_by_default(simulator.sim)  # ACC Plans are left out by default
    assert summary["files_copied"] == len(files)
    assert summary["files_failed"] == 0 and summary["files_skipped"] == 0
    assert summary["files_listed"] >= summary["files_copied"]
    assert summary["bytes_copied"] == sum(f.tip.size for f in files)
    served = simulator.sim.stats()["requests"]
    assert summary["api_calls"] == {k: v for k, v in served.items() if v}
    assert summary["api_calls_total"] == sum(served.values())
    # Progress went to stderr, the JSON alone to stdout.
    assert "files" in result.stderr
    assert summary["catalog"]["files"] == len(files), "the run published the catalog"

    again = json.loads(cli("sync", "--bucket", bucket, "--json", env=env).stdout)
    assert again["files_copied"] == 0 and again["files_skipped"] == len(files)


def test_sync_publishes_the_catalog_and_report_reads_it(simulator, bucket, env, s3):
    assert cli("sync", "--bucket", bucket, "--json", env=env).returncode == 0
    files = selected_by_default(simulator.sim)
    con = reader.connect(s3, bucket, "autodesk")
    assert con.execute("SELECT count(*) FROM files WHERE status = 'mirrored'").fetchone()[0] == len(files)
    assert con.execute("SELECT count(*), sum(files_copied) FROM runs").fetchone() == (3, len(files))
    report = json.loads(cli("report", "--bucket", bucket, "--json", env=env).stdout)
    assert report["totals"]["files"] == len(files) and report["totals"]["projects"] == 3
    assert {p["status"] for p in report["projects"]} == {"ok"}


def test_dry_run_prints_the_plan(simulator, bucket, env, s3):
    result = cli("sync", "--bucket", bucket, "--dry-run", "--project", "Drone*", env=env)
    assert result.returncode == 0, result.stderr
    assert "would copy" in result.stdout and "Drone Gimbal" in result.stdout
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_missing_bucket_is_a_clear_usage_error(simulator, env):
    result = cli("sync", "--bucket", "no-such-bucket-here", env=env)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_missing_connection_says_how_to_define_it(env):
    env.pop("AIRFLOW_CONN_AUTODESK_DEFAULT")
    env["AIRFLOW_HOME"] = os.path.join(env.get("TMPDIR", "/tmp"), "aps-mirror-no-airflow-home")
    result = cli("validate", "--conn-id", "nowhere", env=env)
    assert result.returncode == 2
    assert "AIRFLOW_CONN_NOWHERE" in result.stderr


def test_validate_reports_each_capability(simulator, env):
    result = cli("validate", "--json", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    checks = {c["capability"]: c for c in json.loads(result.stdout)}
    assert set(checks) == {"user profile", "hubs", "projects", "folder contents", "download"}
    assert all(checks[c]["ok"] for c in ("hubs", "projects", "folder contents", "download"))


def test_tree_shows_the_mirror_with_sizes(simulator, bucket, env):
    assert cli("sync", "--bucket", bucket, "-q", env=env).returncode == 0
    result = cli("tree", "--bucket", bucket, env=env)
    assert result.returncode == 0, result.stderr
    assert "Riverside Tower/" in result.stdout and "Drone Gimbal/" in result.stdout
    assert "_aps_mirror" not in result.stdout
    assert f"{len(selected_by_default(simulator.sim))} files" in result.stdout


def test_validate_works_with_a_secure_service_account(simulator, env):
    account = simulator.sim.add_service_account()
    env["AIRFLOW_CONN_AUTODESK_SSA"] = json.dumps({
        "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
        "password": simulator.client_secret,
        "extra": {"auth_mode": "ssa", "scopes": "data:read user-profile:read",
                  "service_account_id": account.service_account_id,
                  "private_key": account.private_key_pem, "private_key_id": account.kid}})
    result = cli("validate", "--conn-id", "autodesk_ssa", "--json", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    checks = {c["capability"]: c for c in json.loads(result.stdout)}
    assert checks["user profile"]["ok"] and all(c["ok"] for c in checks.values())
