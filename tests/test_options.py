"""aps_mirror.options: one table of sync options, checked the same way wherever a value enters."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import subprocess
import sys

import pytest

from aps_mirror.errors import ConfigError
from aps_mirror.mirror.engine import MirrorConfig
from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy
from aps_mirror.options import (DELETE_POLICIES, MAX_DELETE_PATTERN, PREFIX_PATTERN, SYNC_OPTIONS,
                                add_cli_arguments, mirror_config, parse_prefix)
from aps_mirror.s3_client import make_s3_client, pool_size

PARAMS = {"bucket": "acme-docs", "autodesk_conn_id": "autodesk_default", "aws_conn_id": "aws_default"}

BAD_PARAMS = [
    ("workers", 0), ("workers", -1), ("workers", 65), ("workers", 2.5), ("workers", True), ("workers", "four"),
    ("full_walk_days", math.nan), ("full_walk_days", math.inf), ("full_walk_days", -1), ("full_walk_days", "nan"),
    ("max_file_size_mb", -5), ("max_file_size_mb", 0), ("max_file_size_mb", math.nan),
    ("max_file_size_mb", math.inf), ("max_file_size_mb", 1e308),
    ("max_delete", "nan%"), ("max_delete", "inf"), ("max_delete", "-1"), ("max_delete", -1),
    ("max_delete", "200%"), ("max_delete", "100.5%"), ("max_delete", "-5%"), ("max_delete", "1e3"),
    ("max_delete", "inf%"), ("max_delete", "none"), ("max_delete", True),
    ("prefix", "../x"), ("prefix", "x/.."), ("prefix", "a/./b"), ("prefix", "/abs"), ("prefix", "a//b"),
    ("prefix", "a/"), ("prefix", "_aps_mirror"), ("prefix", "m/_APS_Mirror/x"), ("prefix", "a\x00b"),
    ("prefix", "tab\there"), ("prefix", "line\n"), ("prefix", "x" * 513), ("prefix", 5),
    ("bucket", "Upper"), ("bucket", "under_score"), ("bucket", "ab"), ("bucket", "a" * 64),
    ("bucket", "a..b"), ("bucket", "-dash"), ("bucket", "192.168.0.1"), ("bucket", "xn--abc"),
    ("bucket", "mine-s3alias"),
    ("delete_policy", "purge"), ("versions", "some"), ("dry_run", "maybe"), ("full_walk", 1),
    ("hub_filter", "Acme*"), ("project_filter", [1]), ("extensions", "rvt"),
    ("sources", ["box"]), ("sources", ["docs", "docs"]), ("sources", [1]), ("sources", 5),
]


@pytest.mark.parametrize(("name", "value"), BAD_PARAMS)
def test_a_bad_dag_param_is_refused_in_one_line_naming_it(name: str, value: object) -> None:
    with pytest.raises(ConfigError) as refused:
        mirror_config({**PARAMS, name: value})
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{name} ")
    assert "accepted" in message


@pytest.mark.parametrize("value", ["nan%", "inf", "-1", "200%"])
def test_delete_limit_parse_refuses_what_would_lift_the_guard(value: str) -> None:
    with pytest.raises(ConfigError, match="percentage from 0% to 100%"):
        DeleteLimit.parse(value)


def test_an_empty_or_missing_max_delete_is_the_default_not_no_limit() -> None:
    for params in ({**PARAMS, "max_delete": ""}, {**PARAMS, "max_delete": None}, PARAMS):
        assert mirror_config(params).max_delete == DeleteLimit(percent=10.0)
    with pytest.raises(ConfigError):
        DeleteLimit.parse("")  # no silent "no limit" below the options either
    assert DeleteLimit.parse("100%").refuses(deletes=5, mirrored=5) is None, "100% allows any number"


def test_good_dag_params_become_the_config() -> None:
    config = mirror_config({**PARAMS, "prefix": "mirrors/autodesk", "workers": 16, "full_walk_days": 0,
                            "max_file_size_mb": 1.5, "max_delete": "25", "delete_policy": "trash",
                            "versions": "all", "dry_run": True, "hub_filter": ["Acme*"],
                            "extensions": ["rvt", "dwg"]})
    assert (config.bucket, config.prefix, config.workers, config.full_walk_days) == (
        "acme-docs", "mirrors/autodesk", 16, 0.0)
    assert config.max_file_size == 1_572_864  # 1.5 MiB
    assert config.max_delete == DeleteLimit(count=25)
    assert (config.delete_policy, config.versions, config.dry_run) == (DeletePolicy.TRASH, "all", True)
    assert (config.hub_filter, config.extensions) == (("Acme*",), ("rvt", "dwg"))


def test_a_missing_bucket_is_refused() -> None:
    with pytest.raises(ConfigError, match="^bucket is required"):
        mirror_config({"prefix": "autodesk"})


def test_the_table_declares_every_config_field_once() -> None:
    names = [o.name for o in SYNC_OPTIONS]
    assert sorted(names) == sorted(f.name for f in dataclasses.fields(MirrorConfig))
    assert len({o.param_name for o in SYNC_OPTIONS}) == len(names)
    assert len({o.cli_flag for o in SYNC_OPTIONS}) == len(names)
    assert DELETE_POLICIES == tuple(p.value for p in DeletePolicy)


def _cli(*argv: str) -> MirrorConfig:
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    return mirror_config(vars(parser.parse_args(argv)), cli=True)


def test_cli_and_dag_defaults_are_the_same_config() -> None:
    assert _cli("--bucket", "acme-docs") == mirror_config(PARAMS)


def test_cli_flags_become_the_config() -> None:
    config = _cli("--bucket", "acme-docs", "--max-file-size", "5G", "--workers", "8", "--hub", "A*",
                  "--hub", "B*", "--exclude-extension", "tmp", "--max-delete", "10 %", "--full-walk",
                  "--delete-policy", "delete")
    assert config.max_file_size == 5 << 30 and config.workers == 8
    assert config.hub_filter == ("A*", "B*") and config.exclude_extensions == ("tmp",)
    assert config.max_delete == DeleteLimit(percent=10.0) and config.full_walk
    assert config.delete_policy is DeletePolicy.DELETE


def test_a_bad_cli_value_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"^--max-file-size '-5' is not accepted: use a size above 0"):
        _cli("--bucket", "acme-docs", "--max-file-size", "-5")


PREFIXES = ["autodesk", "a/b/c", "with space/ünïcode", "_aps_mirrors", "x_aps_mirror", "..a", "a.", "...",
            "x" * 512, "../x", "x/..", ".", "a/./b", "/abs", "a//b", "a/", "", "_aps_mirror", "a/_Aps_Mirror",
            "a/_APS_MIRROR/b", "a\x00b", "a\x1fb", "a\x7fb", "a\x85b", "line\n", "x" * 513]
MAX_DELETES = ["10%", "0", "50", "0%", "100%", "100.0%", "99.9%", ".5%", "5.%", " 7 ", "10 %", "007",
               "nan%", "inf", "-1", "200%", "100.5%", "-5%", "1e3", "1_000", "%", ".%", "5..%", "10%%",
               "5.5", "0100%", "١٠", ""]


@pytest.mark.parametrize("value", PREFIXES)
def test_the_trigger_forms_prefix_pattern_agrees_with_the_parser(value: str) -> None:
    assert (re.search(PREFIX_PATTERN, value) is not None) == _accepts(parse_prefix, value), value


@pytest.mark.parametrize("value", MAX_DELETES)
def test_the_trigger_forms_max_delete_pattern_agrees_with_delete_limit(value: str) -> None:
    assert (re.search(MAX_DELETE_PATTERN, value) is not None) == _accepts(DeleteLimit.parse, value), value


def _accepts(parse, value: str) -> bool:
    try:
        parse(value, "option")
    except ConfigError:
        return False
    return True


def test_the_core_options_module_imports_no_airflow() -> None:
    code = ("import sys, aps_mirror.options, aps_mirror.s3_client; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow' "
            "or m.startswith('aps_mirror.airflow_provider')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_s3_client_pool_fits_the_parallel_parts(s3_endpoint: str, bucket: str) -> None:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test")
    client = make_s3_client(session=session, endpoint_url=s3_endpoint, workers=16,
                            config=Config(connect_timeout=7, retries={"max_attempts": 2}))
    assert client.meta.config.max_pool_connections == pool_size(16) >= 16 * 4
    assert client.meta.config.connect_timeout == 7, "the connection's own config is kept"
    assert pool_size(1) == 32, "never below the catalog's parallel fetches"
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_sources_accept_each_source_once_in_any_case_and_spelling() -> None:
    assert mirror_config({**PARAMS, "sources": ["Vault", "docs"]}).sources == ("vault", "docs")
    assert mirror_config({**PARAMS, "sources": "docs, vault"}).sources == ("docs", "vault")
    assert mirror_config({**PARAMS, "sources": []}).sources == ()
