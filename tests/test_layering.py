"""The core never imports Airflow or the Airflow adapter, and works where Airflow is absent.

Three checks anyone can run: every import statement of the core (top level or inside a
function) is read with `ast`; every core module imports in a process where `airflow` cannot be
imported; and `aps-mirror sync` runs from a virtualenv installed without the airflow extra.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.mirror.test_selection import selected_by_default

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "aps_mirror"
ADAPTER = PACKAGE / "airflow_provider"
FORBIDDEN = ("airflow", "aps_mirror.airflow_provider")


def core_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if ADAPTER not in p.parents)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, however deeply nested."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # `from aps_mirror import airflow_provider` names the adapter too
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
              and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant)):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def test_the_walk_sees_nested_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent("""
        def lookup():
            try:
                from aps_mirror.airflow_provider.connections import get_connection_fields
            except ImportError:
                import airflow.sdk
        from aps_mirror import airflow_provider
    """))
    assert {m for _, m in imported_modules(sample) if is_forbidden(m)} == {
        "aps_mirror.airflow_provider.connections", "aps_mirror.airflow_provider.connections.get_connection_fields",
        "airflow.sdk", "aps_mirror.airflow_provider"}


def test_no_core_module_imports_airflow_or_the_adapter() -> None:
    files = core_files()
    assert len(files) > 50 and PACKAGE / "connection.py" in files and PACKAGE / "cli" / "common.py" in files
    offenders = [f"{path.relative_to(REPO)}:{line}: {module}"
                 for path in files for line, module in imported_modules(path) if is_forbidden(module)]
    assert offenders == []


def test_every_core_module_imports_with_airflow_unimportable(tmp_path: Path) -> None:
    modules = [module_name(p) for p in core_files()]
    script = textwrap.dedent(f"""
        import importlib, sys

        class NoAirflow:
            def find_spec(self, name, path=None, target=None):
                if name == "airflow" or name.startswith("airflow."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, NoAirflow())
        for name in {modules!r}:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m == "airflow" or m.startswith(("airflow.", "aps_mirror.airflow_provider")))
        assert not loaded, loaded
        from aps_mirror.backends import installed_backend
        assert installed_backend() is None, "the airflow backend loaded without Airflow"
        print(len({modules!r}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) == len(modules)


@pytest.fixture(scope="module")
def venv_without_airflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the project installed from a copy of its sources, without extras."""
    root = tmp_path_factory.mktemp("no-airflow")
    source = root / "source"  # a copy: building in the working tree would leave build/ there
    shutil.copytree(REPO / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "-c",
                              str(REPO / "constraints.txt"), str(source)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    return venv


def test_cli_syncs_from_a_virtualenv_without_airflow(venv_without_airflow: Path, simulator, s3_endpoint,
                                                     bucket, s3, tmp_path: Path) -> None:
    python = venv_without_airflow / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import airflow"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'airflow'" in probe.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTHON"))}
    env.update({
        "HOME": str(tmp_path),
        "AIRFLOW_CONN_AUTODESK_DEFAULT": json.dumps({
            "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
            "password": simulator.client_secret, "extra": {"auth_mode": "client_credentials"}}),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
            "conn_type": "aws", "login": "test", "password": "test",
            "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}),
    })
    result = subprocess.run([str(venv_without_airflow / "bin" / "aps-mirror"), "sync", "--bucket", bucket,
                             "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    files = selected_by_default(simulator.sim)
    assert summary["files_copied"] == len(files) and summary["files_failed"] == 0
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", []) if "/_aps_mirror/" not in o["Key"]]
    assert len(keys) == len(files)
    sizes = sorted(s3.head_object(Bucket=bucket, Key=k)["ContentLength"] for k in keys)
    assert sizes == sorted(f.tip.size for f in files)
