"""The dashboard's verification status per mirror and per project: collected by `read_mirror`
(Airflow's S3Hook on an `aws` connection, moto's S3 server) from catalogs the verifier wrote
about real mirrors (engine on the simulator over HTTP), then rendered by `render_dashboard`.

Three mirrors of the same project: one verified clean, one verified after an object was
deleted, one never verified."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from html import unescape
from typing import Iterator

import boto3
import pytest

from aps_mirror.airflow_provider.ui import dashboard
from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.airflow_provider.ui.dashboard import Dashboard, MirrorStatus, read_mirror
from aps_mirror.airflow_provider.ui.dashboard_page import render_dashboard
from aps_mirror.airflow_provider.ui.mirror_locations import MirrorLocation
from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.mirror.verify import MirrorVerifier
from aps_mirror.simulator import Simulator, SimulatorServer
from tests.conftest import FAST_RETRY, connection_for
from tests.mirror.test_engine import PREFIX, mirrored, run

AWS_CONN_ID = "aws_dashboard_verify"


@pytest.fixture(scope="module")
def mirrors(s3_endpoint: str) -> Iterator[dict[str, MirrorStatus]]:
    """clean, faulty, never: each a mirror of Drone Gimbal in its own bucket, read as the
    dashboard reads it (built once: the tests only read)."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    with SimulatorServer(Simulator(seed="demo", rate_scale=0)) as simulator, pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}", json.dumps({
            "conn_type": "aws", "login": "test", "password": "test",
            "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}))
        patch.setattr(dashboard, "_cache", {})  # what other tests read stays theirs
        aps = ApsClient(ApsTransport(connection_for(simulator), retry_policy=FAST_RETRY))
        statuses = {}
        for name in ("clean", "faulty", "never"):
            bucket = f"verify-{name}-{uuid.uuid4().hex[:8]}"
            s3.create_bucket(Bucket=bucket)
            assert not run(aps, s3, bucket, project_filter=("Drone*",)).errors
            writer = CatalogWriter(s3, bucket, PREFIX)
            writer.publish_snapshot()
            if name == "faulty":
                s3.delete_object(Bucket=bucket, Key=sorted(e["key"] for e in mirrored(s3, bucket).values())[0])
            if name != "never":
                writer.record_verification(MirrorVerifier(s3, bucket, PREFIX, sample=1).run())
            statuses[name] = read_mirror(MirrorLocation(bucket, PREFIX, AWS_CONN_ID, dag_id="aps_mirror"))
        yield statuses


def test_each_mirror_has_its_verification_status_in_json(mirrors):
    data = {name: status.to_dict() for name, status in mirrors.items()}
    assert all(d["error"] is None for d in data.values()), data
    verification = {name: d["report"]["verification"] for name, d in data.items()}
    assert {n: v["status"] for n, v in verification.items()} == {
        "clean": "verified", "faulty": "faults", "never": "unverified"}

    faulty = verification["faulty"]
    assert faulty["faults"] == {"missing": 1} and faulty["counts"]["missing"] == 1
    assert faulty["counts"]["outdated"] is None, "no Autodesk walk: not checked"
    assert (faulty["deep"], faulty["sample"], faulty["against_autodesk"]) == (True, 1, False)
    assert faulty["started_at"] and faulty["objects_checked"] > 1
    # What to do names the connection the dashboard reads with, and the verify DAG.
    assert f"--aws-conn-id {AWS_CONN_ID} --sample 1 --json`" in faulty["advice"]
    assert "aps_mirror_verify" in faulty["advice"]
    assert verification["clean"]["faults"] == {} and verification["clean"]["advice"] is None
    assert "aps-mirror verify --bucket" in verification["never"]["advice"]
    assert "weekly `aps_mirror_verify` DAG" in verification["never"]["advice"]

    assert [p["verify_faults"] for p in data["faulty"]["report"]["projects"]] == [{"missing": 1}]
    assert [p["verify_faults"] for p in data["clean"]["report"]["projects"]] == [{}]
    assert [p["verify_faults"] for p in data["never"]["report"]["projects"]] == [None]


def test_the_page_shows_each_badge_the_counts_and_what_to_do(mirrors):
    page = render_dashboard(Dashboard(generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                      mirrors=list(mirrors.values()), connections=[]))
    # The overview, one row per mirror: its verification badge.
    overview = re.findall(r"<tr class='mirror-row'.*?<td class='verification-status'>"
                          r"<span class='badge (\w+)'", page)
    assert overview == ["verified", "faults", "unverified"]

    faulty = section(page, 1)
    assert "id='mirror-1-verification' data-status='faults'" in faulty
    assert "<td class='num fault' data-category='missing' data-value='1'>1</td>" in faulty
    assert "data-category='outdated' data-value='' title='not checked" in faulty
    assert "deep on a sample of 1" in unescape(faulty) and "S3 only" in faulty
    assert re.search(r"<code>aps-mirror verify --bucket verify-faulty-\w+ --prefix mirror --aws-conn-id "
                     rf"{AWS_CONN_ID} --sample 1 --json</code>", faulty)
    assert "data-verify-faults='{&quot;missing&quot;: 1}'" in faulty  # the project's row
    assert "<td class='verify fault'>missing: 1</td>" in faulty

    clean = section(page, 0)
    assert "data-status='verified'" in clean and "<td class='verify'>clean</td>" in clean
    assert "class='advice'" not in clean
    never = section(page, 2)
    assert "data-status='unverified'" in never and "no verification recorded in the last 30 days" in never
    assert "<code>aps_mirror_verify</code>" in never and "<td class='verify'>-</td>" in never


def section(page: str, index: int) -> str:
    """The HTML of the page's index-th mirror section."""
    return page.split(f"<section class='mirror' id='mirror-{index}'", 1)[1].split("</section>", 1)[0]
