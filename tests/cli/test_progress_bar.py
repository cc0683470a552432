"""Progress while syncing: listeners see every file and byte; the CLI draws bars on a terminal
and keeps its log lines elsewhere. Real runs: the simulator over HTTP -> moto's S3 server."""

from __future__ import annotations

import io
import logging
import os
import pty
import subprocess
import sys
import threading

from rich.console import Console

from aps_mirror.cli.progress_bar import progress_bars, wants_progress_bars
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine
from aps_mirror.mirror.progress import Progress, ProgressListener
from tests.cli.test_cli import cli, env  # noqa: F401  (the fixture, with the live servers)
from tests.mirror.test_selection import selected_by_default

BAR = "━"  # what rich draws bars with


class Recorder(ProgressListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int, int]] = []
        self.totals: dict[str, tuple[int, int]] = {}
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def _add(self, event: str, progress: Progress) -> None:
        with self._lock:
            self.events.append((event, progress.label, progress.files, progress.bytes))
            self.totals[progress.label] = (progress.total_files, progress.total_bytes)
            self.threads.add(threading.current_thread().name)

    def started(self, progress: Progress) -> None:
        self._add("started", progress)

    def updated(self, progress: Progress) -> None:
        self._add("updated", progress)

    def finished(self, progress: Progress) -> None:
        self._add("finished", progress)


def test_listeners_get_every_file_and_byte_of_a_real_sync(simulator, aps, s3, bucket):
    recorder = Recorder()
    engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix="mirror"), progress_listeners=[recorder])
    results = [engine.sync_project(p) for p in engine.list_projects()]

    assert len(recorder.totals) == len(results) == 3  # one Progress per project with work
    for result in results:
        mine = [e for e in recorder.events if e[1] == result.project]
        assert mine[0] == ("started", result.project, 0, 0)
        assert mine[-1] == ("finished", result.project, result.files_copied, result.bytes_copied)
        assert recorder.totals[result.project] == (result.files_copied, result.bytes_copied)
        updates = [e for e in mine if e[0] == "updated"]
        assert len(updates) >= result.files_copied  # at least one per file, more per chunk
        assert [e[3] for e in updates] == sorted(e[3] for e in updates), "bytes only grow"
        assert {e[2] for e in updates} >= set(range(1, result.files_copied + 1))
    assert any(t.startswith("aps-mirror-copy") for t in recorder.threads), "updates come from the copy threads"
    assert sum(r.files_copied for r in results) == len(selected_by_default(simulator.sim))

    # Nothing to copy: no Progress, no events.
    recorder.events.clear()
    engine.sync_project(engine.list_projects()[0])
    assert recorder.events == []


def test_a_failing_listener_never_fails_the_copies(simulator, aps, s3, bucket, caplog):
    class Broken(ProgressListener):
        calls = 0

        def updated(self, progress: Progress) -> None:
            Broken.calls += 1
            raise RuntimeError("display gone")

    engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix="mirror", project_filter=("Drone*",)),
                          progress_listeners=[Broken()])
    with caplog.at_level(logging.WARNING, logger="aps_mirror.progress"):
        (result,) = [engine.sync_project(p) for p in engine.list_projects()]
    assert result.files_copied > 1 and result.files_failed == 0
    assert 1 <= Broken.calls <= 1 + engine.config.workers  # dropped at once (threads may race)
    assert caplog.text.count("display gone") == 1


def test_rich_bars_show_each_project(simulator, aps, s3, bucket):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    progress_log = logging.getLogger("aps_mirror.progress")
    level = progress_log.level
    with progress_bars(console) as bars:
        assert progress_log.getEffectiveLevel() == logging.WARNING  # the bars replace those lines
        engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix="mirror"), progress_listeners=[bars])
        results = [engine.sync_project(p) for p in engine.list_projects()]
        assert len(bars.bars.tasks) == 3 and all(t.finished for t in bars.bars.tasks)
    assert progress_log.level == level
    screen = out.getvalue()
    for result in results:
        assert result.project in screen
        assert f"{result.files_copied}/{result.files_copied} files" in screen
    assert BAR in screen and "100%" in screen
    assert not wants_progress_bars(io.StringIO())


def test_without_a_terminal_the_cli_logs_progress_lines(simulator, bucket, env):  # noqa: F811
    result = cli("sync", "--bucket", bucket, env=env)  # stderr is a pipe
    assert result.returncode == 0, result.stderr
    assert "(done in" in result.stderr and "files," in result.stderr and "ETA" in result.stderr
    assert BAR not in result.stderr and "\x1b[" not in result.stderr
    assert "project(s):" in result.stdout


def test_on_a_terminal_the_cli_draws_bars(simulator, bucket, env):  # noqa: F811
    env = dict(env, TERM="xterm", COLUMNS="160")
    env.pop("NO_COLOR", None)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "aps_mirror.cli.main", "sync", "--bucket", bucket],
                            env=env, stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed with the process
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = proc.communicate(timeout=300)
    reader.join(10)
    os.close(master)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, screen[-3000:]
    assert BAR in screen and "Drone Gimbal" in screen and "files" in screen
    assert "(done in" not in screen, "the bars replace the periodic progress lines"
    assert "project(s) selected" in screen, "other log lines still show, above the bars"
    assert "project(s):" in stdout and BAR not in stdout
