"""The "Connect Autodesk account" page in headless Chromium, through a real `airflow api-server`.

Needs Debian's chromium + chromium-driver (include/setup/install_chromium.sh) and selenium.
"""

from __future__ import annotations

import json
import subprocess
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from aps_mirror.simulator import Simulator, SimulatorServer
from tests.airflow_deployment import AIRFLOW, USER, Deployment, airflow_deployment
from tests.e2e.browser import needs_chromium, signed_in_chromium

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

CONN_ID = "autodesk_ui"
pytestmark = needs_chromium


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(Simulator(seed="demo", rate_scale=0)) as server:
        yield server


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, simulator: SimulatorServer) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow-ui")
    (home / "dags").mkdir()

    def setup(env: dict[str, str]) -> None:
        subprocess.run([AIRFLOW, "connections", "add", CONN_ID, "--conn-json", json.dumps({
            "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
            "password": simulator.client_secret,
            "extra": {"auth_mode": "authorization_code", "scopes": "data:read user-profile:read"}})],
            env=env, check=True, capture_output=True)

    with airflow_deployment(home, home / "dags", setup=setup, components=("api-server",)) as dep:
        simulator.sim.add_redirect_uri(f"{dep.base}/aps-mirror/callback")
        yield dep


@pytest.fixture
def browser(deployment: Deployment) -> Iterator[object]:
    # implicit wait: a form post redirects through the callback, so wait for the page
    with signed_in_chromium(deployment, page_load_timeout=30, implicit_wait=10) as driver:
        yield driver


def test_connect_page_runs_the_consent_flow_and_refuses_forged_or_replayed_state(
        deployment: Deployment, simulator: SimulatorServer, browser) -> None:
    browser.get(f"{deployment.base}/aps-mirror/")
    assert f"{deployment.base}/aps-mirror/callback" in browser.page_source  # the URL to register
    browser.find_element(By.CSS_SELECTOR, "a.connect").click()
    browser.find_element(By.ID, "continue").click()
    allow = browser.find_element(By.ID, "allow")  # waits for the consent page
    assert "authorize" in browser.current_url  # Autodesk's (the simulator's) consent page
    allow.click()
    connected = browser.find_element(By.ID, "connected").text
    assert CONN_ID in connected and "sam.builder@example.com" in connected and "data:read" in connected
    callback = browser.current_url

    extra = deployment.connection_extra(CONN_ID)
    assert set(simulator.sim.oauth._refresh) >= {extra["refresh_token"]}
    assert extra["connected_account"]["email"] == "sam.builder@example.com"
    for secret in (extra["refresh_token"], simulator.client_secret):
        assert secret not in browser.page_source

    browser.get(callback)  # replayed: the state was single use
    assert "Refused" in browser.find_element(By.ID, "refused").text
    browser.get(f"{deployment.base}/aps-mirror/callback?code=forged&state=forged")
    assert "Refused" in browser.find_element(By.ID, "refused").text
    assert deployment.connection_extra(CONN_ID)["refresh_token"] == extra["refresh_token"]

    browser.get(f"{deployment.base}/aps-mirror/")
    assert "Connected; refresh token last rotated 0 day(s) ago." in browser.page_source


def test_state_from_another_browser_session_is_refused(deployment: Deployment, browser) -> None:
    browser.get(f"{deployment.base}/aps-mirror/connect/{CONN_ID}")
    consent = browser.find_element(By.ID, "continue").get_attribute("href")
    allow = requests.post(consent.split("?")[0], allow_redirects=False, timeout=10,
                          data={**{k: v[0] for k, v in parse_qs(urlsplit(consent).query).items()},
                                "action": "allow"})
    callback = allow.headers["location"]
    # The same Airflow user, but without this browser's nonce cookie: refused.
    token = requests.post(f"{deployment.base}/auth/token", timeout=10,
                          json={"username": USER, "password": deployment.password}).json()["access_token"]
    other = requests.get(callback, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert other.status_code == 400 and "Refused" in other.text
