"""Download a file version's bytes in Range chunks: each below the Vault Gateway's payload quota,
each checked (206, Content-Range, Content-Length, one total for all), hashed (SHA-256) and
written to the sink as it streams, so memory stays at one piece whatever the file size.

A body that breaks off mid-chunk is resumed from the byte where it stopped (the sink already
holds what came), under the transport's retry policy.
"""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import closing
from dataclasses import dataclass
from typing import Protocol

import requests

from aps_mirror.aps.retry import make_retrying
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.errors import ApiError, ConfigError, TransferError

from .models import Download

log = logging.getLogger(__name__)

# The Vault Gateway answers 500 for a response over 39,313,920 bytes (Autodesk: "~37.5 MB").
GATEWAY_PAYLOAD_QUOTA = 39_313_920
DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024
PIECE_SIZE = 1024 * 1024  # what is held in memory at a time
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass
class _Progress:
    offset: int = 0
    total: int | None = None


def _checked_span(response: requests.Response, start: int, end: int) -> tuple[int, int]:
    """(last byte of this answer, total size) after checking its status and headers."""
    length = response.headers.get("Content-Length")
    if response.status_code == 200:
        if start != 0:
            raise TransferError(f"Vault answered a Range request from byte {start} with the whole file; "
                                "it cannot be resumed.")
        if length is None or not length.isdigit():
            raise TransferError("Vault answered without a Content-Length.")
        return int(length) - 1, int(length)
    if response.status_code != 206:
        raise TransferError(f"Vault answered a Range request with HTTP {response.status_code}.")
    found = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
    if found is None or found.group(3) == "*":
        raise TransferError(f"Vault sent an unusable Content-Range {response.headers.get('Content-Range')!r}.")
    first, last, total = int(found.group(1)), int(found.group(2)), int(found.group(3))
    if first != start or last > end or last >= total or (last < end and last != total - 1):
        raise TransferError(f"Vault sent bytes {first}-{last}/{total} for the range {start}-{end}.")
    if length != str(last - first + 1):
        raise TransferError(f"Vault sent Content-Length {length} for bytes {first}-{last}.")
    return last, total


def ranged_download(transport: ApsTransport, path: str, sink: Sink, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                    expected_size: int | None = None) -> Download:
    """Stream ``path`` (a ``file-versions/{id}/content`` URL) into ``sink`` in Range chunks.

    ``expected_size``: the listed size, when reliable (not checked out); a different total is
    a TransferError, as is any answer that does not fit the range asked for."""
    if not 0 < chunk_size <= GATEWAY_PAYLOAD_QUOTA:
        raise ConfigError(f"A Vault download chunk must be 1 to {GATEWAY_PAYLOAD_QUOTA} bytes (the Vault "
                          f"Gateway's payload quota), not {chunk_size}.")
    digest = hashlib.sha256()
    progress = _Progress(total=expected_size)

    def fetch_from_offset() -> None:
        """Fetch from the current offset to the end of its chunk, writing as it comes."""
        start = progress.offset
        end = start + chunk_size - 1
        if progress.total:
            end = min(end, progress.total - 1)
        try:
            response = transport.request("GET", path, headers={"Range": f"bytes={start}-{end}"}, stream=True)
        except ApiError as exc:
            if exc.status == 416 and start == 0:  # an empty file has no byte 0
                if progress.total:
                    raise TransferError(f"Vault has no bytes for {path}; expected {progress.total}.") from None
                progress.total = 0
                return
            raise
        except requests.RequestException as exc:  # the transport already retried these
            raise TransferError(f"Vault could not be reached for {path}: {type(exc).__name__}.") from None
        with closing(response):
            last, total = _checked_span(response, start, end)
            if progress.total is not None and total != progress.total:
                raise TransferError(f"Vault has {total} bytes for {path}; expected {progress.total}.")
            progress.total = total
            for piece in response.iter_content(PIECE_SIZE):
                sink.write(piece)
                digest.update(piece)
                progress.offset += len(piece)
        if progress.offset != last + 1:  # a short body: resume where it stopped
            raise requests.exceptions.ChunkedEncodingError(f"body ended at byte {progress.offset} of {last + 1}")

    retrying = make_retrying(transport.retry_policy, describe=f"GET {path} (body)")
    while True:  # at least one request, even for an empty file: Vault must agree it is empty
        retrying(fetch_from_offset)
        if progress.total is not None and progress.offset >= progress.total:
            break
    if progress.offset != progress.total:
        raise TransferError(f"Vault delivered {progress.offset} bytes for {path}; expected {progress.total}.")
    log.debug("Downloaded %s: %d bytes", path, progress.offset)
    return Download(progress.offset, digest.hexdigest())
