"""A real Airflow deployment run as processes, for tests that must not cheat with `dags test`.

api-server, scheduler and dag-processor (plus a triggerer and Celery worker when asked) on a
fresh database of the local PostgreSQL (127.0.0.1:5432, trust auth), SimpleAuthManager, driven
through the REST API. Tasks run in executor-spawned processes through the Task SDK, where the
ORM is blocked: the path production takes.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg2
from cryptography.fernet import Fernet
import requests

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PG = dict(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
USER = "admin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_admin(sql: str) -> None:
    conn = psycopg2.connect(**PG)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


_template: str | None = None


def migrated_database() -> str:
    """A new database holding Airflow's migrated schema, cloned from a template migrated once per
    test process: `db migrate` takes ~10 s, a clone a tenth of a second, and what it creates
    (tables, the default pool) depends on no deployment setting."""
    global _template
    if _template is None:
        template = f"aps_mirror_it_template_{uuid.uuid4().hex[:8]}"
        pg_admin(f"CREATE DATABASE {template}")
        atexit.register(pg_admin, f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")
        with tempfile.TemporaryDirectory(prefix="airflow-template-") as home:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
            env.update({"AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                            f"postgresql+psycopg2://postgres@127.0.0.1:5432/{template}"})
            run_airflow(env, "db", "migrate")
        _template = template
    database = f"aps_mirror_it_{uuid.uuid4().hex[:8]}"
    pg_admin(f"CREATE DATABASE {database} TEMPLATE {_template}")
    return database


def run_airflow(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def wait_until(ready: Callable[[], Any], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} was not ready within {seconds:.0f}s")


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Ask each component to stop, then kill what is still running after 30 s."""
    for proc in processes:
        proc.terminate()
    for proc in processes:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def api_session(base: str, user: str, password: str) -> requests.Session:
    token = requests.post(f"{base}/auth/token", json={"username": user, "password": password},
                          timeout=10).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


@dataclass
class Deployment:
    home: Path
    base: str
    env: dict[str, str]
    password: str = field(repr=False)
    api: requests.Session = field(default_factory=requests.Session)

    def connection_extra(self, conn_id: str) -> dict[str, Any]:
        """A connection's extra straight from the database (decrypted): what readers will get."""
        dsn = self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", "")
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT extra, is_extra_encrypted FROM connection WHERE conn_id = %s", (conn_id,))
            extra, encrypted = cur.fetchone()
        if encrypted:
            extra = Fernet(self.env["AIRFLOW__CORE__FERNET_KEY"].encode()).decrypt(extra.encode()).decode()
        return json.loads(extra)

    def airflow(self, *args: str) -> subprocess.CompletedProcess:
        return run_airflow(self.env, *args)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, wait: float = 240) -> dict:
        """Unpause, trigger a run and wait for it to finish; returns the run."""
        wait_until(lambda: self.api.get(f"{self.base}/api/v2/dags/{dag_id}", timeout=5).ok, 120,
                   f"the parsed {dag_id} DAG")
        self.api.patch(f"{self.base}/api/v2/dags/{dag_id}", json={"is_paused": False}, timeout=10)
        created = self.api.post(f"{self.base}/api/v2/dags/{dag_id}/dagRuns", timeout=10,
                                json={"logical_date": None, "conf": conf or {}})
        assert created.status_code in (200, 201), created.text
        url = f"{self.base}/api/v2/dags/{dag_id}/dagRuns/{created.json()['dag_run_id']}"
        try:
            wait_until(lambda: self.api.get(url, timeout=5).json()["state"] in ("success", "failed"),
                       wait, f"the {dag_id} run")
        except AssertionError:
            raise AssertionError(f"{dag_id} did not finish\n{self.component_logs()}") from None
        return self.api.get(url, timeout=5).json()

    def task_instances(self, run: dict) -> list[dict]:
        """Every task instance of the run (mapped ones one by one), page after page."""
        url = f"{self.base}/api/v2/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances"
        found: list[dict] = []
        while True:
            page = self.api.get(url, params={"limit": 100, "offset": len(found)}, timeout=30).json()
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def tasks(self, dag_id: str) -> list[dict]:
        """The DAG's tasks as parsed (task_id, downstream_task_ids, is_mapped, pool, ...)."""
        return self.api.get(f"{self.base}/api/v2/dags/{dag_id}/tasks", timeout=30).json()["tasks"]

    @staticmethod
    def run_seconds(run: dict) -> float:
        """A finished run's wall time as Airflow recorded it (start_date to end_date)."""
        return (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])).total_seconds()

    def task_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted((self.home / "logs").rglob("*.log")))

    def component_logs(self, tail: int = 4000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}"
                         for p in sorted(self.home.glob("component-*.log")))


@contextmanager
def airflow_deployment(home: Path, dags_folder: Path, *, executor: str = "LocalExecutor",
                       extra_env: dict[str, str] | None = None,
                       setup: Callable[[dict[str, str]], None] | None = None,
                       components: tuple[str, ...] = ("api-server", "scheduler", "dag-processor"),
                       redis_db: int = 12, password: str | None = None) -> Iterator[Deployment]:
    """Start the components on a migrated database of their own; `setup(env)` runs before them."""
    database = migrated_database()
    port = free_port()
    password = password or secrets.token_urlsafe(12)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USER: password}))
    base = f"http://127.0.0.1:{port}"
    db_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__PARALLELISM": "32",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{db_url}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__TRIGGERER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        # "{db_url}" in a value stands for this deployment's database (e.g. APS_MIRROR_LOCK_URL).
        **{k: v.replace("{db_url}", db_url) for k, v in (extra_env or {}).items()},
    })
    processes: list[subprocess.Popen] = []
    try:
        if setup:
            setup(env)
        for name in components:
            log = open(home / f"component-{name.replace(' ', '-')}.log", "w")
            processes.append(subprocess.Popen([AIRFLOW, *name.split()], env=env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        wait_until(lambda: requests.get(f"{base}/api/v2/version", timeout=2).ok, 120, "api-server")
        yield Deployment(home=home, base=base, env=env, password=password,
                         api=api_session(base, USER, password))
    finally:
        stop_processes(processes)
        pg_admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def unscheduled_dag(source: Path, folder: Path) -> Path:
    """`source` copied into `folder` with `schedule=None`: unpausing the DAG to trigger it must
    not also start the run of its latest schedule interval."""
    text, found = re.subn(r'schedule=("[^"]*"|timedelta\([^)]*\))', "schedule=None", source.read_text())
    assert found == 1, f"{source.name}: expected one schedule= to replace, found {found}"
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / source.name
    copy.write_text(text)
    return copy


def mirror_connections(*, aps_url: str, client_id: str, client_secret: str, s3_endpoint: str,
                       autodesk_extra: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The `autodesk_default` and `aws_default` connections of a mirror, as conn JSON (the
    form of `airflow connections add --conn-json` and of `AIRFLOW_CONN_*` variables)."""
    return {
        "autodesk_default": {"conn_type": "autodesk", "host": aps_url, "login": client_id,
                             "password": client_secret,
                             "extra": {"auth_mode": "client_credentials", **(autodesk_extra or {})}},
        "aws_default": {"conn_type": "aws", "login": "mirror-key", "password": "mirror-secret",
                        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}},
    }


@contextmanager
def mirror_deployment(home: Path, connections: dict[str, dict[str, Any]], *, bucket: str,
                      pool_slots: int = 4) -> Iterator[Deployment]:
    """A deployment running the real `aps_mirror` DAG (unscheduled: runs start when triggered),
    set up as the DAG's doc says: the `autodesk_api` pool and the `connections`
    (`mirror_connections`), with `bucket` as the DAG's default. Airflow's configuration stays
    at its defaults otherwise (max_map_length included)."""
    dags = home / "dags"
    unscheduled_dag(REPO / "dags" / "aps_mirror.py", dags)

    def setup(env: dict[str, str]) -> None:
        run_airflow(env, "pools", "set", "autodesk_api", str(pool_slots), "APS API concurrency")
        for conn_id, conn in connections.items():
            run_airflow(env, "connections", "add", conn_id, "--conn-json", json.dumps(conn))

    with airflow_deployment(home, dags, setup=setup, extra_env={"APS_MIRROR_BUCKET": bucket}) as deployment:
        yield deployment
