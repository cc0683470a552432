"""`aps-mirror catalog publish|fold|download`: publish the catalog (fold the staged run
records, rebuild the snapshot), only fold the staged records, or copy the catalog locally."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from aps_mirror.cli.common import ExitCode, open_bucket
from aps_mirror.connection import DEFAULT_AWS_CONN_ID
from aps_mirror.options import SYNC_OPTIONS

# `aps-mirror sync`'s own declarations of --bucket and --prefix: one rule for every command.
_LOCATION = {option.name: option for option in SYNC_OPTIONS if option.name in ("bucket", "prefix")}


def add_location_options(parser: argparse.ArgumentParser) -> None:
    """Where the mirror is: the same flags, defaults and rules as `aps-mirror sync`; read them
    with `mirror_location`."""
    parser.add_argument("--aws-conn-id", default=DEFAULT_AWS_CONN_ID,
                        help="AWS connection id (default: %(default)s)")
    for option in _LOCATION.values():
        default = f" (default: {option.default})" if option.default is not None else ""
        parser.add_argument(option.cli_flag, dest=option.name, default=None, required=option.required,
                            help=option.help + default)


def mirror_location(args: argparse.Namespace) -> tuple[str, str]:
    """(bucket, prefix) checked by sync's parsers before any connection is looked up: a bad
    value is a one-line ConfigError (exit 2), never a listing of the wrong keys."""
    values = vars(args)
    return _LOCATION["bucket"].value(values, cli=True), _LOCATION["prefix"].value(values, cli=True)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    publish = commands.add_parser("publish", help="fold the staged run records into runs and events, "
                                                  "then rebuild files, versions, folders and projects "
                                                  "from the manifests")
    add_location_options(publish)
    publish.add_argument("--json", action="store_true", help="print the snapshot's row counts as JSON")
    publish.set_defaults(func=run_publish)
    fold = commands.add_parser("fold", help="only fold the staged run records into runs and events "
                                            "(each run: one object per table), without rebuilding the "
                                            "snapshot")
    add_location_options(fold)
    fold.add_argument("--json", action="store_true", help="print what was folded as JSON")
    fold.set_defaults(func=run_fold)
    download = commands.add_parser("download", help="copy the catalog to a local folder (same layout) "
                                                    "for DuckDB or pandas")
    add_location_options(download)
    download.add_argument("--to", required=True, metavar="DIR", help="local folder to copy into")
    download.set_defaults(func=run_download)


def run_publish(args: argparse.Namespace) -> int:
    from aps_mirror.catalog.writer import CatalogWriter  # pyarrow loads only when needed

    bucket, prefix = mirror_location(args)
    writer = CatalogWriter(open_bucket(args.aws_conn_id, bucket), bucket, prefix)
    counts = writer.publish_snapshot()
    folded = writer.last_fold
    if args.json:
        json.dump(counts, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"catalog: {folded.summary()}")
        print("catalog published: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    _warn_unreadable(folded, bucket)
    return ExitCode.OK


def run_fold(args: argparse.Namespace) -> int:
    from aps_mirror.catalog.writer import CatalogWriter

    bucket, prefix = mirror_location(args)
    folded = CatalogWriter(open_bucket(args.aws_conn_id, bucket), bucket, prefix).fold_staged()
    if args.json:
        json.dump(folded.to_dict(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"catalog: {folded.summary()}")
    _warn_unreadable(folded, bucket)
    return ExitCode.OK


def _warn_unreadable(folded: Any, bucket: str) -> None:
    for key in folded.unreadable:
        print(f"aps-mirror: staged record s3://{bucket}/{key} could not be read and was left in place; "
              "inspect it, then delete it or write it again", file=sys.stderr)


def run_download(args: argparse.Namespace) -> int:
    from aps_mirror.catalog.reader import download_catalog

    bucket, prefix = mirror_location(args)
    folder = download_catalog(open_bucket(args.aws_conn_id, bucket), bucket, prefix, args.to)
    print(f"catalog copied to {folder}; e.g. duckdb -c \"SELECT count(*) FROM "
          f"read_parquet('{folder}/files/*/*.parquet', hive_partitioning = true)\"")
    return ExitCode.OK
