"""Credentials S3 will not let write (or delete): a real S3 that enforces IAM, no mocks.

moto's server runs in its own process (its authentication switch is process-wide): IAM users
are created while it still answers unsigned calls, then `/moto-api/reset-auth 0` makes it
check every later request's signature and the user's policy, resource by resource.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from aps_mirror.catalog import reader as catalog_reader
from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.connection import S3Settings
from aps_mirror.errors import S3WriteRefused
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine
from aps_mirror.mirror.manifest import Manifest, ManifestStore
from aps_mirror.mirror.plan import DeletePolicy

from tests.cli.test_cli import cli
from tests.iam_moto import REGION, create_user, iam_moto_server

PREFIX = "mirror"
ALL_TOP_FOLDERS = ("*",)
# moto checks its own action "s3:HeadBucket" where AWS checks s3:ListBucket; the rest is
# AWS's AmazonS3ReadOnlyAccess.
READ = ["s3:Get*", "s3:List*", "s3:HeadBucket"]
POLICIES: dict[str, list[dict[str, Any]]] = {
    "admin": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    "reader": [{"Effect": "Allow", "Action": READ, "Resource": "*"}],
    "no_delete": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                  {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}],
    # May take the prefix's lock and write its record, not the project manifests: what the
    # engine meets when the manifest is the first write refused (a read-only key is refused
    # even earlier, at the lock).
    "no_manifests": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                     {"Effect": "Deny", "Action": "s3:PutObject",
                      "Resource": f"arn:aws:s3:::*/{PREFIX}/_aps_mirror/manifests/*"}],
    # Neither the manifests nor the catalog: the run fails and so does the catalog's publish.
    "no_records": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "s3:PutObject",
                    "Resource": [f"arn:aws:s3:::*/{PREFIX}/_aps_mirror/manifests/*",
                                 f"arn:aws:s3:::*/{PREFIX}/_aps_mirror/catalog*"]}],
}


@dataclass(frozen=True)
class GuardedS3:
    """An S3 endpoint enforcing IAM, and the access keys of one user per entry of POLICIES."""

    endpoint: str
    keys: dict[str, tuple[str, str]]

    def settings(self, user: str) -> S3Settings:
        key_id, secret = self.keys[user]
        return S3Settings(endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=key_id,
                          aws_secret_access_key=secret)

    def client(self, user: str) -> Any:
        """The client the CLI builds for an `aws` connection holding this user's key."""
        return self.settings(user).client()

    def connection(self, user: str) -> str:
        """An `aws` connection (AIRFLOW_CONN_* JSON) holding this user's key."""
        key_id, secret = self.keys[user]
        return json.dumps({"conn_type": "aws", "login": key_id, "password": secret,
                           "extra": {"endpoint_url": self.endpoint, "region_name": REGION}})








@pytest.fixture(scope="module")
def guarded_s3() -> Iterator[GuardedS3]:
    def setup(_endpoint: str, iam: Any) -> dict[str, tuple[str, str]]:
        return {user: create_user(iam, user, statements) for user, statements in POLICIES.items()}

    with iam_moto_server(setup) as (endpoint, keys):
        yield GuardedS3(endpoint, keys)


@pytest.fixture
def admin(guarded_s3: GuardedS3) -> Any:
    return guarded_s3.client("admin")


@pytest.fixture
def guarded_bucket(admin: Any) -> str:
    name = f"mirror-{uuid.uuid4().hex[:12]}"
    admin.create_bucket(Bucket=name)
    return name


def test_the_fixture_enforces_the_policies(guarded_s3, admin, guarded_bucket):
    admin.put_object(Bucket=guarded_bucket, Key="x", Body=b"1")
    reader = guarded_s3.client("reader")
    assert reader.get_object(Bucket=guarded_bucket, Key="x")["Body"].read() == b"1"
    with pytest.raises(Exception, match="AccessDenied"):
        reader.put_object(Bucket=guarded_bucket, Key="y", Body=b"1")
    with pytest.raises(Exception, match="AccessDenied"):
        guarded_s3.client("no_delete").delete_object(Bucket=guarded_bucket, Key="x")
    guarded_s3.client("no_delete").put_object(Bucket=guarded_bucket, Key="y", Body=b"1")



def mirror_keys(s3: Any, bucket: str) -> set[str]:
    """The mirrored files' objects (the mirror's own `_aps_mirror/` records left out)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/")
    return {o["Key"] for page in pages for o in page.get("Contents", [])
            if not o["Key"].startswith(f"{PREFIX}/_aps_mirror/")}


def cli_env(simulator, guarded_s3: GuardedS3, user: str) -> dict[str, str]:
    env = dict(os.environ)
    env["AIRFLOW_CONN_AUTODESK_DEFAULT"] = json.dumps({
        "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
        "password": simulator.client_secret, "extra": {"auth_mode": "client_credentials"}})
    env["AIRFLOW_CONN_AWS_DEFAULT"] = guarded_s3.connection(user)
    return env


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "ERROR" in line or line.startswith("aps-mirror: error")]


def test_the_fixture_enforces_the_policies(guarded_s3, admin, guarded_bucket):
    admin.put_object(Bucket=guarded_bucket, Key="x", Body=b"1")
    reader = guarded_s3.client("reader")
    assert reader.get_object(Bucket=guarded_bucket, Key="x")["Body"].read() == b"1"
    with pytest.raises(Exception, match="AccessDenied"):
        reader.put_object(Bucket=guarded_bucket, Key="y", Body=b"1")
    no_delete = guarded_s3.client("no_delete")
    no_delete.put_object(Bucket=guarded_bucket, Key="y", Body=b"1")
    with pytest.raises(Exception, match="AccessDenied"):
        no_delete.delete_object(Bucket=guarded_bucket, Key="y")


def test_a_refused_manifest_save_is_one_line_naming_the_object_and_the_permissions(guarded_s3, guarded_bucket):
    store = ManifestStore(guarded_s3.client("reader"), guarded_bucket, PREFIX)
    manifest = Manifest("b.hub", "b.project", "Tower")
    with pytest.raises(S3WriteRefused) as refused:
        store.save(manifest)
    message = str(refused.value)
    key = store.key_for("b.hub", "b.project")
    assert "\n" not in message and refused.value.__cause__ is None
    assert f"s3://{guarded_bucket}/{key}" in message and "AccessDenied" in message
    assert "s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload" in message
    assert f"on s3://{guarded_bucket}/{PREFIX}/*" in message
    assert manifest.etag is None  # nothing was saved


def test_a_refused_manifest_stops_every_project_before_any_download(simulator, aps, guarded_s3,
                                                                   guarded_bucket):
    s3 = guarded_s3.client("no_manifests")
    config = MirrorConfig(bucket=guarded_bucket, prefix=PREFIX, top_folders=ALL_TOP_FOLDERS)
    engine = MirrorEngine(aps, s3, config, catalog=CatalogWriter(s3, guarded_bucket, PREFIX))
    projects = engine.list_projects()
    assert len(projects) >= 3
    for project in projects:
        with pytest.raises(S3WriteRefused, match="S3 refused to write .*/_aps_mirror/manifests/"):
            engine.sync_project(project)
    assert simulator.sim.stats()["downloads"] == 0
    assert mirror_keys(guarded_s3.client("admin"), guarded_bucket) == set()


def test_the_cli_counts_each_refused_project_as_failed_and_the_catalog_says_so(simulator, guarded_s3,
                                                                              guarded_bucket):
    result = cli("sync", "--bucket", guarded_bucket, "--prefix", PREFIX, "--json",
                 env=cli_env(simulator, guarded_s3, "no_manifests"))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["projects"] == summary["projects_failed"] == 3
    assert summary["files_copied"] == summary["files_failed"] == 0
    assert len(summary["errors"]) == 3
    for error in summary["errors"]:
        assert "\n" not in error and "S3 refused to write" in error and "s3:PutObject" in error
    assert simulator.sim.stats()["downloads"] == 0
    admin = guarded_s3.client("admin")
    assert mirror_keys(admin, guarded_bucket) == set()
    # The catalog records every project's run as failed, none as a success.
    catalog = catalog_reader.connect(admin, guarded_bucket, PREFIX)
    statuses = [row[0] for row in catalog.execute("SELECT status FROM runs").fetchall()]
    assert statuses == ["failed"] * 3
    assert "the mirror is complete" not in result.stderr


def test_a_catalog_that_cannot_be_published_does_not_claim_a_complete_mirror(simulator, guarded_s3,
                                                                            guarded_bucket):
    result = cli("sync", "--bucket", guarded_bucket, "--prefix", PREFIX,
                 env=cli_env(simulator, guarded_s3, "no_records"))
    assert result.returncode == 1, result.stderr
    published = [line for line in result.stderr.splitlines() if "catalog could not be published" in line]
    assert len(published) == 1, result.stderr
    assert "3 of 3 project(s) failed" in published[0] and "S3 refused to write" in published[0]
    assert "the mirror is complete" not in result.stderr
    assert simulator.sim.stats()["downloads"] == 0


def test_read_only_credentials_are_refused_at_the_first_write_in_one_line(simulator, guarded_s3,
                                                                         guarded_bucket):
    result = cli("sync", "--bucket", guarded_bucket, "--prefix", PREFIX,
                 env=cli_env(simulator, guarded_s3, "reader"))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert "S3 refused to write" in errors[0] and f"s3://{guarded_bucket}/{PREFIX}/" in errors[0]
    assert "s3:PutObject" in errors[0]
    assert simulator.sim.stats()["downloads"] == 0
    assert guarded_s3.client("admin").list_objects_v2(Bucket=guarded_bucket).get("KeyCount") == 0


def test_a_delete_s3_refuses_is_a_counted_failure_and_stays_journalled(simulator, aps, guarded_s3,
                                                                      guarded_bucket):
    config = MirrorConfig(bucket=guarded_bucket, prefix=PREFIX, top_folders=ALL_TOP_FOLDERS,
                          delete_policy=DeletePolicy.DELETE)
    admin = guarded_s3.client("admin")
    first = MirrorEngine(aps, admin, config)
    for project in first.list_projects():
        first.sync_project(project)
    gone = next(f for f in simulator.sim.iter_files() if f.path)
    store = ManifestStore(admin, guarded_bucket, PREFIX)
    key = next(e.key for m in store.load_all() for i, e in m.items.items() if i == gone.item_id)
    simulator.sim.delete_item(gone.item_id)

    engine = MirrorEngine(aps, guarded_s3.client("no_delete"), config)
    failures = []
    for project in engine.list_projects():
        try:
            engine.sync_project(project)
        except Exception as exc:  # the CLI and the DAG count it as the project's failure
            failures.append(str(exc))
    assert len(failures) == 1 and "\n" not in failures[0]
    assert failures[0].startswith(f"S3 refused to delete s3://{guarded_bucket}/{key} (AccessDenied)")
    assert "s3:DeleteObject" in failures[0]
    # The object is still there, and the committed manifest still journals it for removal.
    admin.head_object(Bucket=guarded_bucket, Key=key)
    journalled = [m for m in store.load_all() if key in m.pending_deletes]
    assert len(journalled) == 1 and gone.item_id not in journalled[0].items

    again = MirrorEngine(aps, admin, config)  # credentials fixed: the next run finishes the job
    for project in again.list_projects():
        again.sync_project(project)
    assert key not in mirror_keys(admin, guarded_bucket)
    assert not any(m.pending_deletes for m in store.load_all())
