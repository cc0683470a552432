"""The mirror prefix's lease against moto's S3 server: conditional writes decide every race."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from botocore.exceptions import ClientError

from aps_mirror.errors import ApsMirrorError, ConfigError
from aps_mirror.mirror.lease import MirrorLease, MirrorLocked, ServerClock, lease_key

PREFIX = "mirror/acme"
KEY = lease_key(PREFIX)


def lease_for(s3, bucket: str, holder: str, ttl: float = 600, prefix: str = PREFIX) -> MirrorLease:
    return MirrorLease(s3, bucket, prefix, holder=holder, command=f"sync {holder}", ttl=ttl)


def stored(s3, bucket: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=KEY)["Body"].read())


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_moto_enforces_the_conditional_puts_the_lease_relies_on(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key=KEY, Body=b"1", IfNoneMatch="*")
    for condition in ({"IfNoneMatch": "*"}, {"IfMatch": '"0123456789abcdef0123456789abcdef"'}):
        with pytest.raises(ClientError) as refused:
            s3.put_object(Bucket=bucket, Key=KEY, Body=b"2", **condition)
        assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    s3.put_object(Bucket=bucket, Key=KEY, Body=b"3", IfMatch=first["ETag"])
    with pytest.raises(ClientError) as stale:
        s3.put_object(Bucket=bucket, Key=KEY, Body=b"4", IfMatch=first["ETag"])
    assert stale.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"3"


def test_second_holder_waits_then_is_refused_with_the_holder_named(s3, bucket):
    first = lease_for(s3, bucket, "run-A")
    held = first.acquire()
    second = lease_for(s3, bucket, "run-B")
    started = time.monotonic()
    with pytest.raises(MirrorLocked) as locked:
        second.acquire(wait_seconds=1.0)
    waited = time.monotonic() - started
    assert 1.0 <= waited < 5
    message = str(locked.value)
    assert isinstance(locked.value, ApsMirrorError) and "\n" not in message
    assert f"s3://{bucket}/{PREFIX} " in message
    assert "run run-A (sync run-A on " in message and f"since {held.acquired_at}" in message
    assert f"expires at {held.expires_at}" in message and "--break-lock" in message
    assert locked.value.lease.holder == "run-A"
    assert stored(s3, bucket)["holder"] == "run-A"


def test_a_waiting_run_takes_the_lease_once_the_holder_releases(s3, bucket):
    first = lease_for(s3, bucket, "run-A")
    first.acquire()
    threading.Timer(0.7, first.release).start()
    second = lease_for(s3, bucket, "run-B")
    started = time.monotonic()
    taken = second.acquire(wait_seconds=10)
    assert time.monotonic() - started >= 0.7
    assert taken.holder == "run-B" and stored(s3, bucket)["holder"] == "run-B"


def test_release_then_another_run_acquires(s3, bucket):
    first = lease_for(s3, bucket, "run-A")
    first.acquire()
    first.release()
    assert stored(s3, bucket)["state"] == "released"
    second = lease_for(s3, bucket, "run-B")
    assert second.acquire().holder == "run-B"
    first.release()  # no longer ours: left alone
    assert stored(s3, bucket)["holder"] == "run-B" and stored(s3, bucket)["state"] == "held"


def test_same_holder_reenters_renews_and_keeps_the_lease_until_its_last_process_leaves(s3, bucket):
    task_1 = lease_for(s3, bucket, "dag-run-7")
    task_2 = lease_for(s3, bucket, "dag-run-7")  # another mapped task of the same DAG run
    before = task_1.acquire()
    time.sleep(1.2)  # more than the clock's resolution (S3's Date header has whole seconds)
    joined = task_2.acquire()
    assert joined.acquired_at == before.acquired_at and joined.holder == "dag-run-7"
    assert joined.expires_at > before.expires_at
    time.sleep(1.2)
    assert task_1.acquire().expires_at > joined.expires_at  # acquiring again renews
    assert set(stored(s3, bucket)["sessions"]) == {task_1.session, task_2.session}

    task_1.release()  # one task done: its sibling still works, the mirror stays locked
    assert stored(s3, bucket)["state"] == "held"
    with pytest.raises(MirrorLocked, match="run dag-run-7"):
        lease_for(s3, bucket, "cli-run").acquire()
    task_2.release()
    assert stored(s3, bucket)["state"] == "released"
    assert lease_for(s3, bucket, "cli-run").acquire().holder == "cli-run"


def test_an_expired_lease_is_taken_over_and_its_old_holder_finds_out(s3, bucket):
    dead = lease_for(s3, bucket, "run-dead", ttl=1)
    dead.acquire()  # no heartbeat: the process "died"
    with pytest.raises(MirrorLocked):
        lease_for(s3, bucket, "run-B").acquire()
    time.sleep(1.5)
    taker = lease_for(s3, bucket, "run-B")
    assert taker.acquire().holder == "run-B"
    with pytest.raises(MirrorLocked, match="run run-B .*took it"):
        dead.renew()
    assert dead.lost
    dead.release()
    assert stored(s3, bucket)["holder"] == "run-B" and stored(s3, bucket)["state"] == "held"


def test_the_heartbeat_keeps_the_lease_alive_past_its_ttl(s3, bucket):
    holder = lease_for(s3, bucket, "run-A", ttl=2)
    with holder.hold() as lease:
        time.sleep(4.5)  # more than two ttls
        with pytest.raises(MirrorLocked, match="run run-A"):
            lease_for(s3, bucket, "run-B").acquire()
        lease.check()
        assert not lease.lost
    assert stored(s3, bucket)["state"] == "released"
    assert lease_for(s3, bucket, "run-B").acquire().holder == "run-B"


def test_a_lost_lease_is_flagged_by_the_heartbeat_and_raised_by_check(s3, bucket):
    victim = lease_for(s3, bucket, "run-A", ttl=2)
    with victim.hold() as lease:
        lease.check()
        lease_for(s3, bucket, "operator").break_lock()
        lease_for(s3, bucket, "run-C").acquire()
        assert wait_until(lambda: lease.lost, timeout=3)
        with pytest.raises(MirrorLocked) as lost:
            lease.check()
        assert "run run-C" in str(lost.value) and "\n" not in str(lost.value)
        assert lost.value.lease.holder == "run-C"
    assert stored(s3, bucket)["holder"] == "run-C" and stored(s3, bucket)["state"] == "held"


def test_a_heartbeat_that_finds_the_lease_broken_stops_the_run(s3, bucket):
    victim = lease_for(s3, bucket, "run-A", ttl=2)
    with victim.hold() as lease:
        lease_for(s3, bucket, "operator").break_lock()
        assert wait_until(lambda: lease.lost, timeout=3)
        with pytest.raises(MirrorLocked, match="operator .*broke it"):
            lease.check()
    assert stored(s3, bucket)["state"] == "released"


@pytest.mark.parametrize("round_", range(3))
def test_a_race_of_runs_leaves_exactly_one_winner(s3, bucket, round_):
    prefix = f"race/{round_}"
    racers = [lease_for(s3, bucket, f"run-{i}", prefix=prefix) for i in range(8)]
    start = threading.Barrier(len(racers))
    winners, refusals = [], []

    def race(lease: MirrorLease) -> None:
        start.wait()
        try:
            lease.acquire()
            winners.append(lease.holder)
        except MirrorLocked as exc:
            refusals.append(exc.lease.holder)

    threads = [threading.Thread(target=race, args=(lease,)) for lease in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(refusals) == 7
    assert set(refusals) == set(winners)  # every loser names the one winner
    body = json.loads(s3.get_object(Bucket=bucket, Key=lease_key(prefix))["Body"].read())
    assert body["holder"] == winners[0] and len(body["sessions"]) == 1


def test_processes_of_one_run_racing_all_join(s3, bucket):
    tasks = [lease_for(s3, bucket, "dag-run-9") for _ in range(6)]
    start = threading.Barrier(len(tasks))
    failures = []

    def join(lease: MirrorLease) -> None:
        start.wait()
        try:
            lease.acquire()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=join, args=(lease,)) for lease in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert set(stored(s3, bucket)["sessions"]) == {t.session for t in tasks}  # no join overwritten


def test_break_lock_releases_a_dead_runs_lease_and_names_it(s3, bucket, caplog):
    operator = lease_for(s3, bucket, "operator")
    assert operator.break_lock() is None  # nothing to break
    lease_for(s3, bucket, "run-dead").acquire()
    with caplog.at_level("WARNING", logger="aps_mirror.mirror.lease"):
        broken = operator.break_lock()
    assert broken.holder == "run-dead"
    assert "broke the lease of run run-dead (sync run-dead on " in caplog.text
    body = stored(s3, bucket)
    assert body["state"] == "released" and body["released_by"].startswith("operator (sync operator")
    assert lease_for(s3, bucket, "run-B").acquire().holder == "run-B"


def test_a_damaged_lock_refuses_in_one_line_until_broken(s3, bucket):
    s3.put_object(Bucket=bucket, Key=KEY, Body=b"{not json")
    lease = lease_for(s3, bucket, "run-A")
    with pytest.raises(ConfigError) as damaged:
        lease.acquire()
    assert "--break-lock" in str(damaged.value) and "\n" not in str(damaged.value)
    assert lease_for(s3, bucket, "operator").break_lock().holder.startswith("(unknown")
    assert lease.acquire().holder == "run-A"


def test_server_clock_follows_s3_not_a_skewed_local_clock(s3, bucket):
    clock = ServerClock()
    now = time.time()
    an_hour_ago = format_datetime(datetime.fromtimestamp(now - 3600, timezone.utc), usegmt=True)
    clock.observe({"HTTPHeaders": {"date": an_hour_ago}}, now, now + 0.01)
    assert abs(clock.now() - (datetime.now(timezone.utc) - timedelta(hours=1))) < timedelta(seconds=1.1)
    # Real answers from S3 (moto runs on this host's clock) replace the disagreeing estimate.
    lease = MirrorLease(s3, bucket, PREFIX, holder="run-A", clock=clock)
    lease.acquire()
    assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=1.1)
    expires = datetime.fromisoformat(stored(s3, bucket)["expires_at"])
    assert abs(expires - datetime.now(timezone.utc) - timedelta(seconds=600)) < timedelta(seconds=2)


def _hold_and_die(endpoint: str, bucket: str, ready) -> None:
    """In a child process: take the lease, say so, then die without releasing it."""
    import os
    import signal

    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    lease_for(s3, bucket, "killed-run").acquire()
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_lease_left_by_a_killed_process_of_this_host_is_not_waited_out(s3, s3_endpoint, bucket):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    ready = context.Event()
    child = context.Process(target=_hold_and_die, args=(s3_endpoint, bucket, ready))
    child.start()
    child.join(timeout=60)
    assert ready.is_set() and child.exitcode < 0
    assert stored(s3, bucket)["holder"] == "killed-run" and stored(s3, bucket)["state"] == "held"
    started = time.monotonic()
    lease_for(s3, bucket, "next-run").acquire(wait_seconds=0)  # no wait for the 10-minute ttl
    assert stored(s3, bucket)["holder"] == "next-run" and time.monotonic() - started < 30


def test_a_live_process_of_this_host_keeps_its_lease(s3, bucket):
    lease_for(s3, bucket, "live-run").acquire()  # this very process: alive
    with pytest.raises(MirrorLocked, match="live-run"):
        lease_for(s3, bucket, "other-run").acquire(wait_seconds=0)
