"""mirror.json against moto's S3 server: the account a prefix belongs to, and segments kept for good."""

from __future__ import annotations

import json
import threading

import pytest

from aps_mirror.errors import ConfigError
from aps_mirror.mirror.mirror_record import MirrorRecord, SegmentTaken, record_key

PREFIX = "mirror/acme"


def stored(s3, bucket: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=record_key(PREFIX))["Body"].read())


def stored_segments(s3, bucket: str) -> dict[str, str]:
    """Project id -> segment, as mirror.json holds them."""
    return {p: e["segment"] for p, e in stored(s3, bucket)["projects"].items()}


def saved_record(s3, bucket: str, hubs: dict[str, str], client_id: str = "app-1") -> MirrorRecord:
    record = MirrorRecord.load(s3, bucket, PREFIX)
    record.claim(hubs, client_id)
    for hub_id, name in hubs.items():
        record.assign("hub", hub_id, name.lower(), name=name)
    record.save()
    return record


def test_a_new_prefix_loads_empty_and_its_first_save_creates_the_record(s3, bucket):
    record = MirrorRecord.load(s3, bucket, PREFIX)
    assert not record.exists and record.hubs == {} and record.segment_for("hub", "h1") is None
    record.claim({"h1": "Acme"}, "app-1")
    assert record.assign("hub", "h1", "Acme", name="Acme") == "Acme"
    assert record.assign("project", "p1", "Tower", name="Tower", hub_id="h1") == "Tower"
    record.save()
    body = stored(s3, bucket)
    assert body["format"] == 1 and body["client_id"] == "app-1" and body["created_at"]
    assert body["hubs"] == {"h1": {"name": "Acme", "segment": "Acme"}}
    assert body["projects"] == {"p1": {"hub_id": "h1", "name": "Tower", "segment": "Tower"}}
    again = MirrorRecord.load(s3, bucket, PREFIX)
    assert again.exists and again.segment_for("project", "p1") == "Tower" and again.etag == record.etag


def test_another_account_is_refused_in_one_line(s3, bucket):
    saved_record(s3, bucket, {"h1": "Acme", "h2": "Beta"})
    record = MirrorRecord.load(s3, bucket, PREFIX)
    with pytest.raises(ConfigError) as refused:
        record.claim({"h9": "Gamma"}, "app-2")
    assert str(refused.value) == (
        f"s3://{bucket}/{PREFIX} holds the mirror of hubs Acme, Beta; this connection sees Gamma. "
        "Use another prefix, or pass --allow-other-account to mirror both here.")
    with pytest.raises(ConfigError, match="this connection sees no hub"):
        record.claim([], "app-2")
    record.claim(["h2", "h9"], "app-2")  # shares a hub: the same account
    assert record.client_id == "app-1"  # the app that created the mirror stays recorded


def test_allow_other_account_mirrors_both_in_one_prefix(s3, bucket):
    saved_record(s3, bucket, {"h1": "Acme"})
    record = MirrorRecord.load(s3, bucket, PREFIX)
    record.claim({"h9": "Gamma"}, "app-2", allow_other_account=True)
    record.assign("hub", "h9", "Gamma", name="Gamma")
    record.save()
    assert set(stored(s3, bucket)["hubs"]) == {"h1", "h9"}


def test_a_renamed_hub_moves_and_its_former_segment_is_never_given_to_a_newcomer(s3, bucket):
    saved_record(s3, bucket, {"h1": "Acme"})
    record = MirrorRecord.load(s3, bucket, PREFIX)
    # Renamed in Autodesk: the hub moves to its new segment; the old one stays its own.
    assert record.assign("hub", "h1", "acme corp", name="Acme Corp") == "acme corp"
    assert record.former_segments("hub", "h1") == ["acme"]
    assert record.taken_segments("hub") == {"acme", "acme corp"}
    for segment in ("acme", "acme corp"):
        with pytest.raises(SegmentTaken) as taken:
            record.assign("hub", "h2", segment, name="ACME")
        assert taken.value.clashes == [("hub", "h2")] and record.segment_for("hub", "h2") is None
    record.assign("project", "p1", "plans", name="Plans", hub_id="h1")
    assert record.taken_segments("project", "h1") == {"plans"}
    assert record.taken_segments("project", "h2") == set()  # segments are per hub
    record.save()
    assert stored(s3, bucket)["hubs"] == {"h1": {"name": "Acme Corp", "segment": "acme corp", "former": ["acme"]}}
    assert MirrorRecord.load(s3, bucket, PREFIX).taken_segments("hub") == {"acme", "acme corp"}  # read back
    # Renamed back: the hub takes its old segment again, the other one becomes former.
    assert record.assign("hub", "h1", "acme", name="Acme") == "acme"
    assert record.former_segments("hub", "h1") == ["acme corp"]


def test_two_writers_adding_different_projects_both_land(s3, bucket):
    saved_record(s3, bucket, {"h1": "Acme"})
    first, second = MirrorRecord.load(s3, bucket, PREFIX), MirrorRecord.load(s3, bucket, PREFIX)
    first.assign("project", "p1", "plans", name="Plans", hub_id="h1")
    second.assign("project", "p2", "docs", name="Docs", hub_id="h1")
    first.save()
    second.save()  # conflicts, re-reads, merges
    assert stored_segments(s3, bucket) == {"p1": "plans", "p2": "docs"}
    assert second.etag == s3.head_object(Bucket=bucket, Key=record_key(PREFIX))["ETag"]


def test_a_segment_taken_meanwhile_is_refused_and_the_rest_is_saved(s3, bucket):
    saved_record(s3, bucket, {"h1": "Acme"})
    first, second = MirrorRecord.load(s3, bucket, PREFIX), MirrorRecord.load(s3, bucket, PREFIX)
    first.assign("project", "p1", "plans", name="Plans", hub_id="h1")
    first.assign("project", "p3", "site", name="Site", hub_id="h1")
    second.assign("project", "p2", "plans", name="plans", hub_id="h1")  # same segment, other project
    second.assign("project", "p3", "site-2", name="Site", hub_id="h1")  # same project, other segment
    second.assign("project", "p4", "docs", name="Docs", hub_id="h1")
    first.save()
    with pytest.raises(SegmentTaken) as taken:
        second.save()
    assert sorted(taken.value.clashes) == [("project", "p2"), ("project", "p3")]
    assert stored_segments(s3, bucket) == {"p1": "plans", "p3": "site", "p4": "docs"}
    # The record holds the merged state: the caller assigns again and saves.
    assert second.segment_for("project", "p3") == "site" and "plans" in second.taken_segments("project", "h1")
    assert second.assign("project", "p3", "site", name="Site", hub_id="h1") == "site"
    assert second.assign("project", "p2", "plans~2", name="plans", hub_id="h1") == "plans~2"
    second.save()
    assert stored(s3, bucket)["projects"]["p2"]["segment"] == "plans~2"


def test_tasks_racing_to_add_their_projects_on_a_new_prefix_all_land(s3, bucket):
    start = threading.Barrier(6)
    failures = []

    def add(n: int) -> None:
        try:
            record = MirrorRecord.load(s3, bucket, PREFIX)
            record.claim({"h1": "Acme"}, "app-1")
            record.assign("hub", "h1", "acme", name="Acme")
            record.assign("project", f"p{n}", f"project-{n}", name=f"Project {n}", hub_id="h1")
            start.wait()
            record.save()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert stored(s3, bucket)["hubs"] == {"h1": {"name": "Acme", "segment": "acme"}}
    assert stored_segments(s3, bucket) == {f"p{n}": f"project-{n}" for n in range(6)}


def test_two_accounts_racing_for_a_new_prefix_the_second_is_refused(s3, bucket):
    mine, theirs = MirrorRecord.load(s3, bucket, PREFIX), MirrorRecord.load(s3, bucket, PREFIX)
    mine.claim({"h1": "Acme"}, "app-1")
    mine.assign("hub", "h1", "acme", name="Acme")
    theirs.claim({"h9": "Gamma"}, "app-2")
    theirs.assign("hub", "h9", "gamma", name="Gamma")
    mine.save()
    with pytest.raises(ConfigError, match="holds the mirror of hubs Acme; this connection sees Gamma"):
        theirs.save()
    assert set(stored(s3, bucket)["hubs"]) == {"h1"}


def test_saving_an_unchanged_record_writes_nothing(s3, bucket):
    record = saved_record(s3, bucket, {"h1": "Acme"})
    etag = record.etag
    again = MirrorRecord.load(s3, bucket, PREFIX)
    again.claim({"h1": "Acme"}, "app-1")
    assert again.assign("hub", "h1", "acme", name="Acme") == "acme"
    again.save()
    assert s3.head_object(Bucket=bucket, Key=record_key(PREFIX))["ETag"] == etag


def test_a_damaged_record_refuses_in_one_line(s3, bucket):
    s3.put_object(Bucket=bucket, Key=record_key(PREFIX), Body=b'{"format": 1, "hubs": {"h1": {}}}')
    with pytest.raises(ConfigError) as damaged:
        MirrorRecord.load(s3, bucket, PREFIX)
    assert "mirror.json is damaged (KeyError" in str(damaged.value) and "\n" not in str(damaged.value)
