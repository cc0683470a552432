"""`aps-mirror restore`: files from the mirror back into Autodesk Docs.

Exit 0 when every selected file is restored (or already was); 1 when some failed or cannot be
restored as of the time asked; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

from aps_mirror.cli.catalog import add_location_options, mirror_location
from aps_mirror.cli.common import ExitCode, aps_client, open_bucket
from aps_mirror.connection import DEFAULT_CONN_ID
from aps_mirror.mirror.restore import Restorer
from aps_mirror.mirror.restore_request import DEFAULT_WORKERS, parse_restore_workers, restore_request
from aps_mirror.options import MAX_WORKERS


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conn-id", default=DEFAULT_CONN_ID,
                        help="Autodesk connection id, with the scopes data:write and data:create "
                             "(default: %(default)s)")
    add_location_options(parser)
    parser.add_argument("--project", action="append", required=True, metavar="GLOB",
                        help="projects to restore from (name or id, fnmatch, case-insensitive; repeatable)")
    parser.add_argument("--path", default=None, metavar="PREFIX",
                        help="only files under this Autodesk path, top folder first "
                             "('Project Files/Design', or one file's path)")
    parser.add_argument("--as-of", default=None, metavar="ISO8601",
                        help="each file's version current at that time (UTC unless the time says otherwise); "
                             "default: the latest mirrored state")
    # Not an argparse group: its refusal is a usage block, the CLI's is one line.
    parser.add_argument("--into", default=None, metavar="PATH",
                        help="restore under this Autodesk folder (top folder first, created as needed) "
                             "instead of 'Restored <date>' under each file's top folder")
    parser.add_argument("--in-place", action="store_true",
                        help="restore as new versions of the original items (a deleted item comes back)")
    parser.add_argument("--dry-run", action="store_true", help="say what would be restored, write nothing")
    parser.add_argument("--workers", default=None, metavar="N",
                        help=f"files restored at once, 1 to {MAX_WORKERS} (default: {DEFAULT_WORKERS})")
    parser.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Bad values are refused (one line, exit 2) before any connection is looked up.
    bucket, prefix = mirror_location(args)
    request = restore_request(vars(args))
    workers = parse_restore_workers(args.workers)
    client = aps_client(args.conn_id)
    s3 = open_bucket(args.aws_conn_id, bucket, workers=workers)
    summary = Restorer(client, s3, bucket, prefix, request, workers=workers).run()
    if args.json:
        json.dump({**summary.to_dict(), "dry_run": request.dry_run}, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for step in summary.restored:
            verb = "would restore" if request.dry_run else "restored"
            print(f"{verb} {step['path']} (v{step['version_number']}, {step['size']} bytes) -> {step['target']}")
        print(summary.format_text())
    return ExitCode.FAILED if summary.files_failed or summary.not_restorable else ExitCode.OK

