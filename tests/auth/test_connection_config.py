"""A malformed `autodesk` connection is one ConfigError line, at once, whatever its source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from aps_mirror.connection import ApsConnection, AuthMode, SsaConnection, parse_connection_value
from aps_mirror.errors import ConfigError
from aps_mirror.simulator import SimulatorServer


def cli(*args: str, connection: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "AIRFLOW_CONN_AUTODESK_DEFAULT": connection}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "aps_mirror.cli.main", *args], env=env,
                            capture_output=True, text=True, timeout=120)
    return result, time.monotonic() - started


def one_line_usage_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aps-mirror: error: "), result.stderr
    return lines[0]


def autodesk(simulator: SimulatorServer | None = None, **changes) -> dict:
    conn = {"conn_type": "autodesk", "host": simulator.base_url if simulator else None,
            "login": "cid", "password": "csecret", "extra": {"auth_mode": "client_credentials"}}
    return {**conn, **changes}


@pytest.mark.parametrize("extra, says", [
    ("{'auth_mode': 'ssa'", "extra that is not valid JSON"),
    (["client_credentials"], "extra of type list"),
    ({"auth_mode": "client_credentials", "scopes": 42}, "extra.scopes=42"),
    ({"auth_mode": ["ssa"]}, "extra.auth_mode of type list"),
    ({"auth_mode": "client_credentials", "rate_scale": "fast"}, "extra.rate_scale='fast'"),
    ({"auth_mode": "client_credentials", "rate_scale": "nan"}, "extra.rate_scale='nan'"),
    ({"auth_mode": "client_credentials", "user_id": 7}, "extra.user_id of type int"),
])
def test_a_malformed_extra_is_one_line_through_the_cli(simulator: SimulatorServer, extra, says: str) -> None:
    result, _ = cli("validate", connection=json.dumps(autodesk(simulator, extra=extra)))
    line = one_line_usage_error(result)
    assert "'autodesk_default'" in line and says in line
    assert simulator.sim.stats()["requests"].get("token", 0) == 0  # refused before any call


def test_a_host_without_a_scheme_is_refused_at_once() -> None:
    result, seconds = cli("validate", connection=json.dumps(autodesk(host="developer.api.autodesk.com")))
    line = one_line_usage_error(result)
    assert "without a scheme" in line and "https://developer.api.autodesk.com" in line
    assert seconds < 20  # not 100 s of retries against a guessed URL


def test_a_bad_port_and_a_non_object_env_var_are_one_line() -> None:
    line = one_line_usage_error(cli("validate", connection=json.dumps(autodesk(port="eighty")))[0])
    assert "port 'eighty'" in line
    line = one_line_usage_error(cli("validate", connection="[1, 2]")[0])
    assert "AIRFLOW_CONN_AUTODESK_DEFAULT" in line


def test_the_uri_form_carries_the_hosts_scheme_as_airflow_does() -> None:
    fields = parse_connection_value(
        "autodesk_uri", "autodesk://https://cid:c%2Fsecret@developer.api.autodesk.com?auth_mode=ssa&scopes=data%3Aread")
    assert (fields.host, fields.login, fields.password) == ("https://developer.api.autodesk.com", "cid", "c/secret")
    assert fields.extra == {"auth_mode": "ssa", "scopes": "data:read"}
    plain = parse_connection_value("autodesk_uri", "autodesk://cid:s@localhost:8080/http")
    assert ApsConnection.from_fields(plain).base_url == "http://localhost:8080"
    with pytest.raises(ConfigError, match="without a scheme"):
        ApsConnection.from_fields(parse_connection_value("autodesk_uri", "autodesk://cid:s@developer.api.autodesk.com"))


def test_one_parse_gives_an_ssa_connection_with_its_key_fields() -> None:
    fields = parse_connection_value("autodesk_ssa", json.dumps(autodesk(extra={
        "auth_mode": "ssa", "service_account_id": "sa1",
        "private_key": "-----BEGIN PRIVATE KEY-----\\nMII\\n-----END PRIVATE KEY-----"})))
    conn = ApsConnection.from_fields(fields)
    assert isinstance(conn, SsaConnection) and conn.auth_mode is AuthMode.SSA
    assert conn.service_account_id == "sa1" and conn.private_key.splitlines()[1] == "MII"
    assert conn.base_url == "https://developer.api.autodesk.com" and "BEGIN" not in repr(conn)
