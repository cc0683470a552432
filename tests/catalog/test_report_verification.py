"""The report's verification status, from a catalog the verifier wrote about a real mirror
(engine on the simulator over HTTP -> moto's S3 server; `MirrorVerifier` -> `record_verification`)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from aps_mirror.catalog.report import FAULTS, UNVERIFIED, VERIFIED, build_report
from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.mirror.manifest import ManifestStore
from aps_mirror.mirror.verify import MirrorVerifier
from aps_mirror.mirror.verify_report import CATEGORIES
from tests.catalog.factories import PREFIX as FACTORY_PREFIX
from tests.catalog.factories import manifest
from tests.catalog.test_cli_report import cli, env  # noqa: F401 - env is a fixture
from tests.mirror.test_engine import PREFIX, mirrored, run

DRONE = ("Drone*",)  # one small project


@pytest.fixture
def drone(aps, s3, bucket) -> CatalogWriter:
    """Drone Gimbal mirrored, its catalog published; no verification yet."""
    summary = run(aps, s3, bucket, project_filter=DRONE)
    assert summary.files_copied >= 5 and not summary.errors
    writer = CatalogWriter(s3, bucket, PREFIX)
    writer.publish_snapshot()
    return writer


def verify_and_record(writer: CatalogWriter, **options) -> None:
    report = MirrorVerifier(writer.s3, writer.bucket, writer.prefix, **options).run()
    writer.record_verification(report)


def test_no_verification_is_unverified_and_says_how_to_verify(drone, s3, bucket):
    report = build_report(s3, bucket, PREFIX, aws_conn_id="aws_eu")
    v = report.verification
    assert (v.status, v.verification_id, v.counts, v.faults) == (UNVERIFIED, None, {}, {})
    assert v.summary == "no verification recorded in the last 30 days"
    assert f"`aps-mirror verify --bucket {bucket} --prefix {PREFIX} --aws-conn-id aws_eu`" in v.advice
    assert "`aps_mirror_verify` DAG" in v.advice
    [project] = report.projects
    assert project.project_name == "Drone Gimbal" and project.verify_faults is None
    assert "Verification: unverified: no verification recorded" in report.format_text()


def test_a_clean_verification_is_verified_for_eight_days(drone, s3, bucket):
    verify_and_record(drone, sample=2)
    entries = mirrored(s3, bucket)
    report = build_report(s3, bucket, PREFIX)
    v = report.verification
    assert v.status == VERIFIED and v.advice is None and v.age_days < 0.1
    assert (v.deep, v.sample, v.against_autodesk) == (True, 2, False)
    assert (v.objects_checked, v.objects_read, v.projects_checked) == (len(entries), 2, 1)
    # Without Autodesk, outdated and not_mirrored are not known: null, not 0.
    assert v.counts == {"missing": 0, "corrupt": 0, "orphans": 0, "outdated": None, "not_mirrored": None,
                        "stale_uploads": 0}
    assert v.summary.startswith(f"clean: {len(entries)} objects checked")
    assert report.projects[0].verify_faults == {}
    text = report.format_text()
    assert "Verification: verified: clean" in text and "deep on a sample of 2" in text
    assert "outdated: not checked" in text and "S3 only" in text

    later = build_report(s3, bucket, PREFIX, now=datetime.now(timezone.utc) + timedelta(days=8, hours=1))
    assert later.verification.status == UNVERIFIED
    assert "was clean, but is older than 8 days" in later.verification.summary
    assert "aps-mirror verify --bucket" in later.verification.advice


def test_a_deleted_object_is_a_fault_of_its_project(drone, aps, s3, bucket):
    verify_and_record(drone)  # clean first: the latest verification is the one that counts
    gone = sorted(mirrored(s3, bucket).values(), key=lambda e: e["key"])[0]["key"]
    s3.delete_object(Bucket=bucket, Key=gone)
    verify_and_record(drone, client=aps)
    report = build_report(s3, bucket, PREFIX)
    v = report.verification
    assert v.status == FAULTS and v.against_autodesk is True and v.deep is False
    assert v.counts == {c: int(c == "missing") for c in CATEGORIES}, "Autodesk compared: 0, not null"
    assert v.faults == {"missing": 1} and v.unchecked == 0
    assert v.summary.endswith("was not clean: missing: 1")
    assert f"`aps-mirror verify --bucket {bucket} --prefix {PREFIX} --conn-id AUTODESK_CONN_ID --json`" in v.advice
    assert "`aps_mirror_verify` DAG" in v.advice
    assert report.projects[0].verify_faults == {"missing": 1}

    data = json.loads(json.dumps(report.to_dict()))
    assert data["verification"]["status"] == "faults" and data["verification"]["faults"] == {"missing": 1}
    assert data["verification"]["counts"]["missing"] == 1 and data["projects"][0]["verify_faults"] == {"missing": 1}
    text = report.format_text()
    assert "Verification: faults:" in text and "missing: 1, corrupt: 0" in text and "--json" in text

    # Old faults stay faults (nothing has proven them fixed), and say their age.
    later = build_report(s3, bucket, PREFIX, now=datetime.now(timezone.utc) + timedelta(days=9))
    assert later.verification.status == FAULTS and "older than 8 days" in later.verification.advice


def test_cli_report_shows_the_verification_aps_mirror_verify_recorded(s3, bucket, env):
    """As a user runs them: `verify` (the hand-made manifest's objects were never uploaded: all
    missing), then `report` as JSON and text."""
    ManifestStore(s3, bucket, FACTORY_PREFIX).save(manifest())
    CatalogWriter(s3, bucket, FACTORY_PREFIX).publish_snapshot()
    location = ("--bucket", bucket, "--prefix", FACTORY_PREFIX)

    verified = cli("verify", *location, "--json", env=env)
    assert verified.returncode == 1, verified.stderr
    missing = len(json.loads(verified.stdout)["missing"])
    assert missing == 4  # tower's model, gone, locked, stuck: none in S3

    data = json.loads(cli("report", *location, "--json", env=env).stdout)
    v = data["verification"]
    assert (v["status"], v["faults"], v["objects_checked"]) == ("faults", {"missing": missing}, missing)
    assert v["counts"]["outdated"] is None and v["counts"]["orphans"] == 0
    assert [p["verify_faults"] for p in data["projects"]] == [{"missing": missing}]
    text = cli("report", *location, env=env)
    assert text.returncode == 0, text.stderr
    assert f"Verification: faults: the latest verification, less than an hour ago, was not clean: " \
           f"missing: {missing}" in text.stdout
    assert f"aps-mirror verify --bucket {bucket} --prefix {FACTORY_PREFIX} --json" in text.stdout
