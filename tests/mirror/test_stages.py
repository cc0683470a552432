"""Each sync stage alone, as rclone tests its march and its checks: deciding (`plan`), listing
(`walk_project` against the simulator over HTTP, counting its requests), the key space's one
collision rule (`assign_segments`, property tests), the manifest's bookkeeping and selection.

The whole engine is tested in test_engine.py and its neighbours; here a stage gets its inputs
built by hand (or by the stage before it) and its output is checked field by field.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aps_mirror.aps.parsing import parse_timestamp
from aps_mirror.mirror.config import MirrorConfig
from aps_mirror.mirror.keys import (MAX_SEGMENT_BYTES, RESERVED_NAMES, SOURCE_ROOTS, ProjectKeys,
                                    assign_hub_segments, assign_segments, collision_key, safe_segment)
from aps_mirror.mirror.manifest import Manifest, ManifestEntry
from aps_mirror.mirror.plan import ActionKind, decide, plan
from aps_mirror.mirror.selection import is_selected
from aps_mirror.mirror.sources.records import FileVersion, Listing, ProjectRef, RemoteFile
from aps_mirror.mirror.walk import list_projects, walk_project
from aps_mirror.simulator import Simulator, SimulatorServer
from tests.conftest import FAST_RETRY, connection_for

PREFIX = "mirror"


# -- values built by hand ------------------------------------------------------------------

def version(version_id: str, number: int, name: str = "Plan.dwg", size: int | None = 100) -> FileVersion:
    return FileVersion(id=version_id, version_number=number, name=name, size=size,
                       file_type=name.rpartition(".")[2] or None,
                       modified_at=datetime(2024, 3, number, tzinfo=timezone.utc))


def remote(item_id: str = "item-1", version_id: str = "v1", number: int = 1, name: str = "Plan.dwg",
           folders: tuple[str, ...] = ("Project Files",), folder_id: str = "folder-1",
           size: int | None = 100) -> RemoteFile:
    return RemoteFile(item_id, version(version_id, number, name, size), folders, folders, safe_segment(name),
                      folder_id)


def entry(version_id: str = "v1", number: int = 1, key: str = "mirror/h/p/Project Files/Plan.dwg",
          deleted_at: str | None = None, folder_id: str = "folder-1", **fields) -> ManifestEntry:
    return ManifestEntry(version_id=version_id, version_number=number, key=key, size=100,
                         source_path="Project Files/Plan.dwg", deleted_at=deleted_at, folder_id=folder_id,
                         **fields)


def project_manifest() -> Manifest:
    return Manifest("hub-1", "project-1", "Project", "Hub")


KEY = "mirror/h/p/Project Files/Plan.dwg"
MOVED_KEY = "mirror/h/p/Project Files/Archive/Plan.dwg"


# -- plan: one pure predicate per file -----------------------------------------------------

@pytest.mark.parametrize(("listed", "held", "key", "kind", "reason", "replaces"), [
    (remote(), None, KEY, ActionKind.COPY, "new item", None),
    (remote(), entry(deleted_at="2024-03-01T00:00:00+00:00"), KEY, ActionKind.COPY, "restored item", None),
    # A restored item at another place: the object the delete policy kept at its old place is
    # referenced by nothing once the new one is recorded, so it is journalled too.
    (remote(), entry(deleted_at="2024-03-01T00:00:00+00:00"), MOVED_KEY, ActionKind.COPY, "restored item", KEY),
    (remote(version_id="v3", number=3), entry("v2", 2), KEY, ActionKind.COPY,
     "new version v3 (mirror has v2)", None),
    # New bytes at a new place: a download (bytes changed), and the old place becomes stale.
    (remote(version_id="v3", number=3), entry("v2", 2), MOVED_KEY, ActionKind.COPY,
     "new version v3 (mirror has v2)", KEY),
    (remote(), entry(), MOVED_KEY, ActionKind.SERVER_COPY, "renamed or moved", KEY),
    (remote(), entry(), KEY, ActionKind.SKIP, "unchanged", None),
], ids=["new", "restored", "restored-elsewhere", "new-version", "new-version-moved", "moved", "unchanged"])
def test_decide_every_branch_with_its_reason(listed, held, key, kind, reason, replaces):
    action = decide(listed, key, held)
    assert (action.kind, action.reason, action.key) == (kind, reason, key)
    assert action.previous is held and action.remote is listed
    if kind is not ActionKind.SKIP:  # recording it journals the place it makes stale, if any
        manifest = project_manifest()
        if held is not None:
            manifest.items[listed.item_id] = held
        manifest.record_copy(listed, key, 100, None)
        assert manifest.pending_deletes == ([replaces] if replaces else [])


def test_action_size_is_the_versions_stored_size_or_zero():
    assert decide(remote(size=2048), KEY, None).size == 2048
    assert decide(remote(size=None), KEY, None).size == 0


def test_plan_decides_each_file_by_its_own_key_and_entry_and_logs_why(caplog):
    files = [remote("new", "n1"), remote("same", "s1"), remote("moved", "m1"), remote("bumped", "b2", 2)]
    keys = {"new": "k/new", "same": "k/same", "moved": "k/moved-here", "bumped": "k/bumped"}
    entries = {"same": entry("s1", key="k/same"), "moved": entry("m1", key="k/moved-from"),
               "bumped": entry("b1", 1, key="k/bumped"), "not-listed": entry("x1", key="k/x")}
    with caplog.at_level(logging.DEBUG, logger="aps_mirror.mirror.plan"):
        actions = plan(files, keys, entries)
    assert [(a.remote.item_id, a.kind, a.key) for a in actions] == [
        ("new", ActionKind.COPY, "k/new"), ("same", ActionKind.SKIP, "k/same"),
        ("moved", ActionKind.SERVER_COPY, "k/moved-here"), ("bumped", ActionKind.COPY, "k/bumped")]
    assert [r.getMessage() for r in caplog.records] == [
        "copy k/new: new item", "skip k/same: unchanged", "server_copy k/moved-here: renamed or moved",
        "copy k/bumped: new version v2 (mirror has v1)"]
    assert plan([], {}, entries) == [], "an item that is not listed is not the planner's business"


# -- walk_project against the simulator over HTTP -----------------------------------------

def requests(simulator) -> dict[str, int]:
    return {k: v for k, v in simulator.sim.stats()["requests"].items() if v}


def project_ref(aps, name: str) -> ProjectRef:
    return next(p for p in list_projects(aps) if p.project_name == name)


def keys_of(project: ProjectRef) -> ProjectKeys:
    return ProjectKeys(PREFIX, project.hub_segment, project.project_segment)


def mirror_of(listing: Listing, project: ProjectRef) -> Manifest:
    """The manifest a clean run leaves after copying every listed file."""
    manifest = Manifest(project.hub_id, project.project_id, project.project_name, project.hub_name)
    for listed in listing.files:
        manifest.record_copy(listed, keys_of(project).file_key(listed.folder_segments, listed.name_segment),
                             listed.version.size or 0, None)
    manifest.record_walk(listing, project, set(), True, "selection")
    return manifest


def walk_again(aps, project: ProjectRef, manifest: Manifest) -> Listing:
    return walk_project(aps, project, manifest, parse_timestamp(manifest.root_rollup), full_walk=False)


def visible_folders(sim, project_name: str, top: str) -> dict[tuple[str, ...], str]:
    """Path -> id of a top folder and every visible folder below it, from the simulator's state."""
    root = sim.account.project_by_name(project_name).root
    found, stack = {}, [f for f in root.folders if f.name == top]
    while stack:
        folder = stack.pop()
        if not folder.hidden:
            found[folder.path] = folder.id
            stack.extend(folder.folders)
    return found


@pytest.fixture
def riverside(aps) -> ProjectRef:
    return project_ref(aps, "Riverside Tower")


def test_a_first_walk_lists_each_selected_folder_once_and_every_visible_file(simulator, aps, riverside):
    sim = simulator.sim
    sim.reset_stats()
    listing = walk_project(aps, riverside)
    folders = visible_folders(sim, "Riverside Tower", "Project Files")
    truth = {f.item_id: f for f in sim.iter_files() if f.project == "Riverside Tower" and f.path[0] == "Project Files"}
    assert {f.item_id: (f.folder_names, f.version.id) for f in listing.files} == \
        {i: (f.path, f.tip.id) for i, f in truth.items()}
    assert listing.full_walk and listing.complete and not listing.pruned and not listing.unavailable
    assert {w.names: w.id for w in listing.folders.values()} == folders
    assert listing.unwalked_tops == {sim.folder_id(riverside.project_id, ("Plans",))}
    assert requests(simulator) == {"folder": 1, "top_folders": 1, "folder_contents": len(folders)}
    # A deleted item (hidden, behind a tombstone) is neither a file nor unavailable.
    deleted = [f.item_id for f in sim.iter_files(include_deleted=True)
               if f.project == "Riverside Tower" and f.item_id not in truth and f.path[0] == "Project Files"]
    assert deleted, "the demo seed has a deleted file in Project Files"
    assert not set(deleted) & ({f.item_id for f in listing.files} | {u.item_id for u in listing.unavailable})


def test_an_unchanged_project_costs_one_call(simulator, aps, riverside):
    manifest = mirror_of(walk_project(aps, riverside), riverside)
    simulator.sim.reset_stats()
    listing = walk_again(aps, riverside, manifest)
    assert listing.project_unchanged and not listing.files and listing.folders_listed == 0
    assert requests(simulator) == {"folder": 1}
    assert manifest.covered_items(listing) == set(manifest.items)
    assert manifest.gone_items(listing, manifest.covered_items(listing)) == []


def test_a_change_deep_down_lists_only_the_path_to_it(simulator, aps, riverside):
    sim = simulator.sim
    manifest = mirror_of(walk_project(aps, riverside), riverside)
    path = ("Project Files", "Structure", "Rebar")
    folders = visible_folders(sim, "Riverside Tower", "Project Files")
    new_id = sim.add_file(riverside.project_id, folders[path], "Rebar Schedule (rev 2).xlsx", size=10)
    sim.reset_stats()
    listing = walk_again(aps, riverside, manifest)

    prefixes = {path[:n] for n in range(1, len(path) + 1)}
    on_path = {folders[p] for p in prefixes}
    assert requests(simulator) == {"folder": 1, "top_folders": 1, "folder_contents": len(path)}
    assert listing.folders_listed == len(path) and not listing.full_walk
    # Pruned: the other children of the folders on the path (their subtrees are not visited).
    assert listing.pruned == {fid for p, fid in folders.items() if p[:-1] in prefixes and p not in prefixes}
    assert len(listing.pruned) == 3  # Architecture, MEP, Site Photos; Details below is not reached
    listed_before = {i for i, e in manifest.items.items() if e.folder_id in on_path}
    assert {f.item_id for f in listing.files} == listed_before | {new_id}
    covered = manifest.covered_items(listing)
    assert covered == {i for i, e in manifest.items.items() if e.folder_id not in on_path}
    assert covered | {f.item_id for f in listing.files} == set(manifest.items) | {new_id}
    assert manifest.gone_items(listing, covered) == []


def test_an_item_deleted_deep_down_is_gone_and_nothing_in_a_pruned_subtree_is(simulator, aps, riverside):
    sim = simulator.sim
    manifest = mirror_of(walk_project(aps, riverside), riverside)
    rebar = visible_folders(sim, "Riverside Tower", "Project Files")[("Project Files", "Structure", "Rebar")]
    doomed = next(i for i, e in manifest.items.items() if e.folder_id == rebar)
    sim.delete_item(doomed)
    listing = walk_again(aps, riverside, manifest)
    covered = manifest.covered_items(listing)
    assert listing.pruned and doomed not in covered
    assert manifest.gone_items(listing, covered) == [doomed]
    # Marked deleted (policy keep), it is neither covered nor gone again the next time.
    manifest.items[doomed].deleted_at = "2024-03-01T00:00:00+00:00"
    assert doomed not in manifest.covered_items(listing) and manifest.gone_items(listing, covered) == []


def test_a_renamed_folder_is_listed_again_down_to_its_unchanged_subfolders(simulator, aps, riverside):
    sim = simulator.sim
    manifest = mirror_of(walk_project(aps, riverside), riverside)
    folders = visible_folders(sim, "Riverside Tower", "Project Files")
    details = folders[("Project Files", "Architecture", "Details")]
    sim.rename_folder(folders[("Project Files", "Architecture")], "Architecture (old)")
    listing = walk_again(aps, riverside, manifest)

    # Details' own rollup did not move: its new path alone makes it listed again.
    assert manifest.known_rollup(details)[0] == listing.folders[details].rollup
    assert details not in listing.pruned
    assert listing.folders[details].segments == ("Project Files", "Architecture (old)", "Details")
    below = {i for i, e in manifest.items.items() if e.source_path.startswith("Project Files/Architecture/")}
    moved = [f for f in listing.files if f.item_id in below]
    assert len(moved) == len(below) > 0
    assert all(f.folder_segments[:2] == ("Project Files", "Architecture (old)") for f in moved)
    keys = {f.item_id: keys_of(riverside).file_key(f.folder_segments, f.name_segment) for f in moved}
    assert {a.remote.item_id for a in plan(moved, keys, manifest.items) if a.kind is ActionKind.SERVER_COPY} == below


def test_rechecked_folders_are_listed_again_and_nothing_else(simulator, aps, riverside):
    sim = simulator.sim
    listing = walk_project(aps, riverside)
    manifest = mirror_of(listing, riverside)
    folders = visible_folders(sim, "Riverside Tower", "Project Files")
    path = ("Project Files", "Structure", "Rebar")
    manifest.record_walk(listing, riverside, {folders[path]}, True, "selection")

    # On the way to the folder left to recheck, rollups are forgotten; elsewhere they are kept.
    on_path = {folders[path[:n]] for n in range(1, len(path) + 1)}
    assert {fid for fid, rec in manifest.folders.items() if rec.rollup is None} == on_path
    assert manifest.root_rollup is None, "something is left to do: the project cannot be pruned whole"
    sim.reset_stats()
    again = walk_again(aps, riverside, manifest)
    assert requests(simulator)["folder_contents"] == len(path) == again.folders_listed


def test_an_unreadable_folder_is_an_error_not_a_delete(simulator, aps, riverside):
    listing = walk_project(aps, riverside)
    manifest = mirror_of(listing, riverside)
    simulator.sim.inject_fault("folder_contents", 403, count=1)  # the top folder's listing
    failed = walk_project(aps, riverside, manifest, full_walk=True)
    assert not failed.complete and len(failed.errors) == 1 and failed.errors[0].startswith("Project Files: ")
    assert not failed.files
    assert manifest.gone_items(failed, manifest.covered_items(failed)) == [], "an incomplete walk proves nothing gone"
    manifest.record_walk(failed, riverside, set(), True, "selection")
    assert all(rec.rollup is None for rec in manifest.folders.values()) and manifest.root_rollup is None
    simulator.sim.reset_stats()
    assert walk_again(aps, riverside, manifest).folders_listed == len(listing.folders)


def test_a_folder_a_failed_walk_did_not_reach_keeps_its_segment_against_a_newcomer(simulator, aps, riverside):
    """The collision rule holds across a night whose walk failed: what the mirror holds below an
    unreadable folder is still held, so a newcomer cannot take its segment."""
    sim = simulator.sim
    manifest = mirror_of(walk_project(aps, riverside), riverside)
    sim.inject_fault("folder_contents", 403, count=1)  # "Project Files" cannot be listed tonight
    failed = walk_project(aps, riverside, manifest, full_walk=True)
    manifest.record_walk(failed, riverside, set(), True, "selection")
    assert not failed.complete

    folders = visible_folders(sim, "Riverside Tower", "Project Files")
    newcomer = sim.add_folder(riverside.project_id, folders[("Project Files",)], "Scratch")
    # A sibling listed after the newcomer by id (the rule goes by ascending id), renamed onto.
    held = next(p for p, fid in sorted(folders.items()) if len(p) == 2 and fid > newcomer)
    sim.rename_folder(newcomer, held[-1].upper())
    listing = walk_again(aps, riverside, manifest)
    assert listing.folders[folders[held]].segments == held, "the folder the mirror holds keeps its key"
    assert listing.folders[newcomer].segments != ("Project Files", held[-1].upper())


def test_a_recreated_folder_never_lands_on_the_keys_its_deleted_namesake_still_holds(simulator, aps, riverside):
    """Delete policy `keep`: a deleted folder's files stay mirrored, marked deleted. A folder
    created later under the same name is a newcomer: its files must not get their keys."""
    sim = simulator.sim
    manifest = mirror_of(walk_project(aps, riverside), riverside)
    folders = visible_folders(sim, "Riverside Tower", "Project Files")
    mep = folders[("Project Files", "MEP")]
    kept = {e.source_path.rpartition("/")[2]: e.key for e in manifest.items.values() if e.folder_id == mep}
    sim.delete_folder(mep)
    listing = walk_again(aps, riverside, manifest)
    gone = manifest.gone_items(listing, manifest.covered_items(listing))
    assert sorted(manifest.items[i].key for i in gone) == sorted(kept.values())
    for item_id in gone:  # what the engine does under the keep policy
        manifest.items[item_id].deleted_at = "2024-05-01T00:00:00+00:00"
    manifest.record_walk(listing, riverside, set(), True, "selection")

    recreated = sim.add_folder(riverside.project_id, folders[("Project Files",)], "MEP")
    name = sorted(kept)[0]
    sim.add_file(riverside.project_id, recreated, name, size=5)
    listing = walk_again(aps, riverside, manifest)
    new_file = next(f for f in listing.files if f.folder_id == recreated)
    new_key = keys_of(riverside).file_key(new_file.folder_segments, new_file.name_segment)
    assert new_key not in manifest.referenced_keys(), f"{new_key!r} is still held by the deleted {name!r}"


@pytest.fixture
def acc_full():
    with SimulatorServer(Simulator(seed="acc-full", rate_scale=0)) as server:
        yield server


def test_hidden_and_system_folders_are_not_walked_and_unavailable_items_say_why(acc_full):
    from aps_mirror.aps.client import ApsClient
    from aps_mirror.aps.transport import ApsTransport

    aps = ApsClient(ApsTransport(connection_for(acc_full), retry_policy=FAST_RETRY))
    sim = acc_full.sim
    riverside = project_ref(aps, "Riverside Tower")
    listing = walk_project(aps, riverside, top_folders=("*",))
    tops = {f.name: f for f in sim.account.project_by_name("Riverside Tower").root.folders}
    assert tops["Old Archive"].hidden and tops["Photos"].system
    skipped = {f.id for f in tops.values() if f.hidden or f.system}
    assert listing.unwalked_tops == skipped
    assert not skipped & set(listing.folders)
    assert {f.item_id for f in listing.files} == {f.item_id for f in sim.iter_files() if f.project == "Riverside Tower"}
    assert {f.folder_names[0] for f in listing.files} == {"Project Files", "Plans"}

    central = next(i for i in tops["Project Files"].items if i.display_name == "Riverside Central.rvt")
    assert [(u.item_id, u.reason, u.folder_id, u.folder_names) for u in listing.unavailable] == [
        (central.id, "its tip version has no stored file (still processing, or a cloud model)",
         tops["Project Files"].id, ("Project Files",))]
    [missing] = listing.unavailable
    assert missing.source_path == "Project Files/Riverside Central.rvt" and not missing.version.stored


# -- the key space: one collision rule -------------------------------------------------------

TRICKY_NAMES = [
    "Report.pdf", "report.PDF", "REPORT.pdf", "Re\u0301sume\u0301.txt", "R\u00e9sum\u00e9.txt", "r\u00e9sum\u00e9.TXT",
    "_versions", "_VERSIONS", "\uff3fversions", "_aps_mirror", "_Aps_Mirror", "_long_paths", "_LONG_PATHS",
    "con", "CON.txt", "a:b", "a\uff1ab", "", ".", "..", " x", "x ", "x.", "Stra\u00dfe", "STRASSE",
    "\u01f0", "J\u030c", "a~0000.txt", "a.txt", "A.TXT",
]
names = st.one_of(st.sampled_from(TRICKY_NAMES),
                  st.text(alphabet=st.sampled_from("aAsS\u00dfe\u00e9\u0301._ :~"), max_size=6),
                  st.text(max_size=10),
                  st.text(alphabet="x\u00e9", min_size=250, max_size=300))  # cut by the 255-byte rule
entry_ids = st.text(alphabet="0123456789abcdef", min_size=1, max_size=3)
PROPERTY = settings(max_examples=300, deadline=None, database=None)


@st.composite
def one_parent(draw) -> tuple[dict[str, str], dict[str, str], list[str], dict[str, str]]:
    """(entries listed now, held segments, reserved segments, the previous run's names).

    `held` is what the previous run assigned (so it is itself valid), plus segments held by
    entries that are gone now (deleted, moved away) and may be anything, reserved names too.
    Entries now: some of the previous ones, renamed or not, and newcomers.
    """
    previous = draw(st.dictionaries(entry_ids, names, max_size=8))
    held = assign_segments(previous.items())
    ghosts = draw(st.dictionaries(entry_ids.map(lambda i: "gone-" + i),
                                  st.one_of(names.map(safe_segment), st.sampled_from(sorted(RESERVED_NAMES))),
                                  max_size=3))
    held.update(ghosts)
    listed: dict[str, str] = {}
    for entry_id, name in previous.items():
        fate = draw(st.sampled_from(["same", "renamed", "gone"]))
        if fate != "gone":
            listed[entry_id] = name if fate == "same" else draw(names)
    for entry_id, name in draw(st.dictionaries(entry_ids.map(lambda i: "new-" + i), names, max_size=6)).items():
        listed[entry_id] = name
    reserved = draw(st.lists(names.map(safe_segment), max_size=3))
    return listed, held, reserved, previous


@PROPERTY
@given(one_parent(), st.randoms(use_true_random=False))
def test_assignment_does_not_depend_on_listing_order(parent, rng):
    listed, held, reserved, _ = parent
    entries = list(listed.items())
    shuffled = entries[:]
    rng.shuffle(shuffled)
    held_shuffled = dict(sorted(held.items(), key=lambda _: rng.random()))
    assert assign_segments(shuffled, held_shuffled, reversed(reserved)) == assign_segments(entries, held, reserved)


@PROPERTY
@given(one_parent())
def test_an_entry_whose_name_did_not_change_keeps_its_segment(parent):
    listed, held, reserved, previous = parent
    result = assign_segments(listed.items(), held, reserved)
    assert set(result) == set(listed)
    for entry_id, name in listed.items():
        if previous.get(entry_id) == name:
            assert result[entry_id] == held[entry_id], (name, held[entry_id])


@PROPERTY
@given(one_parent())
def test_a_newcomer_never_takes_a_held_or_reserved_segment(parent):
    listed, held, reserved, _ = parent
    result = assign_segments(listed.items(), held, reserved)
    taken = {collision_key(s) for s in [*held.values(), *reserved]}
    for entry_id, segment in result.items():
        if segment != held.get(entry_id):  # a newcomer, or an entry that had to move
            assert collision_key(segment) not in taken, (listed[entry_id], segment)


@PROPERTY
@given(one_parent())
def test_segments_are_distinct_safe_and_never_the_mirrors_own_names(parent):
    listed, held, reserved, _ = parent
    segments = list(assign_segments(listed.items(), held, reserved).values())
    assert len({collision_key(s) for s in segments}) == len(segments)
    reserved_keys = {collision_key(n) for n in RESERVED_NAMES}
    for segment in segments:
        assert collision_key(segment) not in reserved_keys
        assert segment not in ("", ".", "..") and "/" not in segment and "\\" not in segment
        assert len(segment.encode("utf-8")) <= MAX_SEGMENT_BYTES


@PROPERTY
@given(one_parent(), st.sampled_from(["vault", "Vault", "VAULT", "vAuLt"]))
def test_no_hub_ever_holds_another_sources_root(parent, vault_name):
    """The hub level: `vault` (any case) is the Vault source's root. A hub named so, or one
    that held it, gets a variant; every other hub keeps what it held."""
    listed, held, reserved, _ = parent
    listed["hub-vault"] = vault_name
    held = {**held, "hub-vault": vault_name}  # as a mirror made before the rule held it
    result = assign_hub_segments(listed.items(), held, reserved)
    roots = {collision_key(root) for root in SOURCE_ROOTS}
    assert not {collision_key(s) for s in result.values()} & roots
    assert len({collision_key(s) for s in result.values()}) == len(result)
    assert result["hub-vault"].startswith(vault_name + "~"), "its name, told apart by its id"
    for hub_id, name in listed.items():  # the others keep what they held, as the one rule says
        if hub_id in held and safe_segment(name) == held[hub_id] and collision_key(held[hub_id]) not in roots:
            assert result[hub_id] == held[hub_id]


def canonical_caseless(text: str) -> str:
    """Unicode's canonical caseless match (D145): how a case-insensitive file system that
    ignores normalisation (macOS APFS, by default) compares names."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).casefold())


@pytest.mark.parametrize(("one", "other"), [
    ("\u015b.txt", "\u017f\u0301.txt"),  # ś / long s + combining acute: both fold to s + acute
    ("\u0161.dwg", "\u017f\u030c.dwg"),  # š / long s + combining caron
])
def test_names_one_file_system_cannot_tell_apart_get_distinct_segments(one, other):
    segments = assign_segments([("1", one), ("2", other)])
    assert canonical_caseless(segments["1"]) != canonical_caseless(segments["2"]), segments


# -- the manifest's bookkeeping ----------------------------------------------------------------

def test_record_copy_of_a_new_version_at_the_same_key_moves_the_old_one_to_history():
    manifest = project_manifest()
    manifest.items["item-1"] = entry("v1", 1, key=KEY, sha1="aa", copied_at="2024-03-01T00:00:00+00:00")
    recorded = manifest.record_copy(remote(version_id="v2", number=2), KEY, 200, "bb")
    assert (recorded.version_id, recorded.version_number, recorded.key, recorded.size, recorded.sha1) == \
        ("v2", 2, KEY, 200, "bb")
    assert [(h["version_id"], h["version_number"], h["key"], h["sha1"], h["kept_key"]) for h in recorded.history] \
        == [("v1", 1, KEY, "aa", None)]
    assert recorded.history[0]["superseded_at"] and recorded.history[0]["copied_at"] == "2024-03-01T00:00:00+00:00"
    assert manifest.pending_deletes == [], "the new object replaced the old one in place"


def test_record_copy_at_a_new_key_journals_the_old_key():
    manifest = project_manifest()
    manifest.items["item-1"] = entry("v1", 1, key=KEY)
    manifest.unavailable["item-1"] = {"reason": "copy failed"}
    archived = remote(folders=("Project Files", "Archive"), folder_id="folder-2")
    moved = manifest.record_copy(archived, MOVED_KEY, 100, None)
    assert moved.history == [], "a server-side copy of the same version is not a new version"
    assert (moved.key, moved.folder_id, moved.sha1) == (MOVED_KEY, "folder-2", None)
    assert manifest.pending_deletes == [KEY] and manifest.deletable_pending() == [KEY]
    assert "item-1" not in manifest.unavailable


def test_record_copy_keeps_the_history_and_the_versions_kept():
    manifest = project_manifest()
    manifest.items["item-1"] = entry("v2", 2, key=KEY, history=[
        {"version_id": "v1", "version_number": 1, "key": KEY, "kept_key": None}])
    kept = {"v1": {"kept_key": "mirror/h/p/_versions/Project Files/Plan.v1.dwg"},
            "v2": {"kept_key": "mirror/h/p/_versions/Project Files/Plan.v2.dwg"}}
    recorded = manifest.record_copy(remote(version_id="v3", number=3), KEY, 100, None, kept, versions_kept=True)
    assert [(h["version_id"], h["kept_key"]) for h in recorded.history] == [
        ("v1", kept["v1"]["kept_key"]), ("v2", kept["v2"]["kept_key"])]
    assert recorded.versions_kept
    assert recorded.held_keys() == [KEY, kept["v1"]["kept_key"], kept["v2"]["kept_key"]]


def test_remove_item_journals_every_held_key_including_kept_versions():
    manifest = project_manifest()
    kept = ["mirror/h/p/_versions/Project Files/Plan.v1.dwg", "mirror/h/p/_versions/Project Files/Plan.v2.dwg"]
    manifest.items["item-1"] = entry("v3", 3, key=KEY, history=[
        {"version_id": "v1", "kept_key": kept[0]}, {"version_id": "v2", "kept_key": kept[1]},
        {"version_id": "v0", "kept_key": None}])
    manifest.items["item-2"] = entry("w1", key="mirror/h/p/Project Files/Other.dwg")
    assert manifest.remove_item("item-1") == [KEY, *kept]
    assert sorted(manifest.pending_deletes) == sorted([KEY, *kept])
    assert set(manifest.items) == {"item-2"}
    assert manifest.deletable_pending() == sorted([KEY, *kept])


def test_deletable_pending_never_returns_a_key_still_referenced():
    manifest = project_manifest()
    kept = "mirror/h/p/_versions/Project Files/Plan.v1.dwg"
    manifest.items["old"] = entry("v1", key=KEY)
    manifest.remove_item("old")
    # Another item takes the freed key, and a third one still keeps an earlier version at `kept`.
    manifest.record_copy(remote("new", "n1"), KEY, 100, None)
    manifest.items["keeper"] = entry("k2", 2, key=MOVED_KEY, history=[{"version_id": "k1", "kept_key": kept}])
    manifest.pending_deletes += [kept, "mirror/h/p/Project Files/Orphan.dwg"]
    assert manifest.deletable_pending() == ["mirror/h/p/Project Files/Orphan.dwg"]
    assert not set(manifest.deletable_pending()) & manifest.referenced_keys()


def test_held_segments_include_deleted_items_and_child_folders_only_of_that_parent():
    manifest = project_manifest()
    listing = Listing()
    for folder_id, names, parent in [("top-a", ("Project Files",), None), ("top-b", ("Plans",), None),
                                     ("sub", ("Project Files", "Sub"), "top-a"),
                                     ("deep", ("Project Files", "Sub", "Deep"), "sub")]:
        listing.folders[folder_id] = _walked(folder_id, names, parent)
    project = ProjectRef("hub-1", "Hub", "project-1", "Project", "Hub", "Project")
    manifest.record_walk(listing, project, set(), True, "selection")
    manifest.items["live"] = entry("v1", key="mirror/Hub/Project/Project Files/a.dwg", folder_id="top-a")
    manifest.items["deleted"] = entry("v2", key="mirror/Hub/Project/Project Files/b：c.dwg", folder_id="top-a",
                                      deleted_at="2024-03-01T00:00:00+00:00")
    manifest.items["elsewhere"] = entry("v3", key="mirror/Hub/Project/Project Files/Sub/d.dwg", folder_id="sub")
    held = manifest.held_segments_by_folder()
    assert held["top-a"] == {"sub": "Sub", "live": "a.dwg", "deleted": "b：c.dwg"}
    assert held[None] == {"top-a": "Project Files", "top-b": "Plans"}
    assert held["sub"] == {"deep": "Deep", "elsewhere": "d.dwg"}
    assert set(held) == {None, "top-a", "sub"}


def _walked(folder_id: str, names: tuple[str, ...], parent: str | None):
    from aps_mirror.mirror.walk import WalkedFolder

    return WalkedFolder(folder_id, datetime(2024, 3, 1, tzinfo=timezone.utc), names, names, parent)


def test_record_walk_keeps_pruned_and_unselected_subtrees_and_drops_folders_gone():
    manifest = project_manifest()
    first = Listing(full_walk=True, root_rollup=datetime(2024, 3, 1, tzinfo=timezone.utc))
    for folder_id, names, parent in [("files", ("Project Files",), None), ("a", ("Project Files", "A"), "files"),
                                     ("a1", ("Project Files", "A", "1"), "a"), ("b", ("Project Files", "B"), "files"),
                                     ("plans", ("Plans",), None), ("p1", ("Plans", "1"), "plans")]:
        first.folders[folder_id] = _walked(folder_id, names, parent)
    project = ProjectRef("hub-1", "Hub", "project-1", "Project", "Hub", "Project")
    manifest.record_walk(first, project, set(), True, "selection")
    assert manifest.root_rollup == "2024-03-01T00:00:00+00:00" and manifest.last_full_walk
    before = dict(manifest.folders)

    # Next walk: "a" pruned, "b" deleted in Autodesk, Plans no longer selected.
    later = datetime(2024, 3, 2, tzinfo=timezone.utc)
    second = Listing(root_rollup=later, pruned={"a"}, unwalked_tops={"plans"})
    second.folders["files"] = replace(first.folders["files"], rollup=later)
    second.folders["a"] = first.folders["a"]
    manifest.record_walk(second, project, set(), True, "selection")
    assert set(manifest.folders) == {"files", "a", "a1", "plans", "p1"}
    assert all(manifest.folders[f] == before[f] for f in ("a", "a1", "plans", "p1"))
    assert manifest.folders["files"].rollup == later.isoformat()
    assert manifest.root_rollup == later.isoformat()


# -- selection -------------------------------------------------------------------------------

@pytest.mark.parametrize(("include", "exclude", "name", "id_", "selected"), [
    ((), (), "Riverside Tower", "b.1234-abcd", True),
    (("river*",), (), "Riverside Tower", "b.1234-abcd", True),  # globs are case-insensitive
    (("1234-abcd",), (), "Riverside Tower", "b.1234-abcd", True),  # an id without its "b."
    (("b.1234-abcd",), (), "Riverside Tower", "b.1234-abcd", True),
    (("1234*",), (), "Riverside Tower", "b.1234-abcd", True),
    (("Harbor*",), (), "Riverside Tower", "b.1234-abcd", False),
    # Only "b." is optional: other ids (Fusion's "a.") match whole.
    (("YnVz*",), (), "Drone Gimbal", "a.YnVzaW5lc3M6", False),
    (("a.YnVz*",), (), "Drone Gimbal", "a.YnVzaW5lc3M6", True),
    # An exclude wins over an include, by name or id (with or without "b.").
    (("*",), ("riverside*",), "Riverside Tower", "b.1234-abcd", False),
    (("Riverside Tower",), ("1234-abcd",), "Riverside Tower", "b.1234-abcd", False),
    (("b.1234-abcd",), ("b.1234-abcd",), "Riverside Tower", "b.1234-abcd", False),
    ((), ("Harbor*",), "Riverside Tower", "b.1234-abcd", True),
])
def test_is_selected(include, exclude, name, id_, selected):
    assert is_selected(include, exclude, name, id_) is selected


@pytest.mark.parametrize(("config", "name", "size", "selected"), [
    ({}, "Anything", None, True),
    ({"extensions": ("rvt", ".DWG")}, "Model.RVT", 10, True),
    ({"extensions": ("rvt", ".DWG")}, "Plan.dwg", 10, True),
    ({"extensions": ("rvt", ".DWG")}, "Notes.pdf", 10, False),
    ({"extensions": ("rvt",)}, "README", 10, False),  # no extension: not one of those asked for
    ({"extensions": ("gz",)}, "archive.tar.gz", 10, True),  # the last extension counts
    ({"exclude_extensions": ("tmp",)}, "Lock.TMP", 10, False),
    ({"exclude_extensions": (".tmp",)}, "Lock.tmp", 10, False),
    ({"exclude_extensions": ("tmp",)}, "README", 10, True),
    ({"extensions": ("dwg",), "exclude_extensions": ("DWG",)}, "Plan.dwg", 10, False),  # exclude wins
    ({"max_file_size": 100}, "Plan.dwg", 100, True),
    ({"max_file_size": 100}, "Plan.dwg", 101, False),
    ({"max_file_size": 100}, "Plan.dwg", None, True),  # no size listed: not known to be too big
])
def test_config_selects_files(config, name, size, selected):
    assert MirrorConfig(bucket="b", **config).selects(remote(name=name, size=size)) is selected


def test_the_selection_fingerprint_ignores_order_and_case_but_not_what_selects():
    one = MirrorConfig(bucket="b", extensions=("RVT", "dwg"), exclude_extensions=("tmp", "bak"))
    same = MirrorConfig(bucket="b", extensions=("DWG", "rvt"), exclude_extensions=("BAK", "tmp"), workers=9,
                        project_filter=("Riverside*",))  # project filters choose projects, not files
    assert one.selection == same.selection
    for other in (replace(one, max_file_size=10), replace(one, extensions=("rvt",)),
                  replace(one, versions="all"), replace(one, top_folders=("*",))):
        assert other.selection != one.selection
