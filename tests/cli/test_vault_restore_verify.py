"""Restore and verify on a mirror that holds a vault beside Docs projects.

Restoring into a vault is refused (Vault's Data API v2 has no write endpoints) in one line,
before any request reaches Autodesk, however the vault is selected; a glob that also selects
Docs projects restores those and skips the vault. Verify checks the vault's objects as it does
the Docs projects'. One mirror serves the module (the demo account: Drone Gimbal and the vault
Engineering), synced once in-process; the commands run as a user runs them, in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.errors import ConfigError
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine, RunSummary
from aps_mirror.mirror.manifest import Manifest, ManifestStore
from aps_mirror.mirror.progress import human_bytes
from aps_mirror.mirror.restore import Restorer
from aps_mirror.mirror.restore_request import restore_request
from aps_mirror.mirror.sources.docs import DocsSource
from aps_mirror.mirror.sources.vault import VaultSource
from aps_mirror.mirror.verify import MirrorVerifier
from aps_mirror.simulator import Simulator, SimulatorServer
from tests.cli.test_cli import cli
from tests.cli.test_sync_options import assert_one_line_usage_error
from tests.conftest import FAST_RETRY, connection_for
from tests.vault.conftest import vault_client

PREFIX = "nightly"
DOCS_PROJECT = "Drone Gimbal"
WRITE_SCOPES = ("data:read", "data:write", "data:create")


@dataclass(frozen=True)
class Mirror:
    server: SimulatorServer
    s3: object
    bucket: str
    env: dict[str, str]  # connections for the CLI: `autodesk_default` may write

    @property
    def vault_root(self) -> str:
        return f"s3://{self.bucket}/{PREFIX}/vault/Engineering/"

    def manifests(self) -> dict[str, Manifest]:
        return {m.source: m for m in ManifestStore(self.s3, self.bucket, PREFIX).load_all()}

    def writer(self, server: SimulatorServer | None = None) -> ApsClient:
        """A client that may write, of the mirrored account or of another one like it."""
        connection = connection_for(server or self.server, scopes=WRITE_SCOPES)
        return ApsClient(ApsTransport(connection, retry_policy=FAST_RETRY))

    def cli(self, *args: str):
        return cli(*args, "--bucket", self.bucket, "--prefix", PREFIX, env=self.env)

    def requests_served(self) -> int:
        return sum(self.server.sim.stats()["requests"].values())


@pytest.fixture(scope="module")
def mirror(s3_endpoint: str) -> Iterator[Mirror]:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    bucket = f"mirror-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    with SimulatorServer(Simulator(seed="demo", rate_scale=0)) as server:
        docs = ApsClient(ApsTransport(connection_for(server), retry_policy=FAST_RETRY))
        sources = {"docs": DocsSource(docs), "vault": VaultSource(vault_client(server))}
        engine = MirrorEngine(sources, s3, MirrorConfig(bucket=bucket, prefix=PREFIX, project_filter=(DOCS_PROJECT,)))
        summary = RunSummary.combine(engine.mirror_projects(engine.list_projects()))
        assert not summary.errors and summary.files_copied > 0
        env = {"AIRFLOW_CONN_AUTODESK_DEFAULT": json.dumps({
                   "conn_type": "autodesk", "host": server.base_url, "login": server.client_id,
                   "password": server.client_secret,
                   "extra": {"auth_mode": "client_credentials", "scopes": " ".join(WRITE_SCOPES)}}),
               "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
                   "conn_type": "aws", "login": "test", "password": "test",
                   "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}})}
        mirror = Mirror(server, s3, bucket, {**os.environ, **env})
        assert set(mirror.manifests()) == {"docs", "vault"}
        yield mirror


def object_keys(mirror: Mirror) -> dict[str, str]:
    """key -> ETag of every object under the prefix."""
    pages = mirror.s3.get_paginator("list_objects_v2").paginate(Bucket=mirror.bucket, Prefix=f"{PREFIX}/")
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


# -- restore -----------------------------------------------------------------------------------
def test_restore_of_the_vault_is_refused_in_one_line_before_any_request(mirror) -> None:
    before = object_keys(mirror)
    mirror.server.sim.reset_stats()
    result = mirror.cli("restore", "--project", "Engineering", "--in-place")
    assert_one_line_usage_error(result, "Project 'Engineering' selects only the vault Engineering: ",
                                "Vault cannot be written through its API",
                                f"aws s3 cp --recursive {mirror.vault_root} ./Engineering",
                                "Nothing was restored.")
    assert mirror.requests_served() == 0, mirror.server.sim.stats()["requests"]
    assert object_keys(mirror) == before


@pytest.mark.parametrize(("values", "message"), [
    ({"project": "eng*"}, "Project 'eng*' selects only the vault Engineering: "),
    ({"project": "{vault_id}", "into": "Project Files/Recovered"}, "Project '{vault_id}' selects only the vault "),
    ({"project": ["*", DOCS_PROJECT], "path": "$/Designs/Gearbox", "dry_run": True},
     "Every file selected by project '*', 'Drone Gimbal' and path '$/Designs/Gearbox' is in the vault Engineering: "),
    ({"project": "*", "path": "Designs"}, "Every file selected by project '*' and path 'Designs' is in the vault "),
], ids=["name glob", "vault id", "vault path, dry run", "path only the vault holds"])
def test_every_way_of_selecting_the_vault_is_refused(mirror, values, message) -> None:
    vault_id = mirror.manifests()["vault"].project_id
    values = {k: v.format(vault_id=vault_id) if isinstance(v, str) else v for k, v in values.items()}
    restorer = Restorer(mirror.writer(), mirror.s3, mirror.bucket, PREFIX, restore_request(values))
    mirror.server.sim.reset_stats()
    with pytest.raises(ConfigError) as refused:
        restorer.run()
    text = str(refused.value)
    assert text.startswith(message.format(vault_id=vault_id)) and "\n" not in text
    assert f"from s3://{mirror.bucket}/{PREFIX}/vault/<vault>/ " in text
    assert mirror.requests_served() == 0, mirror.server.sim.stats()["requests"]


def test_the_plan_of_a_restore_refuses_the_vault_before_it_checks_the_write_scopes(mirror) -> None:
    """The restore DAG's plan_restore: a dry run that checks the scopes of the real restore."""
    read_only = ApsClient(ApsTransport(connection_for(mirror.server), retry_policy=FAST_RETRY))

    def plan(project: str) -> str:
        request = restore_request({"project": project, "dry_run": True})
        with pytest.raises(ConfigError) as refused:
            Restorer(read_only, mirror.s3, mirror.bucket, PREFIX, request, check_scopes=True).run()
        return str(refused.value)

    mirror.server.sim.reset_stats()
    assert plan("Engineering").startswith("Project 'Engineering' selects only the vault Engineering: ")
    assert mirror.requests_served() == 0, "no scope to ask for would make a vault writable"
    assert "needs the scopes data:write and data:create" in plan(DOCS_PROJECT)


def test_a_glob_over_docs_and_vault_restores_the_docs_project_and_skips_the_vault(
        mirror, simulator, caplog) -> None:
    """Into a fresh demo account (the same ids as the mirrored one), so the module's stays as mirrored."""
    manifests = mirror.manifests()
    docs_paths = sorted(e.source_path for e in manifests["docs"].items.values())
    with caplog.at_level(logging.WARNING, logger="aps_mirror.mirror.restore"):
        summary = Restorer(mirror.writer(simulator), mirror.s3, mirror.bucket, PREFIX,
                           restore_request({"project": "*"}), today="today").run()
    assert (summary.files_restored, summary.files_failed) == (len(docs_paths), 0), summary.format_text()
    assert sorted(step["path"] for step in summary.restored) == docs_paths
    skipped = [r.getMessage() for r in caplog.records if "vault" in r.getMessage().lower()]
    assert len(skipped) == 1 and skipped[0].startswith("skipping the vault Engineering: "), skipped
    assert "Restoring the Docs projects only." in skipped[0]
    restored = sorted("/".join((f.path[0], *f.path[2:], f.tip.name)) for f in simulator.sim.iter_files()
                      if f.project == DOCS_PROJECT and f.path[1:2] == ("Restored today",))
    assert restored == docs_paths


# -- verify ------------------------------------------------------------------------------------
def test_verify_and_verify_deep_report_the_mirror_with_its_vault_clean(mirror) -> None:
    manifests = mirror.manifests()
    held = sum(len(m.items) for m in manifests.values())
    plain = mirror.cli("verify", "--json")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    report = json.loads(plain.stdout)
    assert (report["clean"], report["objects_checked"], report["objects_read"]) == (True, held, 0), report
    assert {p["project_name"] for p in report["projects"]} == {DOCS_PROJECT, "Engineering"}

    deep = mirror.cli("verify", "--deep")
    assert deep.returncode == 0, deep.stdout + deep.stderr
    assert deep.stdout.splitlines()[0].endswith(f"{held} objects checked in 2 project(s), {held} re-read "
                                                f"({_megabytes(manifests)}): clean"), deep.stdout


def test_verify_against_autodesk_compares_the_docs_project_and_says_the_vault_is_not(mirror) -> None:
    vault = mirror.manifests()["vault"]
    report = MirrorVerifier(mirror.s3, mirror.bucket, PREFIX, client=mirror.writer(), deep=True).run()
    assert report.clean, report.format_text()
    assert report.notes == [f"{vault.hub_name} / Engineering: a Vault vault, not compared with its source "
                            "(--conn-id compares Autodesk Docs projects only)"]


def test_verify_deep_names_a_changed_and_a_deleted_vault_object(mirror) -> None:
    entries = sorted(mirror.manifests()["vault"].items.values(), key=lambda e: e.key)
    changed, deleted = next(e for e in entries if e.size > 0), entries[-1]
    assert changed.key != deleted.key
    s3, bucket = mirror.s3, mirror.bucket
    original = {e.key: s3.get_object(Bucket=bucket, Key=e.key) for e in (changed, deleted)}
    bodies = {key: got["Body"].read() for key, got in original.items()}
    try:
        # Same size and metadata, one byte flipped: only the re-read's SHA-1 can tell.
        damaged = bytearray(bodies[changed.key])
        damaged[0] ^= 0xFF
        s3.put_object(Bucket=bucket, Key=changed.key, Body=bytes(damaged),
                      Metadata=original[changed.key]["Metadata"])
        s3.delete_object(Bucket=bucket, Key=deleted.key)
        result = mirror.cli("verify", "--deep", "--json")
        assert result.returncode == 1, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert [(f["key"], f["why"].split(",")[0]) for f in report["corrupt"]] == \
            [(changed.key, f"the SHA-1 of its bytes is {_sha1(bytes(damaged))}")], report["corrupt"]
        assert [f["key"] for f in report["missing"]] == [deleted.key], report["missing"]
        assert not report["clean"] and not report["orphans"]
    finally:  # the module's mirror stays whole for the other tests
        for key, body in bodies.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=original[key]["Metadata"])


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _megabytes(manifests: dict[str, Manifest]) -> str:
    return human_bytes(sum(e.size for m in manifests.values() for e in m.items.values()))
