"""No AWS credentials anywhere: one line and exit 2 from every command, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", [["sync"], ["tree"], ["report"], ["catalog", "publish"]])
def test_no_aws_credentials_is_one_line(tmp_path, command):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW_CONN_"))}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true",
               AIRFLOW_CONN_AUTODESK_DEFAULT='{"conn_type": "autodesk", "login": "id", "password": "secret", '
                                            '"host": "http://127.0.0.1:9", "extra": {"auth_mode": "client_credentials"}}')
    result = subprocess.run([sys.executable, "-m", "aps_mirror.cli.main", *command, "--bucket", "acme-docs"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].endswith("create the connection or pass --aws-conn-id."), result.stderr
    assert "Traceback" not in result.stderr
