"""Signed-URL signatures stay out of the client's errors and log lines, on every path (CLI too)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from aps_mirror.aps import redact
from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.retry import RetryPolicy
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.errors import ApiError
from aps_mirror.simulator import Simulator, SimulatorServer
from tests.airflow_deployment import free_port
from tests.conftest import connection_for
from tests.signing_simulator import SigningSimulator

QUICK = RetryPolicy(attempts=2, backoff_initial=0.01, backoff_max=0.01)


@pytest.fixture
def signing() -> Iterator[SimulatorServer]:
    with SimulatorServer(SigningSimulator(seed="demo", rate_scale=0)) as server:
        yield server


def signed_url(client: ApsClient, sim: Simulator) -> str:
    entry = next(f for f in sim.iter_files() if f.tip.size)
    return client.signed_download(client.tip_version(sim.project_id(entry.project), entry.item_id)).url


def signature_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["Signature"][0]


def full_text(exc: BaseException) -> str:
    return str(exc) + "".join(traceback.format_exception(exc))


def test_scrub_hides_the_values_of_secret_parameters_only() -> None:
    text = ("GET /o?Expires=99&Signature=abc&X-Amz-Signature=def&X-Amz-Credential=AKIA%2F1&"
            "Key-Pair-Id=K1&Policy=p0&page=2 and /cb?code=c0de&state=s (access_token=t0k)")
    assert redact.scrub(text) == (
        "GET /o?Expires=99&Signature=***&X-Amz-Signature=***&X-Amz-Credential=***&"
        "Key-Pair-Id=***&Policy=***&page=2 and /cb?code=***&state=s (access_token=***)")


def test_an_unreachable_signed_url_raises_without_its_signature(signing: SimulatorServer) -> None:
    # requests quotes the whole URL in "Max retries exceeded with url: ..." (and so does the
    # urllib3 error chained to it): the client re-raises it scrubbed, on every path.
    client = ApsClient(ApsTransport(connection_for(signing), retry_policy=QUICK))
    url = signed_url(client, signing.sim)
    signature = signature_of(url)
    assert signature in signing.sim.signatures
    unreachable = url.replace(urlsplit(url).netloc, f"127.0.0.1:{free_port()}")
    with pytest.raises(requests.ConnectionError) as caught:
        client.open_signed_url(unreachable)
    text = full_text(caught.value)
    assert "Max retries exceeded" in text and "Signature=***" in text
    assert signature not in text


@pytest.mark.parametrize("fault, tries", [({"kind": "reset"}, QUICK.attempts),
                                          ({"kind": "status", "status": 403}, 1),  # final at once
                                          ({"kind": "status", "status": 503}, QUICK.attempts)])
def test_a_failing_signed_url_gives_an_error_without_its_signature(signing: SimulatorServer, fault,
                                                                   tries: int) -> None:
    client = ApsClient(ApsTransport(connection_for(signing), retry_policy=QUICK))
    url = signed_url(client, signing.sim)
    signing.sim.inject_fault("download", count=QUICK.attempts, **fault)
    with pytest.raises((requests.RequestException, ApiError)) as caught:
        client.open_signed_url(url)
    assert signature_of(url) not in full_text(caught.value)
    # It was really tried: each attempt took one fault (the request log of a reset lags).
    assert signing.sim.faults.pending().get("download", [{}])[0].get("remaining", 0) == QUICK.attempts - tries


def test_http_debug_lines_name_signed_urls_without_their_signature(
        signing: SimulatorServer, caplog: pytest.LogCaptureFixture) -> None:
    client = ApsClient(ApsTransport(connection_for(signing), retry_policy=QUICK))
    url = signed_url(client, signing.sim)
    with caplog.at_level(logging.DEBUG):
        with client.open_signed_url(url) as response:
            assert response.status_code == 200 and response.content
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("/_sim/s3/" in line and "Signature=***" in line for line in lines), lines
    assert signature_of(url) not in caplog.text


@pytest.mark.parametrize("verbosity", ["-v", "-vv"])  # -vv adds the HTTP and AWS libraries' lines
def test_cli_verbose_sync_prints_no_signature(signing: SimulatorServer, s3_endpoint: str, bucket: str,
                                              verbosity: str) -> None:
    env = dict(os.environ)
    env["AIRFLOW_CONN_AUTODESK_DEFAULT"] = json.dumps({
        "conn_type": "autodesk", "host": signing.base_url, "login": signing.client_id,
        "password": signing.client_secret, "extra": {"auth_mode": "client_credentials"}})
    env["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({
        "conn_type": "aws", "login": "test", "password": "test",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}})
    signing.sim.inject_fault("download", kind="reset", count=2)  # retried downloads log too
    result = subprocess.run([sys.executable, "-m", "aps_mirror.cli.main", verbosity, "sync", "--bucket", bucket,
                             "--project", "Drone*", "--json"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["files_copied"] > 0
    signatures = signing.sim.signatures
    assert signatures, "no download was signed"
    if verbosity == "-vv":
        assert "/_sim/s3/" in result.stderr and "Signature=***" in result.stderr  # the lines are there
    leaked = [s for s in signatures if s in result.stderr or s in result.stdout]
    assert leaked == []
