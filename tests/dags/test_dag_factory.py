"""`build_mirror_dag` and friends: a DAG file of a few lines declares several mirrors that never
share an asset, every argument is checked where it enters, and a missing pool is reported."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

TWO_MIRRORS = '''
from aps_mirror.airflow_provider.dags import build_catalog_digest_dag, build_mirror_dag

build_mirror_dag("mirror_a", bucket="bucket-a", prefix="a")
build_mirror_dag("mirror_b", bucket="bucket-b", prefix="b/docs", project_filter="Plans*", versions="all",
                 max_delete="5", max_batches=8, autodesk_conn_id="autodesk_b", aws_conn_id="aws_b",
                 schedule="0 2 * * *", pool="autodesk_b_api", deadline="04:30")
build_catalog_digest_dag("digest_b", mirror="mirror_b", bucket="bucket-b", prefix="b/docs")
'''


def bag_of(folder: Path, source: str, name: str = "mirrors.py") -> Any:
    from airflow.dag_processing.dagbag import DagBag

    path = folder / name
    path.write_text(textwrap.dedent(source))
    return DagBag(dag_folder=str(path))


def defaults(dag: Any) -> dict[str, Any]:
    return {key: dag.params.get_param(key).value for key in dag.params}


def test_one_file_declares_two_mirrors_with_their_own_defaults(tmp_path: Path) -> None:
    bag = bag_of(tmp_path, TWO_MIRRORS)
    assert bag.import_errors == {}
    assert set(bag.dags) == {"mirror_a", "mirror_b", "digest_b"}
    a, b = bag.dags["mirror_a"], bag.dags["mirror_b"]
    for dag in (a, b):  # the DAG belongs to the file that declared it, not to the factory
        assert Path(dag.fileloc) == tmp_path / "mirrors.py"
    assert (defaults(a)["bucket"], defaults(a)["prefix"], defaults(a)["project_filter"]) == ("bucket-a", "a", [])
    assert defaults(b) == {**defaults(a), "bucket": "bucket-b", "prefix": "b/docs",
                                "project_filter": ["Plans*"], "versions": "all", "max_delete": "5",
                                "max_batches": 8, "autodesk_conn_id": "autodesk_b", "aws_conn_id": "aws_b"}
    assert a.schedule == "@daily" and b.schedule == "0 2 * * *"
    assert a.get_task("sync_batch").pool == "autodesk_api" and b.get_task("sync_batch").pool == "autodesk_b_api"
    (deadline,) = b.deadline
    assert deadline.interval.total_seconds() == 4.5 * 3600
    assert deadline.callback.kwargs["mirror"] == "mirror_b"
    assert "mirror_b" in b.doc_md and "autodesk_b_api" in b.doc_md


def test_two_mirrors_never_share_an_asset_and_a_digest_follows_its_own(tmp_path: Path) -> None:
    bag = bag_of(tmp_path, TWO_MIRRORS)
    outlets = {dag_id: {(o.name, o.uri) for t in bag.dags[dag_id].tasks for o in t.outlets}
               for dag_id in ("mirror_a", "mirror_b")}
    assert ("mirror_a", "s3://bucket-a/a") in outlets["mirror_a"]
    assert ("mirror_b_catalog_files", "s3://bucket-b/b/docs/_aps_mirror/catalog/files") in outlets["mirror_b"]
    assert len(outlets["mirror_a"]) == len(outlets["mirror_b"]) == 7  # the mirror and six tables
    names = {dag_id: {name for name, _ in found} for dag_id, found in outlets.items()}
    uris = {dag_id: {uri for _, uri in found} for dag_id, found in outlets.items()}
    assert not names["mirror_a"] & names["mirror_b"] and not uris["mirror_a"] & uris["mirror_b"]
    digest = bag.dags["digest_b"].timetable.asset_condition
    assert {(a.name, a.uri) for a in digest.objects} <= outlets["mirror_b"]
    assert {a.name for a in digest.objects} == {"mirror_b_catalog_files", "mirror_b_catalog_events"}


@pytest.mark.parametrize(("call", "message"), [
    ('build_mirror_dag("m", bucket="b-1", prefix="p", project_filer=["x"])',
     "build_mirror_dag: unknown option(s) project_filer; the options are "),
    ('build_mirror_dag("m", bucket="b-1", prefix="p", workers=0)', "workers 0 is not accepted"),
    ('build_mirror_dag("m", bucket="Bad_Bucket", prefix="p")', "bucket 'Bad_Bucket' is not accepted"),
    ('build_mirror_dag("m", bucket="b-1", prefix="a/_aps_mirror")', "prefix 'a/_aps_mirror' is not accepted"),
    ('build_mirror_dag("m", bucket="b-1", prefix="p", max_delete="200%")', "max_delete '200%' is not accepted"),
    ('build_mirror_dag("m", bucket="b-1", prefix="p", max_batches=0)', "max_batches 0 is not accepted"),
    ('build_mirror_dag("m", bucket="b-1", prefix="p", deadline="25:00")', "deadline '25:00' is not accepted"),
    ('build_mirror_dag("m m", bucket="b-1", prefix="p")', "dag_id 'm m' is not accepted"),
    ('build_mirror_dag("m", bucket="b-1", prefix="p", pool="")', "pool '' is not accepted"),
    ('build_mirror_dag("m", bucket="b-1", prefix="p", aws_conn_id=None)', "aws_conn_id None is not accepted"),
    ('build_mirror_dag("m", bucket="b-1", prefix="p", webhook_callback_url="http://airflow.example.com/aps-mirror/webhooks/dm")',
     "webhook_callback_url 'http://airflow.example.com/aps-mirror/webhooks/dm' is not accepted: Autodesk must call it "
     "over https"),
    ('build_keepalive_dag("k", conn_ids="autodesk_default")', "conn_ids 'autodesk_default' is not accepted"),
    ('build_keepalive_dag("k", warn_after_days=15)', "warn_after_days 15 is not accepted"),
    ('build_catalog_digest_dag("d", mirror="no such", bucket="b-1", prefix="p")', "dag_id 'no such' is not accepted"),
    ('build_catalog_digest_dag("d", mirror="m", bucket="b-1", prefix="/p")', "prefix '/p' is not accepted"),
])
def test_a_bad_argument_is_a_one_line_import_error(tmp_path: Path, call: str, message: str) -> None:
    assert_one_line_import_error(tmp_path, call, message)


def assert_one_line_import_error(folder: Path, call: str, message: str) -> None:
    """A DAG file making `call` of a factory fails to import with one line starting `message`."""
    bag = bag_of(folder, "from aps_mirror.airflow_provider.dags import *\n" + call + "\n")
    (error,) = bag.import_errors.values()
    last = error.strip().splitlines()[-1]
    assert last.startswith("aps_mirror.errors.ConfigError: " + message), last
    assert bag.dags == {}


def test_the_keepalive_factory_keeps_the_repository_dag(tmp_path: Path) -> None:
    from tests.airflow_provider.airflow_home import REPO

    bag = bag_of(tmp_path, (REPO / "dags" / "aps_mirror_keepalive.py").read_text(), "keepalive.py")
    dag = bag.dags["aps_mirror_keepalive"]
    assert dag.schedule.total_seconds() == 12 * 3600
    assert defaults(dag) == {"conn_ids": ["autodesk_default"], "warn_after_days": 10}
    assert "Every 12 hours" in dag.doc_md


def test_a_missing_pool_is_reported_with_the_command_to_create_it(airflow_db: Path) -> None:
    from airflow.models.pool import Pool

    from aps_mirror.airflow_provider.pools import pool_exists, require_pool
    from aps_mirror.errors import ConfigError

    Pool.create_or_update_pool("factory_test_pool", 2, "", include_deferred=False)
    assert pool_exists("factory_test_pool") is True
    require_pool("factory_test_pool")
    assert pool_exists("no_such_pool") is False
    with pytest.raises(ConfigError, match=r"^Pool 'no_such_pool' does not exist, so sync_batch would never "
                                          r"start: create it with `airflow pools set no_such_pool 4 "):
        require_pool("no_such_pool")


def test_a_callback_url_adds_the_webhook_task_beside_the_night(tmp_path: Path) -> None:
    bag = bag_of(tmp_path, "from aps_mirror.airflow_provider.dags import build_mirror_dag\n"
                           "build_mirror_dag('m', bucket='b-1', prefix='p')\n"
                           "build_mirror_dag('live', bucket='b-2', prefix='p', "
                           "webhook_callback_url='https://airflow.example.com/aps-mirror/webhooks/dm')\n")
    assert "ensure_webhooks" not in bag.dags["m"].task_dict
    task = bag.dags["live"].get_task("ensure_webhooks")
    assert task.upstream_task_ids == set() and task.downstream_task_ids == set(), "it never holds the night back"
