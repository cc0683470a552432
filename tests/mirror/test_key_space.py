"""The key space against hostile names: collisions, reserved names, a manifest pointing away.

Each scenario runs the real engine against the simulator over HTTP and moto's S3 server,
then checks every mirrored object's bytes against the simulator's ground truth and that no
two items share a key.
"""

from __future__ import annotations

import json
import unicodedata

import pytest

from aps_mirror.mirror.keys import VAULT_ROOT, KeySpaceViolation, ProjectKeys
from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy
from tests.mirror.test_engine import PREFIX, assert_exact_mirror, mirrored, object_keys, run

NFC, NFD = (unicodedata.normalize(form, "Résumé.txt") for form in ("NFC", "NFD"))

# (name of the item mirrored first, name of the newcomer that collides with it)
COLLIDING_NAMES = {
    "unicode forms": (NFC, NFD),
    "case": ("Plan A.pdf", "PLAN a.PDF"),
    "trailing dot": ("minutes.", "minutes\uff0e"),  # "．" is what the dot becomes
    "trailing space": ("draft ", "draft\u2420"),  # "␠" is what the space becomes
    "reserved look-alike": ("_versions", "\uff3fversions"),  # "＿versions" is what `_versions` becomes
}


def assert_keys_distinct(s3, bucket) -> dict[str, str]:
    """No two items (tips or kept versions) share a key; returns item id -> tip key."""
    owners: dict[str, str] = {}
    for item_id, entry in mirrored(s3, bucket).items():
        for key in [entry["key"]] + [h["kept_key"] for h in entry["history"] if h.get("kept_key")]:
            assert owners.setdefault(key, item_id) == item_id, f"{key} is held by two items"
    return {item_id: entry["key"] for item_id, entry in mirrored(s3, bucket).items()}


def a_folder(sim) -> tuple[str, str]:
    some = next(f for f in sim.iter_files() if f.path and f.project == "Riverside Tower")
    project_id = sim.project_id(some.project)
    return project_id, sim.folder_id(project_id, some.path)


@pytest.mark.parametrize("newcomer_id", ["smaller", "larger"])
@pytest.mark.parametrize("case", sorted(COLLIDING_NAMES))
def test_a_colliding_newcomer_never_takes_an_existing_items_key(simulator, aps, s3, bucket, case, newcomer_id):
    sim = simulator.sim
    first_name, second_name = COLLIDING_NAMES[case]
    project_id, folder_id = a_folder(sim)
    one = sim.add_file(project_id, folder_id, first_name, size=3000, content_seed="one")
    two = sim.add_file(project_id, folder_id, second_name, size=5000, content_seed="two")
    smaller, larger = sorted([one, two])
    newcomer = smaller if newcomer_id == "smaller" else larger
    existing = larger if newcomer is smaller else smaller
    sim.delete_item(newcomer)  # hidden for the first night
    run(aps, s3, bucket)
    key_before = mirrored(s3, bucket)[existing]["key"]

    sim.restore_item(newcomer)
    downloads = sim.stats()["downloads"]
    summary = run(aps, s3, bucket)
    assert summary.files_copied == 1 and summary.files_renamed == 0 and not summary.errors
    assert sim.stats()["downloads"] == downloads + 1, "only the newcomer is downloaded"
    keys = assert_keys_distinct(s3, bucket)
    assert keys[existing] == key_before, "the item mirrored first keeps its key"
    assert keys[newcomer] != key_before
    assert_exact_mirror(simulator, s3, bucket)
    # And the outcome is stable: another night (and a full walk) moves nothing.
    again = run(aps, s3, bucket, full_walk=True)
    assert again.files_copied == again.files_renamed == 0
    assert assert_keys_distinct(s3, bucket) == keys


@pytest.mark.parametrize("case", sorted(COLLIDING_NAMES))
def test_colliding_names_on_a_first_night_get_distinct_keys(simulator, aps, s3, bucket, case):
    project_id, folder_id = a_folder(simulator.sim)
    for n, name in enumerate(COLLIDING_NAMES[case]):
        simulator.sim.add_file(project_id, folder_id, name, size=1000 + n, content_seed=f"c{n}")
    run(aps, s3, bucket)
    assert_keys_distinct(s3, bucket)
    assert_exact_mirror(simulator, s3, bucket)


def test_a_file_renamed_onto_a_freed_name_in_one_night_keeps_every_byte(simulator, aps, s3, bucket):
    """a.txt -> b.txt while a new a.txt appears: the new one must not be written where the
    renamed one is still being copied from."""
    sim = simulator.sim
    project_id, folder_id = a_folder(sim)
    renamed = sim.add_file(project_id, folder_id, "a.txt", size=4000, content_seed="renamed")
    run(aps, s3, bucket)
    sim.rename_item(renamed, "b.txt")
    sim.add_file(project_id, folder_id, "a.txt", size=9000, content_seed="newcomer")
    summary = run(aps, s3, bucket)
    assert summary.files_renamed == 1 and summary.files_copied == 1
    assert_keys_distinct(s3, bucket)
    assert_exact_mirror(simulator, s3, bucket)


def test_a_hub_named_like_the_mirrors_metadata_cannot_touch_it(simulator, aps, s3, bucket):
    sim = simulator.sim
    hub = sim.add_hub("_aps_mirror")
    project = sim.add_project("manifests", hub_id=hub)
    sim.add_file(project, sim.folder_id(project, ("Project Files",)), "catalog", size=500)
    run(aps, s3, bucket)
    run(aps, s3, bucket)  # the manifests are intact: a second night works and copies nothing new
    assert not [k for k in object_keys(s3, bucket) if k.startswith(f"{PREFIX}/_aps_mirror/")]
    assert_keys_distinct(s3, bucket)
    assert_exact_mirror(simulator, s3, bucket)
    assert run(aps, s3, bucket, full_walk=True).files_copied == 0


def hub_level_segments(s3, bucket) -> set[str]:
    """The first segment below the prefix of every mirrored object."""
    return {key[len(PREFIX) + 1:].split("/")[0] for key in object_keys(s3, bucket)}


@pytest.mark.parametrize("name", ["vault", "Vault", "VAULT"])
def test_a_docs_hub_named_like_the_vault_root_never_takes_it(simulator, aps, s3, bucket, name):
    """`{prefix}/vault/` is the Vault source's root: no Docs hub may ever hold it."""
    sim = simulator.sim
    hub = sim.add_hub(name)
    project = sim.add_project("Vault project", hub_id=hub)
    sim.add_file(project, sim.folder_id(project, ("Project Files",)), "drawing.dwg", size=600)
    run(aps, s3, bucket)
    assert not {s for s in hub_level_segments(s3, bucket) if s.casefold() == VAULT_ROOT}
    assert any(s.startswith(f"{name}~") for s in hub_level_segments(s3, bucket)), "told apart by its id"
    assert_keys_distinct(s3, bucket)
    assert_exact_mirror(simulator, s3, bucket)
    assert run(aps, s3, bucket, full_walk=True).files_copied == 0


def test_a_hub_that_held_the_vault_root_before_the_rule_moves_out_inside_s3(simulator, aps, s3, bucket):
    sim = simulator.sim
    hub = sim.add_hub("Vault")
    project = sim.add_project("Vault project", hub_id=hub)
    for n in range(3):
        sim.add_file(project, sim.folder_id(project, ("Project Files",)), f"sheet {n}.pdf", size=900 + n)
    run(aps, s3, bucket)
    variant = next(s for s in hub_level_segments(s3, bucket) if s.startswith("Vault~"))
    _move_hub_segment(s3, bucket, hub, variant, "Vault")  # as a mirror made before the rule left it
    assert "Vault" in hub_level_segments(s3, bucket)

    downloads = sim.stats()["downloads"]
    upgraded = run(aps, s3, bucket)
    assert upgraded.files_renamed == 3 and upgraded.files_copied == 0 and not upgraded.errors
    assert sim.stats()["downloads"] == downloads, "moved inside S3, nothing downloaded"
    assert not {s for s in hub_level_segments(s3, bucket) if s.casefold() == VAULT_ROOT}
    assert object_keys(s3, bucket) == {e["key"] for e in mirrored(s3, bucket).values()}, "no orphan"
    assert_exact_mirror(simulator, s3, bucket)
    assert run(aps, s3, bucket, full_walk=True).files_renamed == 0


def _move_hub_segment(s3, bucket, hub_id: str, current: str, old: str) -> None:
    """Put one hub's objects, manifests and record entry at segment `old`."""
    here, there = f"{PREFIX}/{current}/", f"{PREFIX}/{old}/"
    for key in [k for k in object_keys(s3, bucket) if k.startswith(here)]:
        s3.copy_object(Bucket=bucket, Key=there + key[len(here):], CopySource={"Bucket": bucket, "Key": key})
        s3.delete_object(Bucket=bucket, Key=key)
    for key in _manifest_keys(s3, bucket):
        body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if body["hub_id"] != hub_id:
            continue
        body["root_segments"][0] = old
        for entry in body["items"].values():
            entry["key"] = there + entry["key"][len(here):]
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode())
    record_key = f"{PREFIX}/_aps_mirror/mirror.json"
    record = json.loads(s3.get_object(Bucket=bucket, Key=record_key)["Body"].read())
    record["hubs"][hub_id]["segment"] = old
    s3.put_object(Bucket=bucket, Key=record_key, Body=json.dumps(record).encode())


@pytest.mark.parametrize("level", ["project", "top folder", "folder"])
@pytest.mark.parametrize("reserved", ["_aps_mirror", "_versions", "_long_paths", "_VERSIONS"])
def test_reserved_names_from_user_content_are_escaped(simulator, aps, s3, bucket, level, reserved):
    sim = simulator.sim
    if level == "project":
        project = sim.add_project(reserved)
        parent = sim.folder_id(project, ("Project Files",))
    elif level == "top folder":
        project = sim.add_project("Reserved tops", top_folders=("Project Files", reserved))
        parent = sim.folder_id(project, (reserved,))
    else:
        project = sim.add_project("Reserved folders")
        parent = sim.add_folder(project, sim.folder_id(project, ("Project Files",)), reserved)
    item = sim.add_file(project, parent, "inside.txt", size=700)
    sim.add_version(item, size=800)
    run(aps, s3, bucket, versions="all")
    key = mirrored(s3, bucket)[item]["key"]
    assert f"/{reserved}/" not in key and f"/{reserved.casefold()}/" not in key.casefold()
    assert_keys_distinct(s3, bucket)
    assert_exact_mirror(simulator, s3, bucket)


def test_a_user_folder_named_versions_and_kept_versions_never_share_a_key(simulator, aps, s3, bucket):
    """versions=all keeps earlier versions under <project>/_versions/; a user's top folder
    `_versions` holding a file of the same path must not land there."""
    sim = simulator.sim
    project = sim.add_project("Versions clash", top_folders=("Project Files", "_versions"))
    real = sim.add_file(project, sim.folder_id(project, ("Project Files",)), "model.rvt", size=1000)
    sim.add_version(real, size=1100)
    sim.add_version(real, size=1200)
    sim.add_file(project, sim.add_folder(project, sim.folder_id(project, ("_versions",)), "Project Files"),
                 "model.v1.rvt", size=1300)
    run(aps, s3, bucket, versions="all")
    sim.add_version(real, size=1400)
    run(aps, s3, bucket, versions="all")
    assert_keys_distinct(s3, bucket)
    assert_exact_mirror(simulator, s3, bucket)
    for history in mirrored(s3, bucket)[real]["history"]:  # every kept version holds its bytes
        body = s3.get_object(Bucket=bucket, Key=history["kept_key"])["Body"].read()
        assert body == sim.file_bytes(history["version_id"])


def _manifest_keys(s3, bucket) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_aps_mirror/manifests/")
    return [o["Key"] for o in listing["Contents"]]


def test_a_manifest_journal_pointing_outside_its_project_deletes_nothing_there(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    manifest_keys = _manifest_keys(s3, bucket)
    victim_manifest, tampered = manifest_keys[0], manifest_keys[1]
    body = json.loads(s3.get_object(Bucket=bucket, Key=tampered)["Body"].read())
    other_root = "/".join([PREFIX, *json.loads(s3.get_object(Bucket=bucket, Key=victim_manifest)["Body"].read())
                           ["root_segments"]]) + "/"
    victims = sorted(k for k in object_keys(s3, bucket) if k.startswith(other_root))[:2]
    outside = [*victims, victim_manifest, "elsewhere/precious.txt", f"{PREFIX}/../escape.txt"]
    s3.put_object(Bucket=bucket, Key="elsewhere/precious.txt", Body=b"not the mirror's")
    body["pending_deletes"] = outside
    s3.put_object(Bucket=bucket, Key=tampered, Body=json.dumps(body).encode())

    run(aps, s3, bucket, full_walk=True)
    for key in outside[:-1]:
        s3.head_object(Bucket=bucket, Key=key)  # still there
    assert_exact_mirror(simulator, s3, bucket)


def test_every_key_is_checked_against_the_project_root():
    keys = ProjectKeys("mirror", "Hub", "Project")
    assert keys.file_key(("Project Files",), "a.txt") == "mirror/Hub/Project/Project Files/a.txt"
    for key in ("mirror/Hub/Other/a.txt", "mirror/_aps_mirror/manifests/x.json", "mirror/Hub/Project",
                "mirror/Hub/Project/../Other/a.txt", "other/Hub/Project/a.txt"):
        with pytest.raises(KeySpaceViolation):
            keys.check(key)
    assert keys.trash_key("mirror/Hub/Project/a.txt", "2026-11-30") == \
        "mirror/_aps_mirror/trash/2026-11-30/mirror/Hub/Project/a.txt"
    with pytest.raises(KeySpaceViolation):
        keys.trash_key("mirror/Hub/Other/a.txt", "2026-11-30")


def test_a_dry_run_applies_the_delete_guard(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    files = [f for f in simulator.sim.iter_files() if f.project == "Riverside Tower"]
    for f in files[: len(files) // 2]:
        simulator.sim.delete_item(f.item_id)
    guarded = dict(delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(percent=10.0))
    dry = run(aps, s3, bucket, dry_run=True, **guarded)
    real = run(aps, s3, bucket, **guarded)
    assert dry.deletes_refused and real.deletes_refused
    assert dry.files_deleted == real.files_deleted == 0
    assert not [p for p in dry.planned if p["action"].startswith("delete")]
    assert "would copy 0" in dry.format_text() and "would delete 0" in dry.format_text()

    allowed = run(aps, s3, bucket, dry_run=True, delete_policy=DeletePolicy.DELETE,
                  max_delete=DeleteLimit(count=1000))
    deletes = [p for p in allowed.planned if p["action"].startswith("delete")]
    assert len(deletes) == allowed.files_deleted == len(files) // 2
    assert "would copy 0" in allowed.format_text()
