"""moto's server as a process of its own (the tests' S3), and with IAM enforced: S3 requests must
be signed by a user (or role) it knows and be allowed by that user's policy, as on AWS (the
permission and credential tests)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import boto3
import requests

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(endpoint: str, process: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto's server exited with code {process.returncode}")
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"moto's server did not answer at {endpoint} within {seconds:.0f} s")


def create_user(iam: Any, name: str, statements: list[dict[str, Any]]) -> tuple[str, str]:
    """A user allowed `statements`; returns its access key id and secret."""
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-s3", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _die_with_parent() -> None:
    """In the child: a test run killed outright (a `timeout`, a cancelled CI job) takes its
    server with it instead of leaving it behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# moto.server's entry point, optionally with S3's minimum part size lowered first (its check
# reads the module global at call time).
_SERVE = """
import sys
import moto.s3.models
if sys.argv[1] != "-":
    moto.s3.models.S3_UPLOAD_PART_MIN_SIZE = int(sys.argv[1])
from moto.server import main
main(sys.argv[2:])
"""


@contextmanager
def moto_process(part_min_size: int | None = None) -> Iterator[str]:
    """moto's server in a process of its own, so that serving S3 never competes for the test
    process's interpreter (where the simulator answers too); yields its endpoint.
    `part_min_size` lowers S3's 5 MiB minimum multipart part size (small-part tests only)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    minimum = "-" if part_min_size is None else str(part_min_size)
    process = subprocess.Popen([sys.executable, "-c", _SERVE, minimum, "-H", "127.0.0.1", "-p", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=_die_with_parent)
    try:
        wait_until_up(endpoint, process)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def iam_moto_server(setup: Callable[[str, Any], Any]) -> Iterator[tuple[str, Any]]:
    """A moto server of its own; `setup(endpoint, iam_client)` makes users and roles while
    anything goes, then IAM is enforced. Yields (endpoint, what setup returned)."""
    with moto_process() as endpoint:
        iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION,
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        made = setup(endpoint, iam)
        # From here on every request must be signed by one of the users (or roles) and be allowed.
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
        yield endpoint, made
