"""Debian's headless Chromium, driven by Selenium, signed in to a test deployment's Airflow."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from tests.airflow_deployment import USER, Deployment

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
needs_chromium = pytest.mark.skipif(not Path(CHROMEDRIVER).exists(),
                                    reason="run include/setup/install_chromium.sh first")
# Nothing outside the machine: no updates, sync or QUIC probes from the browser itself.
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync")


def airflow_token(deployment: Deployment) -> str:
    """The operator's Airflow JWT, as the UI's login would get it."""
    return requests.post(f"{deployment.base}/auth/token", timeout=10,
                         json={"username": USER, "password": deployment.password}).json()["access_token"]


@contextmanager
def signed_in_chromium(deployment: Deployment, *extra_flags: str, page_load_timeout: float = 30,
                       implicit_wait: float = 10) -> Iterator[Any]:
    """A Chromium with its own profile and the `_token` cookie the UI's login would set."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="aps-mirror-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*_FLAGS, *extra_flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    driver.implicitly_wait(implicit_wait)
    try:
        driver.get(f"{deployment.base}/api/v2/version")
        driver.add_cookie({"name": "_token", "value": airflow_token(deployment), "path": "/"})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
