"""`aps-mirror catalog publish|fold|download`: publish the catalog (fold the staged run
records, rebuild the snapshot), only fold the staged records, or copy the catalog locally."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from aps_mirror.cli.common import ExitCode, open_bucket
from aps_mirror.connection import DEFAULT_AWS_CONN_ID


def add_location_options(parser: argparse.ArgumentParser) -> None:
    """Where the mirror is: the same flags and defaults as `aps-mirror sync`."""
    parser.add_argument("--aws-conn-id", default=DEFAULT_AWS_CONN_ID,
                        help="AWS connection id (default: %(default)s)")
    parser.add_argument("--bucket", required=True, help="S3 bucket of the mirror")
    parser.add_argument("--prefix", default="autodesk", help="key prefix of the mirror (default: %(default)s)")


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

    s3 = open_bucket(args.aws_conn_id, args.bucket)
    writer = CatalogWriter(s3, args.bucket, args.prefix)
    counts = writer.publish_snapshot()
    folded = writer.last_fold
    if args.json:
        json.dump(counts, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"catalog: {folded.summary()}")
        print("catalog published: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    _warn_unreadable(folded, args.bucket)
    return ExitCode.OK


def run_fold(args: argparse.Namespace) -> int:
    from aps_mirror.catalog.writer import CatalogWriter

    s3 = open_bucket(args.aws_conn_id, args.bucket)
    folded = CatalogWriter(s3, args.bucket, args.prefix).fold_staged()
    if args.json:
        json.dump(folded.to_dict(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"catalog: {folded.summary()}")
    _warn_unreadable(folded, args.bucket)
    return ExitCode.OK


def _warn_unreadable(folded: Any, bucket: str) -> None:
    for key in folded.unreadable:
        print(f"aps-mirror: staged record s3://{bucket}/{key} could not be read and was left in place; "
              "inspect it, then delete it or write it again", file=sys.stderr)


def run_download(args: argparse.Namespace) -> int:
    from aps_mirror.catalog.reader import download_catalog

    s3 = open_bucket(args.aws_conn_id, args.bucket)
    folder = download_catalog(s3, args.bucket, args.prefix, args.to)
    print(f"catalog copied to {folder}; e.g. duckdb -c \"SELECT count(*) FROM "
          f"read_parquet('{folder}/files/*/*.parquet', hive_partitioning = true)\"")
    return ExitCode.OK
