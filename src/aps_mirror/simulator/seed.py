"""Deterministic starting data: ``demo`` (3 projects, 52 files), ``acc-full``, ``empty``, ``generate:...``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Union

from . import generate
from .model import ACC, C4R, DOCUMENT, FILE, FUSION, Folder, User
from .state import Account

SEED_START = 1705309200.0  # 2024-01-15T09:00:00Z: seeded history is in the past
HOUR = 3600.0
DAY = 86400.0

DEMO_USER = User("SIMU5ER7DEMO", "sam.builder", "sam.builder@example.com", "Sam", "Builder")
VIEWER_USER = User("SIMV1EWER2NA", "val.viewer", "val.viewer@example.com", "Val", "Viewer")  # not an admin


@dataclass(frozen=True)
class F:
    """A seeded file: size of its tip (bytes; None = pseudo-random), version count, deleted?"""

    size: int | None = None
    versions: int = 1
    deleted: bool = False
    kind: str = FILE  # FILE, DOCUMENT (Plans) or C4R (cloud-workshared Revit)
    published: bool = True  # False: a cloud model with no downloadable version yet
    reserved: bool = False  # locked by a user


@dataclass(frozen=True)
class D:
    """A seeded folder with flags: an ACC system folder, admin-only, or deleted (hidden)."""

    tree: Tree
    system: bool = False
    restricted: bool = False
    hidden: bool = False


Tree = dict[str, Union["Tree", F, D]]

RIVERSIDE: Tree = {
    "Project Files": {
        "Project Charter.pdf": F(184_321),
        "a:b?.txt": F(1_234),
        "Old Survey.dwg": F(96_000, versions=2, deleted=True),
        "Architecture": {
            "Riverside Tower - Architecture.rvt": F(2_457_600, versions=3),
            "Level 01 Floor Plan.dwg": F(351_744, versions=2),
            "Level 02 Floor Plan.dwg": F(338_112),
            "Details": {
                "Stair Detail A-501.dwg": F(120_500),
                "Ärger – Détails.pdf": F(75_210),
                "Window Schedule.xlsx": F(24_576),
                "Facade Study  (copy).jpg": F(512_000),
            },
        },
        "Structure": {
            "Riverside Tower - Structure.rvt": F(9_000_000, versions=2),
            "Structural Calcs.pdf": F(1_048_576),
            "Foundation Model.ifc": F(640_000),
            "Rebar": {
                "Rebar Schedule.xlsx": F(18_432, versions=4),
                "Rebar Shop Drawings.pdf": F(402_000),
            },
        },
        "MEP": {
            "Riverside Tower - MEP.rvt": F(1_800_000),
            "Coordination Model.nwd": F(1_200_000),
            "Clash Report 2024-03.pdf": F(88_000),
            "Placeholder (empty).txt": F(0),
        },
        "Site Photos": {
            "IMG_0001.jpg": F(),
            "IMG_0002.jpg": F(),
            "IMG_0003.jpg": F(),
            "IMG_0004.jpg": F(),
            "IMG_0005.jpg": F(),
        },
    },
    "Plans": {
        "A-101 Ground Floor Plan.pdf": F(230_000, versions=2),
        "A-102 First Floor Plan.pdf": F(),
        "S-201 Sections.pdf": F(),
        "Superseded": {
            "A-101 Ground Floor Plan (rev B).pdf": F(),
        },
    },
}

HARBOR: Tree = {
    "Project Files": {
        "Bridge Model.rvt": F(3_100_000, versions=2),
        "Survey": {
            "Point Cloud Extract.ifc": F(),
            "Survey Notes.txt": F(4_200),
            "2023": {
                "Survey 2023-06.dwg": F(),
                "Survey 2023-09.dwg": F(),
            },
        },
        "Reports": {
            "Inspection Report Q1.pdf": F(),
            "Inspection Report Q2.pdf": F(),
            "Inspection Report Q3.pdf": F(),
            "Load Rating.xlsx": F(versions=3),
            "Cost Estimate  (draft).xlsx": F(),
        },
        "Navisworks": {
            "Bridge Federated.nwd": F(2_000_000),
        },
    },
    "Plans": {
        "B-001 General Arrangement.pdf": F(),
        "B-002 Elevations.pdf": F(),
        "Empty Folder": {},
    },
}

GIMBAL: Tree = {
    "Gimbal Assembly": {
        "Gimbal v2.f3d": F(1_500_000, versions=4),
        "Motor Mount.f3d": F(versions=2),
        "Yaw Arm.step": F(),
        "Gimbal v1 (archive).f3d": F(),
        "Exports": {
            "Motor Mount.step": F(),
            "Gimbal Render.jpg": F(),
            "BOM.xlsx": F(),
        },
    },
    "Electronics": {
        "Controller Board.step": F(),
        "Wiring Notes.txt": F(2_048),
        "Pinout.pdf": F(),
    },
    "Documentation": {
        "Assembly Guide.pdf": F(),
        "Release Notes v1.0.txt": F(),
    },
}

DEMO = [
    ("Northwind Construction", ACC, [("Riverside Tower", RIVERSIDE), ("Harbor Bridge Retrofit", HARBOR)]),
    ("Fusion Design Team", FUSION, [("Drone Gimbal", GIMBAL)]),
]
EMPTY = [("Empty Hub", ACC, [("Empty Project", {"Project Files": {}, "Plans": {}})])]

# acc-full: the demo plus what a real ACC project holds and a mirror must handle (or skip).
RIVERSIDE_FULL: Tree = {
    **RIVERSIDE,
    "Project Files": D({
        **RIVERSIDE["Project Files"],  # type: ignore[dict-item]
        "Riverside Central.rvt": F(kind=C4R, published=False),  # never published: nothing to download
        "Riverside Linked.rvt": F(1_300_000, kind=C4R, versions=2),
        "Locked Specification.pdf": F(61_000, reserved=True),
        "Contracts": D({"Main Contract.pdf": F(220_000)}, restricted=True),
    }, restricted=True),
    "Plans": {
        **RIVERSIDE["Plans"],  # type: ignore[dict-item]
        "Sheets": {"A-201 Elevations": F(150_000, kind=DOCUMENT), "A-202 Sections": F(kind=DOCUMENT, versions=2)},
    },
    "Photos": D({"site-0001.jpg": F()}, system=True),
    "Recycle Bin": D({}, system=True),
    "issue_5d0c0a52-7c4e-4a8b-9f57-2b8d6c1e9a01": D({"attachment.png": F()}, system=True),
    "checklist_0f5b7c3e-8a1d-4b92-a6e4-5c3d2b1a0f9e": D({}, system=True),
    "ProjectTb": D({}, system=True),
    "2f8e4c1a-6b3d-4e5f-9a7c-8d1b0e2f3a4c": D({"export.json": F(2_000)}, system=True),
    "Old Archive": D({"Obsolete.dwg": F(40_000)}, hidden=True),
}
ACC_FULL = [
    ("Northwind Construction", ACC, [("Riverside Tower", RIVERSIDE_FULL), ("Harbor Bridge Retrofit", HARBOR)]),
    ("Fusion Design Team", FUSION, [("Drone Gimbal", GIMBAL)]),
]
SEEDS = {"demo": DEMO, "acc-full": ACC_FULL, "empty": EMPTY}


class _Timeline:
    """Seeded objects are created a few hours apart, in a fixed order."""

    def __init__(self) -> None:
        self.t = SEED_START

    def next(self, step: float = 5 * HOUR) -> float:
        self.t += step
        return self.t


def _pseudo_size(seed: str, name: str, number: int) -> int:
    h = int.from_bytes(hashlib.sha1(f"{seed}|size|{name}|{number}".encode()).digest()[:4], "big")
    return 1_000 + h % 600_000


def _grow(account: Account, folder: Folder, tree: Tree, clock: _Timeline) -> None:
    for name, node in tree.items():
        if isinstance(node, (dict, D)):
            flags = node if isinstance(node, D) else D(node)
            child = account.add_folder(folder, name, when=clock.next(), system=flags.system,
                                       restricted=flags.restricted, hidden=flags.hidden)
            _grow(account, child, flags.tree, clock)
            continue
        sizes = [_pseudo_size(account.seed, name, n) for n in range(1, node.versions + 1)]
        if node.size is not None:
            sizes[-1] = node.size
        item = account.add_item(folder, name, sizes[0], when=clock.next(), kind=node.kind,
                                published=node.published, reserved=node.reserved)
        for size in sizes[1:]:
            account.add_version(item, size=size, when=clock.next(3 * DAY))
        if node.deleted:
            account.delete_item(item, when=clock.next(DAY))


def build(account: Account, seed: str) -> None:
    """Populate ``account`` with the named seed (``demo``, ``acc-full``, ``empty``) or a
    ``generate:<settings>`` spec; unknown names -> ValueError."""
    if seed.startswith("generate:"):
        generate.build(account, seed[len("generate:"):])
        return
    try:
        spec = SEEDS[seed]
    except KeyError:
        raise ValueError(f"unknown seed {seed!r}; choose from {sorted(SEEDS)}") from None
    clock = _Timeline()
    with account.lock:
        for hub_name, kind, projects in spec:
            hub = account.add_hub(hub_name, kind)
            for project_name, tree in projects:
                project = account.add_project(hub, project_name, when=clock.next())
                assert project.root is not None
                _grow(account, project.root, tree, clock)
