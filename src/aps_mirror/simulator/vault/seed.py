"""Deterministic Vault data: the accounts, the ``demo`` vault "Engineering", ``generate:vault_files=...``
and random between-run check-ins (churn)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Union

from .. import generate
from ..seed import DEMO_USER, SEED_START, VIEWER_USER
from .model import RELEASED, Folder, VaultUser
from .state import VaultStore

HOUR = 3600.0
DAY = 86400.0
ADMIN = "Administrator"
BUILDER = "sam.builder"

# Vault's default administrator has a blank password: fine on the server, refused by the gateway.
USERS = (
    VaultUser("2", ADMIN, "admin@example.com", "", admin=True),
    VaultUser("3", BUILDER, DEMO_USER.email, "Builder2024", autodesk_user_id=DEMO_USER.user_id),
    VaultUser("4", "val.viewer", VIEWER_USER.email, "Viewer2024", autodesk_user_id=VIEWER_USER.user_id),
)


@dataclass(frozen=True)
class VF:
    """A seeded file: tip size (None = pseudo-random), versions, the versions that are Released,
    the versions that start a new revision, cloaked (admins only), checked out (by the admin)."""

    size: int | None = None
    versions: int = 1
    released: tuple[int, ...] = ()
    new_revision: tuple[int, ...] = ()
    cloaked: bool = False
    checked_out: bool = False


Tree = dict[str, Union["Tree", VF]]

ENGINEERING: Tree = {
    "Readme.txt": VF(2_048),
    "Designs": {
        "Gearbox": {
            "Gearbox Assembly.iam": VF(1_250_000, versions=3, released=(2,), new_revision=(3,)),
            "Housing.ipt": VF(2_400_000, versions=2, checked_out=True),
            "Shaft.ipt": VF(310_000),
            "Gear 32T.ipt": VF(480_000, versions=4),
            "Drawings": {
                "Gearbox Assembly.idw": VF(820_000, versions=2, released=(2,)),
                "Housing.idw": VF(640_000),
            },
        },
        "Conveyor": {
            "Conveyor Frame.iam": VF(3_100_000, versions=2),
            "Roller Ø50.ipt": VF(150_000),
            "Belt Tensioner [v2].ipt": VF(95_000),
            "Ünïcødé 設計図.dwg": VF(210_000),
        },
    },
    "Standards": {
        "Templates": {
            "Standard.idw": VF(60_000),
            "Standard.ipt": VF(45_000),
        },
        "Materials Library.xlsx": VF(34_000, versions=2),
        "ISO 2768 – Tolerances.pdf": VF(180_000),
    },
    "Projects": {
        "2024-117 Customer #42 & Partners": {
            "Quote 100% Final.pdf": VF(120_000, versions=3),
            "O'Brien's Bracket.ipt": VF(70_000),
            "Release+Candidate {draft}.dwg": VF(260_000),
            "Facade Study  (copy).jpg": VF(512_000),
            "Salary Plan.xlsx": VF(20_000, cloaked=True),
            "Placeholder (empty).txt": VF(0),
        },
        "Archive": {},
    },
}
# (folder holding the link, linked folder): "$/Designs" shows a shortcut to the templates.
ENGINEERING_LINKS = [(("Designs",), ("Standards", "Templates"))]
SEEDS: dict[str, list[tuple[str, Tree, list[Any]]]] = {
    "demo": [("Engineering", ENGINEERING, ENGINEERING_LINKS)],
    "acc-full": [("Engineering", ENGINEERING, ENGINEERING_LINKS)],
    "empty": [("Vault", {}, [])],
}


class _Timeline:
    """Seeded objects are created hours apart; the odd fraction gives dates all 7 digits."""

    def __init__(self) -> None:
        self.t = SEED_START

    def next(self, step: float = 5 * HOUR) -> float:
        self.t += step + 0.2277149
        return self.t


def _pseudo_size(seed: str, name: str, number: int) -> int:
    h = int.from_bytes(hashlib.sha1(f"{seed}|vault-size|{name}|{number}".encode()).digest()[:4], "big")
    return 1_000 + h % 600_000


def _grow(store: VaultStore, folder: Folder, tree: Tree, clock: _Timeline) -> None:
    for name, node in tree.items():
        if isinstance(node, dict):
            _grow(store, store.add_folder(folder, name, BUILDER, when=clock.next()), node, clock)
            continue
        sizes = [_pseudo_size(store.seed, name, n) for n in range(1, node.versions + 1)]
        if node.size is not None:
            sizes[-1] = node.size
        user = ADMIN if node.cloaked else BUILDER
        state = RELEASED if 1 in node.released else "Work in Progress"
        file = store.add_file(folder, name, sizes[0], user, when=clock.next(), cloaked=node.cloaked, state=state)
        revision = "A"
        for number, size in enumerate(sizes[1:], start=2):
            if number in node.new_revision:
                revision = chr(ord(revision) + 1)
            store.check_out(file, user, when=clock.next(DAY))
            store.check_in(file, size, user, when=clock.next(2 * DAY), revision=revision,
                           state=RELEASED if number in node.released else None)
        if node.checked_out:
            store.check_out(file, ADMIN, when=clock.next(DAY))


def _generate(store: VaultStore, spec: str) -> None:
    """``vault_files`` files over ``vault_folders`` folders nested ``fanout`` per parent, each
    with ``vault_versions`` versions: a vault of 100,000 files builds in about a second."""
    s = generate.parse(spec)
    if s["vault_files"] <= 0:
        return
    t = generate.START
    vault = store.add_vault("Generated Vault", when=t)
    folders: list[Folder] = [vault.root]
    for k in range(s["vault_folders"]):
        parent = folders[k // s["fanout"]]
        folders.append(store.add_folder(parent, f"Folder {k + 1:05d}", BUILDER, when=t + k))
    for n in range(s["vault_files"]):
        folder = folders[n % len(folders)]
        size = 1 + int.from_bytes(hashlib.blake2b(f"v{n}".encode(), digest_size=4).digest(), "big") % s["max_size"]
        ext = generate.EXTENSIONS[n % len(generate.EXTENSIONS)]
        file = store.add_file(folder, f"part-{n:07d}.{ext}", size, BUILDER, when=t + n * 0.01, checked=False)
        for v in range(1, s["vault_versions"]):
            store.check_in(file, 1 + (size >> v) % s["max_size"], BUILDER, when=t + n * 0.01 + v)


def build(store: VaultStore, seed: str) -> None:
    """Populate ``store`` for a simulator seed (every named seed has its vault; ``generate:``
    specs have one when ``vault_files`` > 0)."""
    if seed.startswith("generate:"):
        _generate(store, seed[len("generate:"):])
        return
    clock = _Timeline()
    with store.lock:
        for name, tree, links in SEEDS.get(seed, []):
            vault = store.add_vault(name, when=clock.next())
            _grow(store, vault.root, tree, clock)
            for holder, target in links:
                store.add_link(store.folder_by_path(vault, holder), store.folder_by_path(vault, target), BUILDER,
                               when=clock.next())


def churn(store: VaultStore, fraction: float, seed: int | str) -> dict[str, Any]:
    """Check in a new version of ``fraction`` of each vault's files (not checked out ones),
    chosen by ``seed``; returns the new version ids per vault."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be in [0, 1]")
    rng = random.Random(seed)
    changed: dict[str, list[str]] = {}
    with store.lock:
        for vault in store.vaults:
            candidates = [f for f in vault.files.values() if f.checked_out_by is None]
            picked = rng.sample(candidates, round(len(candidates) * fraction))
            changed[vault.id] = [store.check_in(f, 1 + rng.randrange(max(2, f.tip.size * 2)), BUILDER).id
                                 for f in picked]
    return {"versions": changed, "count": sum(len(v) for v in changed.values())}
