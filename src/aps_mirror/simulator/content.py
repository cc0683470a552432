"""File bodies: generated on demand from (seed, content key) and never stored, or uploaded and kept."""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator

CHUNK = 1 << 20  # bytes per independently generated block


def _block(seed: str, key: str, index: int, length: int) -> bytes:
    return random.Random(f"{seed}|{key}|{index}").randbytes(length)


def iter_bytes(seed: str, key: str, size: int, start: int = 0, end: int | None = None,
               piece: int = 256 * 1024) -> Iterator[bytes]:
    """Yield bytes ``start..end`` (inclusive end, default last byte) of a body in pieces."""
    last = size - 1 if end is None else min(end, size - 1)
    pos = start
    while pos <= last:
        index, offset = divmod(pos, CHUNK)
        block_len = min(CHUNK, size - index * CHUNK)
        block = _block(seed, key, index, block_len)
        stop = min(block_len, offset + (last - pos + 1))
        while offset < stop:
            take = min(piece, stop - offset)
            yield block[offset:offset + take]
            offset += take
            pos += take


def body(seed: str, key: str, size: int) -> bytes:
    """The whole body (fine for the few-MB files of the seeds)."""
    return b"".join(iter_bytes(seed, key, size))


class DigestCache:
    """SHA-1 of each body, computed once on first use; only the digest is kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._digests: dict[tuple[str, str, int], str] = {}

    def sha1(self, seed: str, key: str, size: int) -> str:
        cache_key = (seed, key, size)
        with self._lock:
            found = self._digests.get(cache_key)
        if found is not None:
            return found
        digest = hashlib.sha1()
        for piece in iter_bytes(seed, key, size, piece=CHUNK):
            digest.update(piece)
        value = digest.hexdigest()
        with self._lock:
            self._digests[cache_key] = value
        return value


class Blobs:
    """Bodies uploaded through the write side, kept in memory with their SHA-1 (restores in tests
    move megabytes, not gigabytes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: dict[str, tuple[bytes, str]] = {}

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self._bodies[key] = (data, hashlib.sha1(data).hexdigest())

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._bodies.get(key)
        return None if found is None else found[0]

    def sha1(self, key: str) -> str | None:
        with self._lock:
            found = self._bodies.get(key)
        return None if found is None else found[1]

    def drop(self, key: str) -> None:
        with self._lock:
            self._bodies.pop(key, None)


def iter_slice(data: bytes, start: int = 0, end: int | None = None, piece: int = 256 * 1024) -> Iterator[bytes]:
    """Yield bytes ``start..end`` (inclusive end) of a stored body in pieces."""
    stop = len(data) if end is None else min(end + 1, len(data))
    for pos in range(start, stop, piece):
        yield data[pos:min(pos + piece, stop)]
