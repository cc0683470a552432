"""build_report: project freshness and status from `runs`, nightly changes from `events`, failures."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from rich.console import Console

from aps_mirror.catalog.records import EventAction
from aps_mirror.catalog.report import build_report
from aps_mirror.cli.report import print_rich
from aps_mirror.mirror.manifest import ManifestStore
from tests.catalog.factories import PREFIX, event, manifest, project_run

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)


def at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat()


def pid(name: str) -> str:
    return f"b.00000000-0000-4000-8000-{name.encode().hex()[:12].rjust(12, '0')}"


def record(writer, name: str, hours_ago: float, status: str = "success", events=(), **fields) -> None:
    run_id = f"night-{hours_ago}"
    writer.record_project_run(
        project_run(run_id, project_id=pid(name), project_name=name, status=status,
                    started_at=at(hours_ago + 0.5), finished_at=at(hours_ago), **fields),
        [event(action, f"i.{name}.{n}", run_id=run_id, project_id=pid(name), at=at(hours_ago + 0.25),
               path=f"Project Files/{name}-{n}.rvt", **extra)
         for n, (action, extra) in enumerate(events)])


@pytest.fixture
def report_setup(s3, bucket, writer):
    store = ManifestStore(s3, bucket, PREFIX)
    for name in ("Fresh", "Stale", "Broken", "Partial", "Untouched", "Ancient"):
        m = manifest()
        m.project_id, m.project_name = pid(name), name
        store.save(m)
    # A success 40 days ago, published then: outside the report's window, still known.
    record(writer, "Ancient", 40 * 24)
    writer.publish_snapshot(now=NOW - timedelta(days=40))
    record(writer, "Fresh", 30, events=[(EventAction.COPIED, {"size": 10})] * 2)
    record(writer, "Fresh", 10, bytes_copied=5000, api_calls=40, api_calls_throttled=3,
           events=[(EventAction.COPIED, {"size": 5000}), (EventAction.NEW_VERSION, {}),
                   (EventAction.RENAMED, {}), (EventAction.MOVED, {}), (EventAction.DELETED, {}),
                   (EventAction.TRASHED, {})])
    record(writer, "Stale", 50)
    record(writer, "Broken", 20)
    record(writer, "Broken", 2, status="failed", errors=["ApiError: 503 from folder contents"], api_calls=3)
    record(writer, "Partial", 3, status="partial", files_failed=1, errors=["Plans/x.pdf: 500"],
           events=[(EventAction.FAILED, {"reason": "500 from download"})])
    record(writer, "Newborn", 1, status="failed", errors=["ConfigError: no access"])  # no manifest
    writer.publish_snapshot(now=NOW)


def test_project_statuses_from_runs(s3, bucket, report_setup):
    report = build_report(s3, bucket, PREFIX, stale_after_hours=36, days=30, now=NOW)
    status = {p.project_name: p for p in report.projects}
    assert {n: p.status for n, p in status.items()} == {
        "Fresh": "ok", "Stale": "stale", "Broken": "failing", "Partial": "failing",
        "Untouched": "never", "Ancient": "stale", "Newborn": "failing"}
    assert status["Fresh"].freshness_hours == 10.0 and status["Fresh"].last_error is None
    assert status["Fresh"].last_run_at == status["Fresh"].last_success_at == at(10)[:19] + "+00:00"
    assert status["Broken"].freshness_hours == 20.0 and status["Broken"].last_run_at == at(2)[:19] + "+00:00"
    assert status["Broken"].last_error == "ApiError: 503 from folder contents"
    assert status["Ancient"].last_success_at and status["Ancient"].freshness_hours == 40 * 24
    assert status["Untouched"].last_run_at is None and status["Untouched"].freshness_hours is None
    assert (status["Newborn"].files, status["Newborn"].last_success_at) == (0, None)
    assert (status["Fresh"].files, status["Fresh"].bytes, status["Fresh"].unavailable) == (3, 380, 2)
    assert report.totals == {"hubs": 1, "projects": 7, "files": 18, "bytes": 6 * 380, "unavailable": 12,
                             "failing_projects": 3}


def test_nightly_changes_and_failures(s3, bucket, report_setup):
    report = build_report(s3, bucket, PREFIX, days=30, now=NOW)
    days = {n.day: n for n in report.nights}
    assert [n.day for n in report.nights] == sorted(days, reverse=True), "newest first"
    assert "2025-01-29" not in days, "older than the window"
    night = days["2025-03-10"]  # Fresh 10 h ago, Broken 2 h ago, Partial 3 h ago, Newborn 1 h ago
    assert (night.copied, night.new_versions, night.renamed, night.moved, night.deleted) == (1, 1, 1, 1, 2)
    assert (night.failed, night.bytes_copied, night.api_calls, night.throttled) == (1, 5000, 43, 3)
    assert days["2025-03-09"].copied == 2

    assert [(f.kind, f.project_name) for f in report.failures] == [
        ("project", "Newborn"), ("project", "Broken"), ("file", "Partial")]
    broken = report.failures[1]
    assert broken.reason == "ApiError: 503 from folder contents" and broken.path is None
    partial = report.failures[2]
    assert (partial.path, partial.reason, partial.hub_name) == ("Project Files/Partial-0.rvt", "500 from download", "Acme")
    assert len(build_report(s3, bucket, PREFIX, now=NOW, max_failures=1).failures) == 1


def test_report_renders_as_json_text_and_rich(s3, bucket, report_setup):
    report = build_report(s3, bucket, PREFIX, now=NOW)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["totals"]["failing_projects"] == 3 and data["bucket"] == bucket
    assert {"day", "copied", "throttled"} <= set(data["nights"][0])
    text = report.format_text()
    assert "Broken" in text and "failing" in text and "ApiError: 503" in text and "2025-03-10" in text
    console = Console(record=True, width=220, force_terminal=True)
    print_rich(report, console)
    rendered = console.export_text()
    assert "Projects" in rendered and "Fresh" in rendered and "Failures" in rendered
    assert "Verification: unverified: no verification recorded in the last 30 days" in rendered
    assert data["verification"]["status"] == "unverified" and data["projects"][0]["verify_faults"] is None


def test_an_empty_catalog_is_an_empty_report(s3, bucket):
    report = build_report(s3, bucket, PREFIX, now=NOW)
    assert report.projects == [] and report.nights == [] and report.failures == []
    assert report.totals == {"hubs": 0, "projects": 0, "files": 0, "bytes": 0, "unavailable": 0,
                             "failing_projects": 0}
    assert "no runs" in report.format_text()
    assert report.verification.status == "unverified" and "aps-mirror verify" in report.verification.advice
