"""`aps-mirror report` and `aps-mirror catalog`, run as a user runs them, against moto's S3 server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import pytest

from aps_mirror.catalog import reader
from aps_mirror.mirror.manifest import ManifestStore
from tests.catalog.factories import PREFIX, event, manifest, project_run


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aps_mirror.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def env(s3_endpoint):
    env = dict(os.environ)
    env["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({
        "conn_type": "aws", "login": "test", "password": "test",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}})
    return env


@pytest.fixture
def catalog(s3, bucket, writer):
    ManifestStore(s3, bucket, PREFIX).save(manifest())
    writer.record_project_run(project_run(status="partial", files_failed=1, errors=["Plans/x.pdf: 500"]),
                              [event("failed", reason="500 from download"), event("copied", size=10)])


def test_catalog_publish_then_report_as_text_and_json(bucket, env, catalog):
    published = cli("catalog", "publish", "--bucket", bucket, "--prefix", PREFIX, "--json", env=env)
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout) == {"files": 5, "versions": 6, "folders": 2, "projects": 1}

    text = cli("report", "--bucket", bucket, "--prefix", PREFIX, "--days", "100000", env=env)
    assert text.returncode == 0, text.stderr
    assert "Tower" in text.stdout and "failing" in text.stdout and "500 from download" in text.stdout
    assert "\x1b[" not in text.stdout, "plain text when stdout is not a terminal"

    as_json = cli("report", "--bucket", bucket, "--prefix", PREFIX, "--json", "--days", "100000", env=env)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["totals"]["projects"] == 1 and report["totals"]["failing_projects"] == 1
    [project] = report["projects"]
    assert project["status"] == "failing" and project["last_error"] == "Plans/x.pdf: 500"
    assert [f["kind"] for f in report["failures"]] == ["file"]
    assert report["nights"][0]["day"] == "2025-03-01" and report["nights"][0]["copied"] == 1


def test_catalog_fold_publishes_the_staged_runs_without_a_snapshot(s3, bucket, env, catalog):
    assert reader.read_table(s3, bucket, PREFIX, "runs").num_rows == 0, "staged: not visible yet"
    folded = cli("catalog", "fold", "--bucket", bucket, "--prefix", PREFIX, "--json", env=env)
    assert folded.returncode == 0, folded.stderr
    assert json.loads(folded.stdout) == {"runs": [project_run().run_id], "records": 1, "events": 2,
                                         "unreadable": []}
    assert reader.read_table(s3, bucket, PREFIX, "runs").num_rows == 1
    assert reader.list_objects(s3, bucket, PREFIX, "projects") == [], "no snapshot rebuilt"
    again = cli("catalog", "fold", "--bucket", bucket, "--prefix", PREFIX, env=env)
    assert again.returncode == 0 and "folded 0 staged record(s)" in again.stdout


def test_catalog_download_gives_a_folder_plain_duckdb_reads(bucket, env, catalog, tmp_path):
    assert cli("catalog", "publish", "--bucket", bucket, "--prefix", PREFIX, env=env).returncode == 0
    result = cli("catalog", "download", "--bucket", bucket, "--prefix", PREFIX, "--to", str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path) in result.stdout
    count = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{tmp_path}/files/*/*.parquet', "
                       "hive_partitioning = true)").fetchone()
    assert count == (5,)


def test_report_on_an_empty_catalog_says_what_to_do(bucket, env):
    result = cli("report", "--bucket", bucket, "--prefix", PREFIX, env=env)
    assert result.returncode == 0
    assert "catalog" in result.stderr and "aps-mirror sync" in result.stderr


def test_missing_bucket_is_a_clear_usage_error(env):
    result = cli("report", "--bucket", "no-such-bucket-here", env=env)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
