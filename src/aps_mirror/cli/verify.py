"""`aps-mirror verify`: prove the mirror against its manifests, S3 and optionally Autodesk.

Exit 0 only when the mirror is clean; 1 when faults were found (or something could not be
checked); 2 for bad arguments. The report is also recorded in the catalog (`verifications`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import nullcontext
from typing import Any, ContextManager

from aps_mirror.cli.catalog import add_location_options, mirror_location
from aps_mirror.cli.common import ExitCode, aps_client, open_bucket
from aps_mirror.errors import ConfigError
from aps_mirror.mirror.verify import MirrorVerifier
from aps_mirror.mirror.verify_report import VerifyReport

log = logging.getLogger(__name__)

DEFAULT_WORKERS, MAX_WORKERS = 8, 64


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_location_options(parser)
    parser.add_argument("--conn-id", default=None,
                        help="Autodesk connection id: also walk every mirrored project in Autodesk and "
                             "report what the mirror lacks (not_mirrored) or holds at an older version "
                             "(outdated)")
    parser.add_argument("--deep", action="store_true",
                        help="re-read every object's bytes and check their SHA-1 (against the manifest's, "
                             "else Autodesk's with --conn-id)")
    parser.add_argument("--sample", default=None, metavar="N",
                        help="re-read only N objects chosen at random (implies --deep)")
    parser.add_argument("--workers", default=str(DEFAULT_WORKERS), metavar="N",
                        help=f"objects checked at once, 1 to {MAX_WORKERS} (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--no-progress", action="store_true",
                        help="log progress lines instead of drawing progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Bad values are refused (one line, exit 2) before any connection is looked up.
    bucket, prefix = mirror_location(args)
    sample = None if args.sample is None else _whole_number("--sample", args.sample, 1, None)
    workers = _whole_number("--workers", args.workers, 1, MAX_WORKERS)
    client = aps_client(args.conn_id) if args.conn_id else None
    s3 = open_bucket(args.aws_conn_id, bucket, workers=workers)
    with _progress_display(args) as bars:
        report = MirrorVerifier(s3, bucket, prefix, client=client, deep=args.deep, sample=sample,
                                workers=workers, progress_listeners=[bars] if bars else ()).run()
    catalog_key = _record(s3, bucket, prefix, report)
    if args.json:
        json.dump({**report.to_dict(), "catalog": catalog_key}, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(report.format_text())
    return ExitCode.OK if report.clean else ExitCode.FAILED


def _record(s3: Any, bucket: str, prefix: str, report: VerifyReport) -> str | None:
    """The report's rows in the catalog; the verification's outcome stands either way."""
    from aps_mirror.catalog.writer import CatalogWriter  # pyarrow loads only when needed

    try:
        return CatalogWriter(s3, bucket, prefix).record_verification(report)
    except Exception as exc:
        log.warning("the verification could not be recorded in the catalog (%s); its report is below", exc)
        return None


def _progress_display(args: argparse.Namespace) -> ContextManager[Any]:
    """Progress bars on a terminal; elsewhere (pipes, Airflow, --json, -q) the log lines."""
    if args.json or args.no_progress or getattr(args, "quiet", False):
        return nullcontext(None)
    from aps_mirror.cli.progress_bar import progress_bars, wants_progress_bars

    return progress_bars() if wants_progress_bars() else nullcontext(None)


def _whole_number(flag: str, text: str, least: int, most: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least or (most is not None and value > most):
        span = f"from {least} to {most}" if most is not None else f"{least} or more"
        raise ConfigError(f"{flag} {text!r} is not accepted: give a whole number {span}")
    return value
