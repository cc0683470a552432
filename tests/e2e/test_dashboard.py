"""The "Autodesk mirror" dashboard through a real `airflow api-server`, after demo nights.

Three nights of the real mirror (engine + CatalogWriter + publish_snapshot, as a DAG run does)
copy the simulator's demo account into moto's S3: a first full copy, a night of changes
(new file, new version, rename, move, delete, a file Autodesk cannot serve), a gap, and a
night where a download keeps failing and Autodesk throttles. The mirror is registered the way
the dashboard finds it, an event on the `aps_mirror` asset (REST API) naming bucket, prefix and
`aws` connection; the page and its JSON are then checked against the catalog read
independently with DuckDB, and a screenshot lands in the test's tmp_path and in
test-output/dashboard.png.

Needs Debian's chromium + chromium-driver (include/setup/install_chromium.sh) and selenium,
and the local PostgreSQL the deployment helpers use. Tests run in file order: the first one
sees the deployment before any mirror is registered.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import boto3
import pytest
import requests

import aps_mirror.mirror.engine as engine_module
from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.catalog import reader
from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine
from aps_mirror.mirror.manifest import ManifestStore
from aps_mirror.mirror.verify import MirrorVerifier
from aps_mirror.mirror.verify_report import CATEGORIES
from aps_mirror.simulator import Simulator, SimulatorServer
from tests.airflow_deployment import REPO, Deployment, airflow_deployment, run_airflow
from tests.conftest import FAST_RETRY, connection_for
from tests.e2e.browser import needs_chromium, signed_in_chromium

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = needs_chromium

PREFIX = "autodesk"
AWS_CONN_ID = "aws_mirror"  # not aws_default: the page must use the connection the event names
AWS_SECRET = "moto-secret-never-shown"
AUTODESK_CONN_ID = "autodesk_mirror"  # authorization_code, never connected: an alert on the page
NIGHTS_AGO = (3, 1, 0)  # a gap two days ago: the charts must show a night without a run
LAPTOP = (1366, 768)
SCREENSHOT_COPY = REPO / "test-output" / "dashboard.png"


@dataclass
class Mirror:
    s3: Any
    bucket: str
    prefix: str = PREFIX


# ---------------------------------------------------------------------------- demo nights
@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(Simulator(seed="demo", rate_scale=0)) as server:
        yield server


@pytest.fixture(scope="module")
def mirror(simulator: SimulatorServer, s3_endpoint: str) -> Mirror:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key=AWS_SECRET)
    result = Mirror(s3=s3, bucket=f"dashboard-{uuid.uuid4().hex[:12]}")
    s3.create_bucket(Bucket=result.bucket)
    sim = simulator.sim
    run_night(simulator, result, NIGHTS_AGO[0])  # the first full copy

    riverside = sim.project_id("Riverside Tower")
    files = [f for f in sim.iter_files() if f.project == "Riverside Tower" and f.path[:1] == ("Project Files",)]
    top = sim.folder_id(riverside, ("Project Files",))
    elsewhere = next(f.path for f in files if f.path != files[2].path)
    sim.add_file(riverside, top, "Site Memo.pdf", size=5_000)
    sim.add_version(files[0].item_id, size=7_000)
    sim.rename_item(files[1].item_id, "Renamed Drawing.pdf")
    sim.move_item(files[2].item_id, sim.folder_id(riverside, elsewhere))
    sim.delete_item(files[3].item_id)
    blocked = sim.add_file(riverside, top, "Still Processing.rvt", size=9_000)
    sim.set_download_status(next(f.tip.id for f in sim.iter_files() if f.item_id == blocked), "fallback")
    run_night(simulator, result, NIGHTS_AGO[1])

    harbor = sim.project_id("Harbor Bridge Retrofit")
    sim.add_file(harbor, sim.folder_id(harbor, ("Project Files",)), "Pier Survey.dwg", size=3_000)
    sim.inject_fault("download", 500, count=None)  # that copy fails on every attempt
    sim.inject_fault("folder", 429, count=2, retry_after=1)  # Autodesk throttles the nightly checks
    try:
        run_night(simulator, result, NIGHTS_AGO[2])
    finally:
        sim.clear_faults()
    verify_after_losing_one_object(result)
    return result


def verify_after_losing_one_object(mirror: Mirror) -> None:
    """One of Riverside Tower's objects deleted, then `aps-mirror verify`'s verifier (S3 only)
    records what it found in the catalog, as the verify DAG does."""
    [riverside] = [m for m in ManifestStore(mirror.s3, mirror.bucket, mirror.prefix).load_all()
                   if m.project_name == "Riverside Tower"]
    lost = min(e.key for e in riverside.items.values() if not e.deleted_at)
    mirror.s3.delete_object(Bucket=mirror.bucket, Key=lost)
    report = MirrorVerifier(mirror.s3, mirror.bucket, mirror.prefix).run()
    assert {c: len(getattr(report, c)) for c in CATEGORIES if getattr(report, c)} == {"missing": 1}, \
        report.format_text()
    CatalogWriter(mirror.s3, mirror.bucket, mirror.prefix).record_verification(report)


def run_night(simulator: SimulatorServer, mirror: Mirror, days_ago: int) -> None:
    """One nightly run as the DAG makes it, on a clock `days_ago` behind (the catalog's
    run_date comes from it), then the snapshot publish."""
    shift = timedelta(days=days_ago)
    clock = lambda: (datetime.now(timezone.utc) - shift).isoformat(timespec="seconds")  # noqa: E731
    aps = ApsClient(ApsTransport(connection_for(simulator), retry_policy=FAST_RETRY))
    writer = CatalogWriter(mirror.s3, mirror.bucket, mirror.prefix)
    with mock.patch.object(engine_module, "now_iso", clock):
        engine = MirrorEngine(aps, mirror.s3, MirrorConfig(bucket=mirror.bucket, prefix=mirror.prefix),
                              catalog=writer, run_id=f"scheduled__{clock()}", trigger="airflow")
        for project in engine.list_projects():
            engine.sync_project(project)
        writer.publish_snapshot(now=datetime.now(timezone.utc) - shift)


# ---------------------------------------------------------------------------- what the catalog says
def catalog_truth(mirror: Mirror) -> dict[str, Any]:
    """Per project and per night, straight from the catalog's tables with DuckDB."""
    con = reader.connect(mirror.s3, mirror.bucket, mirror.prefix)
    try:
        projects = {row[0]: {"name": row[1], "files": row[2], "bytes": row[3], "unavailable": row[4]}
                    for row in con.execute("""
            SELECT project_id, any_value(project_name),
                   count(*) FILTER (WHERE status IN ('mirrored', 'outdated')),
                   coalesce(sum(size) FILTER (WHERE status IN ('mirrored', 'outdated')), 0),
                   count(*) FILTER (WHERE status = 'skipped')
            FROM files GROUP BY project_id""").fetchall()}
        nights: dict[str, dict[str, int]] = {}
        for day, failed, size, calls, throttled in con.execute("""
                SELECT strftime(run_date, '%Y-%m-%d'), sum(files_failed), sum(bytes_copied),
                       sum(api_calls), sum(api_calls_throttled) FROM runs GROUP BY run_date""").fetchall():
            nights[day] = {"failed": int(failed), "bytes_copied": int(size), "api_calls": int(calls),
                           "throttled": int(throttled), "copied": 0, "new_versions": 0, "renamed": 0,
                           "moved": 0, "deleted": 0}
        actions = {"copied": "copied", "new_version": "new_versions", "renamed": "renamed", "moved": "moved",
                   "deleted": "deleted", "trashed": "deleted"}
        for day, action, count in con.execute("""
                SELECT strftime(run_date, '%Y-%m-%d'), action, count(*) FROM events GROUP BY ALL""").fetchall():
            if action in actions:
                nights[day][actions[action]] += count
        failed_paths = [r[0] for r in con.execute("SELECT path FROM events WHERE action = 'failed'").fetchall()]
    finally:
        con.close()
    return {"projects": projects, "nights": nights, "failed_paths": failed_paths,
            "files": sum(p["files"] for p in projects.values()),
            "bytes": sum(p["bytes"] for p in projects.values())}


@pytest.fixture(scope="module")
def truth(mirror: Mirror) -> dict[str, Any]:
    facts = catalog_truth(mirror)
    today = datetime.now(timezone.utc).date()
    # The demo nights are what the assertions below rely on: make sure they happened.
    assert sorted(facts["nights"]) == sorted((today - timedelta(days=d)).isoformat() for d in NIGHTS_AGO)
    changes = facts["nights"][(today - timedelta(days=1)).isoformat()]
    assert all(changes[k] >= 1 for k in ("copied", "new_versions", "renamed", "moved", "deleted")), changes
    tonight = facts["nights"][today.isoformat()]
    assert tonight["failed"] == 1 and tonight["throttled"] == 2, tonight
    assert facts["failed_paths"] == ["Project Files/Pier Survey.dwg"]
    assert sum(p["unavailable"] for p in facts["projects"].values()) >= 1
    return facts


# ---------------------------------------------------------------------------- the deployment
@pytest.fixture(scope="module")
def deployment(tmp_path_factory, simulator: SimulatorServer, s3_endpoint: str,
               mirror: Mirror) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow-dashboard")

    def setup(env: dict[str, str]) -> None:
        run_airflow(env, "connections", "add", AUTODESK_CONN_ID, "--conn-json", json.dumps({
            "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
            "password": simulator.client_secret,
            "extra": {"auth_mode": "authorization_code", "scopes": "data:read"}}))
        run_airflow(env, "connections", "add", AWS_CONN_ID, "--conn-json", json.dumps({
            "conn_type": "aws", "login": "test", "password": AWS_SECRET,
            "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}))
        run_airflow(env, "dags", "reserialize")  # the aps_mirror DAG and its asset, in the database

    extra_env = {"APS_MIRROR_BUCKET": mirror.bucket, "APS_MIRROR_PREFIX": mirror.prefix}
    with airflow_deployment(home, REPO / "dags", setup=setup, components=("api-server",),
                            extra_env=extra_env) as dep:
        yield dep


@pytest.fixture(scope="module")
def registered(deployment: Deployment, mirror: Mirror) -> dict:
    """The asset event that tells the dashboard where the mirror is (what summarize records)."""
    assets = deployment.api.get(f"{deployment.base}/api/v2/assets", params={"name_pattern": "aps_mirror"},
                                timeout=10).json()["assets"]
    asset = next(a for a in assets if a["name"] == "aps_mirror")
    created = deployment.api.post(f"{deployment.base}/api/v2/assets/events", timeout=10, json={
        "asset_id": asset["id"],
        "extra": {"bucket": mirror.bucket, "prefix": mirror.prefix, "aws_conn_id": AWS_CONN_ID}})
    assert created.status_code in (200, 201), created.text
    return created.json()


@pytest.fixture
def browser(deployment: Deployment) -> Iterator[Any]:
    with signed_in_chromium(deployment, "--hide-scrollbars", f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
                            page_load_timeout=60, implicit_wait=5) as driver:
        set_viewport(driver, *LAPTOP)
        yield driver


def set_viewport(driver: Any, width: int, height: int) -> None:
    """Size the window so the page itself gets width x height (the window's frame is extra)."""
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    outer = driver.get_window_size()
    driver.set_window_size(outer["width"] + width - inner[0], outer["height"] + height - inner[1])
    assert driver.execute_script("return [window.innerWidth, window.innerHeight]") == [width, height]


# ---------------------------------------------------------------------------- tests
def test_no_mirror_yet_says_what_to_do(deployment: Deployment) -> None:
    data = deployment.api.get(f"{deployment.base}/aps-mirror/dashboard.json", timeout=30).json()
    assert data["mirrors"] == [] and data["problem"] is None
    page = deployment.api.get(f"{deployment.base}/aps-mirror/dashboard", timeout=30)
    assert page.status_code == 200 and "No mirror known yet" in page.text
    assert "Trigger" in page.text and "APS_MIRROR_DASHBOARD_MIRRORS" in page.text


def test_dashboard_json_matches_the_catalog(deployment: Deployment, registered: dict, truth: dict,
                                            mirror: Mirror, simulator: SimulatorServer) -> None:
    url = f"{deployment.base}/aps-mirror/dashboard.json"
    assert requests.get(url, timeout=10).status_code == 401
    anonymous_page = requests.get(f"{deployment.base}/aps-mirror/dashboard", timeout=10, allow_redirects=False)
    assert anonymous_page.status_code in (302, 307) and "login" in anonymous_page.headers["location"]

    response = deployment.api.get(url, timeout=60)
    assert response.status_code == 200, response.text
    data = response.json()
    [shown] = data["mirrors"]
    assert (shown["bucket"], shown["prefix"], shown["aws_conn_id"]) == (mirror.bucket, PREFIX, AWS_CONN_ID)
    assert shown["found_in"] == "asset event" and shown["error"] is None
    # A hand-made event names no DAG: the DAG that declares the asset as an outlet wrote it.
    assert shown["dag_id"] == "aps_mirror" and shown["latest_run"] is None
    report = shown["report"]
    assert report["totals"]["files"] == truth["files"] and report["totals"]["bytes"] == truth["bytes"]
    assert report["totals"]["projects"] == len(truth["projects"])
    for project in report["projects"]:
        expected = truth["projects"][project["project_id"]]
        assert (project["files"], project["bytes"], project["unavailable"]) == \
            (expected["files"], expected["bytes"], expected["unavailable"]), project["project_name"]
    statuses = {p["project_name"]: p["status"] for p in report["projects"]}
    assert statuses == {"Harbor Bridge Retrofit": "failing", "Riverside Tower": "ok", "Drone Gimbal": "ok"}
    nights = {n["day"]: {k: v for k, v in n.items() if k != "day"} for n in report["nights"]}
    assert nights == truth["nights"]
    [failure] = report["failures"]
    assert failure["path"] == "Project Files/Pier Survey.dwg" and "500" in failure["reason"]
    assert failure["advice"]
    verification = report["verification"]  # one object deleted, then verified (S3 only)
    assert (verification["status"], verification["faults"]) == ("faults", {"missing": 1})
    assert verification["counts"]["outdated"] is None and verification["against_autodesk"] is False
    assert f"--aws-conn-id {AWS_CONN_ID} --json`" in verification["advice"]
    assert {p["project_name"]: p["verify_faults"] for p in report["projects"]} == {
        "Harbor Bridge Retrofit": {}, "Riverside Tower": {"missing": 1}, "Drone Gimbal": {}}

    health = {c["conn_id"]: c for c in data["connections"]}
    assert health[AUTODESK_CONN_ID]["level"] == "alert" and "Not connected" in health[AUTODESK_CONN_ID]["message"]
    for secret in (simulator.client_secret, AWS_SECRET):
        assert secret not in response.text

    plugins = deployment.api.get(f"{deployment.base}/api/v2/plugins", timeout=10).json()["plugins"]
    views = [v for p in plugins for v in p.get("external_views", [])]
    assert any(v["name"] == "Autodesk mirror" and v["href"] == "/aps-mirror/dashboard" for v in views)


def test_dashboard_page_in_chromium_shows_the_catalog(deployment: Deployment, registered: dict, truth: dict,
                                                      simulator: SimulatorServer, browser, tmp_path: Path) -> None:
    browser.get(f"{deployment.base}/aps-mirror/dashboard")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Autodesk mirror"

    totals = {e.get_attribute("data-key"): int(e.get_attribute("data-value"))
              for e in browser.find_elements(By.CSS_SELECTOR, "#mirror-0-totals .total")}
    assert totals["files"] == truth["files"] and totals["bytes"] == truth["bytes"]
    assert totals["projects"] == len(truth["projects"]) and totals["failing_projects"] == 1
    assert f"{truth['files']:,}" in browser.find_element(By.ID, "mirror-0-totals").text

    rows = browser.find_elements(By.CSS_SELECTOR, "#mirror-0-projects tr.project")
    assert len(rows) == len(truth["projects"])
    for row in rows:
        expected = truth["projects"][row.get_attribute("data-project-id")]
        assert expected["name"] in row.text
        assert [int(row.get_attribute(f"data-{k}")) for k in ("files", "bytes", "unavailable")] == \
            [expected["files"], expected["bytes"], expected["unavailable"]]
    assert rows[0].get_attribute("data-status") == "failing"  # problems first
    assert "Harbor Bridge Retrofit" in rows[0].text and "failing" in rows[0].text

    def figures(chart: str) -> dict[str, list[str]]:
        table = browser.find_element(By.ID, f"mirror-0-{chart}-figures")
        return {r.get_attribute("data-day"): [c.get_attribute("data-value") for c in
                                               r.find_elements(By.TAG_NAME, "td")[1:]]
                for r in table.find_elements(By.CSS_SELECTOR, "tr[data-day]")}

    changes, sizes, calls = figures("chart-changes"), figures("chart-bytes"), figures("chart-api")
    gap = (datetime.now(timezone.utc).date() - timedelta(days=2)).isoformat()
    assert changes[gap] == [""] * 6 and sizes[gap] == [""]  # no run that night: a gap, not zeros
    for day, night in truth["nights"].items():
        assert changes[day] == [str(night[k]) for k in ("copied", "new_versions", "renamed", "moved",
                                                        "deleted", "failed")], day
        assert sizes[day] == [str(night["bytes_copied"])]
        assert calls[day] == [str(night["throttled"]), str(night["api_calls"] - night["throttled"])]
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart rect[fill]")) > 0

    verification = browser.find_element(By.ID, "mirror-0-verification")
    assert verification.get_attribute("data-status") == "faults"
    assert verification.find_element(By.CSS_SELECTOR, ".badge").text == "faults"
    missing = verification.find_element(By.CSS_SELECTOR, "td[data-category='missing']")
    assert (missing.get_attribute("data-value"), missing.text) == ("1", "1")
    assert "aps-mirror verify --bucket" in verification.find_element(By.CSS_SELECTOR, ".advice code").text
    riverside = next(r for r in rows if "Riverside Tower" in r.text)
    assert riverside.find_element(By.CSS_SELECTOR, "td.verify").text == "missing: 1"

    failure = browser.find_element(By.CSS_SELECTOR, "#mirror-0-failures tr.failure")
    assert "Pier Survey.dwg" in failure.text and "retried" in failure.text.lower()
    section = browser.find_element(By.CSS_SELECTOR, "section.mirror")
    assert section.get_attribute("data-dag-id") == "aps_mirror"
    assert section.find_element(By.CSS_SELECTOR, ".run").text == "DAG aps_mirror: no run yet"
    assert not browser.find_elements(By.ID, "mirrors")  # one mirror: no overview table
    connection = browser.find_element(By.CSS_SELECTOR, f"tr.connection[data-conn-id='{AUTODESK_CONN_ID}']")
    assert connection.get_attribute("data-level") == "alert" and "Not connected" in connection.text

    # Offline by construction: nothing but the page itself was fetched, no script on it.
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched == [], fetched
    assert not browser.find_elements(By.TAG_NAME, "script")
    for secret in (simulator.client_secret, AWS_SECRET):
        assert secret not in browser.page_source
    # A laptop screen: nothing wider than the window.
    assert browser.execute_script("return document.documentElement.scrollWidth") <= LAPTOP[0]

    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot))
    set_viewport(browser, LAPTOP[0], browser.execute_script("return document.documentElement.scrollHeight"))
    assert browser.save_screenshot(str(tmp_path / "dashboard-full.png"))
    SCREENSHOT_COPY.parent.mkdir(exist_ok=True)
    shutil.copy(shot, SCREENSHOT_COPY)
    shutil.copy(tmp_path / "dashboard-full.png", SCREENSHOT_COPY.with_name("dashboard-full.png"))


# ---------------------------------------------------------------------------- without a server
def test_mirrors_from_the_environment_override(monkeypatch) -> None:
    from aps_mirror.airflow_provider.ui.mirror_locations import MIRRORS_ENV, configured_mirrors
    from aps_mirror.errors import ConfigError

    monkeypatch.delenv(MIRRORS_ENV, raising=False)
    assert configured_mirrors() is None  # unset: the asset events decide
    monkeypatch.setenv(MIRRORS_ENV, "s3://one/autodesk/?aws_conn_id=aws_eu&dag_id=acme.docs, s3://two")
    assert [(m.bucket, m.prefix, m.aws_conn_id, m.dag_id) for m in configured_mirrors()] == [
        ("one", "autodesk", "aws_eu", "acme.docs"), ("two", "", "aws_default", None)]
    for wrong in ("https://one/autodesk", "s3://one/autodesk?aws_conn=aws_eu"):  # a typo is not ignored
        monkeypatch.setenv(MIRRORS_ENV, wrong)
        with pytest.raises(ConfigError, match="s3://bucket/prefix"):
            configured_mirrors()
    monkeypatch.setenv(MIRRORS_ENV, "s3://one/autodesk?dag_id=dags/north")
    with pytest.raises(ConfigError, match="is not a DAG id"):
        configured_mirrors()


def test_an_event_without_bucket_in_its_extra_falls_back_to_the_asset_uri() -> None:
    from aps_mirror.airflow_provider.ui.mirror_locations import _from_event

    found = _from_event({"files_copied": 3}, "s3://aps-mirror/autodesk", "2026-05-01T02:00:00+00:00")
    assert (found.bucket, found.prefix, found.aws_conn_id, found.dag_id) == ("aps-mirror", "autodesk",
                                                                             "aws_default", None)
    assert found.last_event == {"files_copied": 3}
    assert _from_event({}, "file:///tmp/x", "2026-05-01T02:00:00+00:00") is None
