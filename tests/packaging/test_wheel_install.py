"""The provider as a user gets it: the wheel built from this checkout, installed into fresh
virtualenvs with the lowest and the newest Airflow the package supports.

In each virtualenv, with an AIRFLOW_HOME of its own (SQLite): `airflow providers list` shows
aps-mirror; a DAG file of a few lines declares two mirrors through the factory and both parse;
one of them runs end to end (`airflow dags test`) from the venv's own APS simulator into the
venv's own moto S3 server. Versions come from the committed locks in tests/packaging/locks/
(exact pins, used as constraints), so nothing but the package registry is needed.

uv installs a venv in seconds where pip takes minutes; one uv cache serves both venvs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path
from typing import IO, Iterator

import boto3
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from aps_mirror.simulator import Simulator
from tests.mirror.test_selection import selected_by_default

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
LOCKS = Path(__file__).resolve().parent / "locks"
SOURCE_PACKAGE = REPO / "src" / "aps_mirror"
# Not what the user gets: bytecode caches, and build metadata of the dev venv's editable install.
NOT_SHIPPED = ("__pycache__", ".pyc")

TWO_MIRRORS = textwrap.dedent("""\
    from aps_mirror.airflow_provider.dags import build_mirror_dag

    build_mirror_dag("mirror_a", bucket="bucket-a", prefix="a")
    build_mirror_dag("mirror_b", bucket="bucket-b", prefix="b", project_filter=["Riverside*"])
""")


@dataclass(frozen=True)
class Target:
    name: str
    lock: Path

    def pins(self) -> dict[str, str]:
        return pins(self.lock)


TARGETS = [Target("lowest", LOCKS / "airflow-3.1.txt"), Target("newest", LOCKS / "airflow-newest.txt")]


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a lock or constraints file, names normalised."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", path.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


def project_version() -> str:
    written = re.search(r'^__version__ = "([^"]+)"$', (SOURCE_PACKAGE / "__init__.py").read_text(), re.M)
    assert written
    return written.group(1)


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def lower_bound(requirement: str) -> str:
    """The `>=` version of a requirement string."""
    (spec,) = [s for s in Requirement(requirement).specifier if s.operator == ">="]
    return spec.version


def declared(extra: str, name: str) -> str:
    (requirement,) = [r for r in pyproject()["project"]["optional-dependencies"][extra]
                      if Requirement(r).name == name]
    return requirement


# --- The locks say what the ranges claim ------------------------------------------------------

def test_the_lowest_lock_holds_the_lowest_versions_pyproject_allows() -> None:
    """The ranges' lower bounds are what the lowest venv runs, so they are tested, not hoped."""
    lowest = TARGETS[0].pins()
    for extra, name in (("airflow", "apache-airflow"), ("airflow", "apache-airflow-providers-amazon"),
                        ("celery", "apache-airflow-providers-celery")):
        assert lowest[name] == lower_bound(declared(extra, name)), name


def test_the_newest_lock_is_the_dev_venv_and_image_airflow() -> None:
    newest, constraints = TARGETS[1].pins(), pins(REPO / "constraints.txt")
    assert newest["apache-airflow"] == constraints["apache-airflow"]
    differ = {name: (version, constraints[name]) for name, version in newest.items()
              if name in constraints and constraints[name] != version}
    assert differ == {}, "regenerate tests/packaging/locks/airflow-newest.txt (its header has the command)"


# --- The wheel ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def uv() -> str:
    from uv import find_uv_bin  # the `uv` package of the test extra

    return find_uv_bin()


@pytest.fixture(scope="module")
def uv_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """uv's environment: one cache for the run's venvs, no Python downloads, the system's CAs."""
    env = clean_env()
    env.update({"UV_CACHE_DIR": str(tmp_path_factory.mktemp("uv-cache")), "UV_PYTHON_DOWNLOADS": "never",
                "UV_NO_PROGRESS": "1"})
    return env


@pytest.fixture(scope="module")
def wheel(uv: str, uv_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built from a copy (a build in the tree would leave build/ there)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    result = subprocess.run([uv, "build", "--wheel", "--out-dir", str(root / "dist"), str(source)],
                            env=uv_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = (root / "dist").glob("aps_mirror-*.whl")
    return built


def test_the_wheel_ships_every_file_of_the_package(wheel: Path) -> None:
    """Whatever the package holds (py.typed, the simulator's README, any future template or
    static file) is in the wheel; package-data in pyproject.toml must name non-Python files."""
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("aps_mirror/")}
    in_source = {str(p.relative_to(SOURCE_PACKAGE.parent)) for p in SOURCE_PACKAGE.rglob("*")
                 if p.is_file() and not any(part in str(p) for part in NOT_SHIPPED)}
    assert in_source - shipped == set(), "pyproject.toml's package-data misses these"
    assert shipped - in_source == set()


def test_the_wheel_metadata(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (meta_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(archive.read(meta_name).decode())
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist())
    assert meta["Version"] == project_version()
    assert meta["License-Expression"] == "Apache-2.0"
    classifiers = meta.get_all("Classifier")
    assert {"Framework :: Apache Airflow", "Framework :: Apache Airflow :: Provider"} <= set(classifiers)
    assert set(meta.get_all("Provides-Extra")) >= {"airflow", "simulator", "redis", "postgres", "test"}
    core = {Requirement(r).name.lower() for r in meta.get_all("Requires-Dist") if "extra ==" not in r}
    # The simulator's server, the shared locks' clients and the tests' YAML are extras, not core.
    assert core.isdisjoint({"fastapi", "uvicorn", "redis", "psycopg2-binary", "pyyaml", "apache-airflow"}), core
    python = SpecifierSet(meta["Requires-Python"])
    for minor in range(10, 15):
        version = f"3.{minor}"
        assert f"{version}.0" in python and f"Programming Language :: Python :: {version}" in classifiers


# --- Fresh virtualenvs ----------------------------------------------------------------------------

def clean_env() -> dict[str, str]:
    """This process's environment without the test session's Airflow, Python and aps-mirror settings."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "_AIRFLOW", "APS_MIRROR", "PYTHON", "VIRTUAL_ENV", "UV_"))}


@dataclass
class Venv:
    target: Target
    path: Path
    home: Path
    install_seconds: float

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        return {**clean_env(), "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(self.path),
                "AIRFLOW_HOME": str(self.home), "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **extra}

    def airflow(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "airflow"), *args], env=self.env(**env), cwd=self.home,
                              capture_output=True, text=True, timeout=timeout)

    def airflow_json(self, *args: str) -> list[dict]:
        result = self.airflow(*args, "--output", "json")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        # Warnings may come first on stdout (Airflow 3.3); the table is the line that parses.
        for start in re.finditer(r"^\[", result.stdout, re.M):
            try:
                return json.loads(result.stdout[start.start():])
            except json.JSONDecodeError:
                continue
        raise AssertionError(f"no JSON list in the output of airflow {' '.join(args)}: {result.stdout[-2000:]}")


@pytest.fixture(scope="module", params=TARGETS, ids=[t.name for t in TARGETS])
def venv(request: pytest.FixtureRequest, wheel: Path, uv: str, uv_env: dict[str, str],
         tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """`<wheel>[airflow,celery,simulator]` and moto's server, every version from the target's lock."""
    target: Target = request.param
    root = tmp_path_factory.mktemp(f"venv-{target.name}")
    path = root / "venv"
    started = time.monotonic()
    subprocess.run([uv, "venv", "--python", sys.executable, str(path)], env=uv_env, check=True,
                   capture_output=True, timeout=120)
    install = subprocess.run(
        [uv, "pip", "install", "--python", str(path / "bin" / "python"), "--constraint", str(target.lock),
         f"aps-mirror[airflow,celery,simulator] @ {wheel.as_uri()}", "moto[s3,server]"],
        env=uv_env, capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-4000:]
    seconds = time.monotonic() - started
    home = root / "airflow-home"
    (home / "dags").mkdir(parents=True)
    made = Venv(target, path, home, seconds)
    migrate = made.airflow("db", "migrate")
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    print(f"\n{target.name}: venv installed in {seconds:.1f} s")
    return made


def test_the_venv_has_the_locked_versions(venv: Venv) -> None:
    listed = subprocess.run([str(venv.bin / "python"), "-c",
                             "import json, importlib.metadata as m; "
                             "print(json.dumps({d.name: d.version for d in m.distributions()}))"],
                            capture_output=True, text=True, env=venv.env(), check=True)
    installed = {re.sub(r"[-_.]+", "-", name).lower(): v for name, v in json.loads(listed.stdout).items()}
    lock = venv.target.pins()
    for name in ("apache-airflow", "apache-airflow-providers-amazon", "apache-airflow-providers-celery", "boto3"):
        assert installed[name] == lock[name], name
    assert installed["aps-mirror"] == project_version()


def test_airflow_lists_the_provider(venv: Venv) -> None:
    rows = venv.airflow_json("providers", "list")
    ours = [row for row in rows if row["package_name"] == "aps-mirror"]
    assert len(ours) == 1 and ours[0]["version"] == project_version(), rows


@pytest.fixture(scope="module")
def two_mirrors(venv: Venv) -> Venv:
    """The DAG file of a few lines, serialized into the venv's metadata database."""
    (venv.home / "dags" / "two_mirrors.py").write_text(TWO_MIRRORS, encoding="utf-8")
    result = venv.airflow("dags", "reserialize")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return venv


def test_a_dag_file_of_a_few_lines_declares_two_mirrors(two_mirrors: Venv) -> None:
    assert two_mirrors.airflow_json("dags", "list-import-errors") == []
    dags = {row["dag_id"]: row for row in two_mirrors.airflow_json("dags", "list")}
    assert set(dags) == {"mirror_a", "mirror_b"}
    assert {Path(row["fileloc"]).name for row in dags.values()} == {"two_mirrors.py"}


class Service:
    """A server process of the venv in a session of its own, stopped with its whole group."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)

    def line_matching(self, pattern: str) -> re.Match:
        """The first output line matching `pattern` (read until the process says it)."""
        stream: IO[str] = self.proc.stdout  # type: ignore[assignment]
        seen = []
        for line in stream:
            found = re.search(pattern, line)
            if found:
                return found
            seen.append(line)
        raise AssertionError(f"{self.proc.args[0]} exited ({self.proc.wait()}) without /{pattern}/: "
                             + "".join(seen)[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def services(venv: Venv) -> Iterator[tuple[dict, str]]:
    """The venv's own APS simulator (demo account, no rate limits) and moto S3 server."""
    simulator = Service([str(venv.bin / "python"), "-m", "aps_mirror.simulator", "serve", "--port", "0",
                         "--rate-scale", "0"], venv.env(), venv.home)
    moto = Service([str(venv.bin / "moto_server"), "-p", "0"], venv.env(), venv.home)
    try:
        sim = json.loads(simulator.line_matching(r"^\{.*\"base_url\".*\}$").group(0))
        endpoint = moto.line_matching(r"Running on (http://127\.0\.0\.1:\d+)").group(1)
        yield sim, endpoint
    finally:
        simulator.stop()
        moto.stop()


def test_one_mirror_runs_end_to_end(two_mirrors: Venv, services: tuple[dict, str]) -> None:
    sim, endpoint = services
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1")
    s3.create_bucket(Bucket="bucket-a")
    pool = two_mirrors.airflow("pools", "set", "autodesk_api", "4", "APS API concurrency")
    assert pool.returncode == 0, pool.stderr[-2000:]
    env = {
        # `dags test` of a DAG with a deadline exits 1 after a successful run (apache/airflow#73428).
        "APS_MIRROR_DEADLINE": "off",
        "AIRFLOW_CONN_AUTODESK_DEFAULT": json.dumps({
            "conn_type": "autodesk", "host": sim["base_url"], "login": sim["client_id"],
            "password": sim["client_secret"], "extra": {"auth_mode": "client_credentials"}}),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
            "conn_type": "aws", "login": "test", "password": "test",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}),
    }
    run = two_mirrors.airflow("dags", "test", "mirror_a", timeout=900, **env)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert sim["client_secret"] not in output
    (only,) = two_mirrors.airflow_json("dags", "list-runs", "mirror_a")
    assert only["state"] == "success", only

    # The default selection of the demo account, at a/<hub>/<project>/..., byte for byte.
    truth = Simulator(seed="demo", rate_scale=0)
    files = {f.item_id: f for f in selected_by_default(truth)}
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bucket-a")
            for o in page.get("Contents", []) if not o["Key"].startswith("a/_aps_mirror/")]
    mirrored = {}
    for key in keys:
        obj = s3.get_object(Bucket="bucket-a", Key=key)
        item_id = obj["Metadata"]["aps-item-id"]
        body = obj["Body"].read()
        assert key.startswith("a/") and item_id in files and item_id not in mirrored, key
        assert hashlib.sha1(body).hexdigest() == truth.sha1(files[item_id].tip.id), key
        mirrored[item_id] = key
    assert set(mirrored) == set(files)
    assert "bucket-b" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}, "mirror_b did not run"


# --- Without the extras -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def core_venv(wheel: Path, uv: str, uv_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel alone (`pip install aps-mirror`): no Airflow, no extras."""
    path = tmp_path_factory.mktemp("venv-core") / "venv"
    subprocess.run([uv, "venv", "--python", sys.executable, str(path)], env=uv_env, check=True,
                   capture_output=True, timeout=120)
    install = subprocess.run([uv, "pip", "install", "--python", str(path / "bin" / "python"), "--constraint",
                              str(TARGETS[1].lock), str(wheel)], env=uv_env, capture_output=True, text=True,
                             timeout=600)
    assert install.returncode == 0, install.stderr[-4000:]
    return path


def test_a_missing_extra_is_one_line_naming_it(core_venv: Path, tmp_path: Path) -> None:
    env = {**clean_env(), "HOME": str(tmp_path)}
    bin_ = core_venv / "bin"
    assert subprocess.run([str(bin_ / "aps-mirror"), "--help"], env=env, capture_output=True).returncode == 0
    serve = subprocess.run([str(bin_ / "aps-mirror"), "simulator", "serve", "--port", "0"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert serve.returncode == 2 and serve.stdout == ""
    assert serve.stderr.strip().splitlines() == [
        "error: The APS simulator's HTTP server needs fastapi, which is not installed: "
        "pip install 'aps-mirror[simulator]'"]
    budget = subprocess.run([str(bin_ / "python"), "-c", textwrap.dedent("""\
        from aps_mirror.aps.ratelimit import RedisRateBudget
        from aps_mirror.extras import MissingExtra
        try:
            RedisRateBudget("redis://127.0.0.1:6379/0", "client")
        except MissingExtra as exc:
            print(exc)
        """)], env=env, capture_output=True, text=True, timeout=60)
    assert budget.stdout.strip() == ("A rate budget shared through Redis needs redis, which is not installed: "
                                     "pip install 'aps-mirror[redis]'"), budget.stderr[-2000:]
