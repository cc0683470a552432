"""The dashboard of a deployment with two mirrors, each shown to the users who may read its DAG.

A real deployment (api-server, scheduler, dag-processor, LocalExecutor) in Airflow's
multi-team mode: two DAG bundles, `north` and `south`, each owned by a team of that name, each
holding one mirror DAG built by `build_mirror_dag` (`mirror_north`, `mirror_south`) with its
own bucket and project selection. Both DAGs run for real against the simulator and moto, so
each mirror is found from the event its own summarize task recorded.

SimpleAuthManager (FAB is not installed here) grants by role, not per DAG; its teams are how
it scopes DAG reads, so they stand in for per-DAG permissions:
- admin: both mirrors; north_reader / south_reader (viewers of one team): their team's mirror;
- viewer (no team: may read DAGs in general, but no team's DAG): 403 once mirrors exist;
- guest (no role): 403, even before any mirror.
A second api-server on the same database, with APS_MIRROR_DASHBOARD_MIRRORS, checks the
explicit list: `dag_id=` ties a listed mirror to its DAG (its runs, its readers); a mirror
listed without it goes to users who may read DAGs in general.

Tests run in file order: the first sees the deployment before any run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
import requests

from aps_mirror.airflow_provider.ui.mirror_access import NO_DAG_READ, NO_MIRROR_VISIBLE
from aps_mirror.simulator import Simulator, SimulatorServer
from tests.airflow_deployment import (AIRFLOW, REPO, USER, Deployment, airflow_deployment, api_session, free_port,
                                      mirror_connections, run_airflow, stop_processes, wait_until)
from tests.e2e.browser import needs_chromium, signed_in_chromium

pytestmark = pytest.mark.timeout(900)

PASSWORD = "pw-" + uuid.uuid4().hex[:12]
# name:role[:team]; a user with an empty role has no permission at all.
USERS = f"{USER}:admin,north_reader:viewer:north,south_reader:viewer:south,viewer:viewer,guest:"
READERS = ("north_reader", "south_reader", "viewer", "guest")
# Each mirror: its DAG (in the bundle of its team), its project selection (so each catalog is its own).
MIRRORS = {"north": ("mirror_north", "Riverside*", "Riverside Tower"),
           "south": ("mirror_south", "Harbor*", "Harbor Bridge Retrofit")}
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
SCREENSHOT_COPY = REPO / "test-output" / "dashboard-mirrors.png"


@pytest.fixture(scope="module")
def buckets(s3_endpoint: str) -> dict[str, str]:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    names = {team: f"dash-{team}-{uuid.uuid4().hex[:8]}" for team in MIRRORS}
    for name in names.values():
        s3.create_bucket(Bucket=name)
    return names


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, s3_endpoint: str, buckets: dict[str, str]) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow-dashboard-mirrors")
    bundles = []
    for team, (dag_id, project_filter, _) in MIRRORS.items():
        folder = home / f"bundle-{team}"
        folder.mkdir()
        (folder / f"{dag_id}.py").write_text(
            "from aps_mirror.airflow_provider.dags import build_mirror_dag\n\n"
            f"build_mirror_dag({dag_id!r}, bucket={buckets[team]!r}, prefix={team!r}, schedule=None,\n"
            f"                 deadline='off', project_filter=[{project_filter!r}])\n")
        bundles.append({"name": team, "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(folder)},
                        "team_name": team})

    with SimulatorServer(Simulator(seed="demo", rate_scale=0)) as simulator:
        connections = mirror_connections(aps_url=simulator.base_url, client_id=simulator.client_id,
                                         client_secret=simulator.client_secret, s3_endpoint=s3_endpoint)

        def setup(env: dict[str, str]) -> None:
            names = [u.split(":")[0] for u in USERS.split(",")]
            Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).write_text(
                json.dumps({name: PASSWORD for name in names}))
            run_airflow(env, "teams", "sync")  # the bundles' teams, before the bundles are stored
            run_airflow(env, "pools", "set", "autodesk_api", "4", "APS API concurrency")
            for conn_id, conn in connections.items():
                run_airflow(env, "connections", "add", conn_id, "--conn-json", json.dumps(conn))

        extra_env = {"AIRFLOW__CORE__MULTI_TEAM": "True",
                     "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
                     "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": USERS}
        with airflow_deployment(home, home, setup=setup, extra_env=extra_env, password=PASSWORD) as dep:
            yield dep


@pytest.fixture(scope="module")
def runs(deployment: Deployment) -> dict[str, dict]:
    """Each mirror DAG's run, triggered through the REST API and finished."""
    found = {}
    for team, (dag_id, _, _) in MIRRORS.items():
        run = deployment.trigger(dag_id, wait=600)
        assert run["state"] == "success", f"{dag_id}: {run['state']}\n{deployment.task_logs()[-6000:]}"
        found[team] = run
    return found


def session_of(deployment: Deployment, user: str, base: str | None = None) -> requests.Session:
    return api_session(base or deployment.base, user, PASSWORD)


def dashboard(session: requests.Session, base: str) -> tuple[requests.Response, requests.Response]:
    return (session.get(f"{base}/aps-mirror/dashboard.json", timeout=120),
            session.get(f"{base}/aps-mirror/dashboard", timeout=120))


def assert_refused(session: requests.Session, base: str, message: str) -> None:
    for response in dashboard(session, base):
        assert response.status_code == 403, response.text
        assert response.json() == {"detail": message}


# ---------------------------------------------------------------------------- tests
def test_before_any_run_readers_of_dags_get_what_to_do_others_403(deployment: Deployment) -> None:
    for user in (USER, "north_reader", "viewer"):
        data, page = dashboard(session_of(deployment, user), deployment.base)
        assert data.status_code == 200 and data.json()["mirrors"] == [], (user, data.text)
        assert page.status_code == 200 and "No mirror known yet" in page.text, user
        assert "build_mirror_dag" in page.text and "dag_id=" in page.text
    assert_refused(session_of(deployment, "guest"), deployment.base, NO_DAG_READ)


def test_admin_sees_each_mirror_with_its_own_dag_and_last_run(deployment: Deployment, runs: dict,
                                                              buckets: dict[str, str]) -> None:
    data, page = dashboard(deployment.api, deployment.base)
    assert data.status_code == 200, data.text
    shown = {m["dag_id"]: m for m in data.json()["mirrors"]}
    assert sorted(shown) == ["mirror_north", "mirror_south"]
    for team, (dag_id, _, project) in MIRRORS.items():
        mirror, run = shown[dag_id], runs[team]
        assert (mirror["bucket"], mirror["prefix"], mirror["found_in"]) == (buckets[team], team, "asset event")
        assert mirror["latest_run"]["run_id"] == run["dag_run_id"] and mirror["latest_run"]["state"] == "success"
        assert mirror["latest_run"]["dag_id"] == dag_id
        assert mirror["error"] is None
        # Its own catalog: only the projects its DAG selected.
        assert [p["project_name"] for p in mirror["report"]["projects"]] == [project]
        assert mirror["report"]["totals"]["files"] > 0

    assert page.status_code == 200
    assert page.text.count("class='mirror-row'") == 2  # the overview: one line per mirror
    for kind in ("totals", "projects", "chart-changes-figures"):  # ids stay unique with two mirrors
        assert page.text.count(f"id='mirror-0-{kind}'") == page.text.count(f"id='mirror-1-{kind}'") == 1
    for team, (dag_id, _, _) in MIRRORS.items():
        assert f"data-dag-id='{dag_id}'" in page.text
        assert f"data-run-id='{runs[team]['dag_run_id']}'" in page.text


@needs_chromium
def test_admin_page_in_chromium_shows_both_mirrors(deployment: Deployment, runs: dict,
                                                    buckets: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By

    with signed_in_chromium(deployment, "--window-size=1366,768", page_load_timeout=120) as browser:
        browser.get(f"{deployment.base}/aps-mirror/dashboard")
        overview = {r.get_attribute("data-dag-id"): r.text
                    for r in browser.find_elements(By.CSS_SELECTOR, "#mirrors tr.mirror-row")}
        assert sorted(overview) == ["mirror_north", "mirror_south"]
        for team, (dag_id, _, project) in MIRRORS.items():
            assert buckets[team] in overview[dag_id] and "success" in overview[dag_id]
            section = browser.find_element(By.CSS_SELECTOR, f"section.mirror[data-dag-id='{dag_id}']")
            run = section.find_element(By.CSS_SELECTOR, ".run")
            assert run.get_attribute("data-run-id") == runs[team]["dag_run_id"]
            assert run.text.startswith(f"DAG {dag_id}, last run success")
            link = run.find_element(By.CSS_SELECTOR, "a.dag-id").get_attribute("href")
            assert link == f"{deployment.base}/dags/{dag_id}"
            assert [r.text for r in section.find_elements(By.CSS_SELECTOR, "table.projects tr.project td:nth-child(2)")] \
                == [project]
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 1366
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1366, height + 200)
        assert browser.save_screenshot(str(tmp_path / "dashboard-mirrors.png"))
    SCREENSHOT_COPY.parent.mkdir(exist_ok=True)
    shutil.copy(tmp_path / "dashboard-mirrors.png", SCREENSHOT_COPY)


def test_a_team_reader_sees_only_the_mirror_whose_dag_they_may_read(deployment: Deployment, runs: dict,
                                                                    buckets: dict[str, str]) -> None:
    for team, (dag_id, _, _) in MIRRORS.items():
        other = next(t for t in MIRRORS if t != team)
        data, page = dashboard(session_of(deployment, f"{team}_reader"), deployment.base)
        assert data.status_code == 200 and page.status_code == 200, data.text
        [mirror] = data.json()["mirrors"]
        assert (mirror["dag_id"], mirror["bucket"]) == (dag_id, buckets[team])
        assert mirror["latest_run"]["run_id"] == runs[team]["dag_run_id"]
        for hidden in (buckets[other], MIRRORS[other][0]):  # not a trace of the other mirror
            assert hidden not in data.text and hidden not in page.text


def test_users_who_may_read_no_mirror_dag_get_403(deployment: Deployment, runs: dict,
                                                  buckets: dict[str, str]) -> None:
    for user in ("viewer", "guest"):
        assert_refused(session_of(deployment, user), deployment.base, NO_MIRROR_VISIBLE)
    for bucket in buckets.values():
        assert bucket not in NO_MIRROR_VISIBLE


@contextmanager
def second_api_server(deployment: Deployment, mirrors: str) -> Iterator[str]:
    """Another api-server of the same deployment (database, JWT secret, users) with the explicit list."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**deployment.env, "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": base,
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/", "APS_MIRROR_DASHBOARD_MIRRORS": mirrors}
    with open(deployment.home / "component-api-server-listed.log", "w") as log:
        process = subprocess.Popen([AIRFLOW, "api-server"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_until(lambda: requests.get(f"{base}/api/v2/version", timeout=2).ok, 120, "the second api-server")
        yield base
    finally:
        stop_processes([process])


def test_listed_mirrors_follow_their_dag_id_or_the_general_dag_read_rule(deployment: Deployment, runs: dict,
                                                                         buckets: dict[str, str]) -> None:
    listed = f"s3://{buckets['north']}/north?dag_id=mirror_north, s3://{buckets['south']}/south"
    with second_api_server(deployment, listed) as base:
        seen: dict[str, list[tuple[str, str | None]]] = {}
        for user in (USER, *READERS[:3]):
            data, page = dashboard(session_of(deployment, user, base), base)
            assert data.status_code == 200 and page.status_code == 200, (user, data.text)
            seen[user] = [(m["bucket"], m["dag_id"]) for m in data.json()["mirrors"]]
            if user == USER:
                north, south = data.json()["mirrors"]
                assert north["latest_run"]["run_id"] == runs["north"]["dag_run_id"]
                assert north["found_in"] == "APS_MIRROR_DASHBOARD_MIRRORS"
                assert south["latest_run"] is None and "no DAG recorded for this mirror" in page.text
        unattributed = (buckets["south"], None)
        assert seen == {USER: [(buckets["north"], "mirror_north"), unattributed],
                        "north_reader": [(buckets["north"], "mirror_north"), unattributed],
                        "south_reader": [unattributed],  # mirror_south's run does not make a listed mirror its
                        "viewer": [unattributed]}
        assert_refused(session_of(deployment, "guest", base), base, NO_MIRROR_VISIBLE)
