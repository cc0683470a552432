"""Static checks of the container deployment: docker-compose.yaml, Dockerfile, .dockerignore.

No Docker engine is needed: the Compose file is validated against the Compose Specification's
JSON schema (vendored in tests/specs/compose-spec/) and its topology, interpolation and shell
snippets are checked by reading them (airflow-init's password step, a standard-library script,
is also run on a temporary folder); the Dockerfile is read for its base image and install
step, cross-checked against constraints.txt and requirements.txt.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from aps_mirror import connection
from tests.specs import spec_path

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DEMO_ENV = REPO / "include" / "docker" / "demo.env"

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
    "airflow-init": None,  # bash script
    "airflow-cli": None,  # bash -c airflow
    "flower": "celery flower",
}
# Long-running Airflow components that must wait for init to have migrated the database.
AFTER_INIT = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "flower",
}
DEMO_SERVICES = {"aps-simulator", "s3", "s3-init"}
INFRA_SERVICES = {"postgres", "redis"}


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict), "docker-compose.yaml must be a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment", {})
    if isinstance(env, list):  # KEY=VALUE list form
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def _command(service: dict[str, Any]) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def _pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements/constraints file, names normalised."""
    pins: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;]+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        logical.append(buf)
        buf = ""
    if buf:
        logical.append(buf)
    out = []
    for line in logical:
        instr, _, args = line.partition(" ")
        out.append((instr.upper(), args.strip()))
    return out


_VAR = r"[A-Za-z_][A-Za-z0-9_]*"
_BRACED = re.compile(r"\$\{(" + _VAR + r")(?:(:?[-?+])([^}]*))?\}")
_BARE = re.compile(r"\$(" + _VAR + r")")


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose-style interpolation (the subset this file uses); raises on malformed `$`."""
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        if value.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        m = _BRACED.match(value, i)
        if m:
            name, op, arg = m.group(1), m.group(2), m.group(3)
            current = env.get(name)
            if op in (":-", "-"):
                unset = current is None or (op == ":-" and current == "")
                out.append(arg if unset else current)
            elif op in (":?", "?"):
                if current is None or (op == ":?" and current == ""):
                    raise ValueError(f"required variable {name} is missing: {arg}")
                out.append(current)
            elif op in (":+", "+"):
                present = current is not None and (op == "+" or current != "")
                out.append(arg if present else "")
            else:
                out.append(current or "")
            i = m.end()
            continue
        m = _BARE.match(value, i)
        if m:
            out.append(env.get(m.group(1)) or "")
            i = m.end()
            continue
        raise ValueError(f"invalid interpolation format at {value[i:i + 30]!r}")
    return "".join(out)


def _walk_strings(node: Any, path: str = ""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk_strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for n, v in enumerate(node):
            yield from _walk_strings(v, f"{path}[{n}]")
    elif isinstance(node, str):
        yield path, node


def _read_env_file(path: Path) -> dict[str, str]:
    """A Compose env file: KEY=VALUE lines, '#' comments, single-quoted values literal."""
    env: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


# ---------------------------------------------------------------------------------------------
# schema and syntax


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(spec_path("compose-spec/compose-spec.json").read_text(encoding="utf-8"))
    # The schema declares draft-07 ("$schema": ".../draft-07/schema").
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def test_every_dollar_sign_is_valid_compose_interpolation(compose: dict[str, Any]) -> None:
    for where, value in _walk_strings(compose):
        try:
            _interpolate(value, {})
        except ValueError as exc:
            pytest.fail(f"{where}: {exc}")


def test_no_required_variables_and_no_unset_variables_without_defaults(compose: dict[str, Any]) -> None:
    """`docker compose up` on a fresh clone (no .env) must not need or warn about any variable."""
    for where, value in _walk_strings(compose):
        text = value.replace("$$", "")
        for m in _BRACED.finditer(text):
            assert m.group(2) in (":-", "-"), f"{where}: ${{{m.group(1)}}} has no default"
        assert not _BARE.search(text), f"{where}: bare $VAR without default"


def test_init_script_is_valid_bash(services: dict[str, dict[str, Any]]) -> None:
    bash = shutil.which("bash")
    assert bash, "bash is needed to check the init script"
    init = services["airflow-init"]
    assert init["entrypoint"] == "/bin/bash"
    assert init["command"][0] == "-c"
    script = _interpolate(init["command"][1], {})
    proc = subprocess.run([bash, "-n"], input=script, text=True, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------------
# topology


def test_expected_services_exist(services: dict[str, dict[str, Any]]) -> None:
    expected = INFRA_SERVICES | set(AIRFLOW_SERVICES) | DEMO_SERVICES
    missing = expected - set(services)
    assert not missing, f"missing services: {sorted(missing)}"


def test_airflow_services_share_the_common_anchor(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    common = compose["x-airflow-common"]
    assert common.get("build") == "." or (common.get("build") or {}).get("context") == "."
    assert common.get("image"), "x-airflow-common must name the built image (pinned tag)"
    assert common.get("user") == "${AIRFLOW_UID:-50000}:0"
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        assert svc.get("build") == common["build"], f"{name}: build differs from x-airflow-common"
        assert svc.get("image") == common["image"], f"{name}: image differs from x-airflow-common"
        assert svc.get("volumes") == common["volumes"], f"{name}: volumes differ from x-airflow-common"
        env = _env(svc)
        for key, value in _env(common).items():
            assert env.get(key) == value, f"{name}: environment {key} differs from x-airflow-common"
        if name != "airflow-init":
            assert svc.get("user") == common["user"], f"{name}: user differs from x-airflow-common"
    # the merge keys are really used (not copies that could drift)
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for name in AIRFLOW_SERVICES:
        block = re.search(rf"^  {re.escape(name)}:\n((?:    .*\n|\s*\n)+)", text, re.M)
        assert block and "<<: *airflow-common\n" in block.group(1), f"{name}: does not merge *airflow-common"


def test_airflow_configuration(compose: dict[str, Any]) -> None:
    env = _env(compose["x-airflow-common"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://airflow:airflow@postgres/airflow"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql+psycopg2://airflow:airflow@postgres/airflow"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert str(env["AIRFLOW__CORE__LOAD_EXAMPLES"]).lower() == "false"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"]
    # every component must verify/sign task tokens with the same secret
    assert _interpolate(env["AIRFLOW__API_AUTH__JWT_SECRET"], {}), "JWT secret needs a non-empty default"
    volumes = compose["x-airflow-common"]["volumes"]
    for sub in ("dags", "logs", "config", "plugins"):
        assert any(v.endswith(f"/{sub}:/opt/airflow/{sub}") for v in volumes), f"no {sub} volume"


def test_airflow_commands(services: dict[str, dict[str, Any]]) -> None:
    for name, command in AIRFLOW_SERVICES.items():
        if command is not None:
            assert _command(services[name]) == command, name
    assert services["airflow-apiserver"]["ports"] == ["8080:8080"]
    assert "/api/v2/version" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert services["airflow-cli"]["profiles"] == ["debug"]
    assert services["flower"]["profiles"] == ["flower"]
    assert _env(services["airflow-worker"]).get("DUMB_INIT_SETSID") == "0"


def test_infrastructure_is_healthchecked_and_awaited(services: dict[str, dict[str, Any]]) -> None:
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7.2-bookworm"
    for name in INFRA_SERVICES:
        test = services[name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
    for name in AIRFLOW_SERVICES:
        deps = services[name].get("depends_on", {})
        for infra in INFRA_SERVICES:
            assert deps.get(infra, {}).get("condition") == "service_healthy", (
                f"{name} must wait for {infra} to be healthy"
            )
    for name in AFTER_INIT:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name


def test_init_migrates_creates_pool_and_login(services: dict[str, dict[str, Any]]) -> None:
    init = services["airflow-init"]
    env = _env(init)
    script = init["command"][1]
    assert str(env.get("_AIRFLOW_DB_MIGRATE")).lower() == "true"  # the image entrypoint runs `airflow db migrate`
    assert 'airflow pools set autodesk_api 4 "APS API concurrency"' in script
    assert init["user"] == "0:0"
    assert "chown" in script and "/opt/airflow/{logs,dags,plugins,config}" in script
    # SimpleAuthManager login documented at the top: airflow / airflow (+ aps-mirror's REST user)
    assert _interpolate(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"], {}) == "airflow:admin,aps_mirror:op"
    assert _interpolate(env["_AIRFLOW_WWW_USER_PASSWORD"], {}) == "airflow"
    assert "python /opt/airflow/include/docker/provision_simple_auth.py" in script  # writes the password file
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in (REPO / "include/docker/provision_simple_auth.py").read_text()


def _simple_auth_role(users: str, name: str) -> str:
    roles = dict(entry.split(":")[:2] for entry in users.split(","))
    return roles[name]


def test_token_persistence_has_least_privilege_rest_credentials_in_every_airflow_service(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """3-legged tokens rotate inside tasks, which save them through the REST API: every Airflow
    service knows where the API is, as whom to log in, and where init put the password."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    env = {k: _interpolate(str(v), {}) for k, v in _env(compose["x-airflow-common"]).items()}
    assert env["APS_MIRROR_AIRFLOW_API_URL"] == "http://airflow-apiserver:8080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == env["APS_MIRROR_AIRFLOW_API_URL"] + "/execution/"
    user = env["APS_MIRROR_AIRFLOW_API_USERNAME"]
    assert user == "aps_mirror" and user != _interpolate(_env(services["airflow-init"])["_AIRFLOW_WWW_USER_USERNAME"], {})
    role = _simple_auth_role(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"], user)
    # The least role the installed SimpleAuthManager lets edit connections: op, not admin.
    manager = SimpleAuthManager()
    may_edit = {r: manager.is_authorized_connection(method="PUT", user=SimpleAuthManagerUser(username=user, role=r))
                for r in ("viewer", "user", "op", "admin")}
    assert may_edit == {"viewer": False, "user": False, "op": True, "admin": True}
    assert role == "op"
    # The password is never a value in the file: init writes it into the shared config volume.
    assert "APS_MIRROR_AIRFLOW_API_PASSWORD" not in env
    assert env["APS_MIRROR_AIRFLOW_API_PASSWORD_FILE"] == "/opt/airflow/config/aps_mirror_airflow_api_password"
    assert any(v.endswith(":/opt/airflow/config") for v in compose["x-airflow-common"]["volumes"])
    init = services["airflow-init"]
    assert _interpolate(_env(init)["_APS_MIRROR_AIRFLOW_API_PASSWORD"], {}) == "", "no fixed default password"
    script = init["command"][1]
    provision = "python /opt/airflow/include/docker/provision_simple_auth.py"
    assert provision in script and (REPO / "include" / "docker" / "provision_simple_auth.py").is_file()
    assert script.index("set -e") < script.index(provision) < script.index("chown")


def test_connection_testing_is_enabled(compose: dict[str, Any]) -> None:
    assert _env(compose["x-airflow-common"])["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"


def _provision(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess:
    """Run init's password step with the compose file's environment, /opt/airflow/config -> tmp_path."""
    compose_env = _env(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]["airflow-init"])
    env = {k: _interpolate(str(v), {}).replace("/opt/airflow/config", str(tmp_path)) for k, v in compose_env.items()}
    env.update(overrides)
    return subprocess.run([sys.executable, str(REPO / "include" / "docker" / "provision_simple_auth.py")],
                          env=env, capture_output=True, text=True, check=False)


def test_init_generates_the_rest_password_once_and_keeps_it(tmp_path: Path) -> None:
    first = _provision(tmp_path)
    assert first.returncode == 0, first.stderr
    kept = tmp_path / "aps_mirror_airflow_api_password"
    password = kept.read_text().strip()
    passwords = json.loads((tmp_path / "simple_auth_manager_passwords.json").read_text())
    assert passwords == {"airflow": "airflow", "aps_mirror": password} and len(password) >= 24
    for path in (kept, tmp_path / "simple_auth_manager_passwords.json"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert password not in first.stdout + first.stderr
    again = _provision(tmp_path)  # `docker compose up` runs init every time
    assert again.returncode == 0 and kept.read_text().strip() == password
    chosen = _provision(tmp_path, _APS_MIRROR_AIRFLOW_API_PASSWORD="chosen-in-dot-env")
    assert chosen.returncode == 0 and kept.read_text().strip() == "chosen-in-dot-env"
    assert json.loads((tmp_path / "simple_auth_manager_passwords.json").read_text())["aps_mirror"] == "chosen-in-dot-env"


def test_init_refuses_users_that_do_not_give_aps_mirror_role_op(tmp_path: Path) -> None:
    refused = _provision(tmp_path, AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="airflow:admin,aps_mirror:admin")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "role op" in refused.stderr
    assert not (tmp_path / "aps_mirror_airflow_api_password").exists()


def test_demo_services_are_in_the_demo_profile_only(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    image = compose["x-airflow-common"]["image"]
    for name in DEMO_SERVICES:
        svc = services[name]
        assert svc.get("profiles") == ["demo"], f"{name} must carry profiles: [demo]"
        assert svc.get("image") == image, f"{name} must run the project's image"
        if svc.get("restart") != "no":  # long-running ones only
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name, svc in services.items():
        if name not in DEMO_SERVICES:
            assert "demo" not in (svc.get("profiles") or []), name
    simulator = _command(services["aps-simulator"])
    assert simulator.startswith("aps-mirror simulator serve --host 0.0.0.0 --port 8765 --seed demo")
    # The client the simulator registers is the one the demo connection logs in with.
    demo_conn = json.loads(_read_env_file(DEMO_ENV)["AIRFLOW_CONN_AUTODESK_DEFAULT"])
    assert f"--client-id {demo_conn['login']} --client-secret {demo_conn['password']}" in simulator
    assert _command(services["s3"]) == "moto_server -H 0.0.0.0 -p 5000"
    s3_init = services["s3-init"]
    assert s3_init["depends_on"]["s3"]["condition"] == "service_healthy"
    assert s3_init["restart"] == "no"
    compile(s3_init["command"][-1], "s3-init", "exec")  # the bucket-creating script is valid Python
    bucket = _interpolate(_env(s3_init)["APS_MIRROR_BUCKET"], {})
    assert bucket == _interpolate(_env(compose["x-airflow-common"])["APS_MIRROR_BUCKET"], {}) == "aps-mirror"


def test_demo_connections_are_empty_unless_the_demo_env_file_is_used(compose: dict[str, Any]) -> None:
    env = _env(compose["x-airflow-common"])
    for key in ("AIRFLOW_CONN_AUTODESK_DEFAULT", "AIRFLOW_CONN_AWS_DEFAULT"):
        assert env[key] == "${%s:-}" % key
        assert _interpolate(env[key], {}) == "", f"{key} must be empty outside the demo"

    demo = _read_env_file(DEMO_ENV)
    assert demo.get("COMPOSE_PROFILES") == "demo"

    autodesk = json.loads(_interpolate(env["AIRFLOW_CONN_AUTODESK_DEFAULT"], demo))
    assert autodesk["conn_type"] == "autodesk"
    assert autodesk["host"] == "http://aps-simulator:8765"
    assert (autodesk["login"], autodesk["password"]) == ("demo-client-id", "demo-client-secret")
    assert autodesk["extra"]["auth_mode"] == "client_credentials"

    aws = json.loads(_interpolate(env["AIRFLOW_CONN_AWS_DEFAULT"], demo))
    assert aws["conn_type"] == "aws"
    assert (aws["login"], aws["password"]) == ("test", "test")
    assert aws["extra"] == {"endpoint_url": "http://s3:5000", "region_name": "us-east-1"}


def test_demo_connections_parse_with_aps_mirror() -> None:
    """The demo JSON is read by the project's own connection parser."""
    demo = _read_env_file(DEMO_ENV)
    fields = connection.parse_connection_value("autodesk_default", demo["AIRFLOW_CONN_AUTODESK_DEFAULT"])
    aps = connection.ApsConnection.from_fields(fields)
    assert aps.client_id == "demo-client-id"
    assert aps.auth_mode == connection.AuthMode.CLIENT_CREDENTIALS


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        image = _interpolate(svc["image"], {})
        assert ":" in image.rsplit("/", 1)[-1], f"{name}: image {image!r} has no tag"
        assert not image.endswith(":latest"), f"{name}: image {image!r} uses latest"


# ---------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_base_image_matches_the_pinned_airflow() -> None:
    froms = [args for instr, args in _dockerfile_instructions() if instr == "FROM"]
    assert len(froms) == 1, f"expected a single-stage build, got FROM {froms}"
    m = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)(?:\s+AS\s+\S+)?", froms[0], re.I)
    assert m, f"base image must be apache/airflow:<version>-python<X.Y>, got {froms[0]!r}"
    airflow_version, python_version = m.groups()

    constraints = _pins(REPO / "constraints.txt")
    requirements = _pins(REPO / "requirements.txt")
    assert constraints.get("apache-airflow") == airflow_version, "constraints.txt pins another Airflow"
    assert requirements.get("apache-airflow") == airflow_version, "requirements.txt pins another Airflow"

    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    m = re.search(r'^requires-python\s*=\s*"([^"]+)"', pyproject, re.M)
    if m:
        assert python_version + ".0" in SpecifierSet(m.group(1)), (
            f"python{python_version} image vs requires-python {m.group(1)!r}"
        )


def test_dockerfile_installs_the_project_with_the_constraints() -> None:
    instructions = _dockerfile_instructions()
    runs = [args for instr, args in instructions if instr == "RUN"]
    installs = [r for r in runs if "pip install" in r]
    assert installs, "no pip install in the Dockerfile"
    install = installs[-1]
    assert "-c constraints.txt" in install
    assert "--no-cache-dir" in install
    assert re.search(r"\s\.(\s|$)", install), "the project itself (.) is not installed"
    # installed as the airflow user, as the official docs recommend
    users = [args for instr, args in instructions[: instructions.index(("RUN", install))] if instr == "USER"]
    assert users and users[-1] == "airflow"

    copies = " ".join(args for instr, args in instructions if instr == "COPY")
    for src in ("constraints.txt", "requirements.txt", "pyproject.toml", "src/", "dags/", "plugins/", "include/"):
        assert src in copies, f"Dockerfile does not copy {src}"
    for dest in ("/opt/airflow/dags/", "/opt/airflow/plugins/", "/opt/airflow/include/"):
        assert dest in copies, f"Dockerfile does not copy into {dest}"
    assert not re.search(r":latest\b", DOCKERFILE.read_text(encoding="utf-8")), "Dockerfile uses a latest tag"


def test_demo_packages_resolve_from_the_constraints() -> None:
    """moto (the demo's S3 server) is installed from the same constraints, so it must be pinned there."""
    args = [a for instr, a in _dockerfile_instructions() if instr == "ARG"]
    demo = [a for a in args if a.startswith("APS_MIRROR_DEMO_PACKAGES=")]
    assert demo, "Dockerfile lacks the APS_MIRROR_DEMO_PACKAGES build argument"
    assert "moto[s3,server]" in demo[0]
    assert "moto" in _pins(REPO / "constraints.txt"), "constraints.txt must pin moto"


def test_dockerignore_keeps_the_build_inputs() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    for needed in ("constraints.txt", "requirements.txt", "pyproject.toml", "src", "dags", "plugins", "include"):
        assert needed not in patterns and f"/{needed}" not in patterns, f".dockerignore drops {needed}"
    for noise in (".git", ".env", "logs"):
        assert noise in patterns, f".dockerignore should drop {noise}"


def test_copied_directories_exist_with_files() -> None:
    """`COPY dags/ ...` fails the build on a fresh clone if git has nothing in the directory
    (git does not keep empty directories): each needs at least one file, e.g. a .gitkeep."""
    for name in ("src", "dags", "plugins", "include"):
        folder = REPO / name
        assert folder.is_dir(), f"{name}/ is missing: the Dockerfile COPYs it"
        files = [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        assert files, f"{name}/ has no file: git will not keep it and `docker build` fails on COPY {name}/"
