"""`aps-mirror webhooks ensure|list|delete`: a mirror's Autodesk webhooks and their secret.

ensure: one active hook set per selected project's root folder (or selected top folders),
calling the Airflow receiver, signed with the connection's secret (made and saved in the
connection when missing, or with --rotate-secret). Exit 0 when every project is in order, 1
when one failed, 2 for bad arguments. list: each project's hooks. delete: the mirror's hooks.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from aps_mirror.cli.common import ExitCode, aps_client
from aps_mirror.connection import DEFAULT_CONN_ID
from aps_mirror.errors import ConfigError
from aps_mirror.mirror.webhook_secret import installed_writer
from aps_mirror.mirror.webhooks import (CALLBACK_PATH, DEFAULT_MIRROR, HookSelection, check_callback_url,
                                        check_mirror_name, delete_hooks, ensure_mirror_hooks, hub_regions,
                                        list_hooks, require_hook_scopes, selected_projects)
from aps_mirror.options import SYNC_OPTIONS

# The mirror's own selection options, from the one options table (flags, help, parsing).
SELECTION_OPTIONS = tuple(o for o in SYNC_OPTIONS if o.name in HookSelection.__dataclass_fields__)
# Where hooks differ from sync: without --top-folder the whole project (its root folder) is watched.
_HOOK_HELP = {"top_folders": "Globs on top folder names: hooks on the top folders they select (as sync selects "
                             "them) instead of on the project's root folder, e.g. 'Project Files'."}


def configure_parser(parser: argparse.ArgumentParser, common: argparse.ArgumentParser | None = None) -> None:
    actions = parser.add_subparsers(dest="webhooks_action", required=True, metavar="ACTION")
    parents = [common] if common is not None else []
    ensure = actions.add_parser("ensure", parents=parents,
                                help="create or repair the hooks of the selected projects, set the secret")
    listing = actions.add_parser("list", parents=parents, help="show each selected project's hooks")
    delete = actions.add_parser("delete", parents=parents, help="delete the mirror's hooks (only these)")
    for sub in (ensure, listing, delete):
        _add_common_arguments(sub, callback_required=sub is ensure)
    ensure.add_argument("--rotate-secret", action="store_true",
                        help="make a new webhook secret (the old one stays accepted for 15 minutes)")
    for sub in (ensure, delete):
        sub.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    ensure.set_defaults(func=run_ensure)
    listing.set_defaults(func=run_list)
    delete.set_defaults(func=run_delete)


def _add_common_arguments(parser: argparse.ArgumentParser, *, callback_required: bool) -> None:
    parser.add_argument("--conn-id", default=DEFAULT_CONN_ID,
                        help="Autodesk connection id, with the scopes data:read and data:write; its extra "
                             "keeps the webhook secret (default: %(default)s)")
    parser.add_argument("--callback-url", default=None, metavar="URL",
                        help=f"the receiver: <Airflow URL>{CALLBACK_PATH}, https"
                             + (" (required)" if callback_required else " (only hooks calling it)"))
    parser.add_argument("--mirror", default=DEFAULT_MIRROR, metavar="NAME",
                        help="the mirror's DAG id, written in each hook's hookAttribute (default: %(default)s)")
    for option in SELECTION_OPTIONS:  # checked by the options' own parsers: one-line errors
        text = _HOOK_HELP.get(option.name, option.help).replace("%", "%%")
        parser.add_argument(option.cli_flag, dest=option.name, action="append", default=[],
                            metavar=option.metavar, help=f"{text} (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def _selection(args: argparse.Namespace) -> HookSelection:
    values = vars(args)
    return HookSelection(**{o.name: o.value(values, cli=True) for o in SELECTION_OPTIONS})


def _checked(args: argparse.Namespace, *, callback_required: bool) -> tuple[str, HookSelection, str | None]:
    """Bad values are refused (one line, exit 2) before any connection is looked up."""
    mirror = check_mirror_name(args.mirror)
    selection = _selection(args)
    if args.callback_url is None and callback_required:
        raise ConfigError(f"--callback-url is required: give the webhook receiver's URL, "
                          f"e.g. https://airflow.example.com{CALLBACK_PATH}.")
    callback = check_callback_url(args.callback_url) if args.callback_url is not None else None
    return mirror, selection, callback


def run_ensure(args: argparse.Namespace) -> int:
    mirror, selection, callback = _checked(args, callback_required=True)
    client = aps_client(args.conn_id)
    require_hook_scopes(client)
    report = ensure_mirror_hooks(client, selection, mirror=mirror, conn_id=args.conn_id, callback_url=callback or "",
                                 writer=installed_writer(args.conn_id), rotate_secret=args.rotate_secret,
                                 dry_run=args.dry_run)
    _print(args, report.to_dict(), report.format_text())
    return ExitCode.OK if report.ok else ExitCode.FAILED


def run_list(args: argparse.Namespace) -> int:
    mirror, selection, callback = _checked(args, callback_required=False)
    client = aps_client(args.conn_id)
    hubs = client.hubs()
    projects = selected_projects(client, selection, hubs=hubs)
    listing = list_hooks(client, projects, mirror=mirror, top_folders=selection.top_folders or None,
                         callback_url=callback, regions=hub_regions(hubs))
    _print(args, listing.to_dict(), listing.format_text())
    return ExitCode.OK


def run_delete(args: argparse.Namespace) -> int:
    mirror, selection, callback = _checked(args, callback_required=False)
    client = aps_client(args.conn_id)
    require_hook_scopes(client)
    hubs = client.hubs()
    # Without a hub or project flag: every hook of the mirror, wherever it is.
    filtered = any(getattr(selection, name) for name in ("hub_filter", "exclude_hubs", "project_filter",
                                                         "exclude_projects"))
    projects = selected_projects(client, selection, hubs=hubs) if filtered else None
    report = delete_hooks(client, mirror=mirror, projects=projects, callback_url=callback,
                          regions=hub_regions(hubs), dry_run=args.dry_run)
    _print(args, report.to_dict(), report.format_text())
    return ExitCode.OK


def _print(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    if args.json:
        json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(text)
