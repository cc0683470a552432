"""Synthetic accounts for scale: ``generate:projects=1000,folders=100,files=2`` (nested folders, lazy bodies).

The ``vault_*`` settings build a Vault beside them (simulator/vault/seed.py), e.g.
``generate:projects=0,vault_files=100000``.
"""

from __future__ import annotations

import hashlib

from .model import ACC, Folder
from .state import Account

DEFAULTS = {"projects": 10, "folders": 20, "files": 2, "hubs": 1, "fanout": 3, "versions": 1, "max_size": 65536,
            "vault_files": 0, "vault_folders": 100, "vault_versions": 1}
EXTENSIONS = ("pdf", "dwg", "rvt", "xlsx", "ifc", "txt", "jpg", "nwd")
START = 1705309200.0  # 2024-01-15T09:00:00Z


def parse(spec: str) -> dict[str, int]:
    """``"projects=1000,folders=100,files=2"`` -> settings (unknown keys and bad numbers are a ValueError)."""
    settings = dict(DEFAULTS)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in DEFAULTS:
            raise ValueError(f"bad generate setting {part!r}; keys: {', '.join(DEFAULTS)}")
        settings[key] = int(value)
        if settings[key] < (1 if key in ("hubs", "fanout", "versions", "max_size", "vault_versions") else 0):
            raise ValueError(f"generate setting {key} is too small")
    return settings


def build(account: Account, spec: str) -> None:
    """Populate ``account``: per project one "Project Files" top folder holding ``folders - 1``
    subfolders nested ``fanout`` per parent (so several levels deep), ``files`` files in each folder."""
    s = parse(spec)
    t = START
    with account.lock:
        for h in range(s["hubs"]):
            hub = account.add_hub(f"Generated Hub {h + 1}", ACC)
            for p in range(s["projects"]):
                t += 60.0
                project = account.add_project(hub, f"Project {h + 1}-{p + 1:05d}", when=t)
                assert project.root is not None
                folders: list[Folder] = []
                for k in range(s["folders"]):
                    parent = project.root if k == 0 else folders[(k - 1) // s["fanout"]]
                    name = "Project Files" if k == 0 else f"Folder {k:04d}"
                    folders.append(account.add_folder(parent, name, when=t + k))
                for k, folder in enumerate(folders):
                    for j in range(s["files"]):
                        digest = hashlib.blake2b(f"{p}/{k}/{j}".encode(), digest_size=4).digest()
                        n = int.from_bytes(digest, "big")
                        name = f"doc-{k:04d}-{j}.{EXTENSIONS[n % len(EXTENSIONS)]}"
                        item = account.add_item(folder, name, 1 + n % s["max_size"], when=t + k)
                        for v in range(1, s["versions"]):
                            account.add_version(item, size=1 + (n >> v) % s["max_size"], when=t + k + v)
