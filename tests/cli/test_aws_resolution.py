"""How the CLI reaches S3 through an `aws` connection.

With Airflow installed, the Amazon provider resolves the connection (role_arn, profile_name,
endpoint_url, config_kwargs), exactly as in the DAG; without Airflow, the core reads it and
refuses what it cannot honour. Either way the client's pool is sized for the run's transfers.

Credentials are proved, not assumed: moto's server runs in its own process enforcing IAM (as
in tests/mirror/test_s3_permissions.py), so a write succeeds only with the credentials the
connection should give, and its STS backend records every role it handed out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
import requests

from aps_mirror.mirror.config import MirrorConfig
from aps_mirror.s3_client import pool_size

from tests.iam_moto import create_user, iam_moto_server
from tests.mirror.test_selection import selected_by_default

REGION = "us-east-1"
APS_MIRROR = str(Path(sys.executable).with_name("aps-mirror"))
# The CLI where Airflow cannot be imported (what a virtualenv without it gives; see
# tests/test_layering.py for the real one): `import airflow` fails, so no backend loads.
WITHOUT_AIRFLOW = ("import sys; sys.modules['airflow'] = None; "
                   "from aps_mirror.cli.main import main; sys.exit(main(sys.argv[1:]))")
PROJECT = "Drone*"  # one small project keeps each run short
WRITE_S3 = [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]


@dataclass(frozen=True)
class IamS3:
    """An S3 + STS endpoint enforcing IAM: `assumer` may only assume `role_arn` (which may
    write S3), `writer` may write S3 but assume no role."""

    endpoint: str
    keys: dict[str, tuple[str, str]]
    role_arn: str

    def client(self, user: str = "writer") -> Any:
        key_id, secret = self.keys[user]
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=key_id, aws_secret_access_key=secret)

    def assumed_roles(self) -> list[dict[str, Any]]:
        """Every role STS handed credentials for, from moto's own record of its state."""
        state = requests.get(f"{self.endpoint}/moto-api/data.json", timeout=10).json()
        return state.get("sts", {}).get("AssumedRole", [])


@pytest.fixture(scope="module")
def iam_s3() -> Iterator[IamS3]:
    def setup(_endpoint: str, iam: Any) -> tuple[dict[str, tuple[str, str]], str]:
        keys = {"assumer": create_user(iam, "assumer", [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Resource": "*"}]),
                "writer": create_user(iam, "writer", WRITE_S3)}
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
        role_arn = iam.create_role(RoleName="mirror-writer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName="mirror-writer", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": WRITE_S3}))
        return keys, role_arn

    with iam_moto_server(setup) as (endpoint, (keys, role_arn)):
        yield IamS3(endpoint, keys, role_arn)


@pytest.fixture
def iam_bucket(iam_s3: IamS3) -> str:
    name = f"mirror-{uuid.uuid4().hex[:12]}"
    iam_s3.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def base_env(simulator, tmp_path: Path) -> dict[str, str]:
    """The user's shell: the simulator's autodesk connection, no AWS credentials anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW_CONN_"))}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "no-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"), AWS_EC2_METADATA_DISABLED="true")
    env["AIRFLOW_CONN_AUTODESK_DEFAULT"] = json.dumps({
        "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
        "password": simulator.client_secret, "extra": {"auth_mode": "client_credentials"}})
    return env


def aws_connection(*, login: str | None = None, password: str | None = None, **extra: Any) -> str:
    return json.dumps({"conn_type": "aws", "login": login, "password": password, "extra": extra})


def run(*args: str, env: dict[str, str], airflow: bool = True) -> subprocess.CompletedProcess:
    command = [APS_MIRROR, *args] if airflow else [sys.executable, "-c", WITHOUT_AIRFLOW, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def drone_files(simulator) -> list:
    return [f for f in selected_by_default(simulator.sim) if f.project == "Drone Gimbal"]


def mirrored_keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", []) if "/_aps_mirror/" not in o["Key"]]


def error_line(result: subprocess.CompletedProcess) -> str:
    """The command's one error line (Airflow may log before it); never a traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("aps-mirror: error: ")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.stderr
    return errors[0]


# -- with Airflow: the Amazon provider resolves the connection ------------------------------------

def test_a_role_arn_connection_assumes_the_role_and_writes_with_its_credentials(
        iam_s3: IamS3, iam_bucket: str, base_env: dict[str, str], simulator) -> None:
    key_id, secret = iam_s3.keys["assumer"]
    extra = {"endpoint_url": iam_s3.endpoint, "region_name": REGION,
             "config_kwargs": {"retries": {"max_attempts": 2, "mode": "standard"}},
             # The Amazon provider asks STS here, never at endpoint_url.
             "service_config": {"sts": {"endpoint_url": iam_s3.endpoint}}}

    # The connection's own key may not touch S3: whatever writes below is the role.
    env = {**base_env, "AIRFLOW_CONN_AWS_ASSUMER": aws_connection(login=key_id, password=secret, **extra)}
    refused = run("tree", "--bucket", iam_bucket, "--aws-conn-id", "aws_assumer", env=env)
    assert f"Cannot use bucket {iam_bucket!r} (403)" in error_line(refused)
    before = [r for r in iam_s3.assumed_roles() if r["session_name"].lower() == "airflow_aws_role"]

    env["AIRFLOW_CONN_AWS_ROLE"] = aws_connection(login=key_id, password=secret, role_arn=iam_s3.role_arn, **extra)
    result = run("sync", "--bucket", iam_bucket, "--aws-conn-id", "aws_role", "--project", PROJECT, "--json",
                 env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    files = drone_files(simulator)
    assert summary["files_copied"] == len(files) > 0 and summary["files_failed"] == 0
    assert len(mirrored_keys(iam_s3.client(), iam_bucket)) == len(files)
    # The Amazon provider names the session Airflow_<conn id>; moto records it lowercased.
    sessions = [r for r in iam_s3.assumed_roles() if r["session_name"].lower() == "airflow_aws_role"]
    assert len(sessions) > len(before) and {r["role_arn"] for r in sessions} == {iam_s3.role_arn}, \
        "STS handed out the role's credentials to this run"
    assert secret not in result.stderr + result.stdout


def test_the_dag_reaches_s3_the_same_way(iam_s3: IamS3, iam_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from aps_mirror.airflow_provider.mirror import mirror_s3

    key_id, secret = iam_s3.keys["assumer"]
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DAG_ROLE", aws_connection(
        login=key_id, password=secret, endpoint_url=iam_s3.endpoint, region_name=REGION, role_arn=iam_s3.role_arn,
        service_config={"sts": {"endpoint_url": iam_s3.endpoint}}))
    s3 = mirror_s3({"aws_conn_id": "aws_dag_role"}, workers=12)
    assert s3.meta.config.max_pool_connections == pool_size(12)
    s3.put_object(Bucket=iam_bucket, Key="k", Body=b"as the role")  # the assumer's own key may not
    assert iam_s3.client().get_object(Bucket=iam_bucket, Key="k")["Body"].read() == b"as the role"


def test_a_role_that_cannot_be_assumed_is_one_line(iam_s3: IamS3, iam_bucket: str, base_env: dict[str, str]) -> None:
    key_id, secret = iam_s3.keys["writer"]  # may write S3, may not call sts:AssumeRole
    env = {**base_env, "AIRFLOW_CONN_AWS_NO_ROLE": aws_connection(
        login=key_id, password=secret, endpoint_url=iam_s3.endpoint, region_name=REGION,
        role_arn=iam_s3.role_arn, service_config={"sts": {"endpoint_url": iam_s3.endpoint}})}
    result = run("sync", "--bucket", iam_bucket, "--aws-conn-id", "aws_no_role", env=env)
    line = error_line(result)
    assert f"AWS connection 'aws_no_role' could not assume role {iam_s3.role_arn} (AccessDenied" in line
    assert secret not in result.stderr
    assert mirrored_keys(iam_s3.client(), iam_bucket) == [], "nothing was written with the connection's own key"


@pytest.mark.parametrize("airflow", [True, False], ids=["airflow", "no-airflow"])
def test_a_profile_connection_writes_with_the_profiles_key(iam_s3: IamS3, iam_bucket: str,
                                                           base_env: dict[str, str], simulator, tmp_path: Path,
                                                           airflow: bool) -> None:
    key_id, secret = iam_s3.keys["writer"]
    (tmp_path / "config").write_text(f"[profile mirror]\nregion = {REGION}\n")
    (tmp_path / "credentials").write_text(f"[mirror]\naws_access_key_id = {key_id}\n"
                                          f"aws_secret_access_key = {secret}\n")
    env = {**base_env, "AWS_CONFIG_FILE": str(tmp_path / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
           "AIRFLOW_CONN_AWS_PROFILE": aws_connection(profile_name="mirror", endpoint_url=iam_s3.endpoint)}
    result = run("sync", "--bucket", iam_bucket, "--aws-conn-id", "aws_profile", "--project", PROJECT, "--json",
                 env=env, airflow=airflow)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files_copied"] == len(drone_files(simulator)) > 0
    assert len(mirrored_keys(iam_s3.client(), iam_bucket)) == len(drone_files(simulator))

    env["AIRFLOW_CONN_AWS_PROFILE"] = aws_connection(profile_name="nowhere", endpoint_url=iam_s3.endpoint)
    missing = run("tree", "--bucket", iam_bucket, "--aws-conn-id", "aws_profile", env=env, airflow=airflow)
    assert "AWS connection 'aws_profile': The config profile (nowhere) could not be found" in error_line(missing)


def test_a_run_with_n_workers_gets_a_pool_for_its_parallel_parts(s3_endpoint: str, bucket: str,
                                                                  base_env: dict[str, str], simulator, s3) -> None:
    transfers = MirrorConfig(bucket=bucket, workers=8, project_workers=2).transfers
    # service_config.s3.endpoint_url: only the Amazon provider reads it (the core refuses it),
    # so a run that reaches moto went through the provider.
    env = {**base_env, "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(
        login="test", password="test", region_name=REGION, service_config={"s3": {"endpoint_url": s3_endpoint}},
        config_kwargs={"max_pool_connections": 5, "connect_timeout": 7})}
    result = run("-v", "sync", "--bucket", bucket, "--workers", "8", "--project-workers", "2", "--project", PROJECT,
                 "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files_copied"] == len(drone_files(simulator)) > 0
    assert len(mirrored_keys(s3, bucket)) == len(drone_files(simulator))
    assert f"S3 client: a pool of {pool_size(transfers)} connections for {transfers} parallel transfer(s)" \
        in result.stderr, "the connection's smaller max_pool_connections was raised"
    assert pool_size(transfers) == transfers * 4 + 8 > 5
    assert "Airflow is not installed" not in result.stderr


def test_the_clis_client_keeps_the_connections_botocore_config(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str,
                                                               bucket: str) -> None:
    from aps_mirror.backends import installed_backend
    from aps_mirror.cli.common import s3_client

    assert installed_backend().name == "airflow"
    config_kwargs = {"max_pool_connections": 5, "connect_timeout": 7,
                     "retries": {"max_attempts": 2, "mode": "standard"}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_CONFIGURED", aws_connection(
        login="test", password="test", endpoint_url=s3_endpoint, region_name="eu-west-3", config_kwargs=config_kwargs))
    client = s3_client("aws_configured", workers=24)
    assert client.meta.config.max_pool_connections == pool_size(24)
    assert client.meta.config.connect_timeout == 7
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}  # botocore counts the first
    assert client.meta.region_name == "eu-west-3" and client.meta.endpoint_url == s3_endpoint
    client.put_object(Bucket=bucket, Key="k", Body=b"through the Amazon provider")
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"through the Amazon provider"

    # A pool larger than the run needs is the user's to keep.
    monkeypatch.setenv("AIRFLOW_CONN_AWS_CONFIGURED", aws_connection(
        login="test", password="test", endpoint_url=s3_endpoint, config_kwargs={"max_pool_connections": 500}))
    assert s3_client("aws_configured", workers=24).meta.config.max_pool_connections == 500


def test_botocore_refusing_the_config_kwargs_is_one_line(base_env: dict[str, str], s3_endpoint: str) -> None:
    env = {**base_env, "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(
        login="test", password="s3cr3t-value", endpoint_url=s3_endpoint, config_kwargs={"no_such_option": 1})}
    for airflow in (True, False):
        line = error_line(run("tree", "--bucket", "acme-docs", env=env, airflow=airflow))
        assert line.startswith("aps-mirror: error: AWS connection 'aws_default'") and "no_such_option" in line


# -- without Airflow: the core reads the connection -----------------------------------------------

def test_without_airflow_the_cli_reads_the_connection_itself(s3_endpoint: str, bucket: str,
                                                             base_env: dict[str, str], simulator, s3) -> None:
    transfers = MirrorConfig(bucket=bucket, workers=8, project_workers=2).transfers
    env = {**base_env, "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(
        login="test", password="test", endpoint_url=s3_endpoint, region_name=REGION,
        config_kwargs={"max_pool_connections": 5, "retries": {"max_attempts": 2}})}
    result = run("-v", "sync", "--bucket", bucket, "--workers", "8", "--project-workers", "2", "--project", PROJECT,
                 "--json", env=env, airflow=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files_copied"] == len(drone_files(simulator)) > 0
    assert len(mirrored_keys(s3, bucket)) == len(drone_files(simulator))
    assert "Airflow is not installed: aps-mirror reads AWS connection 'aws_default' itself" in result.stderr
    assert f"S3 client: a pool of {pool_size(transfers)} connections for {transfers} parallel transfer(s)" \
        in result.stderr


def test_without_airflow_a_role_arn_is_refused_not_ignored(base_env: dict[str, str], s3_endpoint: str,
                                                           bucket: str) -> None:
    env = {**base_env, "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(
        login="test", password="test", endpoint_url=s3_endpoint,
        role_arn="arn:aws:iam::123456789012:role/mirror-writer")}
    line = error_line(run("sync", "--bucket", bucket, env=env, airflow=False))
    assert "AWS connection 'aws_default' sets role_arn, which aps-mirror resolves only through Airflow's " \
           "Amazon provider" in line
