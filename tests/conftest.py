"""Shared fixtures: a live APS simulator over HTTP (in-process) and moto's S3 server (a process)."""

from __future__ import annotations

from tests.airflow_provider.airflow_home import ensure_airflow_home

ensure_airflow_home()  # before anything imports Airflow: tests never touch ~/airflow

import uuid  # noqa: E402
from typing import Iterator

import boto3  # noqa: E402
import pytest  # noqa: E402

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.retry import RetryPolicy
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.connection import ApsConnection, AuthMode
from aps_mirror.simulator import Simulator, SimulatorServer
from tests.iam_moto import moto_process

# moto's and SeaweedFS's S3 as `s3_server` (parametrized), `moto_s3`, `seaweedfs_s3`.
pytest_plugins = ["tests.s3_servers"]


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """A fresh demo account per test, rate limits off (tests that need them turn them on)."""
    with SimulatorServer(Simulator(seed="demo", rate_scale=0)) as server:
        yield server


def connection_for(server: SimulatorServer, **overrides) -> ApsConnection:
    fields = dict(conn_id="autodesk_test", client_id=server.client_id,
                  client_secret=server.client_secret, base_url=server.base_url,
                  auth_mode=AuthMode.CLIENT_CREDENTIALS)
    fields.update(overrides)
    return ApsConnection(**fields)


# Short waits keep retry tests fast while still exercising the backoff path.
FAST_RETRY = RetryPolicy(attempts=5, backoff_initial=0.05, backoff_max=0.2, max_wait=5)


@pytest.fixture
def aps(simulator: SimulatorServer) -> ApsClient:
    return ApsClient(ApsTransport(connection_for(simulator), retry_policy=FAST_RETRY))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_process() as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint: str):
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture
def bucket(s3) -> str:
    name = f"mirror-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name
