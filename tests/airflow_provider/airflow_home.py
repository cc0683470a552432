"""A throwaway AIRFLOW_HOME for the Airflow-layer tests; must run before Airflow is imported."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
_MARK = "_APS_MIRROR_TEST_AIRFLOW_HOME"


def ensure_airflow_home() -> Path:
    """Point AIRFLOW_HOME at a temporary directory (once per session), never at ~/airflow."""
    if os.environ.get(_MARK):
        return Path(os.environ[_MARK])
    if "airflow" in sys.modules:
        raise RuntimeError("Airflow was imported before the test AIRFLOW_HOME was set up")
    home = Path(tempfile.mkdtemp(prefix="aps-mirror-airflow-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ.update({
        _MARK: str(home),
        "AIRFLOW_HOME": str(home),
        # One key for this process and every `airflow` it starts: without it, the CLI writes an
        # airflow.cfg with a key of its own that a process whose configuration loaded earlier
        # lacks, and encrypted connection extras written by one cannot be read by the other.
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    })
    return home


def migrate_db() -> Path:
    """`airflow db migrate` the test home's SQLite database, once per session."""
    home = ensure_airflow_home()
    done = home / ".migrated"
    if not done.exists():
        subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
        done.touch()
    return home


def run_airflow(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the venv's `airflow` CLI against the test home."""
    ensure_airflow_home()
    return subprocess.run([AIRFLOW, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
