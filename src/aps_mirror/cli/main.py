"""Entry point of the `aps-mirror` command."""

from __future__ import annotations

import argparse
import logging
import sys

from aps_mirror import __version__
from aps_mirror.cli import sync, tree, validate
from aps_mirror.cli.common import ExitCode, setup_logging
from aps_mirror.errors import ApsMirrorError, ConfigError

log = logging.getLogger("aps_mirror")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aps-mirror",
                                     description="Mirror Autodesk cloud documents into S3.")
    parser.add_argument("--version", action="version", version=f"aps-mirror {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sync.configure_parser(commands.add_parser("sync", help="mirror the selected projects once"))
    validate.configure_parser(commands.add_parser("validate", help="check what the connection can do"))
    tree.configure_parser(commands.add_parser("tree", help="show the mirror in S3 as a tree"))
    from aps_mirror.simulator import cli as simulator_cli

    simulator_cli.configure_parser(commands.add_parser("simulator", help="run the APS simulator"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args))
    except ApsMirrorError as exc:
        log.error("%s", exc)
        return ExitCode.USAGE if isinstance(exc, ConfigError) else ExitCode.FAILED
    except KeyboardInterrupt:
        log.error("interrupted; the mirror and its manifests are consistent, run again to finish")
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
