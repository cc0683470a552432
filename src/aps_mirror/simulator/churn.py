"""Random between-run changes for benchmarks: a new file or a new version in n folders of f of the projects."""

from __future__ import annotations

import math
import random
from typing import Any

from .model import Folder, Project
from .state import Account


def _folders(project: Project) -> list[Folder]:
    """Visible, non-system folders of a project, top folders first (the root excluded)."""
    assert project.root is not None
    found: list[Folder] = []
    stack = [f for f in project.root.folders if not f.hidden and not f.system]
    while stack:
        folder = stack.pop(0)
        found.append(folder)
        stack.extend(f for f in folder.folders if not f.hidden and not f.system)
    return found


def churn(account: Account, projects_fraction: float, folders_per_project: int,
          seed: int | str) -> dict[str, Any]:
    """Apply the changes; returns ``{"projects": k, "changes": [{kind, project_id, folder_id, item_id,
    version_id}]}``. The same seed on the same account state gives the same changes."""
    if not 0.0 <= projects_fraction <= 1.0 or folders_per_project < 0:
        raise ValueError("projects_fraction must be in [0, 1] and folders_per_project >= 0")
    rng = random.Random(str(seed))
    changes: list[dict[str, Any]] = []
    with account.lock:
        projects = [p for hub in account.hubs for p in hub.projects]
        count = min(len(projects), math.ceil(projects_fraction * len(projects)))
        chosen = rng.sample(projects, count)
        for project in chosen:
            folders = _folders(project)
            for folder in rng.sample(folders, min(folders_per_project, len(folders))):
                live = [i for i in folder.items if not i.hidden and i.tip.downloadable]
                if live and rng.random() < 0.5:
                    item = rng.choice(live)
                    version = account.add_version(item, size=rng.randint(100, 64_000))
                    kind = "version"
                else:
                    name = f"churn-{rng.getrandbits(32):08x}.txt"
                    item = account.add_item(folder, name, rng.randint(100, 64_000))
                    version = item.tip
                    kind = "file"
                changes.append({"kind": kind, "project_id": project.id, "folder_id": folder.id,
                                "item_id": item.id, "version_id": version.id})
    return {"projects": count, "changes": changes}
